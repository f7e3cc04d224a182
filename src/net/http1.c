/* http1.c - the HTTP/1.1 request head parser (include/pgcmk/net.h). Pure: no sockets, no
 * allocation; tests/fuzz/fuzz_http1.c runs it on anything.
 *
 * What it takes is what Go's net/http server (KES's) takes: a request line "METHOD target
 * HTTP/1.x" (leading empty lines skipped), header lines "name: value" with CRLF or bare LF,
 * at most PGCMK_HTTP1_MAX_HEAD bytes and PGCMK_HTTP1_MAX_HEADERS lines. Refusals: a malformed
 * head 400, too big 431, a version other than 1.0/1.1 505, a transfer coding other than
 * chunked 501, an Expect other than 100-continue 417; h->why then holds Go's text when it has one.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgcmk/net.h"

/* The end of the head: the index just past the empty line, or 0. *lead = leading empty lines'
 * length. */
static size_t
h1_head_end(const char *buf, size_t len, size_t *lead)
{
    size_t i = 0;

    while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    *lead = i;
    for (; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static int
h1_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Cuts the line starting at *p (ends at LF, optional CR before it): returns it NUL-terminated
 * and moves *p past it. */
static char *
h1_line(char **p)
{
    char *s = *p, *nl = strchr(s, '\n');

    if (nl == NULL) /* the CR of the empty line, just before the head's end */
        return NULL;
    *nl = '\0';
    *p = nl + 1;
    if (nl > s && nl[-1] == '\r')
        nl[-1] = '\0';
    return s;
}

/* 1 when the comma-separated list `v` holds `tok` (case-insensitive). */
static int
h1_has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);

    while (*v) {
        size_t n;

        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        n = strcspn(v, ", \t");
        if (n == tl && strncasecmp(v, tok, tl) == 0)
            return 1;
        v += n;
    }
    return 0;
}

static int
h1_request_line(char *line, struct pgcmk_http1_head *h)
{
    char *sp1 = line ? strchr(line, ' ') : NULL, *sp2, *ver;

    if (sp1 == NULL || sp1 == line)
        return -400;
    *sp1 = '\0';
    for (const char *m = line; *m; m++)
        if (!h1_tchar((unsigned char)*m))
            return -400;
    sp2 = strchr(sp1 + 1, ' ');
    if (sp2 == NULL || sp2 == sp1 + 1)
        return -400;
    *sp2 = '\0';
    for (const unsigned char *t = (const unsigned char *)sp1 + 1; *t; t++)
        if (*t <= 0x20 || *t == 0x7f)
            return -400;
    ver = sp2 + 1;
    if (strncmp(ver, "HTTP/", 5) != 0 || !isdigit((unsigned char)ver[5]) || ver[6] != '.' ||
        !isdigit((unsigned char)ver[7]) || ver[8] != '\0')
        return -400;
    if (ver[5] != '1' || (ver[7] != '0' && ver[7] != '1')) {
        h->why = "unsupported protocol version";
        return -505;
    }
    h->method = line;
    h->target = sp1 + 1;
    h->minor = ver[7] - '0';
    /* The absolute form ("https://host/v1/status"): Go routes its path. */
    if (strncasecmp(h->target, "http://", 7) == 0 || strncasecmp(h->target, "https://", 8) == 0) {
        const char *path = strchr(strstr(h->target, "://") + 3, '/');

        if (path == NULL)
            return -400;
        h->target = path;
    }
    if (h->target[0] != '/' && !(strcmp(h->target, "*") == 0 && strcmp(h->method, "OPTIONS") == 0))
        return -400;
    return 0;
}

/* One header's meaning for the framing: Content-Length, Transfer-Encoding, Connection,
 * Expect, Host. */
static int
h1_header_framing(struct pgcmk_http1_head *h, const char *name, const char *value, int *close,
                  int *keep)
{
    if (strcasecmp(name, "Content-Length") == 0) {
        long long n = 0;

        if (*value == '\0' || strlen(value) > 18)
            return -400;
        for (const char *d = value; *d; d++) {
            if (!isdigit((unsigned char)*d))
                return -400;
            n = n * 10 + (*d - '0');
        }
        if (h->content_length >= 0 && h->content_length != n)
            return -400;
        h->content_length = n;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (strcasecmp(value, "chunked") != 0)
            return -501; /* Go: only "chunked", alone */
        if (h->chunked)
            return -400;
        h->chunked = 1;
    } else if (strcasecmp(name, "Connection") == 0) {
        *close |= h1_has_token(value, "close");
        *keep |= h1_has_token(value, "keep-alive");
    } else if (strcasecmp(name, "Expect") == 0) {
        if (strcasecmp(value, "100-continue") != 0)
            return -417;
        h->expect_continue = 1;
    } else if (strcasecmp(name, "Host") == 0) {
        if (h->host) {
            h->why = "too many Host headers";
            return -400;
        }
        h->host = value;
    }
    return 0;
}

