/* Multi-variant test (issue 12): a program that forks workers and waits for them.
 * Forks 3 workers at once; each waits for its turn on its own pipe (so the output order is
 * fixed), writes a line through stdout, checks that getppid() is the parent's getpid(), and
 * exits with code 10+i. The parent releases worker i, waits for it (wait4 with rusage for the
 * first, waitpid for the others) and prints its status; finally wait() must fail with ECHILD.
 * Deterministic output, exit 0.  usage: mvee_fork_workers */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 3

int main(void) {
    pid_t parent = getpid();
    pid_t pids[WORKERS];
    int go[WORKERS][2];
    printf("parent: forking %d workers\n", WORKERS);
    fflush(stdout); /* nothing buffered is copied into the workers */
    for (int i = 0; i < WORKERS; i++) {
        if (pipe(go[i]) != 0) { perror("pipe"); return 1; }
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 1; }
        if (p == 0) {
            char c;
            close(go[i][1]);
            if (read(go[i][0], &c, 1) != 1) _exit(99);
            printf("worker %d: parent %s, exiting with %d\n", i,
                   getppid() == parent ? "ok" : "WRONG", 10 + i);
            fflush(stdout);
            _exit(10 + i);
        }
        close(go[i][0]);
        pids[i] = p;
    }
    for (int i = 0; i < WORKERS; i++) {
        int status = 0;
        pid_t got;
        if (write(go[i][1], "g", 1) != 1) { perror("write"); return 1; }
        close(go[i][1]);
        if (i == 0) {
            struct rusage ru;
            got = wait4(pids[i], &status, 0, &ru);
        } else {
            got = waitpid(pids[i], &status, 0);
        }
        if (got != pids[i]) { perror("wait"); return 1; }
        if (WIFEXITED(status))
            printf("parent: worker %d exited with %d (%s)\n", i, WEXITSTATUS(status),
                   i == 0 ? "wait4" : "waitpid");
        else
            printf("parent: worker %d ended abnormally, status %#x\n", i, status);
    }
    errno = 0;
    if (wait(NULL) == -1 && errno == ECHILD)
        printf("parent: no child left\n");
    else
        printf("parent: UNEXPECTED child left\n");
    return 0;
}
