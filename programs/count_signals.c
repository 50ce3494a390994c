/* Counts the SIGTERMs and SIGINTs it receives in 1.5 s, then prints "TERM INT". A signal sent to
 * its process group must arrive once, with or without a monitor in that group. */
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t term, intr;
static void on_term(int s) { (void)s; term++; }
static void on_int(int s) { (void)s; intr++; }

int main(void) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_int);
    printf("ready\n");
    fflush(stdout);
    struct timespec t = {1, 500000000};
    while (nanosleep(&t, &t) != 0) {}
    printf("%d %d\n", (int)term, (int)intr);
    return 0;
}
