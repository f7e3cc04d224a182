/* t_store.h - unit tests open the store as production does: a SQLite file in WAL mode (with its
 * master key) in a fresh temporary directory, removed by t_store_close(). */
#ifndef PGCMK_T_STORE_H
#define PGCMK_T_STORE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgcmk/store.h"

static char t_store_dir[64];

/* 0 or -1 (err filled, or a message on stderr when the directory cannot be made). */
static inline int
t_store_open(struct pgcmk_err *err)
{
    char db[128], key[128];

    pgcmk_err_clear(err);
    snprintf(t_store_dir, sizeof(t_store_dir), "/tmp/pgcmk-unit.XXXXXX");
    if (mkdtemp(t_store_dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(db, sizeof(db), "%s/pgcmk.sqlite", t_store_dir);
    snprintf(key, sizeof(key), "%s/master.key", t_store_dir);
    return pgcmk_store_open(db, key, 0, err);
}

/* Closes the store and removes its directory (the database, its -wal/-shm and the key). */
static inline void
t_store_close(void)
{
    static const char *const files[] = {"pgcmk.sqlite", "pgcmk.sqlite-wal", "pgcmk.sqlite-shm",
                                        "master.key"};
    char p[160];

    pgcmk_store_close();
    if (t_store_dir[0] == '\0')
        return;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", t_store_dir, files[i]);
        unlink(p);
    }
    if (rmdir(t_store_dir) != 0)
        perror(t_store_dir);
    t_store_dir[0] = '\0';
}

#endif
