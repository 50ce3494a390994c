/* Multi-variant test (issue 12): a program that kills its own child and waits for it.
 * Forks a child that sends its getpid() and getppid() to the parent through a pipe and then
 * pause()s. The parent compares them with fork's return value and its own getpid() (pids must
 * agree however they are virtualised), checks kill(child, 0) and kill(getpid(), 0), kills the
 * child with SIGTERM, waits for it, prints how it died (WTERMSIG) and checks that
 * kill(child, 0) then fails with ESRCH. Deterministic output (no pid values), exit 0.
 * usage: mvee_killchild */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *yes(int c) { return c ? "yes" : "NO"; }

int main(void) {
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return 1; }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 1; }
    if (child == 0) {
        char msg[64];
        close(p[0]);
        int n = snprintf(msg, sizeof msg, "%d %d\n", (int)getpid(), (int)getppid());
        if (write(p[1], msg, n) != n) _exit(98);
        close(p[1]);
        for (;;) pause();
    }
    close(p[1]);
    char buf[64];
    ssize_t n, got = 0;
    while (got < (ssize_t)sizeof buf - 1 && (n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += n;
    buf[got] = 0;
    close(p[0]);
    int cpid = 0, cppid = 0;
    if (sscanf(buf, "%d %d", &cpid, &cppid) != 2) { fprintf(stderr, "bad message: %s\n", buf); return 1; }
    printf("child's getpid is fork's return: %s\n", yes(cpid == child));
    printf("child's getppid is parent's getpid: %s\n", yes(cppid == getpid()));
    printf("kill(child, 0) succeeds: %s\n", yes(kill(child, 0) == 0));
    printf("kill(getpid(), 0) succeeds: %s\n", yes(kill(getpid(), 0) == 0));
    if (kill(child, SIGTERM) != 0) { perror("kill"); return 1; }
    int status = 0;
    if (waitpid(child, &status, 0) != child) { perror("waitpid"); return 1; }
    if (WIFSIGNALED(status))
        printf("child killed by signal %d (%s)\n", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        printf("child NOT killed by a signal: status %#x\n", status);
    errno = 0;
    int r = kill(child, 0);
    printf("kill(child, 0) after wait fails with ESRCH: %s\n", yes(r == -1 && errno == ESRCH));
    return 0;
}
