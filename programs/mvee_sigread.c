/* Multi-variant test (issue 12): a signal interrupts a read only the leader makes (a pipe:
 * the others wait for its result at their entry stops). The parent blocks reading a pipe; its
 * child sends it SIGUSR1 (handled, SA_RESTART), then writes a byte. The read goes on after
 * the handler; the parent prints what it read and how many signals it handled. Deterministic
 * output, exit 0. usage: mvee_sigread */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static void on_usr1(int s) { (void)s; handled++; }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, 0);
    int p[2];
    if (pipe(p)) { perror("pipe"); return 1; }
    pid_t c = fork();
    if (c == 0) {
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, 0);
        kill(getppid(), SIGUSR1);
        nanosleep(&t, 0);
        if (write(p[1], "x", 1) != 1) _exit(1);
        _exit(0);
    }
    char b = 0;
    ssize_t n = read(p[0], &b, 1);
    int st;
    waitpid(c, &st, 0);
    printf("read %zd byte '%c', child %d\n", n, b, WEXITSTATUS(st));
    /* The signal may still be held for the next common point: a call to get there. */
    getppid();
    printf("handled %d\n", (int)handled);
    return 0;
}
