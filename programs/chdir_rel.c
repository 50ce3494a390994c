/* chdir into DIR, then open relative paths: "a.txt" (create), "sub/../b.txt" (create),
 * then fchdir back to the starting directory through an fd and open "DIR/a.txt" relatively.
 * usage: chdir_rel DIR  (DIR must be relative to the cwd and contain a directory "sub") */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int start = open(".", O_RDONLY | O_DIRECTORY);
    if (start < 0 || chdir(argv[1]) != 0) { perror("chdir"); return 1; }
    int a = open("a.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int b = open("sub/../b.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (a < 0 || b < 0) { perror("open"); return 1; }
    close(a); close(b);
    if (fchdir(start) != 0) { perror("fchdir"); return 1; }
    char rel[4096];
    snprintf(rel, sizeof rel, "%s/a.txt", argv[1]);
    int again = open(rel, O_RDONLY);
    if (again < 0) { perror("open again"); return 1; }
    close(again);
    return 0;
}
