/* test_tdeproto.c - the pure parts of the pg_tde agent: the bodies of include/pgcmk/tdeproto.h
 * (src/pg/tdeproto.c: escapes, keys, repeated rows, limits) and pg_tde's keyring file format
 * (src/tde/keyring.c: records, lookups, corruption, the file as another user). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg/tdeproto.h"
#include "pgcmk/keyring.h"
#include "pgcmk/tdeproto.h"
#include "t.h"

static void
test_parse(void)
{
    struct tdep_msg m;
    const char *why = NULL;
    static const char ok[] = "op=key_set\ndbname=a\\nb\\\\c\\rd\nempty=\nrow=1\nrow=2\n";
    static const char *bad[] = {
        "op=x",                                  /* no final newline */
        "op\n",                                  /* no '=' */
        "=x\n",                                  /* empty key */
        "Op=x\n",                                /* upper case */
        "op-x=1\n",                              /* '-' */
        "op=1\nop=2\n",                          /* twice */
        "op=a\\tb\n",                            /* unknown escape */
        "op=a\\\n",                              /* lone backslash */
        "op=a\rb\n",                             /* raw CR */
        "op=a\\0\n",                             /* escaped NUL */
        "\n",                                    /* empty line */
        "abcdefghijklmnopqrstuvwxyzabcdefg=1\n", /* 33 characters */
    };

    CHECK(tdep_parse(ok, sizeof(ok) - 1, "row", &m, &why) == 0);
    CHECK(m.n == 5);
    CHECK_STR(tdep_get(&m, "op"), "key_set");
    CHECK_STR(tdep_get(&m, "dbname"), "a\nb\\c\rd");
    CHECK_STR(tdep_get(&m, "empty"), "");
    CHECK_STR(m.f[4].value, "2");
    CHECK(tdep_get(&m, "nope") == NULL);
    tdep_free(&m);
    CHECK(m.n == 0 && m.f == NULL);
    CHECK(tdep_parse(ok, sizeof(ok) - 1, NULL, &m, &why) == -1 && why != NULL);
    CHECK(m.n == 0);
    CHECK(tdep_parse("", 0, NULL, &m, &why) == 0 && m.n == 0);
    tdep_free(&m);
    CHECK(tdep_parse("abcdefghijklmnopqrstuvwxyzabcdef=1\n", 35, NULL, &m, &why) == 0);
    tdep_free(&m);
    CHECK(tdep_parse("a=x\0y\n", 6, NULL, &m, &why) == -1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        CHECK(tdep_parse(bad[i], strlen(bad[i]), NULL, &m, &why) == -1 && why && m.n == 0);
    }
    CHECK(tdep_parse(ok, PGTDE_MAX_BODY + 1, NULL, &m, &why) == -1);
}

static void
test_format(void)
{
    struct tdep_buf b = {0};
    struct tdep_msg m;
    const char *why;
    char *big;

    tdep_add(&b, "status", "error");
    tdep_add(&b, "message", "a\nb\\c\rd");
    tdep_add(&b, "detail", NULL);
    tdep_addn(&b, "row", "1\t2", 3);
    tdep_add(&b, "row", "3");
    CHECK(!b.overflow);
    CHECK(b.len == strlen("status=error\nmessage=a\\nb\\\\c\\rd\ndetail=\nrow=1\t2\nrow=3\n"));
    CHECK(memcmp(b.p, "status=error\nmessage=a\\nb\\\\c\\rd\n", 32) == 0);
    CHECK(tdep_parse(b.p, b.len, "row", &m, &why) == 0);
    CHECK_STR(tdep_get(&m, "message"), "a\nb\\c\rd");
    CHECK_STR(m.f[3].value, "1\t2");
    tdep_free(&m);
    tdep_add(&b, "Bad", "x"); /* a key the parser would refuse */
    CHECK(b.overflow);
    tdep_buf_free(&b);
    CHECK(b.p == NULL && b.len == 0 && !b.overflow);
    big = malloc(PGTDE_MAX_BODY);
    memset(big, '\n', PGTDE_MAX_BODY);
    tdep_addn(&b, "x", big, PGTDE_MAX_BODY / 2); /* escapes double it: over the limit */
    CHECK(b.overflow && b.len == 0);
    tdep_buf_free(&b);
    free(big);
}

