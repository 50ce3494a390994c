/* Multi-variant test (issue 12): an information leak, which a multi-variant monitor must catch.
 * Prints an address that address-space layout randomisation makes different in every process:
 *   stack  the address of a local variable
 *   func   the address of libc's puts as the dynamic linker resolves it (dlsym): libc is mapped
 *          at a random base. (`&puts` would not do: in this -no-pie executable it is the fixed
 *          address of a PLT entry.)
 *   heap   the address malloc returns (the heap start is randomised)
 * Output: `MODE: 0x...`, exit 0. Under `vigil mvee` the variants' writes differ: a divergence.
 * usage: mvee_leak stack|func|heap */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    volatile int local = 0;
    void *p;
    if (strcmp(mode, "stack") == 0) {
        p = (void *)&local;
    } else if (strcmp(mode, "func") == 0) {
        p = dlsym(RTLD_DEFAULT, "puts");
        if (!p) { fprintf(stderr, "dlsym: %s\n", dlerror()); return 1; }
    } else if (strcmp(mode, "heap") == 0) {
        p = malloc(64);
        if (!p) return 1;
    } else {
        fprintf(stderr, "usage: mvee_leak stack|func|heap\n");
        return 2;
    }
    printf("%s: %p\n", mode, p);
    return 0;
}
