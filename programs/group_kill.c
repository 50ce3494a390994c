/* kill(0, SIGKILL) from inside a traced tree: the group holds a sleeping child, this process and
 * its monitor. Natively it kills all three; the monitor must survive it (and keep its log) while
 * the others die as they would have. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    pid_t c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    printf("child %d\n", c);
    fflush(stdout);
    usleep(50000);
    kill(0, SIGKILL);
    pause();
    return 0;
}
