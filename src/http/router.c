/* router.c - the route table: patterns of literal and {captured} segments, matched
 * case-insensitively per plane; the most specific pattern wins; 405 lists what is allowed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/http.h"
#include "pgcmk/log.h"

#define ROUTER_MAX_TABLES 32
#define ROUTER_MAX_SEGS   32

static struct {
    const struct pgcmk_route *routes;
    size_t n;
} router_tables[ROUTER_MAX_TABLES];

static size_t router_n_tables;

/* Set by a successful pgcmk_router_check(): from then on requests may be served, and they read
 * the table without a lock, so nothing may write it any more (only pgcmk_router_reset, for tests).
 */
static int router_sealed;

void
pgcmk_router_add(const struct pgcmk_route *routes, size_t n)
{
    if (router_sealed)
        PGCMK_BUG("route table sealed: %s %s added after the check (register routes at init)",
                  n ? routes[0].method : "-", n ? routes[0].pattern : "-");
    if (router_n_tables == ROUTER_MAX_TABLES)
        PGCMK_BUG("too many route tables");
    router_tables[router_n_tables].routes = routes;
    router_tables[router_n_tables].n = n;
    router_n_tables++;
}

void
pgcmk_router_each(void (*fn)(const struct pgcmk_route *r, void *arg), void *arg)
{
    for (size_t t = 0; t < router_n_tables; t++)
        for (size_t i = 0; i < router_tables[t].n; i++)
            fn(&router_tables[t].routes[i], arg);
}

void
pgcmk_router_reset(void)
{
    router_n_tables = 0;
    router_sealed = 0;
}

int
pgcmk_router_sealed(void)
{
    return router_sealed;
}

/* Splits "/a/b/c" into pointers to NUL-terminated segments inside buf. */
static int
router_split(const char *path, char *buf, size_t cap, char **segs)
{
    int n = 0;
    char *p;

    snprintf(buf, cap, "%s", path);
    p = buf;
    while (*p == '/')
        p++;
    while (*p) {
        char *slash = strchr(p, '/');

        if (n == ROUTER_MAX_SEGS)
            return -1;
        segs[n++] = p;
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
        while (*p == '/')
            p++;
    }
    return n;
}

/* Matches one pattern. Returns a specificity score (>= 0) or -1. Captures go to rq when
 * capture is set. Literal segments weigh more than parameters, parameters more than {*rest}. */
static long
router_try(const char *pattern, char **segs, int nseg, struct pgcmk_req *rq, int capture)
{
    char pbuf[512], *psegs[ROUTER_MAX_SEGS];
    int np = router_split(pattern, pbuf, sizeof(pbuf), psegs);
    long score = 0;
    int i;

    if (np < 0)
        PGCMK_BUG("pattern too long: %s", pattern);
    for (i = 0; i < np; i++) {
        const char *ps = psegs[i];

        score *= 4;
        if (ps[0] == '{' && ps[1] == '*') {
            char name[64];

            if (i >= nseg)
                return -1; /* a rest parameter needs at least one segment */
            if (capture && rq->n_params < PGCMK_MAX_PARAMS) {
                size_t len = 0;
                char *joined;

                for (int j = i; j < nseg; j++)
                    len += strlen(segs[j]) + 1;
                joined = pgcmk_xmalloc(len + 1);
                joined[0] = '\0';
                for (int j = i; j < nseg; j++) {
                    if (j > i)
                        strcat(joined, "/");
                    strcat(joined, segs[j]);
                }
                snprintf(name, sizeof(name), "%.*s", (int)strlen(ps) - 3, ps + 2);
                rq->params[rq->n_params].key = pgcmk_xstrdup(name);
                rq->params[rq->n_params].value = joined;
                rq->n_params++;
            }
            return score + 1;
        }
        if (i >= nseg)
            return -1;
        if (ps[0] == '{') {
            if (segs[i][0] == '\0')
                return -1;
            if (capture && rq->n_params < PGCMK_MAX_PARAMS) {
                rq->params[rq->n_params].key = pgcmk_xstrndup(ps + 1, strlen(ps) - 2);
                rq->params[rq->n_params].value = pgcmk_xstrdup(segs[i]);
                rq->n_params++;
            }
            score += 2;
        } else {
            if (strcasecmp(ps, segs[i]) != 0)
                return -1;
            score += 3;
        }
    }
    if (np != nseg)
        return -1;
    return score;
}

