/* Opens DIR as a directory fd, then openat(dirfd, "inner.txt") to create a file relative to it,
 * and unlinkat(dirfd, "inner.txt").  usage: openat_dirfd DIR */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) { perror("open dir"); return 1; }
    int fd = openat(dfd, "inner.txt", O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) { perror("openat"); return 1; }
    if (write(fd, "x\n", 2) != 2) return 1;
    close(fd);
    if (unlinkat(dfd, "inner.txt", 0) != 0) { perror("unlinkat"); return 1; }
    return 0;
}
