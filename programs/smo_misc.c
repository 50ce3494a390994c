/* smo_misc: shared-memory situations a monitor must get right, one per mode.
 *
 * usage: smo_misc MODE [DIR]      (DIR holds the files a mode creates; default ".")
 *
 * Every mode prints lines of "key=value" words; values that change from run to run are pids
 * (pid=, child=, tid=, shmid=) and addresses (0x...). Access phases are between getppid(2)
 * markers. Loads and stores are inline asm 8-byte accesses (a 64-byte message is eight of
 * them). Exit 0 when the mode saw what it should, 1 when not, 100 on a setup failure.
 *
 *  segv-handler  Installs its own SIGSEGV handler (sigaction, SA_SIGINFO), maps DIR/segv.smo
 *                MAP_SHARED and stores to it, makes a PROT_NONE guard page and loads from it:
 *                the handler counts the call, keeps si_addr and si_code, loads from the shared
 *                mapping (an access inside a handler), mprotects the guard page readable and
 *                returns, so the load is retried and succeeds. Then stores to the shared
 *                mapping again and loads the guard page again (no second call). Prints
 *                  segv-handler calls=1 addr=guard+16 code=SEGV_ACCERR shared_seen=1111 ...
 *  threads       4 threads store each to its own page of a 4-page DIR/threads.smo mapping
 *                (MAP_SHARED; 512 8-byte stores each, started together at a barrier); main
 *                joins them, checks every page, prints each thread's tid and page.
 *  fork-anon     MAP_SHARED|MAP_ANONYMOUS, 2 pages: the parent stores a request at page 0 and
 *                forks; the child loads it and stores its answer at page 1; the parent waits,
 *                loads the answer and prints it.
 *  write-from-smo  The kernel's own accesses to a shared mapping of DIR/wfs.smo (3 pages,
 *                page 0 filled with pwrite before it is mapped): write(2) to a pipe FROM page 0
 *                (no load by the program before: the kernel's access is the first), read(2)
 *                from a pipe INTO page 1, pwrite(2) to DIR/wfs.out from page 0, pread(2) INTO
 *                page 2, writev(2) from page 1, readv(2) into page 2 + 64, send(2) over a
 *                socketpair from page 0 and recv(2) into page 2 + 128. Each must neither fail
 *                (EFAULT) nor lose data; prints "STEP ok n=64" for each.
 *  mprotect-ro   Maps DIR/ro.smo MAP_SHARED read-write, stores, mprotects it PROT_READ, loads
 *                (fine), prints "storing to read-only addr=0x..." and stores: it must die of
 *                SIGSEGV (exactly as natively). Exit 1 if the store succeeds.
 *  unmap-remap   Maps file pages 0-3 of DIR/remap.smo (6 pages) MAP_SHARED, stores a message
 *                in each, munmaps the first half, mremaps the second half (MREMAP_FIXED) into a
 *                reserved region, loads both pages there and stores through the new address;
 *                then grows it by a page (MREMAP_MAYMOVE: file page 4) and stores there; checks
 *                the file with pread(2).
 *  deleted       Maps DIR/deleted.smo MAP_SHARED, unlinks it, keeps storing and loading
 *                through the mapping; checks with pread(2) on the still open fd (nlink=0).
 *  sysv          shmget(IPC_PRIVATE, 2 pages), shmat, fork: the child stores through the
 *                inherited attachment (page 0) and through a new shmat of its own (page 1),
 *                detaches both; the parent waits, loads both pages, prints them, shmdt,
 *                IPC_RMID.
 *  memfd         memfd_create + MAP_SHARED (2 pages): the parent stores a request at page 0
 *                and forks; the child maps the inherited memfd again (a mapping of its own),
 *                loads the request and stores its answer at page 1; the parent prints it.
 *  maps          Prints its own /proc/self/maps at three points, each after a getppid marker
 *                and a line "== maps N ==": after start; after mmap of DIR/maps.smo (2 pages
 *                MAP_SHARED), a MAP_SHARED|MAP_ANONYMOUS page and an mprotect of the file
 *                mapping's second page to PROT_READ; after munmap of the anonymous page and an
 *                mremap (MREMAP_MAYMOVE) of the file mapping to 3 pages. Ends with "done". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define MSG 64

static const char *dir = ".";

static void die(const char *what) {
    perror(what);
    exit(100);
}

static int fail(const char *what) {
    fprintf(stderr, "smo_misc: %s\n", what);
    return 1;
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
    out[MSG - 1] = 0;
}

static const char *path_in_dir(const char *name) {
    static char buf[8][4096];
    static int n;
    char *p = buf[n++ % 8];
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

/* Creates DIR/NAME with PAGES zero pages, maps it MAP_SHARED read-write; *fdp keeps the fd
 * open when not NULL. */
