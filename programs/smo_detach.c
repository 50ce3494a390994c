/* smo_detach: a process left running with a shared mapping when vigil stops waiting for it.
 * vigil must give the mapping its own protection back before it detaches, or the process
 * dies of the first access after (a SIGSEGV nobody handles).
 *
 * usage: smo_detach daemon
 *   Maps one page MAP_SHARED|MAP_ANONYMOUS and loops forever: a store to the page, then a
 *   write(2) to fd -1 (a call vigil traps: each one ends the monitoring slice, so the next
 *   store faults again while vigil traces it; after the detach the call fails with ENOSYS or
 *   EBADF, which the loop ignores).
 *
 * usage: smo_detach reap VIGIL LOG
 *   Becomes a child subreaper, runs `VIGIL record -q -o LOG -- sh -c 'smo_detach daemon &'`,
 *   sends vigil SIGTERM after 1 s (the command has exited: vigil stops waiting for the daemon
 *   and detaches), waits for vigil, waits 1 s more, and prints "daemon alive" if the daemon
 *   (reparented to it) still runs, or "daemon died: signal N" / "daemon exited N"; then
 *   kills it. Exit 0 when it could tell, 100 on a setup failure. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int daemon_loop(void) {
    volatile char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 100;
    for (;;) {
        m[0]++;
        (void)!write(-1, "", 0);
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "daemon")) return daemon_loop();
    if (argc < 4 || strcmp(argv[1], "reap")) {
        fprintf(stderr, "usage: smo_detach daemon | smo_detach reap VIGIL LOG\n");
        return 100;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return 100;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' daemon & echo started", argv[0]);
    pid_t v = fork();
    if (v == 0) {
        execl(argv[2], argv[2], "record", "-q", "-o", argv[3], "--", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    sleep(1);
    kill(v, SIGTERM);
    int st;
    if (waitpid(v, &st, 0) != v) return 100;
    sleep(1);
    /* The daemon is this process's child now (subreaper): the one child left. */
    int status;
    pid_t d = waitpid(-1, &status, WNOHANG);
    if (d > 0) {
        if (WIFSIGNALED(status)) printf("daemon died: signal %d\n", WTERMSIG(status));
        else printf("daemon exited %d\n", WEXITSTATUS(status));
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", getpid(), getpid());
    FILE *f = fopen(path, "r");
    int c = 0;
    if (!f || fscanf(f, "%d", &c) != 1) return 100;
    printf("daemon alive\n");
    kill(c, SIGKILL);
    waitpid(c, &status, 0);
    return 0;
}
