/* Everything a traced program might try to blind its monitor, which is its parent and shares its
 * process group: kill(getppid(), SIGKILL/SIGSTOP/SIGTERM), tgkill of every thread of the parent,
 * ptrace(PTRACE_ATTACH) and pidfd_send_signal on it, kill(0, SIGTERM) to the group, and writing
 * over, truncating, renaming and unlinking the log argv[1] (also through /proc/PPID/fd). Each
 * attempt's result is printed as "name=errno". Then it exits 0, alive. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, long r) { printf("%s=%d\n", what, r < 0 ? errno : 0); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: blind_vigil LOG\n");
        return 2;
    }
    signal(SIGTERM, SIG_IGN);
    pid_t parent = getppid();
    report("kill_kill", kill(parent, SIGKILL));
    report("kill_stop", kill(parent, SIGSTOP));
    report("kill_term", kill(parent, SIGTERM));
    report("kill_probe", kill(parent, 0));
    char path[256];
    snprintf(path, sizeof path, "/proc/%d/task", parent);
    DIR *d = opendir(path);
    int refused = 0, tasks = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        tasks++;
        if (syscall(SYS_tgkill, parent, atoi(e->d_name), SIGKILL) < 0 && errno == EPERM) refused++;
    }
    if (d) closedir(d);
    printf("tgkill_refused=%d/%d\n", refused, tasks);
    report("ptrace_attach", ptrace(PTRACE_ATTACH, parent, 0, 0));
    int pfd = syscall(SYS_pidfd_open, parent, 0);
    report("pidfd_send_signal", syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0));
    report("group_term", kill(0, SIGTERM));
    report("open_log_write", open(argv[1], O_WRONLY));
    report("open_log_trunc", open(argv[1], O_RDONLY | O_TRUNC));
    report("truncate_log", truncate(argv[1], 0));
    char moved[4096];
    snprintf(moved, sizeof moved, "%s.moved", argv[1]);
    report("rename_log", rename(argv[1], moved));
    report("unlink_log", unlink(argv[1]));
    /* the log through vigil's own fd table */
    snprintf(path, sizeof path, "/proc/%d/fd", parent);
    d = opendir(path);
    int proc_refused = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char fdp[512], target[4096];
        snprintf(fdp, sizeof fdp, "%s/%s", path, e->d_name);
        ssize_t n = readlink(fdp, target, sizeof target - 1);
        if (n < 0) continue;
        target[n] = 0;
        if (strstr(target, argv[1]) && open(fdp, O_WRONLY | O_TRUNC) < 0 && errno == EPERM)
            proc_refused++;
    }
    if (d) closedir(d);
    printf("proc_fd_refused=%d\n", proc_refused);
    return 0;
}
