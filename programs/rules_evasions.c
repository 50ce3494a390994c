/* The ways around a naive rule that a real program shows, one per mode, for the detection
 * rules' live tests (crates/cli/tests/rules.rs):
 *   rdwr PATH          openat(AT_FDCWD, PATH, O_RDWR): writes without the O_WRONLY bit
 *   openat2 PATH       openat2(AT_FDCWD, PATH, {O_WRONLY})
 *   dirfd DIR NAME     openat(open(DIR, O_PATH), NAME, O_RDWR): the path is relative to a dirfd
 *   i386 PATH          open(PATH, O_RDWR) as i386 syscall 5 through `int $0x80`
 *   connect PORT block|nonblock   a TCP connect to 127.0.0.1:PORT; a non-blocking one returns
 *                      EINPROGRESS and is then waited for
 * Each prints what the call returned. Built non-PIE (the i386 path must be below 4 GiB). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static char low_path[4096];

static int report(const char *what, long r) {
    if (r < 0) {
        printf("%s: %s\n", what, strerror(errno));
        return 1;
    }
    printf("%s: %ld\n", what, r);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: rules_evasions MODE ARGS...\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "rdwr"))
        return report("openat O_RDWR", openat(AT_FDCWD, argv[2], O_RDWR));
    if (!strcmp(mode, "openat2")) {
        struct open_how how = {.flags = O_WRONLY};
        return report("openat2 O_WRONLY", syscall(SYS_openat2, AT_FDCWD, argv[2], &how, sizeof how));
    }
    if (!strcmp(mode, "dirfd") && argc >= 4) {
        int dir = open(argv[2], O_PATH | O_DIRECTORY);
        if (dir < 0)
            return report("open dir", dir);
        return report("openat dirfd O_RDWR", openat(dir, argv[3], O_RDWR));
    }
    if (!strcmp(mode, "i386")) {
        strncpy(low_path, argv[2], sizeof low_path - 1);
        long fd;
        __asm__ volatile("int $0x80" : "=a"(fd) : "a"(5L), "b"(low_path), "c"((long)O_RDWR), "d"(0L) : "memory");
        if (fd < 0) {
            errno = (int)-fd;
            fd = -1;
        }
        return report("i386 open O_RDWR", fd);
    }
    if (!strcmp(mode, "connect") && argc >= 4) {
        int nonblock = !strcmp(argv[3], "nonblock");
        int s = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int r = connect(s, (struct sockaddr *)&a, sizeof a);
        if (r < 0 && errno == EINPROGRESS) {
            printf("connect: in progress\n");
            struct pollfd p = {.fd = s, .events = POLLOUT};
            poll(&p, 1, 2000);
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
            printf("completed: %s\n", err ? strerror(err) : "connected");
            return 0;
        }
        return report("connect", r);
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
