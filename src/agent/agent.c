/* agent.c - the encryption agent (DESIGN.md 7): per-database DEKs wrapped by the customer's key
 * through the Key Vault data plane over HTTPS, key checks, and record encryption.
 *
 * The agent is a client of the daemon like any other: it gets a managed-identity token from the
 * IMDS endpoint (https://localhost:PORT/metadata/identity/oauth2/token) and calls
 * https://{vault}.vault.localhost:PORT/keys/... with it, verifying TLS against the daemon's CA. It
 * never calls vault/ or auth/ functions.
 *
 * Secrets: tokens and DEKs never reach a log or a message. Unwrapped DEKs live in page-sized slabs
 * that are mlock'ed (when the limit allows) and excluded from core dumps; every buffer that held
 * one (request and response bodies, decoded values, jansson strings) is wiped before it is freed.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "pgcmk/agent.h"
#include "pgcmk/clock.h"
#include "pgcmk/core.h"
#include "pgcmk/crypto.h"
#include "pgcmk/keyuri.h"
#include "pgcmk/log.h"
#include "pgcmk/store.h"
#include "pgcmk/https.h"

#define AGENT_CONNECT_MS   2000L
#define AGENT_TOTAL_MS     5000L
#define AGENT_RETRIES      2               /* on outage-type failures only */
#define AGENT_BACKOFF_MS   100             /* 100 ms, then 200 ms */
#define AGENT_TOKEN_MARGIN (5 * 60 * 1000) /* refresh tokens 5 minutes before they expire */
#define AGENT_MAX_BODY     (1 << 20)
#define AGENT_KV_API       "7.4"
#define AGENT_ALG_DEFAULT  "RSA-OAEP-256"
#define AGENT_ALG_SERVICE  "A256GCM" /* service-managed: sealed under the master key */
#define AGENT_BUCKETS      256

/* ---- configuration ------------------------------------------------------------------------ */

static pthread_mutex_t agent_cfg_mu = PTHREAD_MUTEX_INITIALIZER;
static int agent_port;
static char *agent_ca;
static int agent_ready;

static pthread_once_t agent_once = PTHREAD_ONCE_INIT;
static pthread_key_t agent_curl_key;
static int agent_key_ok;

static atomic_ulong agent_n_requests, agent_n_retries, agent_n_failures;

struct agent_cfg {
    int port;
    char ca[1024];
};

static int
agent_cfg_get(struct agent_cfg *c)
{
    int ok;

    pthread_mutex_lock(&agent_cfg_mu);
    ok = agent_ready && agent_ca != NULL;
    c->port = agent_port;
    snprintf(c->ca, sizeof(c->ca), "%s", agent_ca ? agent_ca : "");
    pthread_mutex_unlock(&agent_cfg_mu);
    return ok ? 0 : -1;
}

/* ---- results ------------------------------------------------------------------------------ */

static void
agent_res_clear(struct pgcmk_agent_result *res)
{
    memset(res, 0, sizeof(*res));
    res->code = PGCMK_E_OK;
}

static int agent_fail(struct pgcmk_agent_result *res, enum pgcmk_errc code, int lost, int outage,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
agent_fail(struct pgcmk_agent_result *res, enum pgcmk_errc code, int lost, int outage,
           const char *fmt, ...)
{
    va_list ap;

    res->code = code;
    res->lost = lost;
    res->outage = outage;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    atomic_fetch_add(&agent_n_failures, 1);
    return -1;
}

/* ---- the DEK table: locked slabs, a hash by lower-cased db id ------------------------------- */

struct agent_slab {
    struct agent_slab *next;
    unsigned char *mem;
    size_t size;
    unsigned slots;
    uint64_t used[2]; /* at most 128 slots of 32 bytes per slab */
    int locked;
};

struct agent_dek {
    struct agent_dek *next;
    char *db_id;
    unsigned char *key; /* PGCMK_AGENT_DEK_LEN bytes in a slab */
};

static pthread_rwlock_t agent_rw = PTHREAD_RWLOCK_INITIALIZER;
static struct agent_dek *agent_table[AGENT_BUCKETS];
static struct agent_slab *agent_slabs;
static unsigned long agent_ndeks;

static unsigned
agent_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (uint32_t)tolower((unsigned char)*s);
        h *= 16777619u;
    }
    return h % AGENT_BUCKETS;
}

/* A 32-byte slot in locked memory. Called with agent_rw held for writing. */
static unsigned char *
agent_slot_alloc(void)
{
    struct agent_slab *s;
    long page;

    for (s = agent_slabs; s; s = s->next) {
        for (unsigned i = 0; i < s->slots; i++) {
            if (!(s->used[i / 64] & (1ULL << (i % 64)))) {
                s->used[i / 64] |= 1ULL << (i % 64);
                return s->mem + (size_t)i * PGCMK_AGENT_DEK_LEN;
            }
        }
    }
    page = sysconf(_SC_PAGESIZE);
    s = pgcmk_xcalloc(1, sizeof(*s));
    s->size = page > 0 ? (size_t)page : 4096;
    s->mem = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->mem == MAP_FAILED)
        PGCMK_BUG("mmap of a DEK slab failed: %s", strerror(errno));
    s->slots = (unsigned)(s->size / PGCMK_AGENT_DEK_LEN);
    if (s->slots > 128)
        s->slots = 128;
    s->locked = mlock(s->mem, s->size) == 0;
    if (!s->locked)
        LOG_DEBUG("mlock of a DEK slab failed (%s); DEKs may be swapped", strerror(errno));
#ifdef MADV_DONTDUMP
    (void)madvise(s->mem, s->size, MADV_DONTDUMP);
#endif
    s->next = agent_slabs;
    agent_slabs = s;
    s->used[0] = 1;
    return s->mem;
}

static void
agent_slot_free(unsigned char *p)
{
    for (struct agent_slab *s = agent_slabs; s; s = s->next) {
        if (p >= s->mem && p < s->mem + s->size) {
            unsigned i = (unsigned)((size_t)(p - s->mem) / PGCMK_AGENT_DEK_LEN);

            OPENSSL_cleanse(p, PGCMK_AGENT_DEK_LEN);
            s->used[i / 64] &= ~(1ULL << (i % 64));
            return;
        }
    }
    PGCMK_BUG("a DEK slot outside every slab");
}

static struct agent_dek *
agent_find(const char *db_id)
{
    for (struct agent_dek *d = agent_table[agent_hash(db_id)]; d; d = d->next)
        if (strcasecmp(d->db_id, db_id) == 0)
            return d;
    return NULL;
}

/* Keeps (a copy of) dek for db_id. Called with agent_rw held for writing. */
static void
agent_keep_locked(const char *db_id, const unsigned char *dek)
{
    struct agent_dek *d = agent_find(db_id);

    if (d == NULL) {
        unsigned h = agent_hash(db_id);

        d = pgcmk_xcalloc(1, sizeof(*d));
        d->db_id = pgcmk_xstrdup(db_id);
        d->key = agent_slot_alloc();
        d->next = agent_table[h];
        agent_table[h] = d;
        agent_ndeks++;
    }
    memcpy(d->key, dek, PGCMK_AGENT_DEK_LEN);
}

