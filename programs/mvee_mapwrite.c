/* Multi-variant test (issue 12): a file opened for writing (only the leader opens it; the
 * others hold a placeholder) is then mapped, read and written through the mapping. Each
 * variant must see the file's bytes; the file ends up changed once. usage: mvee_mapwrite FILE */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    const char text[] = "hello from the file\n";
    if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1)) { perror("write"); return 1; }
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    printf("mapped: %.*s", (int)(sizeof text - 1), m);
    memcpy(m, "HELLO", 5);
    msync(m, 4096, MS_SYNC);
    munmap(m, 4096);
    close(fd);
    printf("done\n");
    return 0;
}
