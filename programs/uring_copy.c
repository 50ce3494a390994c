/* Copies a file to another through io_uring alone (raw syscalls, no liburing): IORING_OP_OPENAT
 * of both files, IORING_OP_READ, IORING_OP_WRITE, IORING_OP_CLOSE. No open/read/write system
 * call touches either file, so a monitor that sees only system calls sees nothing but
 * io_uring_enter. Usage: uring_copy SRC DST [sqpoll] */
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int ring_fd;
static unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static unsigned *sq_flags;

/* The next free SQE (published by submit_wait, once filled in). */
static struct io_uring_sqe *next_sqe(void) {
    unsigned idx = *sq_tail & *sq_mask;
    struct io_uring_sqe *s = &sqes[idx];
    memset(s, 0, sizeof *s);
    sq_array[idx] = idx;
    return s;
}

/* Publishes the SQE, submits it and waits for its completion; returns its result. */
static int submit_wait(unsigned long long want) {
    __atomic_store_n(sq_tail, *sq_tail + 1, __ATOMIC_RELEASE);
    for (;;) {
        unsigned flags = IORING_ENTER_GETEVENTS;
        if (__atomic_load_n(sq_flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP)
            flags |= IORING_ENTER_SQ_WAKEUP;
        if (syscall(SYS_io_uring_enter, ring_fd, 1, 1, flags, NULL, 0) < 0) {
            perror("io_uring_enter");
            exit(1);
        }
        unsigned head = *cq_head;
        if (head != __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) {
            struct io_uring_cqe *c = &cqes[head & *cq_mask];
            int res = c->res;
            unsigned long long ud = c->user_data;
            __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
            if (ud != want) {
                fprintf(stderr, "unexpected completion %llu\n", ud);
                exit(1);
            }
            return res;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: uring_copy SRC DST [sqpoll]\n");
        return 2;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    if (argc > 3) p.flags = IORING_SETUP_SQPOLL;
    ring_fd = syscall(SYS_io_uring_setup, 8, &p);
    if (ring_fd < 0) {
        perror("io_uring_setup");
        return 1;
    }
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    size_t len = sq_len > cq_len ? sq_len : cq_len;
    char *sq = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd,
                    IORING_OFF_SQ_RING);
    sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || sqes == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    sq_head = (unsigned *)(sq + p.sq_off.head);
    sq_tail = (unsigned *)(sq + p.sq_off.tail);
    sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    sq_array = (unsigned *)(sq + p.sq_off.array);
    sq_flags = (unsigned *)(sq + p.sq_off.flags);
    cq_head = (unsigned *)(sq + p.cq_off.head);
    cq_tail = (unsigned *)(sq + p.cq_off.tail);
    cq_mask = (unsigned *)(sq + p.cq_off.ring_mask);
    cqes = (struct io_uring_cqe *)(sq + p.cq_off.cqes);

    struct io_uring_sqe *s = next_sqe();
    s->opcode = IORING_OP_OPENAT;
    s->fd = AT_FDCWD;
    s->addr = (unsigned long)argv[1];
    s->open_flags = O_RDONLY;
    s->user_data = 1;
    int in = submit_wait(1);
    if (in < 0) {
        fprintf(stderr, "openat %s: %s\n", argv[1], strerror(-in));
        return 1;
    }
    static char buf[65536];
    s = next_sqe();
    s->opcode = IORING_OP_READ;
    s->fd = in;
    s->addr = (unsigned long)buf;
    s->len = sizeof buf;
    s->user_data = 2;
    int n = submit_wait(2);
    s = next_sqe();
    s->opcode = IORING_OP_OPENAT;
    s->fd = AT_FDCWD;
    s->addr = (unsigned long)argv[2];
    s->open_flags = O_WRONLY | O_CREAT | O_TRUNC;
    s->len = 0644;
    s->user_data = 3;
    int out = submit_wait(3);
    if (out < 0 || n < 0) {
        fprintf(stderr, "open %s / read: %d %d\n", argv[2], out, n);
        return 1;
    }
    s = next_sqe();
    s->opcode = IORING_OP_WRITE;
    s->fd = out;
    s->addr = (unsigned long)buf;
    s->len = n;
    s->user_data = 4;
    int w = submit_wait(4);
    s = next_sqe();
    s->opcode = IORING_OP_CLOSE;
    s->fd = in;
    s->user_data = 5;
    submit_wait(5);
    s = next_sqe();
    s->opcode = IORING_OP_CLOSE;
    s->fd = out;
    s->user_data = 6;
    submit_wait(6);
    printf("copied %d bytes\n", w);
    return 0;
}