static void
agent_keep(const char *db_id, const unsigned char *dek)
{
    pthread_rwlock_wrlock(&agent_rw);
    agent_keep_locked(db_id, dek);
    pthread_rwlock_unlock(&agent_rw);
}

void
pgcmk_agent_keep(const char *db_id, const unsigned char dek[PGCMK_AGENT_DEK_LEN])
{
    agent_keep(db_id, dek);
}

/* Copies db_id's DEK into out. 0, or -1 when none is held. */
static int
agent_copy(const char *db_id, unsigned char *out)
{
    struct agent_dek *d;

    pthread_rwlock_rdlock(&agent_rw);
    d = agent_find(db_id);
    if (d)
        memcpy(out, d->key, PGCMK_AGENT_DEK_LEN);
    pthread_rwlock_unlock(&agent_rw);
    return d ? 0 : -1;
}

void
pgcmk_agent_forget(const char *db_id)
{
    struct agent_dek **pp, *d;

    if (db_id == NULL)
        return;
    pthread_rwlock_wrlock(&agent_rw);
    for (pp = &agent_table[agent_hash(db_id)]; (d = *pp) != NULL; pp = &d->next) {
        if (strcasecmp(d->db_id, db_id) == 0) {
            *pp = d->next;
            agent_slot_free(d->key);
            free(d->db_id);
            free(d);
            agent_ndeks--;
            break;
        }
    }
    pthread_rwlock_unlock(&agent_rw);
}

int
pgcmk_agent_has_dek(const char *db_id)
{
    int has;

    if (db_id == NULL)
        return 0;
    pthread_rwlock_rdlock(&agent_rw);
    has = agent_find(db_id) != NULL;
    pthread_rwlock_unlock(&agent_rw);
    return has;
}

int
pgcmk_agent_share(const char *from, const char *to)
{
    struct agent_dek *d;
    unsigned char dek[PGCMK_AGENT_DEK_LEN];

    if (from == NULL || to == NULL)
        return -1;
    pthread_rwlock_wrlock(&agent_rw);
    d = agent_find(from);
    if (d) {
        memcpy(dek, d->key, sizeof(dek)); /* `to` may need a slot in a new slab */
        agent_keep_locked(to, dek);
        OPENSSL_cleanse(dek, sizeof(dek));
    }
    pthread_rwlock_unlock(&agent_rw);
    return d ? 0 : -1;
}

/* Wipes every DEK and unmaps the slabs (shutdown). */
static void
agent_wipe_all(void)
{
    pthread_rwlock_wrlock(&agent_rw);
    for (size_t i = 0; i < AGENT_BUCKETS; i++) {
        struct agent_dek *d = agent_table[i], *next;

        for (; d; d = next) {
            next = d->next;
            free(d->db_id);
            free(d);
        }
        agent_table[i] = NULL;
    }
    while (agent_slabs) {
        struct agent_slab *s = agent_slabs;

        agent_slabs = s->next;
        OPENSSL_cleanse(s->mem, s->size);
        if (s->locked)
            munlock(s->mem, s->size);
        munmap(s->mem, s->size);
        free(s);
    }
    agent_ndeks = 0;
    pthread_rwlock_unlock(&agent_rw);
}

/* ---- record encryption -------------------------------------------------------------------- */

/* "ad_db_id:seq", the database id lower-cased (ids are case-insensitive everywhere). */
static char *
agent_aad(const char *ad_db_id, int64_t seq)
{
    char *aad = pgcmk_xasprintf("%s:%lld", ad_db_id, (long long)seq);

    for (char *p = aad; *p && *p != ':'; p++)
        *p = (char)tolower((unsigned char)*p);
    return aad;
}

int
pgcmk_agent_with_dek(const char *db_id,
                     int (*fn)(const unsigned char dek[PGCMK_AGENT_DEK_LEN], void *arg), void *arg)
{
    struct agent_dek *d;
    int rc = -1;

    if (db_id == NULL || fn == NULL)
        return -1;
    pthread_rwlock_rdlock(&agent_rw);
    d = agent_find(db_id);
    if (d)
        rc = fn(d->key, arg);
    pthread_rwlock_unlock(&agent_rw);
    return rc;
}

int
pgcmk_agent_seal(const char *db_id, const char *ad_db_id, int64_t seq, const void *pt,
                 size_t pt_len, unsigned char **out, size_t *out_len)
{
    struct agent_dek *d;
    char *aad;
    int rc = -1;

    *out = NULL;
    *out_len = 0;
    if (db_id == NULL || ad_db_id == NULL || (pt == NULL && pt_len))
        return -1;
    aad = agent_aad(ad_db_id, seq);
    pthread_rwlock_rdlock(&agent_rw);
    d = agent_find(db_id);
    if (d)
        rc = pgcmk_aead_seal(d->key, aad, strlen(aad), pt ? pt : "", pt_len, out, out_len);
    pthread_rwlock_unlock(&agent_rw);
    free(aad);
    return rc;
}

int
pgcmk_agent_open(const char *db_id, const char *ad_db_id, int64_t seq, const void *sealed,
                 size_t sealed_len, unsigned char **out, size_t *out_len)
{
    struct agent_dek *d;
    char *aad;
    int rc = -1;

    *out = NULL;
    *out_len = 0;
    if (db_id == NULL || ad_db_id == NULL || sealed == NULL)
        return -1;
    aad = agent_aad(ad_db_id, seq);
    pthread_rwlock_rdlock(&agent_rw);
    d = agent_find(db_id);
    if (d)
        rc = pgcmk_aead_open(d->key, aad, strlen(aad), sealed, sealed_len, out, out_len);
    pthread_rwlock_unlock(&agent_rw);
    free(aad);
    return rc;
}

/* ---- HTTPS: libcurl, loaded on first use; one keep-alive handle per thread --------------- */

/* libcurl and the libraries it pulls in (Kerberos, LDAP, SSH, HTTP/2, ...) are about 2 MB of
 * mapped pages, the largest part of an idle daemon's RSS, and only the agent uses them: the
 * daemon loads libcurl the first time a database's key is checked, not at start. */
#define AGENT_LIBCURL "libcurl.so.4"

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_reset)(CURL *);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} cu;

static pthread_once_t agent_curl_once = PTHREAD_ONCE_INIT;
static int agent_curl_loaded;

static void
agent_curl_load(void)
{
    static const struct {
        const char *name;
        size_t off;
    } syms[] = {

#define AGENT_SYM(f, n) {"curl_" n, offsetof(__typeof__(cu), f)}
        AGENT_SYM(global_init, "global_init"),   AGENT_SYM(easy_init, "easy_init"),
        AGENT_SYM(easy_reset, "easy_reset"),     AGENT_SYM(easy_cleanup, "easy_cleanup"),
        AGENT_SYM(easy_setopt, "easy_setopt"),   AGENT_SYM(easy_perform, "easy_perform"),
        AGENT_SYM(easy_getinfo, "easy_getinfo"), AGENT_SYM(easy_strerror, "easy_strerror"),
        AGENT_SYM(slist_append, "slist_append"), AGENT_SYM(slist_free_all, "slist_free_all"),
#undef AGENT_SYM
    };
    void *lib = dlopen(AGENT_LIBCURL, RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL) {
        LOG_ERR("agent: cannot load %s: %s", AGENT_LIBCURL, dlerror());
        return;
    }
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        void *f = dlsym(lib, syms[i].name);

        if (f == NULL) {
            LOG_ERR("agent: %s has no %s", AGENT_LIBCURL, syms[i].name);
            return;
        }
        memcpy((char *)&cu + syms[i].off, &f, sizeof(f)); /* POSIX: data and code pointers agree */
    }
    if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        LOG_ERR("agent: curl_global_init failed");
        return;
    }
    agent_curl_loaded = 1; /* the library stays loaded until exit */
}

