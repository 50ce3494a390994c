/* Multi-variant test (issue 12): a small TCP echo server and client on 127.0.0.1.
 * The parent binds a listening socket to 127.0.0.1 port 0, learns the port with getsockname
 * and forks a client that connects, sends three lines one at a time, reads each echo back and
 * prints it, then shuts down its write side and waits for the server to close. The parent
 * accepts, echoes everything it reads until end of file, closes, waits for the client and
 * prints the byte count and the client's exit status. Deterministic output (the port is not
 * printed), exit 0.  usage: mvee_echo */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *lines[] = {"hello\n", "multi-variant execution\n", "bye\n"};

static int client(struct sockaddr_in addr) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) { perror("client socket"); return 1; }
    if (connect(c, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("connect"); return 1; }
    for (unsigned i = 0; i < sizeof lines / sizeof *lines; i++) {
        size_t len = strlen(lines[i]);
        if (write(c, lines[i], len) != (ssize_t)len) { perror("client write"); return 1; }
        char buf[128];
        size_t got = 0;
        while (got < len) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0) { perror("client read"); return 1; }
            got += n;
        }
        buf[got] = 0;
        printf("client: echo %s", buf);
        fflush(stdout);
    }
    if (shutdown(c, SHUT_WR) != 0) { perror("shutdown"); return 1; }
    char b;
    ssize_t n = read(c, &b, 1);
    printf("client: server closed: %s\n", n == 0 ? "yes" : "NO");
    close(c);
    return 0;
}

int main(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) { perror("socket"); return 1; }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("bind"); return 1; }
    if (listen(s, 4) != 0) { perror("listen"); return 1; }
    socklen_t alen = sizeof addr;
    if (getsockname(s, (struct sockaddr *)&addr, &alen) != 0) { perror("getsockname"); return 1; }
    printf("server: listening on 127.0.0.1, port %s\n", ntohs(addr.sin_port) ? "assigned" : "ZERO");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) {
        close(s);
        fflush(stdout);
        _exit(client(addr));
    }
    int a = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (a < 0) { perror("accept"); return 1; }
    long total = 0;
    char buf[256];
    for (;;) {
        ssize_t n = read(a, buf, sizeof buf);
        if (n < 0) { perror("server read"); return 1; }
        if (n == 0) break;
        if (write(a, buf, n) != n) { perror("server write"); return 1; }
        total += n;
    }
    close(a);
    close(s);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) { perror("waitpid"); return 1; }
    printf("server: echoed %ld bytes\n", total);
    printf("server: client exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
