/* https.h - one HTTP(S) request through the agent's libcurl (src/agent/agent.c), for the agent's
 * other key sources (src/agent/vault.c) and for pgcmk's own clients of other servers (the KES
 * plane's Vault keystore): a URL of any host, a CA file of the caller's, headers of the caller's,
 * an optional client certificate. Each thread keeps its connections alive between calls. */
#ifndef PGCMK_AGENT_HTTPS_H
#define PGCMK_AGENT_HTTPS_H

#include <stddef.h>

struct pgcmk_agent_https_req {
    const char *method;  /* GET, POST, PUT, DELETE or LIST (a body is sent for POST and PUT) */
    const char *url;     /* https:// only, unless allow_http */
    const char *ca_path; /* NULL: the system's trust store */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; wiped after use */
    const char *body;           /* POST: the body (NULL: empty) */
    long connect_ms, total_ms;
    int follow; /* follow redirects (pg_tde sets CURLOPT_FOLLOWLOCATION) */
    /* A client certificate for mutual TLS: PEM texts (cert_pem: the certificate, then its chain)
     * or, when those are NULL, PEM files. All NULL: none. */
    const char *cert_pem, *key_pem;
    const char *cert_path, *key_path;
    int allow_http; /* http:// URLs too (a Vault started like `vault server -dev`) */
    int insecure;   /* no check of the server's certificate (the kes CLI's -k) */
};

struct pgcmk_agent_https_resp {
    long status; /* 0 when there was no answer */
    char *body;  /* NUL-terminated, wiped by release */
    size_t len;
    int not_trusted; /* the server's certificate did not verify */
    char error[256]; /* the transport error when there was no answer */
};

/* 0 when the server answered (any status), -1 on a transport failure (error says what). */
int pgcmk_agent_https(const struct pgcmk_agent_https_req *rq, struct pgcmk_agent_https_resp *rs);
/* Wipes and frees the body. */
void pgcmk_agent_https_release(struct pgcmk_agent_https_resp *rs);

/* ---- the agent's key sources over HTTPS (src/agent/vault.c, kes.c) ------------------------ */

struct pgcmk_agent_result; /* include/pgcmk/agent.h; pgcmk_agent_fail fills it */

/* How a key source's calls are retried and told apart: a transport failure, or an answer that
 * `outage` says is one, is tried again (retries times, backoff_ms doubling); a server certificate
 * that does not verify ends the call as a loss (`not_trusted`), so does what `refused` recognises;
 * after the last attempt an outage is `unreachable` (the DEK is kept). */
struct pgcmk_agent_retry {
    const char *service; /* "Vault", "KES": the messages start with it and the URL */
    const char *url;
    int retries;
    long backoff_ms;
    int not_trusted, unreachable; /* error-table codes (enum pgcmk_errc) */
    int (*outage)(long status, const char *body, size_t len);         /* 1: try again */
    void (*why)(const char *body, size_t len, char *out, size_t cap); /* an answer's error text */
    /* Before each attempt (re-read a token, fill headers): -1 with res ends the call. */
    int (*before)(void *arg, struct pgcmk_agent_https_req *rq, struct pgcmk_agent_result *res);
    void (*after)(void *arg); /* after each attempt: wipe what before() made; may be NULL */
    /* A transport failure that is the server refusing the client: -1 with res ends the call. */
    int (*refused)(void *arg, const struct pgcmk_agent_https_resp *rs,
                   struct pgcmk_agent_result *res);
    void *arg;
};

/* 0 with rs (the final answer: any status that is not an outage; the caller releases it), or -1
 * with res (an outage after every attempt, an untrusted server, a refusal, before()'s failure). */
int pgcmk_agent_https_retry(const struct pgcmk_agent_retry *r, struct pgcmk_agent_https_req *rq,
                            struct pgcmk_agent_https_resp *rs, struct pgcmk_agent_result *res);

#endif
