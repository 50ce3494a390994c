/* Multi-variant test (issue 12): a program whose stdout is duplicated and redirected.
 * dup(1), dup2(1, 5), fcntl(1, F_DUPFD_CLOEXEC, 10) and dup3(1, 7, O_CLOEXEC); writes a line
 * through each duplicate, closes the original 1 and writes through a duplicate again (still
 * stdout). Then opens FILE for writing (moved to fd 20 by F_DUPFD), dup2's it onto 1 and
 * printf's into it (a redirection: those lines go to FILE, not to stdout), restores stdout from
 * the saved duplicate and prints the pid/ppid consistency checks. Output (stdout and FILE) is
 * deterministic apart from the `pid=`/`ppid=` values; exit 0.  usage: mvee_dup_stdout FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int say(int fd, const char *s) {
    size_t n = strlen(s);
    return write(fd, s, n) == (ssize_t)n ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: mvee_dup_stdout FILE\n"); return 2; }
    int a = dup(1);
    int b = dup2(1, 5);
    int c = fcntl(1, F_DUPFD_CLOEXEC, 10);
    int d = dup3(1, 7, O_CLOEXEC);
    if (a < 0 || b != 5 || c < 10 || d != 7) { perror("dup"); return 1; }
    char line[128];
    snprintf(line, sizeof line, "dup: fd %d\n", a);
    if (say(a, line)) return 1;
    if (say(b, "dup2: fd 5\n")) return 1;
    snprintf(line, sizeof line, "F_DUPFD_CLOEXEC: fd %d, cloexec %d\n", c,
             (fcntl(c, F_GETFD) & FD_CLOEXEC) != 0);
    if (say(c, line)) return 1;
    if (say(d, "dup3: fd 7\n")) return 1;
    if (close(1) != 0) { perror("close"); return 1; }
    if (say(a, "after close(1): still stdout\n")) return 1;
    if (write(1, "x", 1) != -1) { say(a, "write to closed fd 1 succeeded\n"); return 1; }

    /* fd 1 is free now, so open would take it: move the file to fd 20 first, so that the
     * redirection really is a dup2 onto 1. */
    int o = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0) { perror(argv[1]); return 1; }
    int f = fcntl(o, F_DUPFD, 20);
    if (f < 20) { perror("F_DUPFD"); return 1; }
    close(o);
    if (dup2(f, 1) != 1) { perror("dup2"); return 1; }
    close(f);
    pid_t pid = getpid(), ppid = getppid();
    printf("redirected: line 1\n");
    printf("redirected: pid=%d ppid=%d\n", (int)pid, (int)ppid);
    fflush(stdout);
    if (dup2(a, 1) != 1) { perror("dup2 back"); return 1; }
    close(a); close(b); close(c); close(d);
    printf("restored: pid=%d ppid=%d\n", (int)getpid(), (int)getppid());
    printf("pid stable: %s\n", getpid() == pid ? "yes" : "NO");
    printf("ppid stable: %s\n", getppid() == ppid ? "yes" : "NO");
    return 0;
}