static volatile char *map_new(const char *name, int pages, int *fdp) {
    const char *path = path_in_dir(name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(path);
    if (ftruncate(fd, (off_t)pages * PAGE) < 0) die("ftruncate");
    void *p = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    if (fdp)
        *fdp = fd;
    else
        close(fd);
    return p;
}

static int wait_child(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) < 0) die("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- segv-handler ---- */

static volatile char *guard, *segv_shared;
static volatile int handler_calls, handler_code;
static volatile uintptr_t handler_addr;
static volatile uint64_t handler_seen;

static void on_segv(int sig, siginfo_t *si, void *uctx) {
    (void)sig;
    (void)uctx;
    handler_calls++;
    handler_addr = (uintptr_t)si->si_addr;
    handler_code = si->si_code;
    handler_seen = load64(segv_shared);
    if (mprotect((void *)guard, PAGE, PROT_READ) < 0) _exit(101);
}

static int segv_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) < 0) die("sigaction");
    segv_shared = map_new("segv.smo", 1, NULL);
    char *area = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) die("mmap");
    guard = area + PAGE;
    if (mprotect((void *)guard, PAGE, PROT_NONE) < 0) die("mprotect");
    printf("segv-handler pid=%d shared=%p guard=%p\n", getpid(), (void *)segv_shared,
           (void *)guard);
    marker();
    store64(segv_shared, 1111);
    marker();
    uint64_t g1 = load64(guard + 16);
    marker();
    store64(segv_shared + 8, 2222);
    uint64_t g2 = load64(guard + 24);
    uint64_t s = load64(segv_shared) + load64(segv_shared + 8);
    marker();
    long off = (long)(handler_addr - (uintptr_t)guard);
    printf("segv-handler calls=%d addr=guard+%ld code=%s shared_seen=%llu guard_read=%llu "
           "shared_sum=%llu\n",
           handler_calls, off, handler_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other",
           (unsigned long long)handler_seen, (unsigned long long)(g1 + g2),
           (unsigned long long)s);
    return handler_calls == 1 && off == 16 && handler_code == SEGV_ACCERR &&
                   handler_seen == 1111 && g1 + g2 == 0 && s == 3333
               ? 0
               : fail("the handler did not see what it should");
}

/* ---- threads ---- */

#define NTHREADS 4
static volatile char *thr_map;
static pthread_barrier_t thr_barrier;
static pid_t thr_tid[NTHREADS];

static void *thread_main(void *arg) {
    long i = (long)arg;
    thr_tid[i] = (pid_t)syscall(SYS_gettid);
    pthread_barrier_wait(&thr_barrier);
    volatile char *page = thr_map + i * PAGE;
    for (int k = 0; k < PAGE / 8; k++) store64(page + k * 8, (uint64_t)(i + 1) * 1000 + k);
    return NULL;
}

static int threads(void) {
    thr_map = map_new("threads.smo", NTHREADS, NULL);
    printf("threads pid=%d addr=%p\n", getpid(), (void *)thr_map);
    pthread_barrier_init(&thr_barrier, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    marker();
    for (long i = 0; i < NTHREADS; i++)
        if (pthread_create(&t[i], NULL, thread_main, (void *)i)) die("pthread_create");
    for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
    marker();
    int bad = 0;
    for (int i = 0; i < NTHREADS; i++) {
        for (int k = 0; k < PAGE / 8; k++)
            if (load64(thr_map + i * PAGE + k * 8) != (uint64_t)(i + 1) * 1000 + k) bad++;
        printf("thread %d tid=%d page=%d\n", i, thr_tid[i], i);
    }
    marker();
    printf("threads bad=%d\n", bad);
    return bad ? fail("a page does not hold its thread's stores") : 0;
}

/* ---- fork-anon ---- */

static int fork_anon(void) {
    volatile char *m =
        mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) die("mmap");
    marker();
    store_msg(m, "question from the parent");
    marker();
    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        char q[MSG], a[MSG];
        marker();
        load_msg(m, q);
        snprintf(a, sizeof a, "child answers: %.40s", q);
        store_msg(m + PAGE, a);
        marker();
        _exit(0);
    }
    int rc = wait_child(c);
    char a[MSG];
    marker();
    load_msg(m + PAGE, a);
    marker();
    printf("fork-anon pid=%d child=%d addr=%p read=%s\n", getpid(), c, (void *)m, a);
    return !rc && !strcmp(a, "child answers: question from the parent")
               ? 0
               : fail("the parent did not read the child's answer");
}