static _Thread_local CURL *agent_tl_curl;

static void
agent_curl_free(void *h)
{
    cu.easy_cleanup(h);
}

static void
agent_global_init(void)
{
    agent_key_ok = pthread_key_create(&agent_curl_key, agent_curl_free) == 0;
}

static CURL *
agent_handle(void)
{
    pthread_once(&agent_curl_once, agent_curl_load);
    if (!agent_curl_loaded)
        return NULL;
    if (agent_tl_curl == NULL) {
        agent_tl_curl = cu.easy_init();
        if (agent_tl_curl == NULL)
            return NULL;
        pthread_setspecific(agent_curl_key, agent_tl_curl);
    } else {
        cu.easy_reset(agent_tl_curl); /* keeps the connection cache: keep-alive survives */
    }
    return agent_tl_curl;
}

/* A response body; grows by copy-and-wipe so no secret is left in freed memory. */
struct agent_resp {
    long status;
    char *body;
    size_t len, cap;
    int too_big;
    CURLcode cc;
    char errbuf[CURL_ERROR_SIZE];
    json_t *json;
};

static void
agent_resp_release(struct agent_resp *r)
{
    if (r->body) {
        OPENSSL_cleanse(r->body, r->cap);
        free(r->body);
    }
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

static size_t
agent_write(char *data, size_t size, size_t n, void *arg)
{
    struct agent_resp *r = arg;
    size_t add = size * n;

    if (r->len + add + 1 > AGENT_MAX_BODY) {
        r->too_big = 1;
        return 0;
    }
    if (r->len + add + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        char *nb;

        while (cap < r->len + add + 1)
            cap *= 2;
        nb = pgcmk_xmalloc(cap);
        if (r->body) {
            memcpy(nb, r->body, r->len);
            OPENSSL_cleanse(r->body, r->cap);
            free(r->body);
        }
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

struct agent_req {
    const char *method; /* GET or POST */
    const char *url;
    const char *host; /* the URL's host name, mapped to 127.0.0.1 */
    const char *bearer;
    const char *body;
    int metadata;
};

static void
agent_slist_wipe_free(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        if (p->data)
            OPENSSL_cleanse(p->data, strlen(p->data));
    cu.slist_free_all(l);
}

/* One attempt. 0 when the server answered (any status), -1 on a transport failure. */
static int
agent_http_once(const struct agent_cfg *cfg, const struct agent_req *rq, struct agent_resp *rs)
{
    CURL *h = agent_handle();
    struct curl_slist *hdrs = NULL, *conn = NULL;
    char line[64 + 4096];

    agent_resp_release(rs);
    if (h == NULL) {
        rs->cc = CURLE_FAILED_INIT;
        snprintf(rs->errbuf, sizeof(rs->errbuf), "%s",
                 agent_curl_loaded ? "no curl handle" : "libcurl could not be loaded");
        return -1;
    }
    atomic_fetch_add(&agent_n_requests, 1);
    snprintf(line, sizeof(line), "%s:%d:127.0.0.1:%d", rq->host, cfg->port, cfg->port);
    conn = cu.slist_append(conn, line);
    hdrs = cu.slist_append(hdrs, "Accept: application/json");
    hdrs = cu.slist_append(hdrs, "Expect:");
    if (rq->body)
        hdrs = cu.slist_append(hdrs, "Content-Type: application/json");
    if (rq->metadata)
        hdrs = cu.slist_append(hdrs, "Metadata: true");
    if (rq->bearer) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", rq->bearer);
        hdrs = cu.slist_append(hdrs, line);
        OPENSSL_cleanse(line, sizeof(line));
    }
    cu.easy_setopt(h, CURLOPT_URL, rq->url);
    cu.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    cu.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cu.easy_setopt(h, CURLOPT_NOPROXY, "*");
    cu.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, AGENT_CONNECT_MS);
    cu.easy_setopt(h, CURLOPT_TIMEOUT_MS, AGENT_TOTAL_MS);
    cu.easy_setopt(h, CURLOPT_CAINFO, cfg->ca);
    cu.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    cu.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    cu.easy_setopt(h, CURLOPT_CONNECT_TO, conn);
    cu.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    cu.easy_setopt(h, CURLOPT_ERRORBUFFER, rs->errbuf);
    cu.easy_setopt(h, CURLOPT_WRITEFUNCTION, agent_write);
    cu.easy_setopt(h, CURLOPT_WRITEDATA, rs);
    if (strcmp(rq->method, "POST") == 0) {
        cu.easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        cu.easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(rq->body ? strlen(rq->body) : 0));
    }
    rs->errbuf[0] = '\0';
    rs->cc = cu.easy_perform(h);
    if (rs->cc == CURLE_OK)
        cu.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    /* The handle keeps pointers to these until the next reset: clear them now. */
    cu.easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    cu.easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
    cu.easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    cu.easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    agent_slist_wipe_free(hdrs);
    cu.slist_free_all(conn);
    if (rs->cc != CURLE_OK) {
        if (rs->errbuf[0] == '\0')
            snprintf(rs->errbuf, sizeof(rs->errbuf), "%s", cu.easy_strerror(rs->cc));
        return -1;
    }
    if (rs->body && rs->len)
        rs->json = json_loadb(rs->body, rs->len, 0, NULL);
    return 0;
}

static int
agent_is_outage(int transport_failed, long status)
{
    return transport_failed || status >= 500 || status == 429;
}

/* Up to 1 + AGENT_RETRIES attempts with a short backoff, on outage-type failures only.
 * 0 when the server gave a final answer (any status but 5xx/429), -1 for an outage. */
static int
agent_http(const struct agent_cfg *cfg, const struct agent_req *rq, struct agent_resp *rs)
{
    int failed = 0;

    for (int attempt = 0; attempt <= AGENT_RETRIES; attempt++) {
        if (attempt) {
            struct timespec ts = {0, (long)AGENT_BACKOFF_MS * 1000000L << (attempt - 1)};

            atomic_fetch_add(&agent_n_retries, 1);
            nanosleep(&ts, NULL);
        }
        failed = agent_http_once(cfg, rq, rs) != 0;
        if (!agent_is_outage(failed, rs->status))
            return 0;
    }
    return -1;
}

/* ---- HTTPS for the agent's other key sources (include/pgcmk/https.h) ---------------------------
 */

int
pgcmk_agent_fail(struct pgcmk_agent_result *res, int code, int lost, const char *fmt, ...)
{
    va_list ap;

    res->code = (enum pgcmk_errc)code;
    res->lost = lost;
    res->outage = !lost;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    return -1;
}

int
pgcmk_agent_https_retry(const struct pgcmk_agent_retry *r, struct pgcmk_agent_https_req *rq,
                        struct pgcmk_agent_https_resp *rs, struct pgcmk_agent_result *res)
{
    int failed = 1;

