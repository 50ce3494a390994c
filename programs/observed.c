/* What a recording must decode the way the kernel resolves it, in one small process tree:
 * opens through a dirfd and a symlink, relative to a cwd that chdir changed, an fd duplicated
 * onto another number, a pipe, a thread that opens a file, a fork whose child execs this
 * program again through /proc/self/exe (a magic link), a signal caught by a handler, and exit
 * statuses. SIGCHLD is blocked (see main).
 * usage: observed DIR    (DIR holds `in`, a file, and `link`, a symlink to it; DIR/out is
 *                         written: "hello\n" then what the child read from `in`)
 *        observed child  (run by the fork: reads `in` in its cwd, writes it to stdout, exits 3) */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t caught;

static void on_usr1(int s) {
    (void)s;
    caught = 1;
}

static void *opener(void *arg) {
    (void)arg;
    char buf[64];
    int fd = open("/etc/hostname", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, buf, sizeof buf) < 0) perror("read");
        close(fd);
    }
    return NULL;
}

static int child(void) {
    char buf[256];
    int fd = open("in", O_RDONLY);
    if (fd < 0) { perror("open in"); return 1; }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    if (!caught || n <= 0) return 1;
    if (write(1, buf, n) != n) return 1;
    return 3;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (strcmp(argv[1], "child") == 0) return child();
    const char *dir = argv[1];
    char buf[256], out[4096];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) { perror("open dir"); return 1; }
    int in = openat(dfd, "link", O_RDONLY);
    if (in < 0) { perror("openat link"); return 1; }
    if (read(in, buf, sizeof buf) < 0) { perror("read"); return 1; }
    close(in);
    snprintf(out, sizeof out, "%s/out", dir);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0) { perror("open out"); return 1; }
    if (dup2(o, 10) != 10) { perror("dup2"); return 1; }
    close(o);
    if (write(10, "hello\n", 6) != 6) return 1;
    pthread_t t;
    if (pthread_create(&t, NULL, opener, NULL) != 0) return 1;
    pthread_join(t, NULL);
    /* SIGCHLD blocked: when the child ends is a race with the parent's calls, so would be the
     * place of its signal among them. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); return 1; }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        if (chdir(dir) != 0) _exit(126);
        execl("/proc/self/exe", "observed", "child", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n > 0 && write(10, buf, n) != n) return 1;
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) < 0) { perror("waitpid"); return 1; }
    close(10);
    close(dfd);
    return WIFEXITED(st) ? WEXITSTATUS(st) + 4 : 1;
}
