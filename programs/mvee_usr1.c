/* Multi-variant test (issue 12): a handled SIGUSR1 that an outside process sends to one
 * variant only (the leader: the program prints its pid, which is the leader's). It makes a
 * cheap call every millisecond for up to 5 s, so the variants meet often; the others never get
 * the signal: when the leader holds it, they wait for it in the monitor's loop until
 * --signal-wait ends it, a `signal` divergence. Natively it prints "handled" and exits 0.
 * usage: mvee_usr1 */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_usr1(int s) { (void)s; got = 1; }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    struct timespec t = {0, 1000 * 1000};
    for (int i = 0; i < 5000 && !got; i++) {
        nanosleep(&t, 0);
        getppid();
    }
    printf("%s\n", got ? "handled" : "no signal");
    return 0;
}
