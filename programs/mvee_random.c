/* Multi-variant test (issue 12): a program that reads randomness and prints it.
 * 16 bytes of /dev/urandom (read), 16 bytes of getrandom(2) and the 16 AT_RANDOM bytes the
 * kernel put on the stack at exec (getauxval(AT_RANDOM)), each printed as one line
 * `NAME: 32 hex digits`. Under a multi-variant monitor every variant must see the same bytes
 * (one output, no divergence).  usage: mvee_random */
#include <fcntl.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <unistd.h>

static void hex(const char *name, const unsigned char *b) {
    printf("%s: ", name);
    for (int i = 0; i < 16; i++) printf("%02x", b[i]);
    printf("\n");
}

int main(void) {
    unsigned char u[16], g[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, u, sizeof u) != (ssize_t)sizeof u) { perror("/dev/urandom"); return 1; }
    close(fd);
    if (getrandom(g, sizeof g, 0) != (ssize_t)sizeof g) { perror("getrandom"); return 1; }
    const unsigned char *at = (const unsigned char *)getauxval(AT_RANDOM);
    if (!at) { fprintf(stderr, "no AT_RANDOM\n"); return 1; }
    hex("urandom", u);
    hex("getrandom", g);
    hex("at_random", at);
    return 0;
}
