/* A syscall storm that counts its own calls: N closes of fd -1 (EBADF, no side effect),
 * then prints N. With a RATE (calls per second), the calls are paced evenly (busy-waiting on
 * the monotonic clock), for the sustained-rate benchmark. The eBPF tests and benchmark check
 * lost + delivered events against the count. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	double rate = argc > 2 ? atof(argv[2]) : 0;
	long done = 0;
	double start = now();
	for (long i = 0; i < n; i++) {
		if (rate > 0)
			while (now() - start < i / rate)
				;
		syscall(SYS_close, -1);
		done++;
	}
	printf("%ld\n", done);
	return 0;
}
