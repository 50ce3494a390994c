/* Reuses fd numbers behind a monitor's back: reads FILE_A through fd N, closes it, makes a pipe
 * whose read end gets N again, reads the pipe through N; then opens FILE_B and dup2()s it onto
 * the pipe's write end's number and reads that.  usage: fdreuse FILE_A FILE_B */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    char buf[64];
    int a = open(argv[1], O_RDONLY);
    if (a < 0 || read(a, buf, sizeof buf) < 0) return 1;
    close(a);
    int p[2];
    if (pipe(p) != 0 || p[0] != a) { fprintf(stderr, "expected the pipe at fd %d\n", a); return 1; }
    if (write(p[1], "hi", 2) != 2) return 1;
    if (read(a, buf, sizeof buf) != 2) return 1;
    int b = open(argv[2], O_RDONLY);
    if (b < 0 || dup2(b, p[1]) != p[1]) return 1;
    if (read(p[1], buf, sizeof buf) < 0) return 1;
    return 0;
}
