/* Works in a directory whose path is longer than PATH_MAX: creates a chain of 30 directories of
 * 200 characters under argv[1] (entering each with a relative chdir), then creates "deep.txt"
 * there with a relative path. The kernel cannot name the cwd (getcwd fails with ENAMETOOLONG). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) {
        perror("chdir");
        return 2;
    }
    char name[201];
    memset(name, 'd', 200);
    name[200] = 0;
    for (int i = 0; i < 30; i++) {
        mkdir(name, 0700);
        if (chdir(name) != 0) {
            perror("chdir");
            return 1;
        }
    }
    int fd = open("deep.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    write(fd, "x", 1);
    close(fd);
    printf("ok\n");
    return 0;
}
