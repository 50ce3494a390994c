/* A tracee for capture-ptrace's own-signal tests. It maps a page holding 42, announces the
 * page with a getppid(2) call whose first argument is its address (the test's seccomp filter
 * stops it there), then touches the page and exits with what it read. Mode "touch" touches
 * the page; mode "stray" touches an address nobody protected (a NULL-page read), which kills
 * it with SIGSEGV as it would without a tracer. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "touch";
    int *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return 2;
    *page = 42;
    syscall(SYS_getppid, page, 0, 0);
    volatile int *at = !strcmp(mode, "stray") ? (volatile int *)16 : (volatile int *)page;
    return *at;
}