    memset(rs, 0, sizeof(*rs));
    for (int attempt = 0; attempt <= r->retries; attempt++) {
        if (attempt) {
            struct timespec ts = {0, r->backoff_ms * 1000000L << (attempt - 1)};

            nanosleep(&ts, NULL);
        }
        pgcmk_agent_https_release(rs);
        if (r->before && r->before(r->arg, rq, res))
            return -1;
        failed = pgcmk_agent_https(rq, rs) != 0;
        if (r->after)
            r->after(r->arg);
        if (failed && rs->not_trusted)
            return pgcmk_agent_fail(res, r->not_trusted, 1,
                                    "%s %.200s: the server's certificate does not verify against "
                                    "'%.200s': %.100s.",
                                    r->service, r->url,
                                    rq->ca_path ? rq->ca_path : "the system's trust store",
                                    rs->error);
        if (failed && r->refused && r->refused(r->arg, rs, res))
            return -1;
        if (!failed && !r->outage(rs->status, rs->body, rs->len))
            return 0;
    }
    if (failed) {
        pgcmk_agent_fail(res, r->unreachable, 0,
                         "%s %.200s does not answer (%.150s) after %d attempts; the key is kept "
                         "until it answers.",
                         r->service, r->url, rs->error, r->retries + 1);
    } else {
        char why[200];

        r->why(rs->body, rs->len, why, sizeof(why));
        pgcmk_agent_fail(res, r->unreachable, 0,
                         "%s %.200s answers HTTP %ld%s%.150s after %d attempts; the key is kept "
                         "until it answers.",
                         r->service, r->url, rs->status, why[0] ? ": " : "", why, r->retries + 1);
    }
    res->http_status = (int)rs->status;
    pgcmk_agent_https_release(rs);
    return -1;
}

void
pgcmk_agent_https_release(struct pgcmk_agent_https_resp *rs)
{
    if (rs->body) {
        OPENSSL_cleanse(rs->body, rs->len);
        free(rs->body);
    }
    rs->body = NULL;
    rs->len = 0;
}

int
pgcmk_agent_https(const struct pgcmk_agent_https_req *rq, struct pgcmk_agent_https_resp *rs)
{
    CURL *h;
    struct curl_slist *hdrs = NULL;
    struct agent_resp r;

    memset(rs, 0, sizeof(*rs));
    memset(&r, 0, sizeof(r));
    pthread_once(&agent_once, agent_global_init);
    h = agent_key_ok ? agent_handle() : NULL;
    if (h == NULL) {
        snprintf(rs->error, sizeof(rs->error), "%s",
                 agent_curl_loaded ? "no curl handle" : "libcurl could not be loaded");
        return -1;
    }
    atomic_fetch_add(&agent_n_requests, 1);
    hdrs = cu.slist_append(hdrs, "Expect:");
    for (const char *const *l = rq->headers; l && *l; l++)
        hdrs = cu.slist_append(hdrs, *l);
    cu.easy_setopt(h, CURLOPT_URL, rq->url);
    cu.easy_setopt(h, CURLOPT_PROTOCOLS_STR, rq->allow_http ? "https,http" : "https");
    cu.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, rq->allow_http ? "https,http" : "https");
    cu.easy_setopt(h, CURLOPT_FOLLOWLOCATION, rq->follow ? 1L : 0L);
    cu.easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    cu.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cu.easy_setopt(h, CURLOPT_NOPROXY, "*");
    cu.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, rq->connect_ms);
    cu.easy_setopt(h, CURLOPT_TIMEOUT_MS, rq->total_ms);
    if (rq->ca_path)
        cu.easy_setopt(h, CURLOPT_CAINFO, rq->ca_path);
    cu.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, rq->insecure ? 0L : 1L);
    cu.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, rq->insecure ? 0L : 2L);
    cu.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    cu.easy_setopt(h, CURLOPT_ERRORBUFFER, r.errbuf);
    cu.easy_setopt(h, CURLOPT_WRITEFUNCTION, agent_write);
    cu.easy_setopt(h, CURLOPT_WRITEDATA, &r);
    if (rq->cert_pem && rq->key_pem) {
        struct curl_blob cb = {(void *)rq->cert_pem, strlen(rq->cert_pem), CURL_BLOB_COPY};
        struct curl_blob kb = {(void *)rq->key_pem, strlen(rq->key_pem), CURL_BLOB_COPY};

        cu.easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
        cu.easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        cu.easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
        cu.easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (rq->cert_path && rq->key_path) {
        cu.easy_setopt(h, CURLOPT_SSLCERT, rq->cert_path);
        cu.easy_setopt(h, CURLOPT_SSLKEY, rq->key_path);
    }
    if (strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0) {
        cu.easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        cu.easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(rq->body ? strlen(rq->body) : 0));
    }
    if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0)
        cu.easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    r.cc = cu.easy_perform(h);
    if (r.cc == CURLE_OK)
        cu.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    cu.easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    cu.easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    cu.easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    agent_slist_wipe_free(hdrs);
    if (r.cc != CURLE_OK) {
        rs->not_trusted =
            r.cc == CURLE_PEER_FAILED_VERIFICATION || r.cc == CURLE_SSL_CACERT_BADFILE;
        snprintf(rs->error, sizeof(rs->error), "%.200s",
                 r.errbuf[0] ? r.errbuf : cu.easy_strerror(r.cc));
        rs->status = 0;
        agent_resp_release(&r);
        return -1;
    }
    if (r.body) { /* hand the (wiped-on-release) buffer over */
        rs->body = r.body;
        rs->len = r.len;
        r.body = NULL;
    }
    agent_resp_release(&r);
    return 0;
}

/* What an outage looked like, for messages: the curl error or the status. */
static void
agent_outage_text(const struct agent_resp *rs, char *out, size_t cap)
{
    if (rs->cc != CURLE_OK)
        snprintf(out, cap, "%.200s", rs->errbuf);
    else
        snprintf(out, cap, "HTTP %ld", rs->status);
}

/* ---- key URIs ----------------------------------------------------------------------------- */

struct agent_kref {
    char vault[32];
    char key[128];
    char version[40];
    char host[64];  /* {vault}.vault.localhost */
    char base[512]; /* https://{vault}.vault.localhost:PORT/keys/{key}[/{version}] */
};

/* A key URI as pgcmk_keyuri_parse reads it, on either host form; both map to the local vault on
 * the daemon's port (a local URI's port may be stale). */
static int
agent_parse_uri(const char *uri, int port, struct agent_kref *k, const char **why)
{
    struct pgcmk_keyuri ku;

    memset(k, 0, sizeof(*k));
    if (pgcmk_keyuri_parse(uri, &ku, why))
        return -1;
    snprintf(k->vault, sizeof(k->vault), "%s", ku.vault);
    snprintf(k->key, sizeof(k->key), "%s", ku.name);
    snprintf(k->version, sizeof(k->version), "%s", ku.version);
    snprintf(k->host, sizeof(k->host), "%s.vault.localhost", k->vault);
    snprintf(k->base, sizeof(k->base), "https://%s:%d/keys/%s%s%s", k->host, port, k->key,
             k->version[0] ? "/" : "", k->version);
    return 0;
}

