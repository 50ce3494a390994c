/* fatal_fault MODE [FILE]: dies of the fault MODE names, after printing on standard output
 * "addr 0x..." (the address it is about to touch), so a test can check what vigil says
 * about the fault:
 *   null    store through a NULL pointer (plus a small offset)
 *   rodata  store into a page mapped PROT_READ
 *   nx      call into a page mapped PROT_READ|PROT_WRITE (not executable)
 *   guard   store into a PROT_NONE guard page below a buffer
 *   bus     load from the second page of a shared mapping of FILE, which is one page long
 *   stack   unbounded recursion: the stack overflows
 *   reraise as null, with a crash handler that resets SIGSEGV and raises it again
 * Exits 2 on a bad MODE, 1 when a call fails, 0 if the fault did not happen. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define P 4096L

static void say(const void *addr) {
    printf("addr %p\n", addr);
    fflush(stdout);
}

static char *map(long len, int prot, int flags, int fd) {
    char *p = mmap(NULL, (size_t)len, prot, flags, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

static void handler(int sig) {
    static const char msg[] = "caught, raising again\n";
    write(2, msg, sizeof msg - 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static volatile int stop;

static int recurse(int depth) {
    volatile char frame[512];
    if (stop)
        return 0;
    frame[0] = (char)depth;
    return recurse(depth + 1) + frame[0];
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *mode = argv[1];
    if (strcmp(mode, "reraise") == 0) {
        signal(SIGSEGV, handler);
        mode = "null";
    }
    if (strcmp(mode, "null") == 0) {
        volatile int *p = (volatile int *)(unsigned long)(argc * 8);
        say((const void *)p);
        *p = 1;
    } else if (strcmp(mode, "rodata") == 0) {
        volatile char *p = map(P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1);
        say((const void *)(p + 16));
        p[16] = 1;
    } else if (strcmp(mode, "nx") == 0) {
        char *p = map(P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
        p[0] = (char)0xc3; /* ret */
        say(p);
        ((void (*)(void))p)();
    } else if (strcmp(mode, "guard") == 0) {
        volatile char *p = map(4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
        if (mprotect((void *)p, P, PROT_NONE) != 0) {
            perror("mprotect");
            return 1;
        }
        p[P] = 1; /* the buffer is fine */
        say((const void *)(p + P - 8));
        p[P - 8] = 1; /* just below it: the guard */
    } else if (strcmp(mode, "bus") == 0 && argc == 3) {
        int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || ftruncate(fd, P) != 0) {
            perror(argv[2]);
            return 1;
        }
        volatile char *p = map(2 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
        say((const void *)(p + P + 4));
        return p[P + 4];
    } else if (strcmp(mode, "stack") == 0) {
        say(&mode);
        return recurse(0);
    } else {
        return 2;
    }
    return 0;
}
