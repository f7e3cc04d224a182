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

#endif
