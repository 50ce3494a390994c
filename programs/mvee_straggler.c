/* Multi-variant test (issue 12): a variant that misbehaves alone.
 * Compares readlink("/proc/self") (the real pid: each process reads /proc itself) with
 * getpid() (which a multi-variant monitor makes the leader's pid in every variant): natively
 * and in the leader they are equal and the program prints `leader: done` and exits 0. In any
 * other variant it then either spins forever without a system call (`spin`: the straggler
 * the rendezvous timeout must catch) or dereferences NULL (`crash`: a variant crashing alone).
 * With a third argument `always` every process takes the non-leader path (to check the paths
 * natively).  usage: mvee_straggler spin|crash [always] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int spin = strcmp(mode, "spin") == 0;
    if (!spin && strcmp(mode, "crash") != 0) {
        fprintf(stderr, "usage: mvee_straggler spin|crash [always]\n");
        return 2;
    }
    int always = argc > 2 && strcmp(argv[2], "always") == 0;
    char buf[32];
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    if (n <= 0) { perror("readlink /proc/self"); return 1; }
    buf[n] = 0;
    if (atoi(buf) == (int)getpid() && !always) {
        printf("leader: done\n");
        return 0;
    }
    if (spin) {
        volatile unsigned long x = 0;
        for (;;) x++;
    }
    *(volatile int *)0 = 1;
    return 3;
}
