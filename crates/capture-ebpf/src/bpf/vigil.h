/* What the kernel side (vigil.bpf.c) and the user side (src/record.rs) agree on: the records
 * in the ring buffer and the maps' values. Every field is little-endian and the layouts are
 * fixed; src/record.rs reads them by these offsets and a test there checks the sizes against
 * the object's BTF. Change both together. */
#ifndef VIGIL_H
#define VIGIL_H

#define REC_ENTER 1     /* a selected syscall's entry */
#define REC_EXIT 2      /* its exit */
#define REC_FORK 3      /* a new task (process or thread) */
#define REC_EXEC 4      /* a successful exec */
#define REC_TASK_EXIT 5 /* a task ended */
#define REC_SIGNAL 6    /* a signal about to be delivered */
#define REC_ENFORCED 7  /* the kernel side denied a call or killed a process */
#define REC_KPATH 8     /* the kernel's path of a file an in-flight call opened / exec runs */
#define REC_KADDR 9     /* the kernel's copy of an in-flight connect/bind's address */

/* Header flags. */
#define F_STR_CUT 1   /* a string did not fit what the kernel side copies */
#define F_KPATH 2     /* the exit carries the kernel's path of the file the call opened */
#define F_KADDR 4     /* the exit carries the kernel's copy of the socket address */
#define F_THREAD 8    /* REC_FORK: a thread, not a process */
#define F_GROUP_DEAD 16 /* REC_TASK_EXIT: the last thread of its process */
#define F_COMPAT 32   /* an i386 call (int 0x80 or a 32-bit process) */
#define F_EXE_NAMED 64 /* REC_EXEC: the file run is the one the exec named (no interpreter) */

/* Filter modes (config.filters bits): a task is recorded when any given filter matches it,
 * or always when none is given. */
#define FILTER_PID 1
#define FILTER_COMM 2
#define FILTER_CGROUP 4

/* Argument kinds for the kernel side (argspec.kind[i]). */
#define AK_NONE 0
#define AK_STR 1      /* a C string (a path or a name) */
#define AK_SOCKADDR 2 /* a struct sockaddr whose length is argument lenarg[i] */
#define AK_FD 3       /* an fd: what it refers to is read from the task's file table */
#define AK_U64 5      /* a pointer to a struct whose first 8 bytes are read (clone3, openat2) */

#define STR_MAX 4096 /* PATH_MAX: the kernel refuses longer paths itself */
#define ADDR_MAX 128 /* sizeof(struct sockaddr_storage) */
#define ARGV_MAX 4096
#define NSLOTS 3     /* strings per call */
#define NFDS 2       /* fd arguments per call whose target is read */
#define NR_MAX 512   /* syscall numbers in the selection map */

#define ENF_DENY 1
#define ENF_KILL 2

/* Deny/kill keys (maps enforce_file, enforce_exec, enforce_net). */
struct file_key {
	__u64 dev; /* the kernel's dev_t: major << 20 | minor */
	__u64 ino;
};

struct net_key {
	__u16 family;
	__u16 port; /* network order; 0 = any port */
	__u8 addr[16]; /* all zero = any address */
};

struct enforce {
	__u32 what;  /* ENF_DENY or ENF_KILL */
	__u32 rule;  /* the rule's index, for the record */
	__s32 err;   /* the errno a deny returns */
	__u32 armed_only; /* kill only processes user space armed for this rule */
};

struct config {
	__u32 self_tgid;   /* vigil itself: never recorded */
	__u32 filters;     /* FILTER_* */
	__u32 follow;      /* children of a matching process are recorded too */
	__u32 all;         /* every syscall, not only the selected ones */
	__u32 wake_bytes;  /* wake the reader when this much is waiting in the ring */
	__u32 arm_files;   /* the arm_files map is not empty */
	__u32 kill_connect; /* a kill rule acts at connects' entries */
};

