/* static.c - the portal's files: an allow-list (URL path -> bytes + content type) built at start
 * by walking the web directory, served at /portal/ on both listeners (STYLE.md anti-pattern 7:
 * never join a URL to a filesystem path). Only regular files with a known extension and a plain
 * name ([A-Za-z0-9._-], no leading dot) are taken; symlinks are skipped. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgcmk/http.h"
#include "pgcmk/log.h"
#include "pgcmk/static.h"

#define STATIC_PREFIX    "/portal/"
#define STATIC_MAX_FILES 512
#define STATIC_MAX_DEPTH 6
#define STATIC_MAX_BYTES (16u * 1024u * 1024u) /* all files together */
#define STATIC_MAX_NAME  200

struct static_file {
    char *url; /* "/portal/app.js" */
    const char *ctype;
    char *body;
    size_t len;
};

static struct static_file static_files[STATIC_MAX_FILES];
static size_t static_n;
static size_t static_bytes;

static int static_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err);

static const struct pgcmk_route static_routes[] = {
    {"GET", "/portal", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH | ROUTE_F_ANYQUERY, NULL,
     static_get},
    {"HEAD", "/portal", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH | ROUTE_F_ANYQUERY, NULL,
     static_get},
    {"GET", "/portal/{*file}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH | ROUTE_F_ANYQUERY,
     NULL, static_get},
    {"HEAD", "/portal/{*file}", PGCMK_PLANE_ARM, PGCMK_ENV_ARM, ROUTE_F_NOAUTH | ROUTE_F_ANYQUERY,
     NULL, static_get},
};

static const struct {
    const char *ext;
    const char *ctype;
} static_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *
static_type(const char *name)
{
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < sizeof(static_types) / sizeof(static_types[0]); i++)
        if (strcasecmp(dot, static_types[i].ext) == 0)
            return static_types[i].ctype;
    return NULL;
}

static int
static_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > STATIC_MAX_NAME || name[0] == '.')
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static void
static_load_file(const char *path, const char *rel, const char *ctype, off_t size)
{
    FILE *f;
    char *body;

    if (static_n == STATIC_MAX_FILES || size < 0 || (size_t)size > STATIC_MAX_BYTES ||
        static_bytes + (size_t)size > STATIC_MAX_BYTES) {
        LOG_WARN("portal: %s left out (the portal is limited to %d files and %u bytes)", rel,
                 STATIC_MAX_FILES, STATIC_MAX_BYTES);
        return;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        LOG_WARN("portal: cannot read %s: %s", path, strerror(errno));
        return;
    }
    body = pgcmk_xmalloc((size_t)size + 1);
    if (fread(body, 1, (size_t)size, f) != (size_t)size) {
        LOG_WARN("portal: short read of %s", path);
        free(body);
        fclose(f);
        return;
    }
    fclose(f);
    body[size] = '\0';
    static_files[static_n].url = pgcmk_xasprintf(STATIC_PREFIX "%s", rel);
    static_files[static_n].ctype = ctype;
    static_files[static_n].body = body;
    static_files[static_n].len = (size_t)size;
    static_n++;
    static_bytes += (size_t)size;
}

/* dir is the directory on disk, rel its path below the web root ("" or "js/"). */
static void
static_walk(const char *dir, const char *rel, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL) {
        LOG_WARN("portal: cannot open %s: %s", dir, strerror(errno));
        return;
    }
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX], sub[PATH_MAX];
        const char *ctype;
        struct stat st;

        if (!static_name_ok(de->d_name))
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path) ||
            snprintf(sub, sizeof(sub), "%s%s", rel, de->d_name) >= (int)sizeof(sub) ||
            lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < STATIC_MAX_DEPTH && strlen(sub) + 2 < sizeof(sub)) {
                strcat(sub, "/");
                static_walk(path, sub, depth + 1);
            }
        } else if (S_ISREG(st.st_mode) && (ctype = static_type(de->d_name)) != NULL) {
            static_load_file(path, sub, ctype, st.st_size);
        }
    }
    closedir(d);
}

