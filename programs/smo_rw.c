/* smo_rw: a file both mapped MAP_SHARED and transferred with read(2)/write(2), so the file
 * offsets of the transfers matter (issue 11: read/write meet the parts they cover).
 *
 * usage: smo_rw FILE
 *   Creates FILE with 3 zero pages, maps it MAP_SHARED read-write, stores "mapped" at file
 *   page 1 through the mapping, then with the fd: lseek to 8192 and write(2) "written" (file
 *   page 2), lseek to 4096 and read(2) 6 bytes (what the store put in page 1), lseek to 8192
 *   and read(2) 7 bytes. Prints "read=mapped,written".
 *   Exit 0 when both reads saw the data, 1 when not, 100 on a setup failure. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: smo_rw FILE\n");
        return 100;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 3 * 4096) != 0) {
        perror(argv[1]);
        return 100;
    }
    char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        return 100;
    }
    memcpy(m + 4096, "mapped", 6);
    char a[7] = {0}, b[8] = {0};
    if (lseek(fd, 8192, SEEK_SET) != 8192 || write(fd, "written", 7) != 7) return 1;
    if (lseek(fd, 4096, SEEK_SET) != 4096 || read(fd, a, 6) != 6) return 1;
    if (lseek(fd, 8192, SEEK_SET) != 8192 || read(fd, b, 7) != 7) return 1;
    printf("read=%s,%s\n", a, b);
    return strcmp(a, "mapped") || strcmp(b, "written");
}