/* ---- write-from-smo ---- */

static int check(const char *step, ssize_t got, const char *buf, const char *want) {
    if (got < 0) {
        printf("%s failed errno=%s\n", step, strerrorname_np(errno));
        return 1;
    }
    if (got != MSG || strcmp(buf, want)) {
        printf("%s wrong n=%zd data=%.64s\n", step, got, buf);
        return 1;
    }
    printf("%s ok n=%zd\n", step, got);
    return 0;
}

static int write_from_smo(void) {
    const char *path = path_in_dir("wfs.smo");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(path);
    char text[MSG] = "page 0 written with pwrite";
    if (pwrite(fd, text, MSG, 0) != MSG) die("pwrite");
    if (ftruncate(fd, 3 * PAGE) < 0) die("ftruncate");
    volatile char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) die("mmap");
    const char *outp = path_in_dir("wfs.out");
    int out = open(outp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (out < 0) die(outp);
    int p[2], sv[2];
    if (pipe(p) < 0) die("pipe");
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) die("socketpair");
    printf("write-from-smo pid=%d addr=%p\n", getpid(), (void *)m);
    char buf[MSG + 1];
    char *mp = (char *)m;
    int bad = 0;

    /* write(2) from page 0, before any load of it by the program */
    ssize_t n = write(p[1], mp, MSG);
    memset(buf, 0, sizeof buf);
    if (n == MSG && read(p[0], buf, MSG) != MSG) die("read pipe");
    bad |= check("write", n, buf, "page 0 written with pwrite");

    /* read(2) into page 1 */
    char msg1[MSG] = "read into page 1";
    if (write(p[1], msg1, MSG) != MSG) die("write pipe");
    n = read(p[0], mp + PAGE, MSG);
    load_msg(m + PAGE, buf);
    bad |= check("read", n, buf, "read into page 1");

    /* pwrite(2) from page 0 to another file, pread(2) back into page 2 */
    n = pwrite(out, mp, MSG, 0);
    memset(buf, 0, sizeof buf);
    if (n == MSG && pread(out, buf, MSG, 0) != MSG) die("pread");
    bad |= check("pwrite", n, buf, "page 0 written with pwrite");
    n = pread(out, mp + 2 * PAGE, MSG, 0);
    load_msg(m + 2 * PAGE, buf);
    bad |= check("pread", n, buf, "page 0 written with pwrite");

    /* writev(2) from page 1, readv(2) into page 2 + 64 */
    struct iovec iov = {.iov_base = mp + PAGE, .iov_len = MSG};
    n = writev(p[1], &iov, 1);
    memset(buf, 0, sizeof buf);
    if (n == MSG && read(p[0], buf, MSG) != MSG) die("read pipe");
    bad |= check("writev", n, buf, "read into page 1");
    char msg2[MSG] = "readv into page 2";
    if (write(p[1], msg2, MSG) != MSG) die("write pipe");
    iov.iov_base = mp + 2 * PAGE + 64;
    n = readv(p[0], &iov, 1);
    load_msg(m + 2 * PAGE + 64, buf);
    bad |= check("readv", n, buf, "readv into page 2");

    /* send(2) from page 0, recv(2) into page 2 + 128 */
    n = send(sv[0], mp, MSG, 0);
    n = n == MSG ? recv(sv[1], mp + 2 * PAGE + 128, MSG, MSG_WAITALL) : n;
    load_msg(m + 2 * PAGE + 128, buf);
    bad |= check("send-recv", n, buf, "page 0 written with pwrite");

    return bad ? fail("a transfer from or to the shared mapping failed") : 0;
}

