/* static.h - the portal: files of the web directory served at /portal/ from an allow-list.
 *
 * At start the web directory is walked once and every regular file with a known type is read
 * into memory under its URL path (/portal/app.js). Requests are looked up in that table and
 * never joined to a filesystem path, so "..", "%2e%2e", NUL bytes and the like simply miss. */
#ifndef PGCMK_STATIC_H
#define PGCMK_STATIC_H

#include <stddef.h>

#include "pgcmk/cfg.h"

/* Finds the web directory (cfg->web_dir; when that is the default and missing, ../web next to
 * the binary), loads it and registers the /portal routes on both listeners. A missing
 * directory is not fatal: the routes answer 404 and a warning is logged. Returns the number of
 * files loaded. */
size_t pgcmk_static_init(const struct pgcmk_cfg *cfg);
/* Frees the table (also registered with atexit). */
void pgcmk_static_release(void);

#endif
