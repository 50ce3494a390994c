/* compute: a pure compute loop for the multi-variant benchmark (CPU-bound, almost no system
 * calls): a monitor that stops the program only at system calls should cost it nothing.
 *
 * usage: compute [MILLIONS]
 *   Runs MILLIONS (default 400) million rounds of a dependent integer mix (a xorshift step and a
 *   multiply: about 1 s on this machine at the default), then prints the final value so the
 *   work cannot be optimised away. Exit 0; 100 on a bad argument. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long millions = argc > 1 ? atol(argv[1]) : 400;
    if (millions <= 0) return 100;
    uint64_t x = 0x9e3779b97f4a7c15ull, acc = 0;
    for (long m = 0; m < millions; m++) {
        for (int i = 0; i < 1000000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            acc = acc * 6364136223846793005ull + x;
        }
    }
    printf("%llu\n", (unsigned long long)acc);
    return 0;
}
