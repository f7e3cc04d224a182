/* startlat.c - time from exec to an accepting listener and to the first HTTPS 200.
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
    snprintf(url, sizeof(url), "https://localhost:%d/emulator/health", port);
    snprintf(ca, sizeof(ca), "%s/ca.pem", argv[2]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int r = 0; r < runs; r++) {
        char portarg[16];
        double t0 = now_ms(), t_conn = -1, t_200 = -1;
        pid_t pid;
        int status;

        snprintf(portarg, sizeof(portarg), "%d", port);
        pid = fork();
        if (pid == 0) {
            if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
                _exit(126);
            execl(argv[1], argv[1], "--data-dir", argv[2], "--port", portarg, "--log-level",
                  "error", (char *)NULL);
            _exit(127);
        }
        while (now_ms() - t0 < 5000) {
            struct sockaddr_in sa;
            int fd = socket(AF_INET, SOCK_STREAM, 0);

            memset(&sa, 0, sizeof(sa));
            sa.sin_family = AF_INET;
            sa.sin_port = htons((uint16_t)port);
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                t_conn = now_ms() - t0;
                close(fd);
                break;
            }
            close(fd);
            usleep(200);
        }
        if (t_conn >= 0) {
            CURL *c = curl_easy_init();
            long code = 0;

            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_CAINFO, ca);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
            if (curl_easy_perform(c) == CURLE_OK &&
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200)
                t_200 = now_ms() - t0;
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
