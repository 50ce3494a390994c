/* Multi-variant test (issue 12): an fd passed over a socket (SCM_RIGHTS). The parent opens a
 * file for appending and sends the fd to its child, which writes through it and reports the
 * fd number it got. The others variants' children get placeholders on the same numbers; the
 * file is written once. usage: mvee_scm FILE */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) { perror("socketpair"); return 1; }
    pid_t c = fork();
    if (c == 0) {
        close(sv[0]);
        char byte;
        char ctl[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {&byte, 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        if (recvmsg(sv[1], &msg, 0) != 1) { perror("recvmsg"); _exit(1); }
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        int fd;
        memcpy(&fd, CMSG_DATA(cm), sizeof fd);
        dprintf(fd, "written by the child through fd %d\n", fd);
        printf("child got fd %d\n", fd);
        _exit(0);
    }
    close(sv[1]);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0) { perror("open"); return 1; }
    char byte = 'x';
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    if (sendmsg(sv[0], &msg, 0) != 1) { perror("sendmsg"); return 1; }
    int st;
    waitpid(c, &st, 0);
    printf("child exited with %d\n", WEXITSTATUS(st));
    return 0;
}
