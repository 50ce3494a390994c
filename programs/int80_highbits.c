/* An i386 system call (int $0x80) from a 64-bit process whose pointer register has high bits
 * set: the kernel uses only the low 32 bits (the path argv[1], a static buffer below 4 GiB in
 * this non-PIE binary), while the full 64-bit value points at another string (argv[2]) mapped
 * above 4 GiB. A monitor that reads the full register records the wrong file. Prints the fd. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static char low[256];

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: int80_highbits REAL DECOY\n");
        return 2;
    }
    strncpy(low, argv[1], sizeof low - 1);
    uint64_t lo = (uint64_t)(uintptr_t)low;
    uint64_t full = (0x100ULL << 32) | lo;
    void *page = mmap((void *)(full & ~0xfffULL), 0x2000, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    strcpy((char *)(uintptr_t)full, argv[2]);
    long fd;
    __asm__ volatile("int $0x80" : "=a"(fd) : "a"(5L), "b"(full), "c"(0L), "d"(0L) : "memory");
    printf("%ld\n", fd);
    return fd < 0;
}