/* ---- mprotect-ro ---- */

static int mprotect_ro(void) {
    volatile char *m = map_new("ro.smo", 1, NULL);
    marker();
    store64(m, 42);
    marker();
    if (mprotect((void *)m, PAGE, PROT_READ) < 0) die("mprotect");
    marker();
    uint64_t v = load64(m);
    marker();
    printf("mprotect-ro pid=%d read=%llu\n", getpid(), (unsigned long long)v);
    printf("storing to read-only addr=%p\n", (void *)m);
    store64(m, 43);
    printf("the store to a read-only mapping succeeded\n");
    return 1;
}

/* ---- unmap-remap ---- */

static int unmap_remap(void) {
    int fd;
    volatile char *m = map_new("remap.smo", 6, &fd);
    if (munmap((void *)m, 6 * PAGE) < 0) die("munmap");
    m = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) die("mmap");
    marker();
    for (int i = 0; i < 4; i++) {
        char t[MSG];
        snprintf(t, sizeof t, "page %d", i);
        store_msg(m + i * PAGE, t);
    }
    marker();
    if (munmap((void *)m, 2 * PAGE) < 0) die("munmap");
    char *reserve = mmap(NULL, 4 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (reserve == MAP_FAILED) die("mmap reserve");
    volatile char *moved = mremap((void *)(m + 2 * PAGE), 2 * PAGE, 2 * PAGE,
                                  MREMAP_MAYMOVE | MREMAP_FIXED, reserve + PAGE);
    if (moved == MAP_FAILED) die("mremap fixed");
    char p2[MSG], p3[MSG];
    marker();
    load_msg(moved, p2);
    load_msg(moved + PAGE, p3);
    store_msg(moved, "moved page 2");
    marker();
    volatile char *grown = mremap((void *)moved, 2 * PAGE, 3 * PAGE, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) die("mremap grow");
    marker();
    store_msg(grown + 2 * PAGE, "grown page 4");
    char g2[MSG];
    load_msg(grown, g2);
    marker();
    char f2[MSG + 1] = {0}, f4[MSG + 1] = {0};
    if (pread(fd, f2, MSG, 2 * PAGE) != MSG || pread(fd, f4, MSG, 4 * PAGE) != MSG) die("pread");
    printf("unmap-remap pid=%d old=%p moved=%p grown=%p\n", getpid(), (void *)m, (void *)moved,
           (void *)grown);
    printf("unmap-remap page2=%s page3=%s after=%s file2=%s file4=%s\n", p2, p3, g2, f2, f4);
    return !strcmp(p2, "page 2") && !strcmp(p3, "page 3") && !strcmp(g2, "moved page 2") &&
                   !strcmp(f2, "moved page 2") && !strcmp(f4, "grown page 4")
               ? 0
               : fail("the remapped pages do not hold what was stored");
}

/* ---- deleted ---- */

static int deleted(void) {
    int fd;
    volatile char *m = map_new("deleted.smo", 1, &fd);
    if (unlink(path_in_dir("deleted.smo")) < 0) die("unlink");
    struct stat st;
    if (fstat(fd, &st) < 0) die("fstat");
    char a[MSG], f[MSG + 1] = {0};
    marker();
    store_msg(m, "stored after unlink");
    load_msg(m, a);
    marker();
    if (pread(fd, f, MSG, 0) != MSG) die("pread");
    close(fd);
    marker();
    store_msg(m + 64, "stored after close");
    char b[MSG];
    load_msg(m + 64, b);
    marker();
    printf("deleted pid=%d addr=%p nlink=%lu read=%s file=%s again=%s\n", getpid(), (void *)m,
           (unsigned long)st.st_nlink, a, f, b);
    return st.st_nlink == 0 && !strcmp(a, "stored after unlink") &&
                   !strcmp(f, "stored after unlink") && !strcmp(b, "stored after close")
               ? 0
               : fail("the deleted file's mapping lost data");
}

/* ---- sysv ---- */

