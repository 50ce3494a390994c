/* A small workload that touches every kind of object vigil decodes, made to be recorded by both
 * capture backends and compared event for event (crates/cli/tests/system.rs): a file created,
 * written, read back, renamed and unlinked; a pipe between the process and a forked child; a
 * fork + execve of /bin/true; a socketpair; a loopback TCP connection (listen, connect, accept,
 * a write and a read); a dup2. Every call is checked: it exits 1 naming the first that failed.
 * It writes nothing to its standard output (an fd vigil did not see opened).
 * usage: ebpf_workload DIR */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void check(int ok, const char *what)
{
	if (!ok) {
		perror(what);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	char data[4096], moved[4096], buf[64];
	snprintf(data, sizeof data, "%s/data", argv[1]);
	snprintf(moved, sizeof moved, "%s/moved", argv[1]);

	/* A file: created and written, read back through another fd. */
	int fd = open(data, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	check(fd >= 0, "open for writing");
	check(write(fd, "payload\n", 8) == 8, "write");
	check(close(fd) == 0, "close");
	fd = open(data, O_RDONLY);
	check(fd >= 0, "open for reading");
	check(read(fd, buf, sizeof buf) == 8, "read");
	/* dup2 onto a fixed number, then that copy closed. */
	check(dup2(fd, 10) == 10, "dup2");
	check(close(10) == 0, "close dup");
	check(close(fd) == 0, "close");

	/* A pipe to a forked child, which reads what the parent writes. */
	int p[2];
	check(pipe2(p, 0) == 0, "pipe2");
	pid_t child = fork();
	check(child >= 0, "fork");
	if (child == 0) {
		close(p[1]);
		ssize_t n = read(p[0], buf, sizeof buf);
		_exit(n == 5 ? 0 : 3);
	}
	check(close(p[0]) == 0, "close");
	check(write(p[1], "hello", 5) == 5, "write pipe");
	check(close(p[1]) == 0, "close");
	int status;
	check(wait4(child, &status, 0, NULL) == child && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "wait pipe child");

	/* fork + execve of /bin/true. */
	child = fork();
	check(child >= 0, "fork");
	if (child == 0) {
		char *args[] = { "true", "an argument", NULL };
		char *env[] = { "VIGIL_WORKLOAD=1", NULL };
		execve("/bin/true", args, env);
		_exit(127);
	}
	check(wait4(child, &status, 0, NULL) == child && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "wait exec child");

	/* A socketpair. */
	int sv[2];
	check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	check(write(sv[0], "ping", 4) == 4, "write socketpair");
	check(read(sv[1], buf, sizeof buf) == 4, "read socketpair");
	check(close(sv[0]) == 0 && close(sv[1]) == 0, "close socketpair");

	/* Loopback TCP: listen, connect, accept, a write and a read. */
	int srv = socket(AF_INET, SOCK_STREAM, 0);
	check(srv >= 0, "socket");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	check(bind(srv, (struct sockaddr *)&a, sizeof a) == 0, "bind");
	check(listen(srv, 1) == 0, "listen");
	socklen_t len = sizeof a;
	check(getsockname(srv, (struct sockaddr *)&a, &len) == 0, "getsockname");
	int cli = socket(AF_INET, SOCK_STREAM, 0);
	check(cli >= 0, "socket");
	check(connect(cli, (struct sockaddr *)&a, sizeof a) == 0, "connect");
	struct sockaddr_in peer;
	len = sizeof peer;
	int conn = accept4(srv, (struct sockaddr *)&peer, &len, 0);
	check(conn >= 0, "accept4");
	check(write(cli, "over tcp", 8) == 8, "write tcp");
	check(read(conn, buf, sizeof buf) == 8, "read tcp");
	check(close(conn) == 0 && close(cli) == 0 && close(srv) == 0, "close tcp");

	/* The file renamed, then removed. */
	check(rename(data, moved) == 0, "rename");
	check(unlink(moved) == 0, "unlink");
	return 0;
}
