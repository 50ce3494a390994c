/* smo_cost: the source documents' cost model, as runs of accesses a test can count.
 *
 * usage: smo_cost FILE [SPIN]
 *
 * One process. Creates FILE with 5 zero pages (ftruncate), maps it MAP_SHARED read-write, prints
 *   pid=N addr=0xMAPPING
 * then runs these phases, each preceded and followed by a getppid(2) marker and with no system
 * call inside a phase (the loads and stores are inline asm: exactly the accesses listed):
 *   (a) page 0: 1000 8-byte loads (offsets 0, 8, ..., wrapping in the page)
 *   (b) page 1: 1000 8-byte stores
 *   (c) page 2: 1000 8-byte loads, then 1000 8-byte stores
 *   (d) page 3: one read-modify-write, `addl $1, (mem)` (not locked)
 *   (e) only when SPIN > 0: page 4: SPIN million 8-byte loads (a run long enough to span
 *       several monitoring slices)
 * so the markers are 5 getppid calls (6 with SPIN): phase k lies between the k-th and the
 * (k+1)-th. Per slice the cost model says: (a) 1 fault (read), (b) 1 (write), (c) 2 (read, then
 * write), (d) 1 (read_write); (e) at least one per slice it spans. Minipage monitoring faults on
 * every access instead: 1000, 1000, 2000, 1.
 * After the last marker it loads page 3 once more and prints
 *   sum=S d=1
 * (the sum of the loads, 0 as the file starts zeroed; the counter the read-modify-write
 * incremented) and "done". Exit 0; 1 if the values are not those; 100 on a setup failure. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 5
#define RUN 1000

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

static inline void rmw_add1(volatile void *p) {
    __asm__ volatile("addl $1, (%0)" : : "r"(p) : "memory", "cc");
}

static void marker(void) { syscall(SYS_getppid); }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: smo_cost FILE [SPIN_MILLIONS]\n");
        return 2;
    }
    long spin = argc > 2 ? atol(argv[2]) : 0;
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die(argv[1]);
    if (ftruncate(fd, PAGES * PAGE) < 0) die("ftruncate");
    volatile char *m = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) die("mmap");
    close(fd);
    printf("pid=%d addr=%p\n", getpid(), (void *)m);

    uint64_t sum = 0;
    marker();
    /* (a) a run of loads */
    for (int i = 0; i < RUN; i++) sum += load64(m + 0 * PAGE + (i * 8) % PAGE);
    marker();
    /* (b) a run of stores */
    for (int i = 0; i < RUN; i++) store64(m + 1 * PAGE + (i * 8) % PAGE, 0);
    marker();
    /* (c) loads, then stores */
    for (int i = 0; i < RUN; i++) sum += load64(m + 2 * PAGE + (i * 8) % PAGE);
    for (int i = 0; i < RUN; i++) store64(m + 2 * PAGE + (i * 8) % PAGE, 0);
    marker();
    /* (d) one read-modify-write */
    rmw_add1(m + 3 * PAGE);
    marker();
    if (spin > 0) {
        /* (e) a long run of loads */
        for (long i = 0; i < spin * 1000000L; i++) sum += load64(m + 4 * PAGE + (i * 8) % PAGE);
        marker();
    }
    uint32_t d = (uint32_t)load64(m + 3 * PAGE);
    printf("sum=%llu d=%u\n", (unsigned long long)sum, d);
    printf("done\n");
    return sum == 0 && d == 1 ? 0 : 1;
}
