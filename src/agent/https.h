/* https.h - one HTTPS request through the agent's libcurl (src/agent/agent.c), for the agent's
 * other key sources (src/agent/vault.c): a URL of any host, a CA file of the caller's, headers of
 * the caller's. Internal to src/agent/. */
#ifndef PGCMK_AGENT_HTTPS_H
#define PGCMK_AGENT_HTTPS_H

#include <stddef.h>

struct pgcmk_agent_https_req {
    const char *method;         /* GET or POST */
    const char *url;            /* https:// only */
    const char *ca_path;        /* NULL: the system's trust store */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; wiped after use */
    const char *body;           /* POST: the body (NULL: empty) */
    long connect_ms, total_ms;
    int follow; /* follow redirects (pg_tde sets CURLOPT_FOLLOWLOCATION) */
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
