/* Reads a file, then connects to 127.0.0.1:PORT and sends it; prints "survived" at the end.
 * A monitor that kills on "read a file, then connect" stops it before the last line.
 * usage: rules_exfil FILE PORT */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    char buf[256];
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0 && n > 0) {
        if (write(s, buf, n) < 0) perror("write");
    }
    printf("survived\n");
    return 0;
}
