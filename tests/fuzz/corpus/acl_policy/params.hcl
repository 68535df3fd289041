/* parameters */
path "pki/issue/+" {
  capabilities = ["update", "create",]
  allowed_parameters = { "common_name" = ["*.example.com", "x"], "ttl" = [] }
  denied_parameters { "ttl" = ["999h", 5, true] }
  required_parameters = ["common_name"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = 300
}
path "secret/*" { policy = "write" }
path "a/+/b*" { capabilities = ["sudo"] } // trailing comment
path = { "x" = { capabilities = ["deny"] } }
name = "n"
