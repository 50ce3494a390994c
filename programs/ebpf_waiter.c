/* A process that is already running when a system-wide recording starts
 * (crates/cli/tests/system.rs): it opens OUT for writing, says "ready" on its standard output,
 * and waits until a byte can be read from FIFO (opening a FIFO for reading blocks until a
 * writer comes). Then it writes to the fd it opened before, and forks a child that opens and
 * reads CHILD_FILE. Exits 0 when all of it worked.
 * usage: ebpf_waiter OUT FIFO CHILD_FILE */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		perror(argv[1]);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	int ff = open(argv[2], O_RDONLY);
	char c;
	if (ff < 0 || read(ff, &c, 1) != 1) {
		perror(argv[2]);
		return 1;
	}
	if (write(out, "written after the recording started\n", 36) != 36) {
		perror("write");
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		char buf[64];
		int fd = open(argv[3], O_RDONLY);
		_exit(fd >= 0 && read(fd, buf, sizeof buf) >= 0 ? 0 : 1);
	}
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 1;
	return 0;
}
