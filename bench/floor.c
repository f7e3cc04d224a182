/* floor.c - the do-nothing HTTPS server pgcmkd's GET figure is compared with, in the same run.
 * libmicrohttpd with the daemon's flags (internal polling thread, epoll, a pool of nproc threads,
 * TLS from the daemon's own P-256 certificate), the two-phase handler, and a fixed 215-byte JSON
 * body: what MHD + GnuTLS + the kernel manage on this machine with no application work.
 * usage: floor CERT_PEM KEY_PEM PORT_FILE   (listens on a free port of 127.0.0.1, writes the port
 * number to PORT_FILE, serves until SIGTERM or SIGINT) */
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "benchio.h"

int main(int argc, char **argv);

static const char floor_body[] =
    "{\"id\":\"/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/bench-get\","
    "\"name\":\"bench-get\",\"type\":\"Microsoft.Resources/resourceGroups\",\"location\":"
    "\"eastus\",\"properties\":{\"provisioningState\":\"Succeeded\"}}";

static enum MHD_Result
floor_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
             const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (!bench_request_done(req_cls, upload_size))
        return MHD_YES;
    r = MHD_create_response_from_buffer(sizeof(floor_body) - 1, (void *)floor_body,
                                        MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int
main(int argc, char **argv)
{
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *di = NULL;
    struct sockaddr_in sa;
    sigset_t set;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char *cert, *key;
    int sig;

    bench_server_init(argc, argv, &cert, &key, &set);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, floor_access, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(ncpu > 0 ? ncpu : 1), MHD_OPTION_CONNECTION_TIMEOUT,
        120u, MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
        MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
    if (d == NULL || (di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) == NULL) {
        fprintf(stderr, "floor: cannot start\n");
        return 1;
    }
    if (bench_write_port(argv[3], (unsigned)di->port) != 0)
        return 1;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    free(cert);
    free(key);
    return 0;
}
