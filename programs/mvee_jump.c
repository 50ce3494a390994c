/* Multi-variant test (issue 12): a control-flow hijack driven by input, which a multi-variant
 * monitor must catch. Prints `pid N` (getpid) and `ready`, then reads a hexadecimal address
 * from stdin, prints `calling`, and calls that address as `void (*)(void)`; if the call
 * returns it prints `returned` and exits 0. An address computed from one process's layout
 * (e.g. libc's base in /proc/N/maps plus the offset of getpid) is valid in that process only:
 * in another variant, laid out differently, the same call crashes.
 * usage: echo ADDR | mvee_jump */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    printf("pid %d\n", (int)getpid());
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) { fprintf(stderr, "no address on stdin\n"); return 1; }
    char *end;
    uintptr_t addr = (uintptr_t)strtoull(line, &end, 16);
    if (end == line || addr == 0) { fprintf(stderr, "not an address: %s", line); return 1; }
    printf("calling\n");
    fflush(stdout);
    void (*fn)(void) = (void (*)(void))addr;
    fn();
    printf("returned\n");
    return 0;
}
