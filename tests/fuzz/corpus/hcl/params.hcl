# parameters and wrapping
path "secret/foo" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "bar" = ["zip", "zap"]
    "*"   = []
  }
  denied_parameters = { "salary" = [] }
  required_parameters = ["bar"]
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = "90s"
}
/* old style */
path "sys/*" { policy = "deny" }
// heredoc
x = <<EOF
text
EOF
