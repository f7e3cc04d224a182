/* test_vault.c - key URIs in both the local and the Azure form; the cache generation. */
#include "pgcmk/vault.h"
#include "t.h"

int
main(void)
{
    char v[32], n[128], ver[40];

    CHECK(pgcmk_vault_parse_key_uri(
              "https://KV1.vault.localhost:8443/keys/k1/0123456789abcdef0123456789abcdef", v, n,
              ver) == 0);
    CHECK_STR(v, "kv1");
    CHECK_STR(n, "k1");
    CHECK_STR(ver, "0123456789abcdef0123456789abcdef");
    CHECK(pgcmk_vault_parse_key_uri(
              "https://kv1.vault.azure.net:443/keys/cmk-key/ABCDEF0123456789ABCDEF0123456789", v, n,
              ver) == 0);
    CHECK_STR(v, "kv1");
    CHECK_STR(n, "cmk-key");
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k1", v, n, ver) == 0);
    CHECK_STR(ver, "");
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k1/", v, n, ver) == 0);
    CHECK_STR(ver, "");
    CHECK(pgcmk_vault_parse_key_uri("http://kv1.vault.azure.net/keys/k1", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.example.com/keys/k1", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://a.b.vault.azure.net/keys/k1", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/secrets/k1", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k_1/abc", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k1/xyz", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://kv1.vault.azure.net/keys/k1/ab/cd", v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri(NULL, v, n, ver) == -1);
    CHECK(pgcmk_vault_parse_key_uri("https://.vault.azure.net/keys/k1", v, n, ver) == -1);
    {
        /* Every invalidation moves the generation the data-plane caches are checked against. */
        unsigned long long g = pgcmk_vault_generation();

        CHECK(g != 0);
        pgcmk_vault_invalidate();
        CHECK(pgcmk_vault_generation() == g + 1);
        pgcmk_vault_invalidate();
        pgcmk_vault_invalidate();
        CHECK(pgcmk_vault_generation() == g + 3);
    }
    return t_done("test_vault");
}
