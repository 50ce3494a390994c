/* smo_slice: a syscall that ends a slice while handing the kernel one of the pages the slice
 * had granted. The other pages' grants must end with the slice like any.
 *
 * usage: smo_slice
 *   Maps 4 pages MAP_SHARED|MAP_ANONYMOUS, loads one word of each (under vigil: 4 read faults,
 *   4 grants in one slice), then write(2)s one byte of page 1 to a pipe (a syscall stop: the
 *   slice ends; the kernel reads page 1), then loads pages 0, 2 and 3 again: under vigil each is
 *   a new read fault after the write. Prints "sum=0". Exit 0; 100 on a setup failure. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    volatile char *m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int p[2];
    if (m == MAP_FAILED || pipe(p) != 0) return 100;
    long sum = 0;
    for (int i = 0; i < 4; i++) sum += m[4096 * i];
    if (write(p[1], (const char *)m + 4096, 1) != 1) return 100;
    sum += m[0] + m[2 * 4096] + m[3 * 4096];
    printf("sum=%ld\n", sum);
    return 0;
}
