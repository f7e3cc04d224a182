
# Allow tokens heir own 1.t"pror-self" {
    capabilitiEs = [88888e888,;8‘‘‘‘‘‘‘kv/data/x/‘‘î923"read"
#