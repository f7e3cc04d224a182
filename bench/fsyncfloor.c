/* fsyncfloor.c - how many small durable commits per second the disk under DIR allows.
 * Each "commit" writes 8 KiB at the next offset of a 4 MiB file it has written once (the way a
 * SQLite WAL is rewritten from its start after a checkpoint) and then calls fdatasync(), as SQLite
 * does once per commit in WAL mode with synchronous=FULL. One thread, so this is the ceiling for
 * serialised writers that commit one transaction per request (no group commit).
 * usage: fsyncfloor DIR MILLISECONDS   (prints: commits_per_s median_us p99_us) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv);

#define FILE_BYTES (4 << 20)
#define CHUNK      4096
#define MAX_OPS    200000

static double
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    static char buf[2 * CHUNK];
    static double lat[MAX_OPS];
    char path[4096];
    double t0, t, end;
    off_t off = 0;
    int fd, n = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR MILLISECONDS\n", argv[0]);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/fsyncfloor.bin", argv[1]);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    memset(buf, 'w', sizeof(buf));
    for (off_t o = 0; o < FILE_BYTES; o += sizeof(buf)) {
        if (pwrite(fd, buf, sizeof(buf), o) != (ssize_t)sizeof(buf)) {
            perror("pwrite");
            return 1;
        }
    }
    if (fsync(fd) != 0) {
        perror("fsync");
        return 1;
    }
    t0 = now_us();
    end = t0 + atof(argv[2]) * 1e3;
    for (t = t0; t < end && n < MAX_OPS; n++) {
        double s = t;

        if (pwrite(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf) || fdatasync(fd) != 0) {
            perror("pwrite/fdatasync");
            return 1;
        }
        off = (off + (off_t)sizeof(buf)) % FILE_BYTES;
        t = now_us();
        lat[n] = t - s;
    }
    close(fd);
    unlink(path);
    qsort(lat, (size_t)n, sizeof(lat[0]), cmp_double);
    printf("%.0f %.0f %.0f\n", n / ((t - t0) / 1e6), lat[n / 2], lat[(n * 99) / 100]);
    return 0;
}
