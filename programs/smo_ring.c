/* smo_ring: a producer and a consumer process exchanging N 64-byte messages through a shared
 * 64 KiB ring in a mapped file: the benchmark workload for shared-memory monitoring.
 *
 * usage: smo_ring [N [FILE]]     N defaults to 10000; FILE to /dev/shm/vigil-ring-PID (created,
 *                                and removed at the end)
 *
 * FILE is 64 KiB, mapped MAP_SHARED read-write before the fork (both processes share the
 * mapping). Its first 64 bytes are the header: head (messages produced, at offset 0), tail
 * (messages consumed, at offset 8), the producer's checksum (offset 16); the other 1023
 * 64-byte slots hold messages (message i in slot 1 + i % 1023). The child produces: it waits
 * while the ring is full, writes message i (eight 8-byte stores: i, then seven words derived
 * from i) and publishes head = i + 1 (a release store). The parent consumes: it waits while
 * the ring is empty, reads the message (eight 8-byte loads) and publishes tail. A waiting side
 * calls sched_yield(2) between polls (under a monitor every one is a system call stop; that
 * is realistic). Both sides fold the messages into a checksum; the producer leaves its own in
 * the header before it exits. Prints
 *   ring n=N producer=C consumer=C
 * Exit 0 when both checksums agree and every message arrived in order; 1 otherwise; 100 on a
 * setup failure. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define RING (64 * 1024)
#define SLOT 64
#define SLOTS (RING / SLOT - 1)

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

static inline uint64_t word(uint64_t i, int k) {
    return (i + 1) * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)k << 56 | (uint64_t)k * 0x1234567);
}

static inline uint64_t fold(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ULL; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    long n = argc > 1 ? atol(argv[1]) : 10000;
    char defpath[64];
    const char *path = argc > 2 ? argv[2] : NULL;
    if (!path) {
        snprintf(defpath, sizeof defpath, "/dev/shm/vigil-ring-%d", getpid());
        path = defpath;
    }
    if (n < 0) return 2;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die(path);
    if (ftruncate(fd, RING) < 0) die("ftruncate");
    volatile char *m = mmap(NULL, RING, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) die("mmap");
    close(fd);
    volatile uint64_t *head = (volatile uint64_t *)m, *tail = head + 1, *psum = head + 2;

    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (uint64_t i = 0; i < (uint64_t)n; i++) {
            while (i - load64(tail) >= SLOTS) sched_yield();
            volatile char *slot = m + SLOT * (1 + i % SLOTS);
            for (int k = 0; k < 8; k++) {
                uint64_t v = k ? word(i, k) : i;
                store64(slot + 8 * k, v);
                h = fold(h, v);
            }
            __atomic_thread_fence(__ATOMIC_RELEASE);
            store64(head, i + 1);
        }
        store64(psum, h);
        _exit(0);
    }
    uint64_t h = 0xcbf29ce484222325ULL;
    long disorder = 0;
    for (uint64_t i = 0; i < (uint64_t)n; i++) {
        while (load64(head) == i) sched_yield();
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        volatile char *slot = m + SLOT * (1 + i % SLOTS);
        for (int k = 0; k < 8; k++) {
            uint64_t v = load64(slot + 8 * k);
            if (k == 0 && v != i) disorder++;
            h = fold(h, v);
        }
        __atomic_thread_fence(__ATOMIC_RELEASE);
        store64(tail, i + 1);
    }
    int st;
    if (waitpid(c, &st, 0) < 0) die("waitpid");
    uint64_t p = load64(psum);
    if (argc <= 2) unlink(path);
    printf("ring n=%ld producer=%016llx consumer=%016llx\n", n, (unsigned long long)p,
           (unsigned long long)h);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && p == h && !disorder ? 0 : 1;
}
