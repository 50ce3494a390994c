/* smo_private: a MAP_PRIVATE writable mapping of a file that another process writes
 * MAP_SHARED. Its loads of a page it has not written see the shared writer's stores (and so
 * depend on them); its stores copy the page into the process and never reach the file or any
 * other process.
 *
 * usage: smo_private FILE OUT1 OUT2
 *
 * The driver (which never maps FILE) creates FILE with 2 zero pages (ftruncate) and runs:
 *   p: maps FILE MAP_PRIVATE, PROT_READ|PROT_WRITE; stores "p private page 1" (64 bytes) at
 *      page 1 (the kernel copies that page into p); tells the driver (a byte on a pipe) and
 *      waits for its go (a byte on another pipe);
 *   w: (started once p has stored) maps FILE MAP_SHARED and stores "w shared page 0" at page 0
 *      and "w shared page 1" at page 1, then exits;
 *   p: (after w has exited) loads page 0 (never written by p: it sees w's store) and writes it
 *      to OUT1, loads page 1 (its own copy: it sees its own store, not w's); prints
 *        p pid=N addr=0xMAPPING wrote=1 page0=TEXT page1=TEXT
 *      ("wrote" lists the pages p stored to, i.e. the pages copied on write);
 *   r: maps FILE MAP_SHARED read-only, loads page 1 and writes it to OUT2: w's text, never p's.
 * w and r print "ROLE pid=N addr=0xMAPPING". Each access phase is between two getppid(2)
 * markers. Expected flows: OUT1 depends on w (through page 0); OUT2 depends on w and not on p.
 * Output ends with "done". Exit 0; 1 when a process saw the wrong data; 100 on a setup
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

static void store_msg(volatile char *dst, const char *text) {
    char buf[MSG] = {0};
    snprintf(buf, sizeof buf, "%s", text);
    for (int i = 0; i < MSG; i += 8) {
        uint64_t v;
        memcpy(&v, buf + i, 8);
        store64(dst + i, v);
    }
}

static void load_msg(const volatile char *src, char *out) {
    for (int i = 0; i < MSG; i += 8) {
        uint64_t v = load64(src + i);
        memcpy(out + i, &v, 8);
    }
}

static volatile char *map_file(const char *file, int flags, int prot) {
    int fd = open(file, prot & PROT_WRITE && flags == MAP_SHARED ? O_RDWR : O_RDONLY);
    if (fd < 0) die(file);
    void *p = mmap(NULL, 2 * PAGE, prot, flags, fd, 0);
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

static int wait_child(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) < 0) die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int private_proc(const char *file, const char *out1, int ready, int go) {
    volatile char *m = map_file(file, MAP_PRIVATE, PROT_READ | PROT_WRITE);
    marker();
    store_msg(m + PAGE, "p private page 1");
    marker();
    char c = 'r';
    if (write(ready, &c, 1) != 1) die("write ready");
    if (read(go, &c, 1) != 1) die("read go");
    char p0[MSG + 1] = {0}, p1[MSG + 1] = {0};
    marker();
    load_msg(m, p0);
    load_msg(m + PAGE, p1);
    marker();
    write_out(out1, p0);
    printf("p pid=%d addr=%p wrote=1 page0=%s page1=%s\n", getpid(), (void *)m, p0, p1);
    return !strcmp(p0, "w shared page 0") && !strcmp(p1, "p private page 1") ? 0 : 1;
}

static int shared_writer(const char *file) {
    volatile char *m = map_file(file, MAP_SHARED, PROT_READ | PROT_WRITE);
    marker();
    store_msg(m, "w shared page 0");
    store_msg(m + PAGE, "w shared page 1");
    marker();
    printf("w pid=%d addr=%p\n", getpid(), (void *)m);
    return 0;
}

static int shared_reader(const char *file, const char *out2) {
    volatile char *m = map_file(file, MAP_SHARED, PROT_READ);
    char p1[MSG + 1] = {0};
    marker();
    load_msg(m + PAGE, p1);
    marker();
    write_out(out2, p1);
    printf("r pid=%d addr=%p page1=%s\n", getpid(), (void *)m, p1);
    return !strcmp(p1, "w shared page 1") ? 0 : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4) {
        fprintf(stderr, "usage: smo_private FILE OUT1 OUT2\n");
        return 2;
    }
    const char *file = argv[1];
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(file);
    if (ftruncate(fd, 2 * PAGE) < 0) die("ftruncate");
    close(fd);
    int ready[2], go[2];
    if (pipe(ready) < 0 || pipe(go) < 0) die("pipe");
    pid_t p = fork();
    if (p < 0) die("fork");
    if (p == 0) {
        close(ready[0]);
        close(go[1]);
        _exit(private_proc(file, argv[2], ready[1], go[0]));
    }
    close(ready[1]);
    close(go[0]);
    char c;
    if (read(ready[0], &c, 1) != 1) die("read ready");
    int rc = 0;
    pid_t w = fork();
    if (w < 0) die("fork");
    if (w == 0) _exit(shared_writer(file));
    rc |= wait_child(w);
    if (write(go[1], &c, 1) != 1) die("write go");
    rc |= wait_child(p);
    pid_t r = fork();
    if (r < 0) die("fork");
    if (r == 0) _exit(shared_reader(file, argv[3]));
    rc |= wait_child(r);
    printf("done\n");
    return rc ? 1 : 0;
}
