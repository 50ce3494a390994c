/* bench_timer: signal delivery under a 1 ms timer on a CPU-bound program, for the
 * multi-variant benchmark (`vigil mvee --stats` measures each signal's delay).
 *
 * usage: bench_timer [CHUNKS [ITERS]]
 *   Arms setitimer(ITIMER_REAL) every 1 ms with a SIGALRM handler that makes a system call
 *   (getppid) and counts; then does CHUNKS (default 10000) chunks of ITERS (default 40000:
 *   about 100 µs here) rounds of integer arithmetic, each chunk followed by a cheap system call
 *   (getppid): about 1 s in all. The run's length is fixed by the work, not the clock, so every
 *   variant does the same calls. Prints "signals N result R" (N: handler runs). Exit 0; 100 on a
 *   bad argument or a setup failure. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_alarm(int s) {
    (void)s;
    syscall(SYS_getppid);
    handled++;
}

int main(int argc, char **argv) {
    long chunks = argc > 1 ? atol(argv[1]) : 10000;
    long iters = argc > 2 ? atol(argv[2]) : 40000;
    if (chunks <= 0 || iters <= 0) return 100;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGALRM, &sa, NULL) != 0) return 100;
    struct itimerval it = {{0, 1000}, {0, 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) return 100;
    uint64_t x = 0x9e3779b97f4a7c15ull, acc = 0;
    for (long c = 0; c < chunks; c++) {
        for (long i = 0; i < iters; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            acc = acc * 6364136223846793005ull + x;
        }
        syscall(SYS_getppid);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("signals %d result %llu\n", (int)handled, (unsigned long long)acc);
    return 0;
}