long
pgcmk_http1_parse(char *buf, size_t len, struct pgcmk_http1_head *h)
{
    size_t lead, end = h1_head_end(buf, len, &lead);
    char *p, *stop;
    int r, close = 0, keep = 0;

    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    if (end == 0)
        return len >= PGCMK_HTTP1_MAX_HEAD ? -431 : 0;
    if (end > PGCMK_HTTP1_MAX_HEAD)
        return -431;
    if (memchr(buf, '\0', end) != NULL)
        return -400;
    /* The last LF of the empty line becomes the NUL that ends the head. */
    buf[end - 1] = '\0';
    p = buf + lead;
    stop = buf + end - 1;
    if ((r = h1_request_line(h1_line(&p), h)) != 0)
        return r;
    while (p < stop) {
        char *line = h1_line(&p), *colon, *v, *e;

        if (line == NULL || *line == '\0')
            break; /* the empty line */
        if (*line == ' ' || *line == '\t')
            return -400; /* obsolete line folding */
        colon = strchr(line, ':');
        if (colon == NULL || colon == line)
            return -400;
        *colon = '\0';
        for (const char *n = line; *n; n++)
            if (!h1_tchar((unsigned char)*n))
                return -400;
        v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        e = v + strlen(v);
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        for (const unsigned char *c = (const unsigned char *)v; *c; c++)
            if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
                return -400;
        if (h->n_headers == PGCMK_HTTP1_MAX_HEADERS)
            return -431;
        h->headers[h->n_headers].name = line;
        h->headers[h->n_headers].value = v;
        h->n_headers++;
        if ((r = h1_header_framing(h, line, v, &close, &keep)) != 0)
            return r;
    }
    if (h->chunked && h->content_length >= 0)
        return -400; /* both: a smuggling attempt */
    if (h->minor == 1 && h->host == NULL) {
        h->why = "missing required Host header";
        return -400;
    }
    h->keep_alive = h->minor == 1 && !close;
    (void)keep; /* HTTP/1.0 keep-alive is not offered: such a client gets a close */
    return (long)end;
}

/* Walks a chunked body at the start of buf without changing it: 0 incomplete, -400 malformed,
 * -413 its data over max, else the length through the trailer's empty line (*data = the data's
 * total). */
static long
h1_chunks_scan(const char *buf, size_t len, size_t max, size_t *data)
{
    size_t i = 0, total = 0;

    for (;;) {
        size_t size = 0, digits = 0;
        const char *nl;

        while (i < len && isxdigit((unsigned char)buf[i])) {
            int d = isdigit((unsigned char)buf[i]) ? buf[i] - '0'
                                                   : tolower((unsigned char)buf[i]) - 'a' + 10;

            if (++digits > 8)
                return -400;
            size = size * 16 + (size_t)d;
            i++;
        }
        if (i == len)
            return 0;
        if (digits == 0)
            return -400;
        /* Extensions (";name=value") up to the line's end are ignored. */
        nl = memchr(buf + i, '\n', len - i);
        if (nl == NULL)
            return len - i > 4096 ? -400 : 0;
        if (buf[i] != ';' && buf[i] != '\r' && buf[i] != '\n')
            return -400;
        i = (size_t)(nl - buf) + 1;
        if (size == 0)
            break;
        if (total + size > max)
            return -413;
        if (len - i < size + 1)
            return 0;
        i += size;
        if (buf[i] == '\r') {
            if (len - i < 2)
                return 0;
            i++;
        }
        if (buf[i] != '\n')
            return -400;
        i++;
        total += size;
    }
    /* Trailer lines, then the empty line. */
    for (;;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n;

        if (nl == NULL)
            return len - i > 4096 ? -400 : 0;
        n = (size_t)(nl - buf) - i;
        i = (size_t)(nl - buf) + 1;
        if (n == 0 || (n == 1 && buf[i - 2] == '\r'))
            break;
    }
    *data = total;
    return (long)i;
}

long
pgcmk_http1_dechunk(char *buf, size_t len, size_t max, size_t *out_len)
{
    size_t total = 0, i = 0, w = 0;
    long end = h1_chunks_scan(buf, len, max, &total);

    if (end <= 0)
        return end;
    /* Valid and complete: move the data of every chunk to the front. */
    while (w < total) {
        size_t size = strtoul(buf + i, NULL, 16);

        i = (size_t)((const char *)memchr(buf + i, '\n', len - i) - buf) + 1;
        memmove(buf + w, buf + i, size);
        w += size;
        i += size;
        i += buf[i] == '\r' ? 2 : 1;
    }
    *out_len = total;
    return end;
}
