/* Multi-variant test (issue 12): a CPU-bound program with a 1 ms interval timer and a SIGALRM
 * handler that makes system calls (the semi-synchronous signal delivery test).
 * setitimer(ITIMER_REAL, 1 ms) with an SA_RESTART handler that counts its runs and calls
 * getppid, clock_gettime(CLOCK_MONOTONIC) and write(1 byte) to a non-blocking pipe. The main
 * loop does SCALE * 5000 chunks of integer arithmetic (~0.1 ms each, ~0.5 s in all); in mode
 * `syscalls` (the default) each chunk ends with a cheap getppid (a point where a signal can be
 * delivered in lockstep), in mode `pure` the loop makes no system call at all. The amount of
 * work is fixed (never time-based), so the checksum is the same in every run and mode. At the
 * end the timer is stopped, the pipe drained, and it prints:
 *   handler runs: N          (varies from run to run; > 0)
 *   pipe: ok                 (the bytes read back are the handler's successful writes)
 *   checksum: HEX            (deterministic)
 * usage: mvee_timer [syscalls|pure] [SCALE] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t runs, written;
static int pipe_w;

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    struct timespec ts;
    runs++;
    (void)getppid();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (write(pipe_w, "a", 1) == 1) written++;
    errno = saved;
}

/* ~0.1 ms of arithmetic on this kind of machine; its result depends only on the input. */
static uint64_t chunk(uint64_t x) {
    for (int i = 0; i < 32000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x += (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    }
    return x;
}

int main(int argc, char **argv) {
    int pure = argc > 1 && strcmp(argv[1], "pure") == 0;
    if (argc > 1 && !pure && strcmp(argv[1], "syscalls") != 0) {
        fprintf(stderr, "usage: mvee_timer [syscalls|pure] [SCALE]\n");
        return 2;
    }
    long scale = argc > 2 ? atol(argv[2]) : 1;
    if (scale < 1) scale = 1;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) { perror("pipe2"); return 1; }
    pipe_w = p[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0) { perror("sigaction"); return 1; }
    struct itimerval it = {{0, 1000}, {0, 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) { perror("setitimer"); return 1; }

    uint64_t x = 0x0123456789abcdefULL, sum = 0;
    long chunks = 5000 * scale;
    for (long c = 0; c < chunks; c++) {
        x = chunk(x);
        sum += x;
        if (!pure) (void)getppid();
    }

    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, NULL);
    long drained = 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n <= 0) break;
        drained += n;
    }
    printf("handler runs: %d\n", (int)runs);
    printf("pipe: %s\n", drained == (long)written ? "ok" : "MISMATCH");
    printf("checksum: %016llx\n", (unsigned long long)sum);
    return 0;
}
