/* Multi-variant test (issue 12): the variants make a different number of innocuous calls
 * (a stat of "/") before a write. Only the leader's real pid equals getpid() (pids are
 * virtual; /proc/self/stat is each variant's own): the others make one stat more. Strict
 * lockstep catches it at the stat, relaxed lockstep (vigil mvee --relaxed) at the write,
 * which waits until every earlier call is compared. usage: mvee_extra [always] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char b[64] = {0};
    int fd = open("/proc/self/stat", O_RDONLY);
    if (fd < 0 || read(fd, b, sizeof b - 1) <= 0) { perror("/proc/self/stat"); return 1; }
    close(fd);
    struct stat st;
    if (atoi(b) != getpid() || (argc > 1 && !strcmp(argv[1], "always")))
        stat("/", &st);
    const char msg[] = "done\n";
    if (write(1, msg, sizeof msg - 1) != (ssize_t)(sizeof msg - 1)) return 1;
    return 0;
}
