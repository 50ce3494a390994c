/* smo_vma: mappings of one file that make object, VMA, page and minipage granularity differ.
 *
 * usage: smo_vma alias FILE
 *   One process, a 3-page FILE mapped twice MAP_SHARED: V1 = file pages 0-1, V2 = file pages
 *   1-2 (two VMAs overlapping at file page 1). Stores 64 bytes through V1 at file page 1, then
 *   loads them through V2 (the same file page, another address). Prints
 *     alias pid=N v1=0xA v2=0xB store=0xV1+4096 load=0xV2 read=TEXT
 *   Exit 1 if the load did not see the store.
 *
 * usage: smo_vma flows FILE OUT
 *   A driver (which never maps FILE) creates a 3-page FILE, then forks, one after the other
 *   (each waited for), processes that map parts of it MAP_SHARED:
 *     wa: maps file pages 0-1, stores at page 0
 *     wb: maps file page 2 only, stores at page 2
 *     wc: maps file pages 1-2, stores at page 1
 *     r:  maps file pages 0-1, loads page 1 (64 bytes) and write(2)s them to OUT
 *   Each prints "ROLE pid=N addr=0xMAPPING map=FIRST-LAST page=P". The writers OUT depends
 *   on: object granularity wa, wb, wc; VMA granularity (r's mapping overlaps wa's and wc's, not
 *   wb's) wa, wc; page granularity wc.
 *
 * usage: smo_vma mini FILE OUT
 *   The same with a 1-page FILE and two 8-byte stores 2 KiB apart:
 *     x: stores 8 bytes at file offset 0
 *     y: stores 8 bytes at file offset 2048
 *     r: loads the 8 bytes at file offset 2048 and write(2)s them to OUT
 *   Page granularity: OUT depends on x and y; minipage (any part size up to 2048): y only.
 *
 * Accesses are inline asm 8-byte loads and stores (a 64-byte message is eight of them); each
 * process calls getppid(2) right before and right after its accesses (a marker for tests).
 * Output ends with "done". Exit 0; 1 when a reader saw the wrong data; 100 on a setup failure. */
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

static void store_bytes(volatile char *dst, const char *text, int n) {
    char buf[MSG] = {0};
    snprintf(buf, sizeof buf, "%s", text);
    for (int i = 0; i < n; i += 8) {
        uint64_t v;
        memcpy(&v, buf + i, 8);
        store64(dst + i, v);
    }
}

static void load_bytes(const volatile char *src, char *out, int n) {
    for (int i = 0; i < n; i += 8) {
        uint64_t v = load64(src + i);
        memcpy(out + i, &v, 8);
    }
}

static void create(const char *file, int pages) {
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(file);
    if (ftruncate(fd, (off_t)pages * PAGE) < 0) die("ftruncate");
    close(fd);
}

/* Maps file pages first..last (inclusive) MAP_SHARED. */
static volatile char *map_pages(const char *file, int first, int last, int writable) {
    int fd = open(file, writable ? O_RDWR : O_RDONLY);
    if (fd < 0) die(file);
    void *p = mmap(NULL, (size_t)(last - first + 1) * PAGE,
                   writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
                   (off_t)first * PAGE);
    if (p == MAP_FAILED) die("mmap");
    close(fd);
    return p;
}

static void write_out(const char *out, const char *buf, int n) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(out);
    if (write(fd, buf, n) != n) die("write OUT");
    close(fd);
}

static int in_child(int (*fn)(const char **), const char **args) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) _exit(fn(args));
    int st;
    if (waitpid(pid, &st, 0) < 0) die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int alias(const char *file) {
    create(file, 3);
    volatile char *v1 = map_pages(file, 0, 1, 1);
    volatile char *v2 = map_pages(file, 1, 2, 1);
    char buf[MSG + 1] = {0};
    marker();
    store_bytes(v1 + PAGE, "stored through V1", MSG);
    marker();
    load_bytes(v2, buf, MSG);
    marker();
    printf("alias pid=%d v1=%p v2=%p store=%p load=%p read=%s\n", getpid(), (void *)v1,
           (void *)v2, (void *)(v1 + PAGE), (void *)v2, buf);
    printf("done\n");
    return strcmp(buf, "stored through V1") == 0 ? 0 : 1;
}

/* args: role, file, first page, last page, file page accessed, "w" or OUT path */
static int flow_proc(const char **a) {
    int first = atoi(a[2]), last = atoi(a[3]), page = atoi(a[4]);
    int writes = !strcmp(a[5], "w");
    volatile char *m = map_pages(a[1], first, last, writes);
    volatile char *at = m + (size_t)(page - first) * PAGE;
    char buf[MSG + 1] = {0};
    char text[MSG];
    snprintf(text, sizeof text, "%s wrote page %d", a[0], page);
    marker();
    if (writes)
        store_bytes(at, text, MSG);
    else
        load_bytes(at, buf, MSG);
    marker();
    if (!writes) write_out(a[5], buf, MSG);
    printf("%s pid=%d addr=%p map=%d-%d page=%d%s%s\n", a[0], getpid(), (void *)m, first, last,
           page, writes ? "" : " read=", buf);
    return writes || !strcmp(buf, "wc wrote page 1") ? 0 : 1;
}

static int flows(const char *file, const char *out) {
    create(file, 3);
    const char *wa[] = {"wa", file, "0", "1", "0", "w"};
    const char *wb[] = {"wb", file, "2", "2", "2", "w"};
    const char *wc[] = {"wc", file, "1", "2", "1", "w"};
    const char *r[] = {"r", file, "0", "1", "1", out};
    int rc = in_child(flow_proc, wa);
    if (!rc) rc = in_child(flow_proc, wb);
    if (!rc) rc = in_child(flow_proc, wc);
    if (!rc) rc = in_child(flow_proc, r);
    printf("done\n");
    return rc;
}

/* args: role, file, offset, "w" or OUT path */
static int mini_proc(const char **a) {
    int off = atoi(a[2]);
    int writes = !strcmp(a[3], "w");
    volatile char *m = map_pages(a[1], 0, 0, writes);
    char buf[9] = {0};
    marker();
    if (writes)
        store_bytes(m + off, !strcmp(a[0], "x") ? "x@0" : "y@2048", 8);
    else
        load_bytes(m + off, buf, 8);
    marker();
    if (!writes) write_out(a[3], buf, 8);
    printf("%s pid=%d addr=%p offset=%d%s%s\n", a[0], getpid(), (void *)m, off,
           writes ? "" : " read=", buf);
    return writes || !strcmp(buf, "y@2048") ? 0 : 1;
}

static int mini(const char *file, const char *out) {
    create(file, 1);
    const char *x[] = {"x", file, "0", "w"};
    const char *y[] = {"y", file, "2048", "w"};
    const char *r[] = {"r", file, "2048", out};
    int rc = in_child(mini_proc, x);
    if (!rc) rc = in_child(mini_proc, y);
    if (!rc) rc = in_child(mini_proc, r);
    printf("done\n");
    return rc;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "alias")) return alias(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "flows")) return flows(argv[2], argv[3]);
    if (argc >= 4 && !strcmp(argv[1], "mini")) return mini(argv[2], argv[3]);
    fprintf(stderr, "usage: smo_vma alias FILE | flows FILE OUT | mini FILE OUT\n");
    return 2;
}
