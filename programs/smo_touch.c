/* smo_touch: the price of one monitored fault, with nothing else going on.
 *
 * usage: smo_touch N
 *   Maps N pages MAP_SHARED|MAP_ANONYMOUS and stores one byte to each, once, in order, with no
 *   system call in between: under `vigil record --smo page` each store is one fault (a write
 *   grant) and one smo_write event, and nothing else happens. Prints "touched N". Exit 0;
 *   100 on a setup failure. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    if (n <= 0) return 100;
    volatile char *m = mmap(NULL, 4096 * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 100;
    for (long i = 0; i < n; i++) m[4096 * i] = 1;
    printf("touched %ld\n", n);
    return 0;
}
