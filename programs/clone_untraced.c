/* Tries to create children a tracer never sees: clone(CLONE_UNTRACED) and clone3 with
 * CLONE_UNTRACED in struct clone_args, each child creating a file argv[1]/clone.N; with "race",
 * a thread keeps setting CLONE_UNTRACED again in the clone_args buffer while clone3 is called
 * 200 times. Prints how many children ran. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;
static struct clone_args args;
static volatile int stop;

static void child_work(const char *kind, int i) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%d", dir, kind, i);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) close(fd);
    _exit(0);
}

static void *resetter(void *arg) {
    (void)arg;
    while (!stop) __atomic_or_fetch(&args.flags, CLONE_UNTRACED, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: clone_untraced DIR [race]\n");
        return 2;
    }
    dir = argv[1];
    int ran = 0, st;
    pid_t c = syscall(SYS_clone, CLONE_UNTRACED | SIGCHLD, 0, 0, 0, 0);
    if (c == 0) child_work("clone", 0);
    if (c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st)) ran++;
    int rounds = argc > 2 ? 200 : 1;
    pthread_t t;
    if (argc > 2) pthread_create(&t, NULL, resetter, NULL);
    for (int i = 0; i < rounds; i++) {
        memset(&args, 0, sizeof args);
        args.flags = CLONE_UNTRACED;
        args.exit_signal = SIGCHLD;
        c = syscall(SYS_clone3, &args, sizeof args);
        if (c == 0) child_work("clone3", i);
        if (c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st)) ran++;
    }
    if (argc > 2) {
        stop = 1;
        pthread_join(t, NULL);
    }
    printf("%d\n", ran);
    return 0;
}
