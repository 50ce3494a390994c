/* Makes the system calls it is told to, one at a time, so a test can compare its
 * /proc/PID/maps with a model fed the same calls.  usage: mapstep FILE
 * Opens FILE read-write and prints "fd N"; then for each line "NR A0 A1 A2 A3 A4 A5" on
 * stdin makes syscall(NR, A0..A5) and prints its result (-errno on failure).  Uses no stdio
 * and no malloc, so the only changes to its address space are the ones it is told to make. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int readline(char *buf, int n) {
    int i = 0;
    while (i < n - 1) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r <= 0) return -1;
        if (c == '\n') break;
        buf[i++] = c;
    }
    buf[i] = 0;
    return i;
}

static void say(const char *s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(1, s, n);
        if (w <= 0) _exit(3);
        s += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) return 1;
    char line[512], out[64];
    snprintf(out, sizeof out, "fd %d\n", fd);
    say(out);
    while (readline(line, sizeof line) >= 0) {
        unsigned long a[7] = {0};
        char *p = line;
        for (int i = 0; i < 7; i++) a[i] = strtoul(p, &p, 0);
        long r = syscall((long)a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
        if (r == -1) r = -errno;
        snprintf(out, sizeof out, "%ld\n", r);
        say(out);
    }
    return 0;
}
