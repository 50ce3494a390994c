/* smo_path: a path the program passes to open(2) from a shared mapping, across a page
 * boundary. Under `vigil record --smo page` the kernel must read it (no EFAULT) and vigil must
 * record the path it names (its own reads go through /proc/PID/mem).
 *
 * usage: smo_path PATH
 *   Maps two pages MAP_SHARED|MAP_ANONYMOUS, copies PATH so that it starts 6 bytes before the
 *   second page, stores to the second page (the store is a fault under vigil: the pages are
 *   then protected again at the next syscall stop), calls getppid(2), then opens the path
 *   read-only. Prints "open=0" and exits 0 when the open worked, "open=-1 errno=N" and 1
 *   when not; 100 on a setup failure. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2 || strlen(argv[1]) > 4000) return 100;
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 100;
    strcpy(m + 4090, argv[1]);
    getppid();
    int fd = open(m + 4090, O_RDONLY);
    if (fd < 0) {
        printf("open=-1 errno=%d\n", errno);
        return 1;
    }
    printf("open=0\n");
    return 0;
}
