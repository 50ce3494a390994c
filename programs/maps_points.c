/* maps_points OUTDIR DATAFILE: changes its own address space with mmap, mprotect, brk, munmap
 * and mremap, and at three points copies its /proc/self/maps to OUTDIR/maps.N, then writes
 * "MARK N" to standard error: the test finds the N-th write to fd 2 in the log and compares
 * vigil's model at that event with the copy.
 *   point 1: at the start of main (the layout ld.so left);
 *   point 2: after mmaps (private and shared, file and anonymous), mprotects that split
 *            mappings, a MAP_FIXED over the middle of a mapping, and brk;
 *   point 3: after munmaps, an mprotect that joins what one had split, and mremaps (shrink,
 *            grow in place or moved, MREMAP_FIXED).
 * Between a copy and its mark nothing changes the address space (raw syscalls, a static
 * buffer). Exits 0, or 1 with a message on a failed call. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define P 4096L

static char buf[1 << 20];
static const char *outdir;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void point(int n) {
    char path[4096];
    int in = open("/proc/self/maps", O_RDONLY);
    if (in < 0)
        die("open /proc/self/maps");
    size_t len = 0;
    for (;;) {
        ssize_t r = read(in, buf + len, sizeof buf - len);
        if (r < 0)
            die("read maps");
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(in);
    snprintf(path, sizeof path, "%s/maps.%d", outdir, n);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || write(out, buf, len) != (ssize_t)len)
        die("write maps copy");
    close(out);
    char mark[16];
    int m = snprintf(mark, sizeof mark, "MARK %d\n", n);
    if (write(2, mark, (size_t)m) != m)
        die("write mark");
}

static char *map(void *addr, long len, int prot, int flags, int fd, long off) {
    char *p = mmap(addr, (size_t)len, prot, flags, fd, off);
    if (p == MAP_FAILED)
        die("mmap");
    return p;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: maps_points OUTDIR DATAFILE\n");
        return 2;
    }
    outdir = argv[1];
    point(1);

    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 8 * P) != 0)
        die("data file");
    /* Private anonymous, split in three by an mprotect. */
    char *anon = map(NULL, 6 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    anon[0] = 1;
    if (mprotect(anon + 2 * P, P, PROT_READ) != 0)
        die("mprotect anon");
    /* MAP_FIXED over its last two pages: a file page replaces them. */
    map(anon + 4 * P, 2 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 2 * P);
    /* The file shared, its middle page made read-only. */
    char *shared = map(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    shared[0] = 'a';
    if (mprotect(shared + P, P, PROT_READ) != 0)
        die("mprotect shared");
    /* The file private from page 4, written (a page copied on write). */
    char *priv = map(NULL, 3 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4 * P);
    priv[P] = 'b';
    /* Shared anonymous memory; a guard page below a small buffer. */
    char *sanon = map(NULL, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sanon[0] = 1;
    char *guarded = map(NULL, 3 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mprotect(guarded, P, PROT_NONE) != 0)
        die("mprotect guard");
    /* The break moved. */
    if (sbrk(3 * P) == (void *)-1)
        die("sbrk");
    point(2);

    /* A hole in the middle of the anonymous mapping. */
    if (munmap(anon + P, P) != 0)
        die("munmap");
    /* The private file mapping shrunk in place. */
    if (mremap(priv, 3 * P, 2 * P, 0) != priv)
        die("mremap shrink");
    /* The shared mapping whole again (mremap takes one VMA), then grown, moved if need be. */
    if (mprotect(shared + P, P, PROT_READ | PROT_WRITE) != 0)
        die("mprotect shared back");
    char *grown = mremap(shared, 4 * P, 6 * P, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED)
        die("mremap grow");
    /* The guarded buffer moved onto a place reserved for it (MREMAP_FIXED unmaps it first). */
    char *place = map(NULL, 8 * P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mremap(guarded, 3 * P, 3 * P, MREMAP_MAYMOVE | MREMAP_FIXED, place + 2 * P) !=
        place + 2 * P)
        die("mremap fixed");
    /* The break back down a page. */
    if (sbrk(-P) == (void *)-1)
        die("sbrk down");
    point(3);
    return 0;
}
