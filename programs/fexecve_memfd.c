/* Runs a program from memory: copies argv[1] into a memfd and executes it with
 * execveat(fd, "", ..., AT_EMPTY_PATH) (what fexecve does), with argv[2...] as its arguments.
 * Nothing is ever written to a file system path. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fexecve_memfd PROGRAM ARGV0 [ARGS...]\n");
        return 2;
    }
    int src = open(argv[1], O_RDONLY);
    int mfd = memfd_create("payload", 0);
    if (src < 0 || mfd < 0) {
        perror("open/memfd_create");
        return 1;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0) write(mfd, buf, n);
    close(src);
    syscall(SYS_execveat, mfd, "", &argv[2], environ, AT_EMPTY_PATH);
    perror("execveat");
    return 1;
}
