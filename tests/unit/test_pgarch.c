/* test_pgarch.c - the archive's pure parts (src/pg/arfmt.c): request and answer lines, the
 * "PGCMKA1" encrypted file format (round trips, wrong key, wrong name, wrong database, every
 * truncation, altered bytes, trailing data), WAL positions. */
#include <stdlib.h>
#include <string.h>

#include "pg/arfmt.h"
#include "t.h"

static void
test_req(void)
{
    struct pga_req r;
    const char *why;
    char line[PGA_LINE_MAX];
    static const char *bad[] = {
        "PUSH s1 000000010000000000000001\n",          /* no length */
        "PUSH s1 000000010000000000000001 01\n",       /* leading zero */
        "PUSH s1 000000010000000000000001 -1\n",       /* sign */
        "PUSH s1 000000010000000000000001 67108865\n", /* over PGA_MAX_FILE */
        "PUSH S1 000000010000000000000001 1\n",        /* upper-case slug */
        "PUSH s1 ../etc/passwd 1\n",                   /* a path */
        "PUSH s1 .hidden 1\n",                         /* leading dot */
        "FETCH s1 x 1\n",                              /* FETCH has no length */
        "FETCH s1  x\n",                               /* empty field */
        "FETCH s1 x \n",                               /* trailing space */
        "GET s1 x\n",                                  /* unknown */
        "FETCH s1 x\r\n",                              /* CR */
        "\n",
    };
    size_t i;

    CHECK(pga_req_parse("PUSH ab-1 000000010000000000000001 16777216\nxx", 47, &r, &why) == 44);
    CHECK(r.op == PGA_PUSH && r.length == 16777216);
    CHECK_STR(r.slug, "ab-1");
    CHECK_STR(r.name, "000000010000000000000001");
    CHECK(pga_req_parse("FETCH s 00000002.history\n", 25, &r, &why) == 25);
    CHECK(r.op == PGA_FETCH);
    CHECK_STR(r.name, "00000002.history");
    CHECK(pga_req_parse("FETCH s 0000", 12, &r, &why) == 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        CHECK(pga_req_parse(bad[i], strlen(bad[i]), &r, &why) == -1 && why != NULL);
    }
    memset(line, 'A', sizeof(line));
    CHECK(pga_req_parse(line, sizeof(line), &r, &why) == -1);
    r.op = PGA_PUSH;
    strcpy(r.slug, "s1");
    strcpy(r.name, "000000010000000000000001.partial");
    r.length = 5;
    CHECK(pga_req_format(&r, line, sizeof(line)) > 0);
    CHECK_STR(line, "PUSH s1 000000010000000000000001.partial 5\n");
    strcpy(r.name, "a/b");
    CHECK(pga_req_format(&r, line, sizeof(line)) == -1);
}

static void
test_ans(void)
{
    int ok;
    uint64_t n;
    char text[64];

    CHECK(pga_ans_parse("OK 12\nabc", 9, &ok, &n, text, sizeof(text)) == 6 && ok && n == 12);
    CHECK(pga_ans_parse("ERR missing\n", 12, &ok, &n, text, sizeof(text)) == 12 && !ok);
    CHECK_STR(text, "missing");
    CHECK(pga_ans_parse("OK 1", 4, &ok, &n, text, sizeof(text)) == 0);
    CHECK(pga_ans_parse("OK x\n", 5, &ok, &n, text, sizeof(text)) == -1);
    CHECK(pga_ans_parse("ERR \n", 5, &ok, &n, text, sizeof(text)) == -1);
    CHECK(pga_ans_parse("ERR a\x01\n", 7, &ok, &n, text, sizeof(text)) == -1);
    CHECK(pga_ans_parse("HELLO\n", 6, &ok, &n, text, sizeof(text)) == -1);
}

