/* startlat.c - time from exec to an accepting listener and to the first HTTPS 200.
 * Forks and execs pgcmkd on a fixed port, polls connect() on 127.0.0.1:PORT every 200 us, then
 * makes one libcurl HTTPS GET /emulator/health (verified against DATA_DIR/ca.pem), then SIGTERM.
 * The clock starts just before fork(). Fails if the port already accepts before the start (another
 * process would be measured) or if pgcmkd exits early.
 * usage: startlat PGCMKD DATA_DIR PORT RUNS  (prints one line per run: connect_ms first_200_ms) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

int main(int argc, char **argv);

static int
try_connect(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t
sink(char *p, size_t a, size_t b, void *u)
{
    (void)p;
    (void)u;
    return a * b;
}

int
main(int argc, char **argv)
{
    int port, runs;
    char url[128], ca[512];

    if (argc != 5) {
        fprintf(stderr, "usage: %s PGCMKD DATA_DIR PORT RUNS\n", argv[0]);
        return 2;
    }
    port = atoi(argv[3]);
    runs = atoi(argv[4]);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/emulator/health", port);
    snprintf(ca, sizeof(ca), "%s/ca.pem", argv[2]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int r = 0; r < runs; r++) {
        char portarg[16];
        double t0, t_conn = -1, t_200 = -1;
        pid_t pid;
        int status;

        if (try_connect(port)) {
            fprintf(stderr, "startlat: port %d already accepts connections; pick another\n", port);
            return 3;
        }
        snprintf(portarg, sizeof(portarg), "%d", port);
        t0 = now_ms();
        pid = fork();
        if (pid == 0) {
            if (freopen("/dev/null", "w", stdout) == NULL ||
                freopen("/dev/null", "w", stderr) == NULL)
                _exit(126);
            execl(argv[1], argv[1], "--data-dir", argv[2], "--port", portarg, "--log-level", "warn",
                  (char *)NULL);
            _exit(127);
        }
        while (now_ms() - t0 < 5000) {
            if (try_connect(port)) {
                t_conn = now_ms() - t0;
                break;
            }
            if (waitpid(pid, &status, WNOHANG) == pid) {
                fprintf(stderr, "startlat: pgcmkd exited before accepting (status %d)\n", status);
                return 1;
            }
            usleep(200);
        }
        if (t_conn >= 0) {
            CURL *c = curl_easy_init();
            CURLcode rc;
            long code = 0;

            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_CAINFO, ca);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
            rc = curl_easy_perform(c);
            if (rc == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
                code == 200)
                t_200 = now_ms() - t0;
            else
                fprintf(stderr, "startlat: GET %s: %s, HTTP %ld\n", url, curl_easy_strerror(rc),
                        code);
            curl_easy_cleanup(c);
        }
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        printf("%.1f %.1f\n", t_conn, t_200);
        fflush(stdout);
        if (t_200 < 0)
            return 1;
    }
    return 0;
}
