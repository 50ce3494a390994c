/* Hides a command in a long argv: execs argv[1] with 5000 empty arguments followed by argv[2]
 * ("big": instead 4096 arguments of 4096 bytes, which the kernel refuses with E2BIG; then the
 * program exits 0 after the failed call). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: argv_flood PROGRAM LAST | argv_flood PROGRAM big\n");
        return 2;
    }
    if (strcmp(argv[2], "big") == 0) {
        int n = 4096;
        char **v = calloc(n + 2, sizeof *v);
        v[0] = argv[1];
        for (int i = 1; i <= n; i++) {
            v[i] = malloc(4096);
            memset(v[i], 'A' + i % 26, 4095);
            v[i][4095] = 0;
        }
        execve(argv[1], v, environ);
        printf("execve: %s\n", strerror(errno));
        return errno == E2BIG ? 0 : 1;
    }
    int n = 5000;
    char **v = calloc(n + 3, sizeof *v);
    v[0] = argv[1];
    for (int i = 1; i <= n; i++) v[i] = "";
    v[n + 1] = argv[2];
    execve(argv[1], v, environ);
    perror("execve");
    return 1;
}
