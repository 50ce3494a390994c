/* smo_edge: edge cases of shared-memory monitoring found in review (crates/cli/tests/
 * smo_capture.rs). Each mode maps a file MAP_SHARED in DIR and does one thing vigil must get
 * right:
 *   minipage-buf DIR  write(2) from a byte inside page 0 of the file (not page-aligned): the
 *                     event names the bytes the kernel read.
 *   huge-len DIR      write(2) and read(2) with lengths and addresses near the top of the
 *                     address space (they fail with EFAULT/EINVAL; vigil must not hang or
 *                     crash checking them).
 *   object-ro DIR     two shared mappings of one file, one writable and one read-only; a store
 *                     to the writable one, then a store to the read-only one, which must get
 *                     its SIGSEGV as without vigil.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096

static char *map_file(const char *dir, const char *name, int pages, int prot, int *fdp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)pages * PAGE) < 0) {
        perror(path);
        exit(2);
    }
    char *m = mmap(NULL, (size_t)pages * PAGE, prot, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    if (fdp) *fdp = fd;
    return m;
}

static int minipage_buf(const char *dir) {
    char *m = map_file(dir, "mb.smo", 1, PROT_READ | PROT_WRITE, NULL);
    int p[2];
    if (pipe(p) < 0) return 2;
    memcpy(m + 100, "0123456789", 10);
    ssize_t n = write(p[1], m + 100, 10);
    char buf[11] = {0};
    if (n != 10 || read(p[0], buf, 10) != 10 || strcmp(buf, "0123456789")) {
        printf("minipage-buf wrong n=%zd buf=%s\n", n, buf);
        return 1;
    }
    printf("minipage-buf ok\n");
    return 0;
}

static int huge_len(const char *dir) {
    char *m = map_file(dir, "hl.smo", 1, PROT_READ | PROT_WRITE, NULL);
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0) return 2;
    m[0] = 'x';
    /* A length the kernel refuses, from a shared page. */
    long a = syscall(SYS_write, fd, m, (size_t)-1);
    /* A buffer at the very top of the address space. */
    long b = syscall(SYS_write, fd, (void *)0xfffffffffffff000UL, (size_t)0x2000);
    long c = syscall(SYS_read, fd, (void *)0xffffffffffffff00UL, (size_t)0x1000);
    /* An iovec array at the top of the address space. */
    long d = syscall(SYS_writev, fd, (void *)0xfffffffffffffff0UL, 4);
    printf("huge-len done %ld %ld %ld %ld\n", a, b, c, d);
    return 0;
}

static sigjmp_buf jb;
static volatile int segv;

static void on_segv(int sig) {
    (void)sig;
    segv++;
    siglongjmp(jb, 1);
}

static int object_ro(const char *dir) {
    int fd;
    char *rw = map_file(dir, "ro.smo", 2, PROT_READ | PROT_WRITE, &fd);
    char *ro = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (ro == MAP_FAILED) return 2;
    struct sigaction sa = {.sa_handler = on_segv};
    sigaction(SIGSEGV, &sa, NULL);
    rw[0] = 'a';
    if (sigsetjmp(jb, 1) == 0) {
        *(volatile char *)ro = 'b';
    }
    printf("object-ro segv=%d ro[0]=%c\n", segv, ro[0]);
    return segv == 1 && ro[0] == 'a' ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *m = argv[1], *dir = argv[2];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(m, "minipage-buf")) return minipage_buf(dir);
    if (!strcmp(m, "huge-len")) return huge_len(dir);
    if (!strcmp(m, "object-ro")) return object_ro(dir);
    return 2;
}