static const char *
agent_ver(const struct agent_kref *k)
{
    return k->version[0] ? k->version : "(current)";
}

/* ---- tokens: per principal, until a few minutes before they expire (wall clock) ------------ */

struct agent_tok {
    char pid[64];
    char *tok;
    int64_t until_ms;
};

static pthread_mutex_t agent_tok_mu = PTHREAD_MUTEX_INITIALIZER;
static struct agent_tok *agent_toks;
static size_t agent_ntoks;

static void
agent_tokens_clear(void)
{
    pthread_mutex_lock(&agent_tok_mu);
    for (size_t i = 0; i < agent_ntoks; i++)
        pgcmk_secret_free(agent_toks[i].tok, strlen(agent_toks[i].tok));
    free(agent_toks);
    agent_toks = NULL;
    agent_ntoks = 0;
    pthread_mutex_unlock(&agent_tok_mu);
}

static void
agent_token_drop(const char *pid)
{
    pthread_mutex_lock(&agent_tok_mu);
    for (size_t i = 0; i < agent_ntoks; i++) {
        if (strcasecmp(agent_toks[i].pid, pid) == 0) {
            pgcmk_secret_free(agent_toks[i].tok, strlen(agent_toks[i].tok));
            agent_toks[i] = agent_toks[--agent_ntoks];
            break;
        }
    }
    pthread_mutex_unlock(&agent_tok_mu);
}

static char *
agent_token_cached(const char *pid)
{
    char *tok = NULL;
    int64_t now = pgcmk_wall_ms();

    pthread_mutex_lock(&agent_tok_mu);
    for (size_t i = 0; i < agent_ntoks; i++)
        if (strcasecmp(agent_toks[i].pid, pid) == 0 && now < agent_toks[i].until_ms)
            tok = pgcmk_xstrdup(agent_toks[i].tok);
    pthread_mutex_unlock(&agent_tok_mu);
    return tok;
}

static void
agent_token_store(const char *pid, const char *tok, int64_t until_ms)
{
    size_t i;

    pthread_mutex_lock(&agent_tok_mu);
    for (i = 0; i < agent_ntoks; i++)
        if (strcasecmp(agent_toks[i].pid, pid) == 0)
            break;
    if (i == agent_ntoks) {
        agent_toks = pgcmk_xrealloc(agent_toks, (agent_ntoks + 1) * sizeof(*agent_toks));
        agent_ntoks++;
        snprintf(agent_toks[i].pid, sizeof(agent_toks[i].pid), "%s", pid);
    } else {
        pgcmk_secret_free(agent_toks[i].tok, strlen(agent_toks[i].tok));
    }
    agent_toks[i].tok = pgcmk_xstrdup(tok);
    agent_toks[i].until_ms = until_ms;
    pthread_mutex_unlock(&agent_tok_mu);
}

static void
agent_json_str_wipe(json_t *v)
{
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

static int
agent_pid_ok(const char *pid)
{
    size_t n = pid ? strlen(pid) : 0;

    if (n == 0 || n >= 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)pid[i]) && pid[i] != '-')
            return 0;
    return 1;
}

/* A token for pid (cached or fresh from IMDS) in *tok (wipe with pgcmk_secret_free). */
static int
agent_token(const struct agent_cfg *cfg, const struct agent_kref *k, const char *pid, char **tok,
            struct pgcmk_agent_result *res)
{
    struct agent_resp rs = {0};
    struct agent_req rq = {"GET", NULL, "localhost", NULL, NULL, 1};
    json_t *at, *eo;
    char *url, why[256];
    int64_t exp_ms = 0;
    int rc;

    *tok = agent_token_cached(pid);
    if (*tok)
        return 0;
    url = pgcmk_xasprintf("https://localhost:%d/metadata/identity/oauth2/token?api-version="
                          "2018-02-01&resource=https%%3A%%2F%%2Fvault.azure.net&object_id=%s",
                          cfg->port, pid);
    rq.url = url;
    rc = agent_http(cfg, &rq, &rs);
    free(url);
    if (rc != 0) {
        agent_outage_text(&rs, why, sizeof(why));
        res->http_status = (int)rs.status;
        agent_resp_release(&rs);
        return agent_fail(res, PGCMK_E_PG_VAULT_UNREACHABLE, 0, 1,
                          "The token service did not answer for the managed identity '%s' "
                          "(%s), so the Azure Key Vault '%s' (key '%s', version '%s') could not "
                          "be reached.",
                          pid, why, k->vault, k->key, agent_ver(k));
    }
    if (rs.status != 200) {
        json_t *d = json_object_get(rs.json, "error_description");
        long st = rs.status;

        snprintf(why, sizeof(why), "%.200s",
                 json_is_string(d) ? json_string_value(d) : "no description");
        agent_resp_release(&rs);
        return agent_fail(res, PGCMK_E_PG_IDENTITY_NOT_FOUND, 1, 0,
                          "The managed identity with principal ID '%s' could not get a token for "
                          "Azure Key Vault (HTTP %ld: %s); the key '%s' in vault '%s' (version "
                          "'%s') cannot be used.",
                          pid, st, why, k->key, k->vault, agent_ver(k));
    }
    at = json_object_get(rs.json, "access_token");
    eo = json_object_get(rs.json, "expires_on");
    if (json_is_string(eo))
        exp_ms = strtoll(json_string_value(eo), NULL, 10) * 1000;
    else if (json_is_integer(eo))
        exp_ms = json_integer_value(eo) * 1000;
    if (!json_is_string(at) || json_string_length(at) == 0 || json_string_length(at) > 4000) {
        agent_json_str_wipe(at);
        agent_resp_release(&rs);
        return agent_fail(res, PGCMK_E_PG_VAULT_UNREACHABLE, 0, 1,
                          "The token service gave no usable token for the managed identity '%s' "
                          "(vault '%s', key '%s', version '%s').",
                          pid, k->vault, k->key, agent_ver(k));
    }
    *tok = pgcmk_xstrdup(json_string_value(at));
    if (exp_ms - AGENT_TOKEN_MARGIN > pgcmk_wall_ms())
        agent_token_store(pid, *tok, exp_ms - AGENT_TOKEN_MARGIN);
    agent_json_str_wipe(at);
    agent_resp_release(&rs);
    return 0;
}

/* ---- vault calls -------------------------------------------------------------------------- */

struct agent_ctx {
    struct agent_cfg cfg;
    struct agent_kref k;
    const char *pid;
    const char *db_id;
};

static int
agent_missing_permissions(const struct agent_ctx *c, struct pgcmk_agent_result *res)
{
    return agent_fail(res, PGCMK_E_PG_MISSING_PERMISSIONS, 1, 0,
                      "The server doesn't have the required Get, Wrap, and Unwrap permissions to "
                      "the Azure Key Vault. Grant any missing permissions to the service "
                      "principal with ID '%s'. The vault '%s' must grant it the get, wrapKey and "
                      "unwrapKey key permissions (key '%s', version '%s').",
                      c->pid, c->k.vault, c->k.key, agent_ver(&c->k));
}