static void
test_keyring(void)
{
    unsigned char file[3 * PGCMK_KEYRING_REC + 7], k16[16], k32[32], got[32];
    size_t n;
    char path[] = "/tmp/pgcmk-keyring-XXXXXX", err[256];
    int fd;

    memset(k16, 0x16, sizeof(k16));
    memset(k32, 0x32, sizeof(k32));
    CHECK(pgcmk_keyring_record("alpha", k16, 16, file) == 0);
    CHECK(pgcmk_keyring_record("Beta", k32, 32, file + PGCMK_KEYRING_REC) == 0);
    CHECK(pgcmk_keyring_record("alpha", k32, 32, file + 2 * PGCMK_KEYRING_REC) == 0);
    CHECK(PGCMK_KEYRING_REC == 292);
    CHECK(pgcmk_keyring_find(file, 3 * PGCMK_KEYRING_REC, "alpha", got, &n) == PGCMK_KEYRING_FOUND);
    CHECK(n == 16 && memcmp(got, k16, 16) == 0); /* the first record wins */
    CHECK(pgcmk_keyring_find(file, 3 * PGCMK_KEYRING_REC, "BETA", got, &n) == PGCMK_KEYRING_FOUND);
    CHECK(n == 32 && memcmp(got, k32, 32) == 0);
    CHECK(pgcmk_keyring_find(file, 3 * PGCMK_KEYRING_REC, "gamma", got, &n) == PGCMK_KEYRING_NONE);
    CHECK(pgcmk_keyring_find(file, 0, "alpha", got, &n) == PGCMK_KEYRING_NONE);
    CHECK(pgcmk_keyring_find(file, 3 * PGCMK_KEYRING_REC + 7, "gamma", got, &n) ==
          PGCMK_KEYRING_CORRUPT);
    CHECK(pgcmk_keyring_find(file, 3 * PGCMK_KEYRING_REC + 7, "alpha", got, &n) ==
          PGCMK_KEYRING_FOUND);
    file[PGCMK_KEYRING_REC + 288] = 17; /* Beta's length */
    CHECK(pgcmk_keyring_find(file, 3 * PGCMK_KEYRING_REC, "beta", got, &n) == PGCMK_KEYRING_BADLEN);
    CHECK(pgcmk_keyring_record("", k16, 16, file) == -1);
    CHECK(pgcmk_keyring_record("x", k16, 24, file) == -1);
    {
        char longname[300];

        memset(longname, 'a', 256);
        longname[256] = 0;
        CHECK(pgcmk_keyring_record(longname, k16, 16, file) == -1);
        longname[255] = 0;
        CHECK(pgcmk_keyring_record(longname, k16, 16, file) == 0);
    }
    /* the file: put, get, never overwritten */
    fd = mkstemp(path);
    close(fd);
    unlink(path);
    CHECK(pgcmk_keyring_file_get(path, "k", getuid(), getgid(), got, &n, err, sizeof(err)) ==
          PGCMK_KEYRING_NONE);
    CHECK(pgcmk_keyring_file_put(path, "k", k16, 16, getuid(), getgid(), err, sizeof(err)) == 0);
    CHECK(pgcmk_keyring_file_put(path, "K", k32, 32, getuid(), getgid(), err, sizeof(err)) == 1);
    CHECK_STR(err, "Key with name K already exists in keyring");
    CHECK(pgcmk_keyring_file_put(path, "k2", k32, 32, getuid(), getgid(), err, sizeof(err)) == 0);
    CHECK(pgcmk_keyring_file_get(path, "k", getuid(), getgid(), got, &n, err, sizeof(err)) ==
          PGCMK_KEYRING_FOUND);
    CHECK(n == 16 && memcmp(got, k16, 16) == 0);
    CHECK(pgcmk_keyring_file_get(path, "k2", getuid(), getgid(), got, &n, err, sizeof(err)) ==
          PGCMK_KEYRING_FOUND);
    CHECK(n == 32 && memcmp(got, k32, 32) == 0);
    fd = open(path, O_WRONLY | O_APPEND);
    CHECK(write(fd, "xyz", 3) == 3);
    close(fd);
    CHECK(pgcmk_keyring_file_get(path, "zz", getuid(), getgid(), got, &n, err, sizeof(err)) == -1);
    CHECK(strstr(err, "is corrupted") != NULL);
    if (geteuid() == 0) { /* as nobody (65534): the 0600 file of root is not readable */
        CHECK(pgcmk_keyring_file_get(path, "k", 65534, 65534, got, &n, err, sizeof(err)) == -1);
        CHECK(strstr(err, "Permission denied") != NULL);
        CHECK(pgcmk_keyring_file_get(path, "k", 0, 0, got, &n, err, sizeof(err)) == 1);
    }
    unlink(path);
}

int
main(void)
{
    test_parse();
    test_format();
    test_keyring();
    return t_done("test_tdeproto");
}
