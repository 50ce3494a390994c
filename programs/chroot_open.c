/* Opens files from inside a chroot: chroot(argv[1]), then opens "/secret" and "/abslink" (an
 * absolute symlink that, inside the chroot, points at /secret). A monitor that resolves paths
 * against its own root records files that are not the ones opened. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2 || chroot(argv[1]) != 0 || chdir("/") != 0) {
        perror("chroot");
        return 1;
    }
    int a = open("/secret", O_RDONLY);
    int b = open("/abslink", O_RDONLY);
    int c = open("secret", O_RDONLY);
    printf("%d %d %d\n", a, b, c);
    return a < 0 || b < 0 || c < 0;
}