/* Maps a vault's error answer (not 2xx, not an outage) to the result. */
static int
agent_vault_error(const struct agent_ctx *c, const char *op, const struct agent_resp *rs,
                  struct pgcmk_agent_result *res)
{
    json_t *e = json_object_get(rs->json, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *inner =
        json_string_value(json_object_get(json_object_get(e, "innererror"), "code"));
    const struct agent_kref *k = &c->k;
    enum pgcmk_errc ec;

    res->http_status = (int)rs->status;
    if (code == NULL)
        code = "";
    /* the body's code, and its innererror.code when the table has it under that code */
    ec = pgcmk_err_from_codes(code, inner);
    if (rs->status == 401)
        return agent_missing_permissions(c, res);
    if (rs->status == 403) {
        switch (ec) {
        case PGCMK_E_KV_KEY_DISABLED:
            return agent_fail(res, PGCMK_E_PG_KEY_DISABLED, 1, 0,
                              "The Azure Key Vault key '%s' (version '%s') in vault '%s' is "
                              "disabled. Enable the key to restore access to the server.",
                              k->key, agent_ver(k), k->vault);
        case PGCMK_E_KV_KEY_EXPIRED:
        case PGCMK_E_KV_KEY_NOT_YET_VALID:
            return agent_fail(res, PGCMK_E_PG_KEY_EXPIRED, 1, 0,
                              "The Azure Key Vault key '%s' (version '%s') in vault '%s' %s.",
                              k->key, agent_ver(k), k->vault,
                              ec == PGCMK_E_KV_KEY_EXPIRED ? "has expired" : "is not valid yet");
        case PGCMK_E_KV_KEY_OP_FORBIDDEN:
            return agent_fail(res, PGCMK_E_PG_KEY_TYPE, 1, 0,
                              "The Azure Key Vault key '%s' (version '%s') in vault '%s' does not "
                              "permit the %s operation; the key must allow wrapKey and unwrapKey.",
                              k->key, agent_ver(k), k->vault, op);
        default:
            return agent_missing_permissions(c, res);
        }
    }
    if (rs->status == 404 || rs->status == 409)
        return agent_fail(res, PGCMK_E_PG_KEY_NOT_FOUND, 1, 0,
                          "The Azure Key Vault key '%s' (version '%s') was not found in vault "
                          "'%s'%s.",
                          k->key, agent_ver(k), k->vault,
                          ec == PGCMK_E_KV_VAULT_NOT_FOUND
                              ? ": the vault does not exist or is deleted"
                          : rs->status == 409 ? ": the key is deleted"
                                              : "");
    if (strcmp(op, "unwrapKey") == 0 && rs->status == 400)
        return agent_fail(res, PGCMK_E_PG_KEY_NOT_FOUND, 1, 0,
                          "The Azure Key Vault key '%s' (version '%s') in vault '%s' could not "
                          "unwrap the server's data encryption key: it is not the key that "
                          "wrapped it.",
                          k->key, agent_ver(k), k->vault);
    return agent_fail(res, PGCMK_E_PG_KEY_NOT_FOUND, 1, 0,
                      "The Azure Key Vault '%s' refused the %s operation on key '%s' (version "
                      "'%s') with HTTP %ld %s.",
                      k->vault, op, k->key, agent_ver(k), rs->status, code);
}

/* GET or POST {base}{suffix}?api-version=7.4 with the identity's token; a 401 gets one retry
 * with a fresh token. 0 with rs holding a 2xx answer, or -1 with res filled. */
static int
agent_vault_call(const struct agent_ctx *c, const char *op, const char *method, const char *suffix,
                 const char *body, struct agent_resp *rs, struct pgcmk_agent_result *res)
{
    char *url = pgcmk_xasprintf("%s%s?api-version=" AGENT_KV_API, c->k.base, suffix);
    char *tok = NULL, why[256];
    int rc = -1;

    for (int round = 0; round < 2; round++) {
        struct agent_req rq = {method, url, c->k.host, NULL, body, 0};

        if (agent_token(&c->cfg, &c->k, c->pid, &tok, res))
            goto out;
        rq.bearer = tok;
        if (agent_http(&c->cfg, &rq, rs)) {
            agent_outage_text(rs, why, sizeof(why));
            res->http_status = (int)rs->status;
            agent_fail(res, PGCMK_E_PG_VAULT_UNREACHABLE, 0, 1,
                       "The Azure Key Vault '%s' could not be reached for the %s operation on key "
                       "'%s' (version '%s'): %s.",
                       c->k.vault, op, c->k.key, agent_ver(&c->k), why);
            goto out;
        }
        pgcmk_secret_free(tok, strlen(tok));
        tok = NULL;
        if (rs->status == 401 && round == 0) {
            agent_token_drop(c->pid);
            continue;
        }
        break;
    }
    res->http_status = (int)rs->status;
    if (rs->status >= 200 && rs->status < 300 && json_is_object(rs->json))
        rc = 0;
    else if (rs->status >= 200 && rs->status < 300)
        agent_fail(res, PGCMK_E_PG_VAULT_UNREACHABLE, 0, 1,
                   "The Azure Key Vault '%s' gave an unreadable answer to the %s operation on key "
                   "'%s' (version '%s').",
                   c->k.vault, op, c->k.key, agent_ver(&c->k));
    else
        agent_vault_error(c, op, rs, res);
out:
    if (tok)
        pgcmk_secret_free(tok, strlen(tok));
    free(url);
    return rc;
}

/* Modulus size in bits from the JWK's base64url `n`. */
static int
agent_modulus_bits(const char *n)
{
    unsigned char *b = NULL;
    size_t len = 0, i = 0;
    int bits;

    if (n == NULL || pgcmk_b64url_decode(n, strlen(n), &b, &len))
        return 0;
    while (i < len && b[i] == 0)
        i++;
    if (i == len) {
        free(b);
        return 0;
    }
    bits = (int)(len - i - 1) * 8;
    for (unsigned char top = b[i]; top; top >>= 1)
        bits++;
    free(b);
    return bits;
}

/* GET the key: enabled, nbf/exp against the virtual clock, kty RSA/RSA-HSM, 2048/3072/4096 bits. */
static int
agent_key_get(const struct agent_ctx *c, struct pgcmk_agent_result *res)
{
    struct agent_resp rs = {0};
    const struct agent_kref *k = &c->k;
    json_t *key, *attrs, *v;
    const char *kty;
    int64_t now = pgcmk_clock_now() / 1000;
    int bits, rc = -1;

    if (agent_vault_call(c, "get", "GET", "", NULL, &rs, res))
        goto out;
    key = json_object_get(rs.json, "key");
    attrs = json_object_get(rs.json, "attributes");
    kty = json_string_value(json_object_get(key, "kty"));
    v = json_object_get(attrs, "enabled");
    if (json_is_boolean(v) && !json_is_true(v)) {
        agent_fail(res, PGCMK_E_PG_KEY_DISABLED, 1, 0,
                   "The Azure Key Vault key '%s' (version '%s') in vault '%s' is disabled. Enable "
                   "the key to restore access to the server.",
                   k->key, agent_ver(k), k->vault);
        goto out;
    }
    v = json_object_get(attrs, "exp");
    if (json_is_integer(v) && now >= json_integer_value(v)) {
        char when[PGCMK_TIME_LEN];

        pgcmk_time_format(json_integer_value(v) * 1000, when);
        agent_fail(res, PGCMK_E_PG_KEY_EXPIRED, 1, 0,
                   "The Azure Key Vault key '%s' (version '%s') in vault '%s' expired at %s.",
                   k->key, agent_ver(k), k->vault, when);
        goto out;
    }
    v = json_object_get(attrs, "nbf");
    if (json_is_integer(v) && now < json_integer_value(v)) {
        char when[PGCMK_TIME_LEN];

        pgcmk_time_format(json_integer_value(v) * 1000, when);
        agent_fail(res, PGCMK_E_PG_KEY_EXPIRED, 1, 0,
                   "The Azure Key Vault key '%s' (version '%s') in vault '%s' is not valid "
                   "before %s.",
                   k->key, agent_ver(k), k->vault, when);
        goto out;
    }
    bits = agent_modulus_bits(json_string_value(json_object_get(key, "n")));
    if (kty == NULL || (strcmp(kty, "RSA") != 0 && strcmp(kty, "RSA-HSM") != 0) ||
        (bits != 2048 && bits != 3072 && bits != 4096)) {
        agent_fail(res, PGCMK_E_PG_KEY_TYPE, 1, 0,
                   "The Azure Key Vault key '%s' (version '%s') in vault '%s' is of type '%.16s' "
                   "with %d bits; only RSA or RSA-HSM keys of 2048, 3072 or 4096 bits are "
                   "supported.",
                   k->key, agent_ver(k), k->vault, kty ? kty : "unknown", bits);
        goto out;
    }
    rc = 0;
out:
    agent_resp_release(&rs);
    return rc;
}

static int
agent_alg_ok(const char *alg)
{
    return alg && (strcmp(alg, "RSA-OAEP-256") == 0 || strcmp(alg, "RSA-OAEP") == 0 ||
                   strcmp(alg, "RSA1_5") == 0);
}

/* POST wrapkey or unwrapkey: in -> *out (malloc'd; wipe it when it is a DEK). The body is built
 * by hand so every copy of the value can be wiped (alg is from a fixed list, the value is
 * base64url). */
static int
agent_key_op(const struct agent_ctx *c, int unwrap, const char *alg, const unsigned char *in,
             size_t in_len, unsigned char **out, size_t *out_len, struct pgcmk_agent_result *res)
{
    struct agent_resp rs = {0};
    char *b64 = pgcmk_b64url_encode(in, in_len), *body;
    const char *op = unwrap ? "unwrapKey" : "wrapKey";
    json_t *v;
    size_t body_len;
    int rc = -1;

    *out = NULL;
    *out_len = 0;
    body = pgcmk_xasprintf("{\"alg\":\"%s\",\"value\":\"%s\"}", alg, b64);
    body_len = strlen(body);
    pgcmk_secret_free(b64, strlen(b64));
    if (agent_vault_call(c, op, "POST", unwrap ? "/unwrapkey" : "/wrapkey", body, &rs, res))
        goto out;
    v = json_object_get(rs.json, "value");
    if (!json_is_string(v) ||
        pgcmk_b64url_decode(json_string_value(v), json_string_length(v), out, out_len)) {
        agent_fail(res, PGCMK_E_PG_VAULT_UNREACHABLE, 0, 1,
                   "The Azure Key Vault '%s' gave no value for the %s operation on key '%s' "
                   "(version '%s').",
                   c->k.vault, op, c->k.key, agent_ver(&c->k));
        goto out;
    }
    rc = 0;
out:
    agent_json_str_wipe(json_object_get(rs.json, "value"));
    agent_resp_release(&rs);
    pgcmk_secret_free(body, body_len);
    return rc;
}

/* Sets up the context for a customer-managed key; -1 with res filled when the URI or the
 * identity is unusable. */
static int
agent_ctx_init(struct agent_ctx *c, const char *db_id, const struct pgcmk_agent_key *k,
               struct pgcmk_agent_result *res)
{
    const char *why = NULL;

