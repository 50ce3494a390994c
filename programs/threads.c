/* Multi-threaded: each of N threads creates and writes its own file in DIR, then all join.
 * usage: threads DIR [N=4] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>

static const char *dir;

static void *work(void *arg) {
    char path[4096];
    snprintf(path, sizeof path, "%s/thread%ld.txt", dir, (long)arg);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { perror("open"); return (void *)1; }
    char line[64];
    int n = snprintf(line, sizeof line, "hello from thread %ld\n", (long)arg);
    if (write(fd, line, n) != n) return (void *)1;
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 4;
    pthread_t t[64];
    for (long i = 0; i < n && i < 64; i++) pthread_create(&t[i], NULL, work, (void *)i);
    int failed = 0;
    for (long i = 0; i < n && i < 64; i++) { void *r; pthread_join(t[i], &r); failed |= r != NULL; }
    return failed;
}
