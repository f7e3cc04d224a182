path "kv/*" {
   capabilities = [ "create", "read", "delete", "list" ]
}
