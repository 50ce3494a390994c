/* smo_coherence: a reader that keeps a read grant while another process writes.
 *
 * usage: smo_coherence
 *   Maps one page MAP_SHARED|MAP_ANONYMOUS and forks. The child sleeps 200 ms, stores 1 to
 *   the page and exits. The parent, right after the fork, loads the page and spins loading it
 *   (no system call) until it reads 1, then waits for the child and prints "saw 1".
 *   Under `vigil record --smo page --smo-slice 60s` (no slice ends during the spin) the
 *   parent's first load is a read fault that leaves it a read grant; only the coherence
 *   protocol (the child's write takes the grant away) makes its next load a new event after
 *   the write. Exit 0; 100 on a setup failure. */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    volatile int *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 100;
    pid_t c = fork();
    if (c < 0) return 100;
    if (c == 0) {
        usleep(200000);
        m[0] = 1;
        _exit(0);
    }
    while (m[0] != 1) {
    }
    waitpid(c, NULL, 0);
    printf("saw 1\n");
    return 0;
}
