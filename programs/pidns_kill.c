/* A process in its own pid namespace signals another by its namespace pid: unshare(CLONE_NEWPID),
 * then the first child (pid 1 inside) forks a sleeper (pid 2 inside) and sends it SIGTERM as
 * "pid 2". Prints the sleeper's pid as the outside sees it, then waits. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int p[2];
    if (pipe(p) != 0 || unshare(CLONE_NEWPID) != 0) {
        perror("unshare");
        return 1;
    }
    pid_t init = fork();
    if (init == 0) {
        pid_t sleeper = fork();
        if (sleeper == 0) {
            pause();
            _exit(0);
        }
        /* sleeper is 2 in here */
        usleep(100000);
        kill(sleeper, SIGTERM);
        int st;
        waitpid(sleeper, &st, 0);
        _exit(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? 0 : 1);
    }
    int st;
    waitpid(init, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