static int
static_is_dir(const char *path)
{
    struct stat st;

    return path && *path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* cfg->web_dir, or (for the default only) ../web next to the binary. Returns heap or NULL. */
static char *
static_find_dir(const struct pgcmk_cfg *cfg)
{
    const char *given = cfg && cfg->web_dir && *cfg->web_dir ? cfg->web_dir : "./web";
    char exe[PATH_MAX], *slash;
    ssize_t n;

    if (static_is_dir(given))
        return pgcmk_xstrdup(given);
    if (strcmp(given, "./web") != 0 && strcmp(given, "web") != 0)
        return NULL; /* an explicit --web that is wrong is not second-guessed */
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    {
        char *cand = pgcmk_xasprintf("%s/../web", exe);

        if (static_is_dir(cand))
            return cand;
        free(cand);
    }
    return NULL;
}

void
pgcmk_static_release(void)
{
    for (size_t i = 0; i < static_n; i++) {
        free(static_files[i].url);
        free(static_files[i].body);
    }
    static_n = 0;
    static_bytes = 0;
}

size_t
pgcmk_static_init(const struct pgcmk_cfg *cfg)
{
    static int registered;
    char *dir;

    pgcmk_static_release();
    if (!registered) {
        pgcmk_router_add(static_routes, sizeof(static_routes) / sizeof(static_routes[0]));
        atexit(pgcmk_static_release);
        registered = 1;
    }
    dir = static_find_dir(cfg);
    if (dir == NULL) {
        LOG_WARN("portal: no web directory (--web %s); /portal/ answers 404",
                 cfg && cfg->web_dir ? cfg->web_dir : "./web");
        return 0;
    }
    static_walk(dir, "", 0);
    LOG_INFO("portal: %zu files (%zu bytes) from %s", static_n, static_bytes, dir);
    free(dir);
    return static_n;
}

static const struct static_file *
static_lookup(const char *url)
{
    for (size_t i = 0; i < static_n; i++)
        if (strcmp(static_files[i].url, url) == 0)
            return &static_files[i];
    return NULL;
}

static int
static_get(struct pgcmk_req *rq, struct pgcmk_resp *rs, struct pgcmk_err *err)
{
    const char *raw = rq->raw_path ? rq->raw_path : "";
    const struct static_file *f;
    char url[STATIC_MAX_NAME * 2];
    char *csp;

    if (strcmp(raw, "/portal") == 0) {
        pgcmk_resp_empty(rs, 301);
        pgcmk_resp_header(rs, "Location", STATIC_PREFIX);
        return 0;
    }
    /* The path as sent (not the normalised one): "/portal/" is the index page, "x/" its dir's. */
    if (strncmp(raw, STATIC_PREFIX, strlen(STATIC_PREFIX)) != 0 || strlen(raw) >= sizeof(url) - 16)
        f = NULL;
    else {
        snprintf(url, sizeof(url), "%s%s", raw, raw[strlen(raw) - 1] == '/' ? "index.html" : "");
        f = static_lookup(url);
    }
    if (f == NULL)
        return pgcmk_err_set(err, PGCMK_E_NOT_FOUND, NULL, "The portal has no file '%.128s'.",
                             rq->path);
    pgcmk_resp_text(rs, 200, f->ctype, f->body, f->len);
    /* The portal calls ARM on its own origin, vaults on {vault}.vault.localhost with the
     * same scheme and port, and the Vault-compatible API on its own loopback listener (any
     * port: it may be a free one); nothing else, no inline script or style, no framing. */
    csp = pgcmk_xasprintf("default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self' %s://*.vault.localhost:%d "
                          "https://127.0.0.1:* https://localhost:* http://127.0.0.1:* "
                          "http://localhost:*; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                          rq->tls ? "https" : "http", rq->port);
    pgcmk_resp_header(rs, "Content-Security-Policy", csp);
    free(csp);
    pgcmk_resp_header(rs, "X-Frame-Options", "DENY");
    pgcmk_resp_header(rs, "Referrer-Policy", "no-referrer");
    return 0;
}
