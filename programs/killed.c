/* Writes a line to stdout, then is killed by the signal named by its argument (default TERM)
 * sent to itself.  usage: killed [SIGNUM] */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int sig = argc > 1 ? atoi(argv[1]) : SIGTERM;
    if (write(1, "about to die\n", 13) < 0) return 1;
    kill(getpid(), sig);
    pause();
    return 0;
}
