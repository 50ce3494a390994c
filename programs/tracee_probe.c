/* A tracee for crates/tracee's tests. Each mode makes one getppid(2) call whose unused
 * argument registers carry an address for the test (the test's seccomp filter stops it there),
 * then does something the test checks from the outside. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char rodata_msg[32] = "original";
static volatile unsigned long spin_counter;

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char buf[96];
    int n = snprintf(buf, sizeof buf, "sig=%d code=%d value=%d pid=%d\n", sig, si->si_code,
                     si->si_value.sival_int, (int)si->si_pid);
    write(1, buf, n);
}

static long sync_point(void *a, void *b) {
    return syscall(SYS_getppid, a, b, 3);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "sync";
    if (!strcmp(mode, "sync")) {
        long ppid = syscall(SYS_getppid, 1, 2, 3);
        printf("ppid=%ld\n", ppid);
        return 0;
    }
    if (!strcmp(mode, "segv")) {
        int *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) return 2;
        sync_point(page, 0);
        *(volatile int *)page = 42; /* faults until the tracer lifts the protection */
        printf("value=%d\n", *(volatile int *)page);
        return 0;
    }
    if (!strcmp(mode, "segvread")) {
        int *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) return 2;
        sync_point(page, 0);
        int v = *(volatile int *)page; /* a load: faults until the tracer lifts the protection */
        printf("value=%d\n", v);
        return 0;
    }
    if (!strcmp(mode, "rodata")) {
        sync_point((void *)rodata_msg, 0);
        /* The compiler must not assume the constant: read it through a volatile pointer. */
        const volatile char *p = rodata_msg;
        char out[32];
        for (int i = 0; i < 32; i++) out[i] = p[i];
        out[31] = 0;
        printf("%s\n", out);
        return 0;
    }
    if (!strcmp(mode, "protnone")) {
        char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 2;
        munmap(p + 2 * 4096, 4096);
        memset(p, 0xa5, 2 * 4096);
        strcpy(p + 4096, "secret");
        mprotect(p, 4096, PROT_NONE);
        sync_point(p, 0);
        return 0;
    }
    if (!strcmp(mode, "step")) {
        unsigned int eax = 0;
        __asm__ volatile("int3\n\tnop\n\tmovl $0x12345, %%eax\n\t" : "=a"(eax) : "a"(0) : "memory");
        printf("eax=%#x\n", eax);
        return 0;
    }
    if (!strcmp(mode, "usr1")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_usr1;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &sa, NULL);
        sync_point(0, 0);
        int r = pause();
        printf("pause=%d %s\n", r, r < 0 && errno == EINTR ? "EINTR" : "?");
        return 0;
    }
    if (!strcmp(mode, "spin")) {
        sync_point((void *)&spin_counter, 0);
        for (;;) spin_counter++;
    }
    if (!strcmp(mode, "forktree")) {
        for (int i = 0; i < 3; i++) {
            pid_t c = fork();
            if (c < 0) return 2;
            if (c == 0) {
                for (int j = 0; j < 2; j++) {
                    pid_t g = fork();
                    if (g == 0) {
                        for (int k = 0; k < 50; k++) syscall(SYS_getpid);
                        usleep(1000 * (1 + i + j));
                        _exit(0);
                    }
                }
                while (wait(NULL) > 0) {}
                _exit(0);
            }
        }
        while (wait(NULL) > 0) {}
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
