/* Reuses fd numbers behind a monitor's back: reads FILE_A through fd 3, closes it, makes a pipe
 * that gets fd 3, reads the pipe through fd 3; then opens FILE_B and dup2()s it onto the pipe's
 * write end's number and reads that.  usage: fdreuse FILE_A FILE_B */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    char buf[64];
    int a = open(argv[1], O_RDONLY);
    if (a != 3) { fprintf(stderr, "expected fd 3, got %d\n", a); return 1; }
    if (read(a, buf, sizeof buf) < 0) return 1;
    close(a);
    int p[2];
    if (pipe(p) != 0 || p[0] != 3) { fprintf(stderr, "expected the pipe at fd 3\n"); return 1; }
    if (write(p[1], "hi", 2) != 2) return 1;
    if (read(3, buf, sizeof buf) != 2) return 1;
    int b = open(argv[2], O_RDONLY);
    if (b < 0 || dup2(b, p[1]) != p[1]) return 1;
    if (read(p[1], buf, sizeof buf) < 0) return 1;
    return 0;
}