struct argspec {
	__u8 kind[6];   /* AK_* of each argument */
	__u8 lenarg[6]; /* AK_SOCKADDR: the argument holding its length */
	__u8 ret_fd;    /* the result is a new fd: what it refers to is read at exit */
	__u8 out;       /* OUT_*: an output read at exit */
	__u8 out_arg;   /* the argument that points to it */
	__u8 out_len;   /* OUT_SOCKADDR: the argument pointing to its length */
};

#define OUT_NONE 0
#define OUT_PAIR 1     /* int[2] (pipe, pipe2, socketpair) */
#define OUT_SOCKADDR 2 /* a struct sockaddr and a socklen_t * (accept, recvfrom) */
#define OUT_STR 3      /* a buffer of the result's length (readlink) */

struct fdinfo {
	__u64 ino;
	__u32 dev;
	__u32 mode; /* i_mode: the kind of file */
};

struct rec_hdr {
	__u16 kind;
	__u16 flags;
	__u32 cpu;
	__u64 time; /* CLOCK_BOOTTIME, ns */
	__u32 pid;
	__u32 tid;
	__u64 lost; /* reservations that failed on this CPU since its last record */
};

struct slot_hdr {
	__u16 arg;  /* the argument's index; 0xff: the exit's kernel path/address */
	__u16 len;  /* bytes that follow (no NUL) */
	__u16 cut;  /* 1: the string went on past what was copied */
	__u16 kind; /* AK_STR, AK_SOCKADDR */
};

struct rec_enter {
	struct rec_hdr h;
	__u32 nr;
	__u32 nslots;
	__u64 args[6];
	struct fdinfo fds[NFDS]; /* for the first NFDS fd arguments, in order */
	/* then nslots × (struct slot_hdr, bytes padded to 8) */
};

struct rec_exit {
	struct rec_hdr h;
	__u32 nr;
	__u32 nslots;
	__s64 ret;
	__s32 pair[2];        /* pipe/socketpair's two fds */
	struct fdinfo newfd;  /* what a returned fd (or pair[0]) refers to */
	struct fdinfo newfd2; /* what pair[1] refers to */
	/* then nslots × (struct slot_hdr, bytes): the kernel's path of an open, its address */
};

struct rec_fork {
	struct rec_hdr h; /* pid/tid: the parent */
	__u32 child_pid;
	__u32 child_tid;
	__u64 clone_flags; /* clone's or clone3's flags; 0 when the call was fork/vfork */
	__u32 call_nr;     /* the parent's call in flight (fork, vfork, clone, clone3) */
	__u32 pad;
	__u32 uid, euid, gid, egid;
};

struct rec_exec {
	struct rec_hdr h;
	__u32 old_tid;
	__u32 argv_len;   /* bytes of argv in the new image (all of it) */
	__u64 dev;
	__u64 ino;
	__u32 uid, euid, gid, egid;
	__u16 exe_len;
	__u16 exe_cut;
	__u16 argv_copied;
	__u16 pad;
	/* then exe_len bytes of the exe path padded to 8, then argv_copied bytes of argv */
};

struct rec_task_exit {
	struct rec_hdr h;
	__s32 exit_code; /* as wait(2) encodes it */
	__u32 pad;
};

struct rec_signal {
	struct rec_hdr h;
	__s32 sig;
	__s32 code;
	__u32 sender_pid;
	__u32 sender_uid;
};

struct rec_enforced {
	struct rec_hdr h;
	__u32 what;  /* ENF_DENY, ENF_KILL */
	__u32 rule;
	__s32 err;
	__u32 hook;  /* 1 file_open, 2 exec, 3 connect, 4 syscall entry */
	__u64 dev, ino;
};

/* The kernel's own view of what an in-flight call acts on (REC_KPATH, REC_KADDR). */
struct rec_kinfo {
	struct rec_hdr h;
	__u64 dev;
	__u64 ino;
	__u32 mode;
	__u32 hook; /* 1 file_open, 2 exec, 3 connect, 4 bind, 5 a socket's own address */
	struct slot_hdr s;
	/* then s.len bytes */
};

#endif
