/* Multi-variant test (issue 12): a program that prints times (vDSO calls and rdtsc).
 * ROUNDS times (default 5): clock_gettime(CLOCK_REALTIME) and (CLOCK_MONOTONIC), gettimeofday,
 * time(NULL), rdtsc, rdtscp (and its TSC_AUX) and sched_getcpu, one line per round:
 *   round I: realtime=S.NNNNNNNNN monotonic=S.NNNNNNNNN gettimeofday=S.UUUUUU time=S
 *            rdtsc=N rdtscp=N aux=N cpu=N          (all on one line)
 * then `monotonic: ok|BACKWARDS` and `tsc: ok|BACKWARDS` (each round's value is >= the last).
 * A multi-variant monitor must replicate the leader's values (one output, no divergence).
 * usage: mvee_time [ROUNDS] */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static uint64_t rdtscp(uint32_t *aux) {
    uint32_t lo, hi, c;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(c));
    *aux = c;
    return ((uint64_t)hi << 32) | lo;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    struct timespec last_mono = {0, 0};
    uint64_t last_tsc = 0;
    int mono_ok = 1, tsc_ok = 1;
    for (int r = 0; r < rounds; r++) {
        struct timespec rt, mono;
        struct timeval tv;
        uint32_t aux;
        clock_gettime(CLOCK_REALTIME, &rt);
        clock_gettime(CLOCK_MONOTONIC, &mono);
        gettimeofday(&tv, NULL);
        time_t t = time(NULL);
        uint64_t a = rdtsc();
        uint64_t b = rdtscp(&aux);
        int cpu = sched_getcpu();
        printf("round %d: realtime=%lld.%09ld monotonic=%lld.%09ld gettimeofday=%lld.%06ld "
               "time=%lld rdtsc=%llu rdtscp=%llu aux=%u cpu=%d\n",
               r, (long long)rt.tv_sec, rt.tv_nsec, (long long)mono.tv_sec, mono.tv_nsec,
               (long long)tv.tv_sec, (long)tv.tv_usec, (long long)t, (unsigned long long)a,
               (unsigned long long)b, aux, cpu);
        if (mono.tv_sec < last_mono.tv_sec ||
            (mono.tv_sec == last_mono.tv_sec && mono.tv_nsec < last_mono.tv_nsec))
            mono_ok = 0;
        if (a < last_tsc || b < a) tsc_ok = 0;
        last_mono = mono;
        last_tsc = b;
    }
    printf("monotonic: %s\n", mono_ok ? "ok" : "BACKWARDS");
    printf("tsc: %s\n", tsc_ok ? "ok" : "BACKWARDS");
    return 0;
}