static void
router_clear_params(struct pgcmk_req *rq)
{
    for (int i = 0; i < rq->n_params; i++) {
        free(rq->params[i].key);
        free(rq->params[i].value);
    }
    rq->n_params = 0;
}

const struct pgcmk_route *
pgcmk_router_match(struct pgcmk_req *rq, char *allow, size_t allow_cap)
{
    char buf[2048], *segs[ROUTER_MAX_SEGS];
    int nseg = router_split(rq->path, buf, sizeof(buf), segs);
    const struct pgcmk_route *best = NULL;
    long best_score = -1, best_path_score = -1;

    if (allow_cap)
        allow[0] = '\0';
    if (nseg < 0 || strlen(rq->path) >= sizeof(buf))
        return NULL;
    /* Pass 1: the best route for this method; and the best path match of any method. */
    for (size_t t = 0; t < router_n_tables; t++) {
        for (size_t i = 0; i < router_tables[t].n; i++) {
            const struct pgcmk_route *r = &router_tables[t].routes[i];
            long s;

            if (r->plane != rq->plane)
                continue;
            s = router_try(r->pattern, segs, nseg, rq, 0);
            if (s < 0)
                continue;
            if (s > best_path_score)
                best_path_score = s;
            if (strcmp(r->method, rq->method) == 0 && s > best_score) {
                best = r;
                best_score = s;
            }
        }
    }
    /* A more specific path with other methods wins over a generic one with this method. */
    if (best && best_score == best_path_score) {
        router_clear_params(rq);
        router_try(best->pattern, segs, nseg, rq, 1);
        return best;
    }
    if (best_path_score < 0)
        return NULL;
    /* 405: list the methods of the routes with the most specific matching path. */
    for (size_t t = 0; t < router_n_tables; t++) {
        for (size_t i = 0; i < router_tables[t].n; i++) {
            const struct pgcmk_route *r = &router_tables[t].routes[i];

            if (r->plane != rq->plane ||
                router_try(r->pattern, segs, nseg, rq, 0) != best_path_score)
                continue;
            if (strstr(allow, r->method) == NULL &&
                strlen(allow) + strlen(r->method) + 3 < allow_cap) {
                if (allow[0])
                    strcat(allow, ", ");
                strcat(allow, r->method);
            }
        }
    }
    return NULL;
}

/* Two routes are ambiguous when they have the same plane, method and pattern shape. */
static void
router_shape(const char *pattern, char *out, size_t cap)
{
    size_t n = 0;

    for (const char *p = pattern; *p && n + 2 < cap; p++) {
        if (*p == '{') {
            const char *close = strchr(p, '}');

            out[n++] = p[1] == '*' ? '*' : '?';
            p = close ? close : p + strlen(p) - 1;
        } else {
            out[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        }
    }
    out[n] = '\0';
}

int
pgcmk_router_check(void)
{
    int bad = 0;

    for (size_t t = 0; t < router_n_tables; t++) {
        for (size_t i = 0; i < router_tables[t].n; i++) {
            const struct pgcmk_route *a = &router_tables[t].routes[i];
            char sa[512];

            router_shape(a->pattern, sa, sizeof(sa));
            for (size_t u = t; u < router_n_tables; u++) {
                for (size_t j = (u == t ? i + 1 : 0); j < router_tables[u].n; j++) {
                    const struct pgcmk_route *b = &router_tables[u].routes[j];
                    char sb[512];

                    if (a->plane != b->plane || strcmp(a->method, b->method) != 0)
                        continue;
                    router_shape(b->pattern, sb, sizeof(sb));
                    if (strcmp(sa, sb) == 0) {
                        fprintf(stderr, "ambiguous routes: %s %s and %s\n", a->method, a->pattern,
                                b->pattern);
                        bad = 1;
                    }
                }
            }
        }
    }
    if (bad)
        return -1;
    router_sealed = 1;
    return 0;
}