static int sysv(void) {
    int id = shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600);
    if (id < 0) die("shmget");
    volatile char *m = shmat(id, NULL, 0);
    if (m == (void *)-1) {
        shmctl(id, IPC_RMID, NULL);
        die("shmat");
    }
    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        volatile char *own = shmat(id, NULL, 0);
        if (own == (void *)-1) _exit(100);
        marker();
        store_msg(m, "child via inherited attach");
        store_msg(own + PAGE, "child via own attach");
        marker();
        shmdt((void *)own);
        shmdt((void *)m);
        _exit(0);
    }
    int rc = wait_child(c);
    char a[MSG], b[MSG];
    marker();
    load_msg(m, a);
    load_msg(m + PAGE, b);
    marker();
    shmdt((void *)m);
    shmctl(id, IPC_RMID, NULL);
    printf("sysv pid=%d child=%d shmid=%d addr=%p page0=%s page1=%s\n", getpid(), c, id,
           (void *)m, a, b);
    return !rc && !strcmp(a, "child via inherited attach") && !strcmp(b, "child via own attach")
               ? 0
               : fail("the parent did not see the child's stores");
}

/* ---- memfd ---- */

static int memfd(void) {
    int fd = memfd_create("vigil-smo", 0);
    if (fd < 0) die("memfd_create");
    if (ftruncate(fd, 2 * PAGE) < 0) die("ftruncate");
    volatile char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) die("mmap");
    marker();
    store_msg(m, "memfd question");
    marker();
    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        volatile char *own = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (own == MAP_FAILED) _exit(100);
        char q[MSG], a[MSG];
        marker();
        load_msg(own, q);
        snprintf(a, sizeof a, "child answers: %.40s", q);
        store_msg(own + PAGE, a);
        marker();
        _exit(0);
    }
    int rc = wait_child(c);
    char a[MSG];
    marker();
    load_msg(m + PAGE, a);
    marker();
    printf("memfd pid=%d child=%d addr=%p read=%s\n", getpid(), c, (void *)m, a);
    return !rc && !strcmp(a, "child answers: memfd question")
               ? 0
               : fail("the parent did not read the child's answer");
}

/* ---- maps ---- */

static void dump_maps(int n) {
    marker();
    printf("== maps %d ==\n", n);
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) die("/proc/self/maps");
    char buf[8192];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        if (write(1, buf, (size_t)r) != r) die("write");
    close(fd);
}

static int maps(void) {
    dump_maps(1);
    volatile char *f = map_new("maps.smo", 2, NULL);
    volatile char *a =
        mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) die("mmap");
    if (mprotect((void *)(f + PAGE), PAGE, PROT_READ) < 0) die("mprotect");
    store64(f, 1);
    store64(a, 2);
    dump_maps(2);
    if (munmap((void *)a, PAGE) < 0) die("munmap");
    if (mprotect((void *)(f + PAGE), PAGE, PROT_READ | PROT_WRITE) < 0) die("mprotect");
    /* the file has 2 pages: the third page of the grown mapping is beyond its end (mapped, not
       accessible), as allowed */
    volatile char *g = mremap((void *)f, 2 * PAGE, 3 * PAGE, MREMAP_MAYMOVE);
    if (g == MAP_FAILED) die("mremap");
    uint64_t v = load64(g);
    dump_maps(3);
    printf("maps file=%p anon=%p grown=%p read=%llu\n", (void *)f, (void *)a, (void *)g,
           (unsigned long long)v);
    printf("done\n");
    return v == 1 ? 0 : fail("the remapped mapping lost its data");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: smo_misc MODE [DIR] (see the header of smo_misc.c)\n");
        return 2;
    }
    if (argc > 2) dir = argv[2];
    const char *m = argv[1];
    if (!strcmp(m, "segv-handler")) return segv_handler();
    if (!strcmp(m, "threads")) return threads();
    if (!strcmp(m, "fork-anon")) return fork_anon();
    if (!strcmp(m, "write-from-smo")) return write_from_smo();
    if (!strcmp(m, "mprotect-ro")) return mprotect_ro();
    if (!strcmp(m, "unmap-remap")) return unmap_remap();
    if (!strcmp(m, "deleted")) return deleted();
    if (!strcmp(m, "sysv")) return sysv();
    if (!strcmp(m, "memfd")) return memfd();
    if (!strcmp(m, "maps")) return maps();
    fprintf(stderr, "smo_misc: unknown mode %s\n", m);
    return 2;
}
