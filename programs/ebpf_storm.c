/* A syscall storm that counts its own calls: N closes of fd -1 (EBADF, no side effect),
 * then prints N. The eBPF tests and benchmark check lost + delivered events against it. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	long done = 0;
	for (long i = 0; i < n; i++) {
		syscall(SYS_close, -1);
		done++;
	}
	printf("%ld\n", done);
	return 0;
}