    memset(c, 0, sizeof(*c));
    c->db_id = db_id;
    c->pid = k->principal_id;
    if (agent_cfg_get(&c->cfg))
        return agent_fail(res, PGCMK_E_PG_VAULT_UNREACHABLE, 0, 1,
                          "The encryption agent is not initialised.");
    if (agent_parse_uri(k->key_uri, c->cfg.port, &c->k, &why))
        return agent_fail(res, PGCMK_E_PG_KEY_URI_INVALID, 1, 0,
                          "The key URI '%.200s' is not a valid Azure Key Vault key identifier "
                          "(https://{vault}.vault.azure.net/keys/{key}/{version}): %s.",
                          k->key_uri ? k->key_uri : "", why);
    if (c->pid == NULL || *c->pid == '\0')
        return agent_fail(res, PGCMK_E_PG_IDENTITY_REQUIRED, 1, 0,
                          "No managed identity was given to reach the Azure Key Vault '%s' (key "
                          "'%s', version '%s').",
                          c->k.vault, c->k.key, agent_ver(&c->k));
    if (!agent_pid_ok(c->pid))
        return agent_fail(res, PGCMK_E_PG_IDENTITY_NOT_FOUND, 1, 0,
                          "'%.64s' is not a managed identity's principal ID (vault '%s', key "
                          "'%s', version '%s').",
                          c->pid, c->k.vault, c->k.key, agent_ver(&c->k));
    return 0;
}

static void
agent_log_failure(const char *what, const char *db_id, const struct pgcmk_agent_result *res)
{
    if (res->outage)
        LOG_WARN("%s for '%s': outage (%s, http %d)", what, db_id, pgcmk_err_code(res->code),
                 res->http_status);
    else
        LOG_INFO("%s for '%s': %s (http %d)%s", what, db_id, pgcmk_err_code(res->code),
                 res->http_status, res->lost ? "; the DEK is wiped" : "");
}

/* Wraps dek under k: a key check, the wrap, and an unwrap that must give the DEK back (Azure
 * checks get, wrapKey and unwrapKey when a key is configured). */
static int
agent_wrap(const char *db_id, const struct pgcmk_agent_key *k, const unsigned char *dek,
           unsigned char **wrapped, size_t *wrapped_len, char alg[24],
           struct pgcmk_agent_result *res)
{
    struct agent_ctx c;
    unsigned char *w = NULL, *back = NULL;
    size_t w_len = 0, back_len = 0;
    int rc = -1;

