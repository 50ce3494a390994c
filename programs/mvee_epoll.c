/* Multi-variant test (issue 12): epoll over a pipe and a socket pair with pointers in the
 * events' data (as libuv and others store them). The epoll fds and the registrations are each
 * variant's own; epoll_wait runs in the leader, and each variant must get its own pointers
 * back. Prints what each event's pointer leads to; deterministic, exit 0. usage: mvee_epoll */
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct watch { const char *name; int fd; };

int main(void) {
    int p[2], s[2];
    if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, s)) { perror("setup"); return 1; }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct watch a = {"pipe", p[0]}, b = {"socket", s[1]};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &a};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev)) { perror("ctl"); return 1; }
    ev.data.ptr = &b;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s[1], &ev)) { perror("ctl"); return 1; }
    if (write(p[1], "x", 1) != 1 || write(s[0], "yy", 2) != 2) { perror("write"); return 1; }
    int seen = 0;
    while (seen < 2) {
        struct epoll_event out[4];
        int n = epoll_wait(ep, out, 4, 1000);
        if (n <= 0) { perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            struct watch *w = out[i].data.ptr;
            char buf[8];
            ssize_t got = read(w->fd, buf, sizeof buf);
            printf("%s readable: %zd bytes\n", w->name, got);
            epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
            seen++;
        }
    }
    return 0;
}
