/* smo_falsedep: K writer processes each storing to its own page of one file, then a reader of
 * one page that writes what it loaded to OUT: the false-dependency measurement (how many
 * writers a backtrack from OUT blames at object, VMA and page granularity).
 *
 * usage: smo_falsedep FILE OUT K [whole|own]
 *
 * The driver (which never maps FILE) creates FILE with K zero pages (ftruncate), forks the K
 * writers one after the other (each waited for): writer i stores "writer i" (64 bytes, eight
 * 8-byte stores) at file page i. Then it forks the reader, which loads the 64 bytes of page 0
 * (eight 8-byte loads) and write(2)s them to OUT. Layout `whole` (the default): every process
 * maps the whole file; `own`: each maps only the page it uses (writer i: page i; reader: page
 * 0). Each access is between two getppid(2) markers. Prints
 *   writer i pid=N page=i          (one line per writer)
 *   reader pid=N page=0 read=TEXT
 *   done
 * The only true dependency of OUT is writer 0. Expected: object granularity blames all K
 * writers; VMA granularity all K with `whole`, writer 0 only with `own`; page granularity
 * writer 0 only. Exit 0; 1 when the reader did not see writer 0's text; 100 on a setup
 * failure. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define MSG 64

static void die(const char *what) {
    perror(what);
    exit(100);
}

static inline uint64_t load64(const volatile void *p) {
    uint64_t v;
    __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(p) : "memory");
    return v;
}

static inline void store64(volatile void *p, uint64_t v) {
    __asm__ volatile("movq %1, (%0)" : : "r"(p), "r"(v) : "memory");
}

static void marker(void) { syscall(SYS_getppid); }

/* Maps pages [first, first + count) of file; returns the address of file page `page`. */
static volatile char *map_at(const char *file, int first, int count, int page, int writable) {
    int fd = open(file, writable ? O_RDWR : O_RDONLY);
    if (fd < 0) die(file);
    char *p = mmap(NULL, (size_t)count * PAGE, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                   MAP_SHARED, fd, (off_t)first * PAGE);
    if (p == MAP_FAILED) die("mmap");
    close(fd);
    return p + (size_t)(page - first) * PAGE;
}

static int writer(const char *file, int k, int i, int own) {
    volatile char *at = own ? map_at(file, i, 1, i, 1) : map_at(file, 0, k, i, 1);
    char buf[MSG] = {0};
    snprintf(buf, sizeof buf, "writer %d", i);
    marker();
    for (int j = 0; j < MSG; j += 8) {
        uint64_t v;
        memcpy(&v, buf + j, 8);
        store64(at + j, v);
    }
    marker();
    printf("writer %d pid=%d page=%d\n", i, getpid(), i);
    return 0;
}

static int reader(const char *file, const char *out, int k, int own) {
    volatile char *at = own ? map_at(file, 0, 1, 0, 0) : map_at(file, 0, k, 0, 0);
    char buf[MSG + 1] = {0};
    marker();
    for (int j = 0; j < MSG; j += 8) {
        uint64_t v = load64(at + j);
        memcpy(buf + j, &v, 8);
    }
    marker();
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(out);
    if (write(fd, buf, MSG) != MSG) die("write OUT");
    close(fd);
    printf("reader pid=%d page=0 read=%s\n", getpid(), buf);
    return strcmp(buf, "writer 0") ? 1 : 0;
}

static int wait_child(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) < 0) die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4) {
        fprintf(stderr, "usage: smo_falsedep FILE OUT K [whole|own]\n");
        return 2;
    }
    const char *file = argv[1], *out = argv[2];
    int k = atoi(argv[3]);
    int own = argc > 4 && !strcmp(argv[4], "own");
    if (k < 1 || k > 1024) return 2;
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(file);
    if (ftruncate(fd, (off_t)k * PAGE) < 0) die("ftruncate");
    close(fd);
    int rc = 0;
    for (int i = 0; i < k && !rc; i++) {
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) _exit(writer(file, k, i, own));
        rc = wait_child(p);
    }
    if (!rc) {
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) _exit(reader(file, out, k, own));
        rc = wait_child(p);
    }
    printf("done\n");
    return rc;
}