    if (k == NULL || k->key_uri == NULL) { /* service-managed */
        if (pgcmk_store_seal(dek, PGCMK_AGENT_DEK_LEN, db_id, wrapped, wrapped_len))
            return agent_fail(res, PGCMK_E_INTERNAL, 0, 0,
                              "The data encryption key could not be sealed.");
        snprintf(alg, 24, "%s", AGENT_ALG_SERVICE);
        return 0;
    }
    if (agent_ctx_init(&c, db_id, k, res) || agent_key_get(&c, res) ||
        agent_key_op(&c, 0, AGENT_ALG_DEFAULT, dek, PGCMK_AGENT_DEK_LEN, &w, &w_len, res) ||
        agent_key_op(&c, 1, AGENT_ALG_DEFAULT, w, w_len, &back, &back_len, res))
        goto out;
    if (back_len != PGCMK_AGENT_DEK_LEN || CRYPTO_memcmp(back, dek, PGCMK_AGENT_DEK_LEN) != 0) {
        agent_fail(res, PGCMK_E_PG_KEY_NOT_FOUND, 1, 0,
                   "The Azure Key Vault key '%s' (version '%s') in vault '%s' did not give the "
                   "wrapped data encryption key back.",
                   c.k.key, agent_ver(&c.k), c.k.vault);
        goto out;
    }
    *wrapped = w;
    *wrapped_len = w_len;
    w = NULL;
    snprintf(alg, 24, "%s", AGENT_ALG_DEFAULT);
    rc = 0;
out:
    free(w);
    if (back)
        pgcmk_secret_free(back, back_len);
    return rc;
}

/* ---- the public calls --------------------------------------------------------------------- */

int
pgcmk_agent_new_dek(const char *db_id, const struct pgcmk_agent_key *k, unsigned char **wrapped,
                    size_t *wrapped_len, char alg[24], struct pgcmk_agent_result *res)
{
    unsigned char dek[PGCMK_AGENT_DEK_LEN];
    int rc;

    agent_res_clear(res);
    *wrapped = NULL;
    *wrapped_len = 0;
    alg[0] = '\0';
    if (db_id == NULL || *db_id == '\0')
        return agent_fail(res, PGCMK_E_INTERNAL, 0, 0, "No database id was given.");
    if (pgcmk_random(dek, sizeof(dek)))
        return agent_fail(res, PGCMK_E_INTERNAL, 0, 0, "No randomness for a new DEK.");
    rc = agent_wrap(db_id, k, dek, wrapped, wrapped_len, alg, res);
    if (rc == 0)
        agent_keep(db_id, dek);
    else
        agent_log_failure("new DEK", db_id, res);
    OPENSSL_cleanse(dek, sizeof(dek));
    return rc;
}

int
pgcmk_agent_rewrap(const char *db_id, const struct pgcmk_agent_key *k, unsigned char **wrapped,
                   size_t *wrapped_len, char alg[24], struct pgcmk_agent_result *res)
{
    unsigned char dek[PGCMK_AGENT_DEK_LEN];
    int rc;

    agent_res_clear(res);
    *wrapped = NULL;
    *wrapped_len = 0;
    alg[0] = '\0';
    if (db_id == NULL || agent_copy(db_id, dek))
        return agent_fail(res, PGCMK_E_PG_INACCESSIBLE, 0, 0,
                          "The server '%.128s' holds no data encryption key to wrap.",
                          db_id ? db_id : "");
    rc = agent_wrap(db_id, k, dek, wrapped, wrapped_len, alg, res);
    if (rc)
        agent_log_failure("rewrap", db_id, res);
    OPENSSL_cleanse(dek, sizeof(dek));
    return rc;
}

int
pgcmk_agent_check(const char *db_id, const struct pgcmk_agent_key *k, const unsigned char *wrapped,
                  size_t wrapped_len, const char *alg, struct pgcmk_agent_result *res)
{
    struct agent_ctx c;
    unsigned char *dek = NULL;
    size_t dek_len = 0;
    int rc = -1;

    agent_res_clear(res);
    if (db_id == NULL || *db_id == '\0')
        return agent_fail(res, PGCMK_E_INTERNAL, 0, 0, "No database id was given.");
    if (wrapped == NULL || wrapped_len == 0) {
        agent_fail(res, PGCMK_E_INTERNAL, 1, 0, "The server '%.128s' has no wrapped key.", db_id);
        goto out;
    }
    if (k == NULL || k->key_uri == NULL) { /* service-managed */
        if (pgcmk_store_unseal(wrapped, wrapped_len, db_id, &dek, &dek_len) ||
            dek_len != PGCMK_AGENT_DEK_LEN) {
            agent_fail(res, PGCMK_E_INTERNAL, 1, 0,
                       "The service-managed data encryption key of '%.128s' does not open.", db_id);
            goto out;
        }
        rc = 0;
        goto out;
    }
    if (alg == NULL || *alg == '\0')
        alg = AGENT_ALG_DEFAULT;
    if (!agent_alg_ok(alg)) {
        agent_fail(res, PGCMK_E_INTERNAL, 1, 0,
                   "The wrapped key of '%.128s' uses the algorithm '%.23s', which is not a Key "
                   "Vault key-wrap algorithm.",
                   db_id, alg);
        goto out;
    }
    if (agent_ctx_init(&c, db_id, k, res) || agent_key_get(&c, res) ||
        agent_key_op(&c, 1, alg, wrapped, wrapped_len, &dek, &dek_len, res))
        goto out;
    if (dek_len != PGCMK_AGENT_DEK_LEN) {
        agent_fail(res, PGCMK_E_PG_KEY_NOT_FOUND, 1, 0,
                   "The Azure Key Vault key '%s' (version '%s') in vault '%s' unwrapped %zu "
                   "bytes, not a 256-bit data encryption key.",
                   c.k.key, agent_ver(&c.k), c.k.vault, dek_len);
        goto out;
    }
    rc = 0;
out:
    if (rc == 0) {
        agent_keep(db_id, dek);
    } else {
        if (res->lost)
            pgcmk_agent_forget(db_id);
        agent_log_failure("key check", db_id, res);
    }
    if (dek)
        pgcmk_secret_free(dek, dek_len);
    return rc;
}

void
pgcmk_agent_stats(struct pgcmk_agent_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->requests = atomic_load(&agent_n_requests);
    out->retries = atomic_load(&agent_n_retries);
    out->failures = atomic_load(&agent_n_failures);
    pthread_rwlock_rdlock(&agent_rw);
    out->deks = agent_ndeks;
    pthread_rwlock_unlock(&agent_rw);
}

int
pgcmk_agent_init(int port, const char *ca_file)
{
    int changed;

    if (port <= 0 || port > 65535 || ca_file == NULL || *ca_file == '\0' ||
        strlen(ca_file) >= sizeof(((struct agent_cfg *)0)->ca)) {
        LOG_ERR("bad agent configuration (port %d)", port);
        return -1;
    }
    pthread_once(&agent_once, agent_global_init);
    if (!agent_key_ok) {
        LOG_ERR("agent: no thread key for curl handles");
        return -1;
    }
    pthread_mutex_lock(&agent_cfg_mu);
    changed = agent_ready && agent_port != port;
    agent_port = port;
    free(agent_ca);
    agent_ca = pgcmk_xstrdup(ca_file);
    agent_ready = 1;
    pthread_mutex_unlock(&agent_cfg_mu);
    if (changed) /* another daemon: its tokens are not ours */
        agent_tokens_clear();
    LOG_DEBUG("agent: https://localhost:%d, CA %s", port, ca_file);
    return 0;
}

void
pgcmk_agent_shutdown(void)
{
    pthread_mutex_lock(&agent_cfg_mu);
    agent_ready = 0;
    free(agent_ca);
    agent_ca = NULL;
    pthread_mutex_unlock(&agent_cfg_mu);
    agent_tokens_clear();
    agent_wipe_all();
    if (agent_tl_curl) { /* other threads' handles go with their threads (the key's destructor) */
        pthread_setspecific(agent_curl_key, NULL);
        cu.easy_cleanup(agent_tl_curl);
        agent_tl_curl = NULL;
    }
}
