/* smo_rw: a file both mapped MAP_SHARED and transferred with read(2)/write(2), so the file
 * offsets of the transfers matter (issue 11: read/write meet the parts they cover).
 *
 * usage: smo_rw FILE
 *   Creates FILE with 3 zero pages, maps it MAP_SHARED read-write, stores "mapped" at file
 *   page 1 through the mapping, then with the fd: lseek to 8192 and write(2) "written" (file
 *   page 2), lseek to 4096 and read(2) 6 bytes (what the store put in page 1), lseek to 8192
 *   and read(2) 7 bytes. Prints "read=mapped,written".
 *   Exit 0 when both reads saw the data, 1 when not, 100 on a setup failure.
 *
 * usage: smo_rw flows FILE OUT1 OUT2
 *   Data crossing between a mapping and read(2)/write(2) in other processes. A driver (which
 *   never maps FILE) creates FILE with 3 zero pages (ftruncate), then forks, one after the
 *   other (each waited for):
 *     d0: maps FILE MAP_SHARED, stores "d0 stored page 0" (64 bytes) at file page 0 (a decoy)
 *     ms: maps FILE MAP_SHARED, stores "ms stored page 1" at file page 1
 *     dw: write(2)s "dw wrote page 0" (64 bytes) at file offset 128 (page 0; a decoy)
 *     ww: write(2)s "ww wrote page 2" at file offset 8192 (page 2)
 *     rr: read(2)s the 64 bytes at file offset 4096 (page 1: ms's store), write(2)s them to OUT1
 *     rl: maps FILE MAP_SHARED read-only, loads the 64 bytes of page 2 (ww's write(2)) and
 *         write(2)s them to OUT2
 *   The writes and reads use lseek + write(2)/read(2) (not pwrite/pread: their offset is the
 *   file position). Each prints "ROLE pid=N" (the readers add read=TEXT). Expected flows at
 *   page granularity: OUT1 depends on ms and not on d0, dw, ww; OUT2 on ww and not on d0, ms,
 *   dw. Each access is between two getppid(2) markers; 64-byte moves through a mapping are
 *   eight 8-byte loads or stores. Output ends with "done". Exit 0; 1 when a reader saw the wrong
 *   data; 100 on a setup failure. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define MSG 64

static void marker(void) { syscall(SYS_getppid); }

/* Eight 8-byte stores (exactly those accesses). */
static void store64(volatile char *dst, const char *text) {
    char msg[MSG] = {0};
    strncpy(msg, text, MSG - 1);
    for (int i = 0; i < MSG; i += 8) {
        unsigned long v;
        memcpy(&v, msg + i, 8);
        __asm__ volatile("movq %1, (%0)" : : "r"(dst + i), "r"(v) : "memory");
    }
}

/* Eight 8-byte loads. */
static void load64(const volatile char *src, char *out) {
    for (int i = 0; i < MSG; i += 8) {
        unsigned long v;
        __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(src + i) : "memory");
        memcpy(out + i, &v, 8);
    }
}

static char *map(const char *file, int prot) {
    int fd = open(file, prot & PROT_WRITE ? O_RDWR : O_RDONLY);
    if (fd < 0) {
        perror(file);
        exit(100);
    }
    char *m = mmap(NULL, 3 * PAGE, prot, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(100);
    }
    close(fd);
    return m;
}

static int store_role(const char *role, const char *file, int page, const char *text) {
    char *m = map(file, PROT_READ | PROT_WRITE);
    marker();
    store64(m + page * PAGE, text);
    marker();
    printf("%s pid=%d\n", role, getpid());
    return 0;
}

static int write_role(const char *role, const char *file, off_t at, const char *text) {
    char msg[MSG] = {0};
    strncpy(msg, text, MSG - 1);
    int fd = open(file, O_WRONLY);
    if (fd < 0 || lseek(fd, at, SEEK_SET) != at) return 100;
    marker();
    int ok = write(fd, msg, MSG) == MSG;
    marker();
    printf("%s pid=%d\n", role, getpid());
    return ok ? 0 : 1;
}

static int out_write(const char *out, const char *data) {
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0) return 100;
    return write(o, data, MSG) == MSG ? 0 : 1;
}

static int rr_role(const char *file, const char *out) {
    char got[MSG + 1] = {0};
    int fd = open(file, O_RDONLY);
    if (fd < 0 || lseek(fd, PAGE, SEEK_SET) != PAGE) return 100;
    marker();
    int ok = read(fd, got, MSG) == MSG;
    marker();
    printf("rr pid=%d read=%s\n", getpid(), got);
    if (!ok || out_write(out, got) != 0) return 1;
    return strcmp(got, "ms stored page 1") != 0;
}

static int rl_role(const char *file, const char *out) {
    char got[MSG + 1] = {0};
    char *m = map(file, PROT_READ);
    marker();
    load64(m + 2 * PAGE, got);
    marker();
    printf("rl pid=%d read=%s\n", getpid(), got);
    if (out_write(out, got) != 0) return 1;
    return strcmp(got, "ww wrote page 2") != 0;
}

static int flows(const char *file, const char *out1, const char *out2) {
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 3 * PAGE) != 0) {
        perror(file);
        return 100;
    }
    close(fd);
    int status = 0;
    for (int role = 0; role < 6; role++) {
        fflush(stdout);
        pid_t c = fork();
        if (c < 0) return 100;
        if (c == 0) {
            int rc = 100;
            switch (role) {
            case 0: rc = store_role("d0", file, 0, "d0 stored page 0"); break;
            case 1: rc = store_role("ms", file, 1, "ms stored page 1"); break;
            case 2: rc = write_role("dw", file, 128, "dw wrote page 0"); break;
            case 3: rc = write_role("ww", file, 2 * PAGE, "ww wrote page 2"); break;
            case 4: rc = rr_role(file, out1); break;
            case 5: rc = rl_role(file, out2); break;
            }
            fflush(stdout);
            _exit(rc);
        }
        int st;
        if (waitpid(c, &st, 0) != c || !WIFEXITED(st)) return 100;
        if (WEXITSTATUS(st) != 0 && status == 0) status = WEXITSTATUS(st);
    }
    printf("done\n");
    return status;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "flows") == 0) return flows(argv[2], argv[3], argv[4]);
    if (argc < 2) {
        fprintf(stderr, "usage: smo_rw FILE | smo_rw flows FILE OUT1 OUT2\n");
        return 100;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 3 * 4096) != 0) {
        perror(argv[1]);
        return 100;
    }
    char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        return 100;
    }
    memcpy(m + 4096, "mapped", 6);
    char a[7] = {0}, b[8] = {0};
    if (lseek(fd, 8192, SEEK_SET) != 8192 || write(fd, "written", 7) != 7) return 1;
    if (lseek(fd, 4096, SEEK_SET) != 4096 || read(fd, a, 6) != 6) return 1;
    if (lseek(fd, 8192, SEEK_SET) != 8192 || read(fd, b, 7) != 7) return 1;
    printf("read=%s,%s\n", a, b);
    return strcmp(a, "mapped") || strcmp(b, "written");
}
