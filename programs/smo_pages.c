/* smo_pages: the source documents' granularity example as real processes: two writers and a
 * reader of one 3-page file.
 *
 * usage: smo_pages w1 FILE            store "W1 wrote page 0" (64 bytes) at file page 0
 *        smo_pages w2 FILE            store "W2 wrote page 1" (64 bytes) at file page 1
 *        smo_pages r-load FILE OUT    load the 64 bytes at file page 1 through a shared mapping,
 *                                     then write(2) them to OUT
 *        smo_pages r-read FILE OUT    the same with pread(2) of file offset 4096 instead of loads
 *        smo_pages run FILE OUT load|read
 *                                     the driver: creates FILE (3 zero pages, by ftruncate: no
 *                                     data is written with write(2)), then runs w1, w2 and
 *                                     r-load (or r-read) one after the other as children
 *                                     (fork + exec of this program), each waited for before the
 *                                     next starts, so one recording holds all three.
 *
 * Every mapping is the whole file, MAP_SHARED, read-write for the writers, read-only for the
 * reader. A message is 64 bytes at offset 0 of its page, moved with eight 8-byte loads or
 * stores (inline asm: exactly those accesses, no more). Each child calls getppid(2) right
 * before and right after its access (the marker a test finds in the log) and prints one line:
 *   ROLE pid=N addr=0xMAPPING page=P [read=TEXT]
 * The driver ends with "done". Expected flows: OUT depends on W2 at page granularity (and on
 * W1 and W2 at object granularity); with r-read, page granularity still gives W2 and only W2.
 * Exit status 0; 1 when the reader did not see W2's message; 100 on a setup failure. */
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
#define FILE_PAGES 3
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

/* 64 bytes of text (NUL-padded) stored with eight 8-byte stores. */
static void store_msg(volatile char *dst, const char *text) {
    char buf[MSG] = {0};
    snprintf(buf, sizeof buf, "%s", text);
    for (int i = 0; i < MSG; i += 8) {
        uint64_t v;
        memcpy(&v, buf + i, 8);
        store64(dst + i, v);
    }
}

/* 64 bytes loaded with eight 8-byte loads into out. */
static void load_msg(const volatile char *src, char *out) {
    for (int i = 0; i < MSG; i += 8) {
        uint64_t v = load64(src + i);
        memcpy(out + i, &v, 8);
    }
}

static volatile char *map_file(const char *path, int writable) {
    int fd = open(path, writable ? O_RDWR : O_RDONLY);
    if (fd < 0) die(path);
    void *p = mmap(NULL, FILE_PAGES * PAGE, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                   MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    close(fd);
    return p;
}

static void write_out(const char *out, const char *buf) {
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(out);
    if (write(fd, buf, MSG) != MSG) die("write OUT");
    close(fd);
}

static int writer(const char *role, const char *file, int page, const char *text) {
    volatile char *m = map_file(file, 1);
    marker();
    store_msg(m + page * PAGE, text);
    marker();
    printf("%s pid=%d addr=%p page=%d\n", role, getpid(), (void *)m, page);
    return 0;
}

static int reader(const char *file, const char *out, int by_load) {
    char buf[MSG + 1] = {0};
    void *addr = NULL;
    if (by_load) {
        volatile char *m = map_file(file, 0);
        addr = (void *)m;
        marker();
        load_msg(m + PAGE, buf);
        marker();
    } else {
        int fd = open(file, O_RDONLY);
        if (fd < 0) die(file);
        marker();
        if (pread(fd, buf, MSG, PAGE) != MSG) die("pread");
        marker();
        close(fd);
    }
    write_out(out, buf);
    printf("%s pid=%d addr=%p page=1 read=%s\n", by_load ? "r-load" : "r-read", getpid(), addr,
           buf);
    return strcmp(buf, "W2 wrote page 1") == 0 ? 0 : 1;
}

static int run_child(const char *self, char *const args[]) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        execv(self, args);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int driver(const char *file, const char *out, const char *how) {
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(file);
    if (ftruncate(fd, FILE_PAGES * PAGE) < 0) die("ftruncate");
    close(fd);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) die("readlink /proc/self/exe");
    self[n] = 0;
    const char *rmode = strcmp(how, "read") == 0 ? "r-read" : "r-load";
    char *w1[] = {self, "w1", (char *)file, NULL};
    char *w2[] = {self, "w2", (char *)file, NULL};
    char *r[] = {self, (char *)rmode, (char *)file, (char *)out, NULL};
    int rc = run_child(self, w1);
    if (!rc) rc = run_child(self, w2);
    if (!rc) rc = run_child(self, r);
    printf("done\n");
    return rc;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: smo_pages w1|w2 FILE | r-load|r-read FILE OUT | run FILE OUT load|read\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "w1")) return writer("w1", argv[2], 0, "W1 wrote page 0");
    if (!strcmp(mode, "w2")) return writer("w2", argv[2], 1, "W2 wrote page 1");
    if (argc < 4) return 2;
    if (!strcmp(mode, "r-load")) return reader(argv[2], argv[3], 1);
    if (!strcmp(mode, "r-read")) return reader(argv[2], argv[3], 0);
    if (!strcmp(mode, "run") && argc >= 5) return driver(argv[2], argv[3], argv[4]);
    return 2;
}