static void
test_file(void)
{
    unsigned char dek[32], dek2[32], *ct = NULL, *pt = NULL, *big;
    size_t ct_len = 0, pt_len = 0, n = 3 * PGA_CHUNK_DEFAULT + 77, i;
    const char *why = NULL;
    int fails = 0;

    memset(dek, 7, sizeof(dek));
    memset(dek2, 8, sizeof(dek2));
    big = malloc(n);
    for (i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 31 + (i >> 9));
    CHECK(pga_seal_mem(dek, "/subscriptions/a/db1", "seg1", big, n, &ct, &ct_len) == 0);
    CHECK(ct_len == PGA_HEADER_LEN + n + 4 * (4 + PGA_TAG_LEN));
    CHECK(memcmp(ct, "PGCMKA1", 8) == 0);
    CHECK(pga_open_mem(dek, "/subscriptions/a/db1", "seg1", ct, ct_len, &pt, &pt_len, &why) == 0);
    CHECK(pt_len == n && pt && memcmp(pt, big, n) == 0);
    free(pt);
    pt = NULL;
    /* no plaintext run of the marker-like pattern survives */
    CHECK(memmem(ct, ct_len, big + 1000, 64) == NULL);
    /* wrong key, wrong name, wrong database */
    CHECK(pga_open_mem(dek2, "/subscriptions/a/db1", "seg1", ct, ct_len, &pt, &pt_len, &why) == -1);
    CHECK(why && strstr(why, "authentication failed"));
    CHECK(pga_open_mem(dek, "/subscriptions/a/db1", "seg2", ct, ct_len, &pt, &pt_len, &why) == -1);
    CHECK(pga_open_mem(dek, "/subscriptions/a/db2", "seg1", ct, ct_len, &pt, &pt_len, &why) == -1);
    /* truncations at the boundaries that matter and a few inside */
    {
        size_t cuts[] = {
            0,          1,           47,         48, 50, 52, 52 + PGA_CHUNK_DEFAULT + 16,
            ct_len - 1, ct_len - 17, ct_len - 20};

        for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
            fails += pga_open_mem(dek, "/subscriptions/a/db1", "seg1", ct, cuts[i], &pt, &pt_len,
                                  &why) == -1;
        CHECK(fails == (int)(sizeof(cuts) / sizeof(cuts[0])));
    }
    /* a flipped bit in the header, a word, a ciphertext byte, a tag */
    {
        size_t at[] = {3, 9, 20, 48, 60, ct_len - 1};

        fails = 0;
        for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
            ct[at[i]] ^= 1;
            fails += pga_open_mem(dek, "/subscriptions/a/db1", "seg1", ct, ct_len, &pt, &pt_len,
                                  &why) == -1;
            ct[at[i]] ^= 1;
        }
        CHECK(fails == (int)(sizeof(at) / sizeof(at[0])));
    }
    /* trailing data */
    {
        unsigned char *t = malloc(ct_len + 1);

        memcpy(t, ct, ct_len);
        t[ct_len] = 0;
        CHECK(pga_open_mem(dek, "/subscriptions/a/db1", "seg1", t, ct_len + 1, &pt, &pt_len,
                           &why) == -1);
        CHECK(why && strstr(why, "trailing"));
        free(t);
    }
    free(ct);
    /* empty plaintext: header + one empty last chunk */
    CHECK(pga_seal_mem(dek, "d", "e", "", 0, &ct, &ct_len) == 0);
    CHECK(ct_len == PGA_HEADER_LEN + 4 + PGA_TAG_LEN);
    CHECK(pga_open_mem(dek, "d", "e", ct, ct_len, &pt, &pt_len, &why) == 0 && pt_len == 0);
    free(pt);
    free(ct);
    /* exactly one chunk: a full last chunk */
    CHECK(pga_seal_mem(dek, "d", "e", big, PGA_CHUNK_DEFAULT, &ct, &ct_len) == 0);
    CHECK(ct_len == PGA_HEADER_LEN + PGA_CHUNK_DEFAULT + 4 + PGA_TAG_LEN);
    CHECK(pga_open_mem(dek, "d", "e", ct, ct_len, &pt, &pt_len, &why) == 0 &&
          pt_len == PGA_CHUNK_DEFAULT);
    free(pt);
    free(ct);
    free(big);
}

static int
t_sink(void *arg, const void *buf, size_t len)
{
    size_t *total = arg;

    (void)buf;
    *total += len;
    return 0;
}

/* Byte-at-a-time feeding gives the same result as one call. */
static void
test_stream(void)
{
    unsigned char dek[32], *ct = NULL;
    size_t ct_len = 0, total = 0, i;
    struct pga_open o;
    int rc = 0;

    memset(dek, 1, sizeof(dek));
    CHECK(pga_seal_mem(dek, "d", "n", "hello archive", 13, &ct, &ct_len) == 0);
    pga_open_init(&o, dek, "d", "n", t_sink, &total);
    for (i = 0; i < ct_len && rc == 0; i++)
        rc = pga_open_update(&o, ct + i, 1);
    CHECK(rc == 0 && pga_open_final(&o) == 0 && total == 13);
    pga_open_release(&o);
    free(ct);
}

static void
test_lsn(void)
{
    uint64_t v;
    char s[24];

    CHECK(pga_lsn_parse("16/B374D848", &v) == 0 && v == 0x16B374D848ull);
    CHECK(pga_lsn_parse("0/0", &v) == 0 && v == 0);
    CHECK(pga_lsn_parse("FFFFFFFF/FFFFFFFF", &v) == 0 && v == UINT64_MAX);
    CHECK(pga_lsn_parse("1/", &v) == -1);
    CHECK(pga_lsn_parse("/1", &v) == -1);
    CHECK(pga_lsn_parse("123456789/1", &v) == -1);
    CHECK(pga_lsn_parse("1/g", &v) == -1);
    pga_lsn_format(0x16B374D848ull, s, sizeof(s));
    CHECK_STR(s, "16/B374D848");
}

int
main(void)
{
    test_req();
    test_ans();
    test_file();
    test_stream();
    test_lsn();
    return t_done("test_pgarch");
}
