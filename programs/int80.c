/* A 64-bit program making a 32-bit (i386) system call through `int $0x80`: open("/etc/hostname")
 * as i386 syscall 5, then close it (i386 syscall 6). Monitors that filter only x86_64 numbers
 * miss this.  The path must be in the low 4 GiB, so it is a static string in a non-PIE binary. */
#include <stdio.h>

static char path[] = "/etc/hostname";

int main(void) {
    long fd;
    __asm__ volatile("int $0x80" : "=a"(fd) : "a"(5L), "b"(path), "c"(0L), "d"(0L) : "memory");
    if (fd < 0) { fprintf(stderr, "i386 open failed: %ld\n", fd); return 1; }
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(6L), "b"(fd) : "memory");
    printf("i386 open returned %ld\n", fd);
    return 0;
}
