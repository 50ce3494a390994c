// SPDX-License-Identifier: GPL-2.0
/* vigil's kernel side: what every selected process on the machine does, as records in one
 * ring buffer, with the machine-wide deny and kill rules enforced where the kernel decides.
 *
 * Only BTF tracepoints (tp_btf), and LSM hooks: this kernel has no kprobes. What is recorded
 * is chosen here, in the kernel (the selected syscall numbers, the pid/comm/cgroup filters), so
 * a call nobody asked for costs only the tracepoint's test. A record that finds the ring
 * buffer full is counted on its CPU and the count rides on that CPU's next record, so user
 * space can say exactly where events were lost. Paths of files the kernel opened come from
 * the struct file it opened (bpf_d_path at file_open), socket addresses from the kernel's copy
 * (at socket_connect / socket_bind), and an exec's argv from the new image, which the old
 * image's threads cannot touch: a racing thread cannot forge them.
 *
 * The layouts are in vigil.h; user space reads them in src/record.rs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "vigil.h"

char LICENSE[] SEC("license") = "GPL";

#define TS_COMPAT 0x0002
#define X32_BIT 0x40000000
#define SIGKILL 9
#define EPERM 1
#define CGROUP_LEVELS 16

const volatile struct config cfg = {};

/* The selected x86_64 (and x32) syscalls, and the selected i386 ones. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_MAX);
	__type(key, __u32);
	__type(value, __u8);
} sel64 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_MAX);
	__type(key, __u32);
	__type(value, __u8);
} sel32 SEC(".maps");

/* What the kernel side reads for each x86_64 syscall's arguments. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_MAX);
	__type(key, __u32);
	__type(value, struct argspec);
} specs SEC(".maps");

/* Processes followed by pid (--pid and their descendants). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[16]);
	__type(value, __u8);
} comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u8);
} cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* set from --buffer before load */
} events SEC(".maps");

/* Reservations that failed, per CPU, not yet reported on a record (see rec_hdr.lost). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Every reservation that failed, per CPU (never reset: the total at the end). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_total SEC(".maps");

/* A record being built (a record with strings is too big for the BPF stack). */
#define SCRATCH (sizeof(struct rec_enter) + NSLOTS * (sizeof(struct slot_hdr) + STR_MAX + 8))
struct scratch {
	__u8 b[SCRATCH + STR_MAX + 64];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* A call between its entry and its exit. */
struct inflight {
	__u32 nr;
	__u32 active; /* its entry was recorded: record its exit */
	__u64 args[6];
};
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} calls SEC(".maps");

/* Deny and kill rules on connects (filled by user space from the rules that map onto the
 * connect hook; opens and execs are refused through fanotify, see src/fanotify.rs). */


struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct net_key);
	__type(value, struct enforce);
} enforce_net SEC(".maps");

/* Processes whose run of a kill rule is one event from its end: {tgid, rule}. */
struct arm_key {
	__u32 tgid;
	__u32 rule;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct arm_key);
	__type(value, __u8);
} armed SEC(".maps");

/* Files whose open or read arms the process for a kill rule's last step (a rule whose first
 * step is reading this file and whose last is a connect): value = the rule. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct file_key);
	__type(value, __u32);
} arm_files SEC(".maps");

static __always_inline void *scratch_buf(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline bool wanted(__u32 tgid)
{
	if (tgid == cfg.self_tgid)
		return false;
	if (!cfg.filters)
		return true;
	if ((cfg.filters & FILTER_PID) && bpf_map_lookup_elem(&tracked, &tgid))
		return true;
	if (cfg.filters & FILTER_COMM) {
		char comm[16] = {};
		bpf_get_current_comm(comm, sizeof(comm));
		if (bpf_map_lookup_elem(&comms, comm))
			return true;
	}
	if (cfg.filters & FILTER_CGROUP) {
		__u64 own = bpf_get_current_cgroup_id();
		if (bpf_map_lookup_elem(&cgroups, &own))
			return true;
		for (int i = 0; i < CGROUP_LEVELS; i++) {
			__u64 id = bpf_get_current_ancestor_cgroup_id(i);
			if (!id)
				break;
			if (bpf_map_lookup_elem(&cgroups, &id))
				return true;
		}
	}
	return false;
}

static __always_inline void fill_hdr(struct rec_hdr *h, __u16 kind, __u64 pid_tgid)
{
	h->kind = kind;
	h->flags = 0;
	h->cpu = bpf_get_smp_processor_id();
	h->time = bpf_ktime_get_boot_ns();
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	__u32 zero = 0;
	__u64 *l = bpf_map_lookup_elem(&lost, &zero);
	h->lost = l ? *l : 0;
}

/* Hands a built record to the ring buffer; a failure is counted on this CPU. */
static __always_inline void submit(void *rec, __u64 len)
{
	__u32 zero = 0;
	__u64 *l = bpf_map_lookup_elem(&lost, &zero);
	/* Wake the reader only when a good part of the ring is used: a wake-up per record
	 * costs the traced program more than the record itself (the reader also polls). */
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 flags = avail >= cfg.wake_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&events, rec, len, flags) == 0) {
		/* Delivered: what it carried in h.lost is reported. */
		struct rec_hdr *h = rec;
		if (l)
			*l -= h->lost;
		return;
	}
	if (l)
		*l += 1;
	__u64 *t = bpf_map_lookup_elem(&lost_total, &zero);
	if (t)
		*t += 1;
}

/* What a file is (inode, type, device). Direct loads through a BTF cast (the kernel turns a
 * bad pointer into zeros), much cheaper than a helper call per field: this runs for every fd
 * argument of every recorded call. */
static __always_inline void file_info(struct file *f, struct fdinfo *out)
{
	if (!f)
		return;
	struct file *ff = bpf_core_cast(f, struct file);
	struct inode *ino = ff->f_inode;
	if (!ino)
		return;
	out->ino = ino->i_ino;
	out->mode = ino->i_mode;
	out->dev = ino->i_sb->s_dev;
}

static __always_inline void fd_info(struct task_struct *t, __s64 fd, struct fdinfo *out)
{
	if (fd < 0)
		return;
	struct files_struct *files = t->files;
	if (!files)
		return;
	struct fdtable *fdt = files->fdt;
	if (!fdt)
		return;
	unsigned int max = fdt->max_fds;
	if (fd >= max)
		return;
	struct file **arr = fdt->fd;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	file_info(f, out);
}

/* Appends one string slot at *off (a user string or a user buffer of a known length). */
static __always_inline void add_slot(__u8 *buf, __u32 *off, __u16 arg, __u16 kind,
				     const void *uptr, __u32 fixed_len)
{
	__u32 o = *off;
	if (o > SCRATCH - sizeof(struct slot_hdr) - STR_MAX - 8)
		return;
	struct slot_hdr *s = (void *)(buf + o);
	__u8 *dst = buf + o + sizeof(struct slot_hdr);
	long n;
	s->arg = arg;
	s->kind = kind;
	s->cut = 0;
	if (kind == AK_SOCKADDR || kind == AK_U64) {
		__u32 len = fixed_len;
		if (len > ADDR_MAX)
			len = ADDR_MAX;
		barrier_var(len);
		len &= ADDR_MAX * 2 - 1;
		n = bpf_probe_read_user(dst, len, uptr) == 0 ? len : -1;
	} else if (fixed_len) {
		/* A buffer the call filled (readlink): its length is the call's result. */
		__u32 len = fixed_len;
		if (len > STR_MAX - 1) {
			len = STR_MAX - 1;
			s->cut = 1;
		}
		barrier_var(len);
		len &= STR_MAX - 1;
		n = bpf_probe_read_user(dst, len, uptr) == 0 ? len : -1;
	} else {
		n = bpf_probe_read_user_str(dst, STR_MAX, uptr);
		if (n > 0) {
			n -= 1; /* the NUL */
			if (n == STR_MAX - 1) {
				/* Filled to the last byte: is there more? */
				char c = 0;
				if (bpf_probe_read_user(&c, 1, uptr + n) == 0 && c)
					s->cut = 1;
			}
		}
	}
	if (n < 0) {
		/* Unreadable: an empty slot with len 0xffff. */
		s->len = 0xffff;
		*off = o + sizeof(struct slot_hdr);
		return;
	}
	s->len = n;
	*off = o + sizeof(struct slot_hdr) + ((n + 7) & ~7);
}

static __always_inline bool selected(__u64 id, bool compat)
{
	__u32 key = compat ? (__u32)id : (__u32)id & ~X32_BIT;
	if (cfg.all)
		return true;
	if (key >= NR_MAX)
		return false;
	__u8 *on = bpf_map_lookup_elem(compat ? (void *)&sel32 : (void *)&sel64, &key);
	return on && *on;
}

/* The path of a file as the kernel reaches it: its dentries up to its mount's root, then
 * across each mount to the global root, built from the end of a per-CPU buffer. (bpf_d_path
 * needs a trampoline program, which this kernel refuses: see docs/ebpf.md.) */
#define PATH_DEPTH 64
struct pathbuf {
	__u8 b[STR_MAX * 2];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pathbuf);
} pathbufs SEC(".maps");

struct walk {
	struct pathbuf *pb;
	struct dentry *d;
	struct dentry *root; /* the current mount's root dentry */
	struct mount *mnt;
	__u32 off;
	__u16 cut;
};

/* One step of the walk up (bpf_loop's callback: 1 ends it). Two reads per component: the
 * dentry's parent and name together, then the name's bytes. */
static long walk_step(__u64 i, void *ctx)
{
	struct walk *w = ctx;
	struct dentry *d = w->d;
	struct mount *mnt = w->mnt;
	if (d == w->root) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt || !up) {
			w->cut = 0;
			return 1;
		}
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		w->root = BPF_CORE_READ(up, mnt.mnt_root);
		return 0;
	}
	struct {
		struct dentry *parent;
		struct qstr name;
	} dn = {};
	/* d_parent and d_name are neighbours in struct dentry. */
	if (bpf_core_field_offset(struct dentry, d_name) ==
	    bpf_core_field_offset(struct dentry, d_parent) + sizeof(void *)) {
		bpf_probe_read_kernel(&dn, sizeof(dn),
				      (void *)d + bpf_core_field_offset(struct dentry, d_parent));
	} else {
		dn.parent = BPF_CORE_READ(d, d_parent);
		dn.name = BPF_CORE_READ(d, d_name);
	}
	struct dentry *parent = dn.parent;
	if (d == parent || !parent) {
		/* A root that is no mount's (an unlinked tree, a pseudo file system). */
		w->cut = 0;
		return 1;
	}
	__u32 len = dn.name.len;
	const unsigned char *name = dn.name.name;
	if (len > 255)
		len = 255;
	__u32 off = w->off;
	if (off < len + 1 || off >= STR_MAX)
		return 1;
	off -= len;
	barrier_var(off);
	off &= STR_MAX - 1;
	bpf_probe_read_kernel(&w->pb->b[off], len & 255, name);
	off -= 1;
	off &= STR_MAX - 1;
	w->pb->b[off] = '/';
	w->off = off;
	w->d = parent;
	return 0;
}

/* Writes the path of `f` at *out (in the per-CPU buffer); its length, or -1. *cut is set when
 * it went deeper than PATH_DEPTH or longer than STR_MAX. */
static __always_inline long path_of(struct dentry *d, struct vfsmount *vm, __u8 **out,
				    __u16 *cut)
{
	__u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&pathbufs, &zero);
	if (!pb || !d || !vm)
		return -1;
	struct walk w = {};
	w.pb = pb;
	w.d = d;
	w.mnt = container_of(vm, struct mount, mnt);
	w.root = BPF_CORE_READ(vm, mnt_root);
	w.off = STR_MAX - 1;
	w.cut = 1;
	bpf_loop(PATH_DEPTH, walk_step, &w, 0);
	__u32 off = w.off;
	if (off >= STR_MAX)
		return -1;
	if (off == STR_MAX - 1) {
		off -= 1;
		pb->b[off] = '/';
	}
	*cut = w.cut;
	*out = &pb->b[off & (STR_MAX - 1)];
	return (STR_MAX - 1) - off;
}

/* Sends the kernel's path of `file` as a REC_KPATH record (hook 1: an open, 2: an exec), or
 * with no file, of the task's cwd (hook 3). */
static __always_inline void send_kpath(struct file *file, __u64 pid_tgid, __u32 hook)
{
	struct dentry *d;
	struct vfsmount *vm;
	if (file) {
		d = BPF_CORE_READ(file, f_path.dentry);
		vm = BPF_CORE_READ(file, f_path.mnt);
	} else {
		struct task_struct *t = bpf_get_current_task_btf();
		d = BPF_CORE_READ(t, fs, pwd.dentry);
		vm = BPF_CORE_READ(t, fs, pwd.mnt);
	}
	__u8 *buf = scratch_buf();
	if (!buf)
		return;
	struct rec_kinfo *r = (void *)buf;
	fill_hdr(&r->h, REC_KPATH, pid_tgid);
	struct fdinfo fi = {};
	if (file) {
		file_info(file, &fi);
	} else if (d) {
		struct inode *ino = BPF_CORE_READ(d, d_inode);
		fi.ino = BPF_CORE_READ(ino, i_ino);
		fi.mode = BPF_CORE_READ(ino, i_mode);
		fi.dev = BPF_CORE_READ(ino, i_sb, s_dev);
	}
	r->dev = fi.dev;
	r->ino = fi.ino;
	r->mode = fi.mode;
	r->hook = hook;
	r->s.arg = 0xff;
	r->s.kind = AK_STR;
	__u8 *src = 0;
	__u16 cut = 0;
	long n = path_of(d, vm, &src, &cut);
	r->s.cut = cut;
	if (n <= 0 || !src) {
		r->s.len = 0xffff;
		n = 0;
	} else {
		barrier_var(n);
		n &= STR_MAX - 1;
		bpf_probe_read_kernel(buf + sizeof(struct rec_kinfo), n, src);
		r->s.len = n;
	}
	__u64 len = sizeof(struct rec_kinfo) + ((n + 7) & ~7);
	if (len > SCRATCH)
		len = SCRATCH;
	submit(buf, len);
}

static __always_inline struct file *fd_file(struct task_struct *t, __s64 fd)
{
	if (fd < 0)
		return 0;
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt)
		return 0;
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd >= max)
		return 0;
	struct file **arr = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* Threads in a recorded connect or bind (the cgroup hooks below run in their context but
 * cannot see task storage), and threads a kill rule killed at a connect's entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} in_net SEC(".maps");

#define NET_RECORDED 1
#define NET_KILLED 2

/* Adds `flag` to the thread's state for the connect hook. */
static __always_inline void net_mark(__u64 pid_tgid, __u32 flag)
{
	__u32 tid = (__u32)pid_tgid;
	__u32 st = flag;
	__u32 *cur = bpf_map_lookup_elem(&in_net, &tid);
	if (cur)
		st |= *cur;
	bpf_map_update_elem(&in_net, &tid, &st, BPF_ANY);
}

/* A REC_KADDR record: a socket address as a struct sockaddr_in / sockaddr_in6. */
struct rec_kinfo_addr {
	struct rec_kinfo k;
	__u8 addr[32];
};

/* The kernel's copy of a connect's or bind's address, and the deny and kill rules on
 * connects: cgroup/connect4, connect6, bind4, bind6 on the root of the cgroup v2 tree (every
 * process on the machine). They run after the kernel copied the address from the caller and
 * before the connection is made; returning 0 refuses the call with EPERM. */
static __always_inline int sock_hook(struct bpf_sock_addr *ctx, __u16 family, __u32 hook)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__u32 tgid = pid_tgid >> 32;
	if (tgid == cfg.self_tgid)
		return 1;
	struct net_key k = {};
	k.family = family;
	k.port = (__u16)ctx->user_port;
	if (family == 2) {
		__u32 a = ctx->user_ip4;
		__builtin_memcpy(k.addr, &a, 4);
	} else {
		__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2],
		      a3 = ctx->user_ip6[3];
		__builtin_memcpy(k.addr, &a0, 4);
		__builtin_memcpy(k.addr + 4, &a1, 4);
		__builtin_memcpy(k.addr + 8, &a2, 4);
		__builtin_memcpy(k.addr + 12, &a3, 4);
	}
	__u32 *st = bpf_map_lookup_elem(&in_net, &tid);
	__u32 state = st ? *st : 0;
	if (state & NET_RECORDED) {
		struct rec_kinfo_addr r = {};
		fill_hdr(&r.k.h, REC_KADDR, pid_tgid);
		r.k.hook = hook;
		r.k.s.arg = 0xff;
		r.k.s.kind = AK_SOCKADDR;
		/* A struct sockaddr_in / sockaddr_in6 in network order, as the caller gave it. */
		__u16 fam = family;
		__builtin_memcpy(r.addr, &fam, 2);
		__builtin_memcpy(r.addr + 2, &k.port, 2);
		if (family == 2) {
			__builtin_memcpy(r.addr + 4, k.addr, 4);
			r.k.s.len = 16;
		} else {
			__builtin_memcpy(r.addr + 8, k.addr, 16);
			r.k.s.len = 28;
		}
		submit(&r, sizeof(r));
	}
	if (hook != 3)
		return 1;
	if (state & NET_KILLED)
		return 0;
	/* The most precise rule first: address and port, port, family, any connect. */
	struct enforce *e = bpf_map_lookup_elem(&enforce_net, &k);
	if (!e) {
		__builtin_memset(k.addr, 0, sizeof(k.addr));
		e = bpf_map_lookup_elem(&enforce_net, &k);
	}
	if (!e) {
		k.port = 0;
		e = bpf_map_lookup_elem(&enforce_net, &k);
	}
	if (!e) {
		k.family = 0;
		e = bpf_map_lookup_elem(&enforce_net, &k);
	}
	if (e && e->armed_only) {
		struct arm_key a = { .tgid = tgid, .rule = e->rule };
		if (!bpf_map_lookup_elem(&armed, &a))
			e = 0;
	}
	if (e && (e->what == ENF_DENY || e->what == ENF_KILL)) {
		/* Refused here, in the kernel; a kill is sent by user space on this record (these
		 * hooks cannot signal), so nothing leaves before the process dies. */
		struct rec_enforced r = {};
		fill_hdr(&r.h, REC_ENFORCED, pid_tgid);
		r.what = e->what;
		r.rule = e->rule;
		r.err = 1;
		r.hook = 3;
		submit(&r, sizeof(r));
		return 0;
	}
	return 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return sock_hook(ctx, 2, 3);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	return sock_hook(ctx, 10, 3);
}

SEC("cgroup/bind4")
int bind4(struct bpf_sock_addr *ctx)
{
	return sock_hook(ctx, 2, 4);
}

SEC("cgroup/bind6")
int bind6(struct bpf_sock_addr *ctx)
{
	return sock_hook(ctx, 10, 4);
}

/* A kill rule at a connect's entry: SIGKILL now (bpf_send_signal, in the caller), and the
 * connect hook refuses the connection, so nothing leaves before the process dies. */
static __always_inline void kill_at_connect(__u64 pid_tgid)
{
	struct net_key any = {};
	struct enforce *e = bpf_map_lookup_elem(&enforce_net, &any);
	if (!e || e->what != ENF_KILL)
		return;
	__u32 tgid = pid_tgid >> 32;
	if (e->armed_only) {
		struct arm_key k = { .tgid = tgid, .rule = e->rule };
		if (!bpf_map_lookup_elem(&armed, &k))
			return;
	}
	bpf_send_signal(SIGKILL);
	net_mark(pid_tgid, NET_KILLED);
	struct rec_enforced r = {};
	fill_hdr(&r.h, REC_ENFORCED, pid_tgid);
	r.what = ENF_KILL;
	r.rule = e->rule;
	r.hook = 3;
	submit(&r, sizeof(r));
}

/* The process opened or reads a file a kill rule starts from: armed, in the kernel, before
 * user space has seen the event (so a connect right after it is caught). */
static __always_inline void arm_on_file(struct task_struct *t, __s64 fd, __u64 pid_tgid)
{
	struct fdinfo fi = {};
	fd_info(t, fd, &fi);
	if (!fi.mode)
		return;
	struct file_key k = { .dev = fi.dev, .ino = fi.ino };
	__u32 *rule = bpf_map_lookup_elem(&arm_files, &k);
	if (!rule)
		return;
	struct arm_key a = { .tgid = pid_tgid >> 32, .rule = *rule };
	__u8 one = 1;
	bpf_map_update_elem(&armed, &a, &one, BPF_ANY);
}

#define S_IFMT 0170000
#define S_IFSOCK 0140000

/* The address an internet socket has now, as the kernel keeps it (REC_KADDR, hook 5): after
 * a connect, the source address and port the kernel chose; after a bind, the port it chose
 * for port 0; an accepted socket's own. No call passes it, and another process's socket
 * cannot be asked for it later. */
static __always_inline void send_local(struct task_struct *t, __s64 fd, __u64 pid_tgid)
{
	struct file *f = fd_file(t, fd);
	if (!f)
		return;
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	if (!ino || (BPF_CORE_READ(ino, i_mode) & S_IFMT) != S_IFSOCK)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != 2 && family != 10)
		return;
	struct rec_kinfo_addr r = {};
	fill_hdr(&r.k.h, REC_KADDR, pid_tgid);
	r.k.hook = 5;
	r.k.s.arg = 0xff;
	r.k.s.kind = AK_SOCKADDR;
	__u16 num = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 port = (num >> 8) | (num << 8); /* network order */
	__builtin_memcpy(r.addr, &family, 2);
	__builtin_memcpy(r.addr + 2, &port, 2);
	if (family == 2) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(r.addr + 4, &a, 4);
		r.k.s.len = 16;
	} else {
		BPF_CORE_READ_INTO(r.addr + 8, sk, __sk_common.skc_v6_rcv_saddr);
		r.k.s.len = 28;
	}
	submit(&r, sizeof(r));
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	/* The cheapest test first: most calls on a machine are not selected, and then cost
	 * this array lookup (unless a kill rule watches them). */
	struct task_struct *t = bpf_get_current_task_btf();
	bool compat = t->thread_info.status & TS_COMPAT;
	bool is_read = id == 0 || id == 17 || id == 19 || id == 295 || id == 327;
	bool enforce = !compat && ((cfg.kill_connect && id == 42) || (cfg.arm_files && is_read));
	bool sel = selected(id, compat);
	if (!sel && !enforce)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!wanted(pid_tgid >> 32))
		return 0;
	if (enforce && id == 42)
		kill_at_connect(pid_tgid);
	/* read, pread64, readv, preadv, preadv2 of a file a kill rule starts from */
	if (enforce && is_read)
		arm_on_file(t, (__s32)regs->di, pid_tgid);
	if (!sel)
		return 0;
	if ((id == 42 || id == 49 /* bind */) && !compat)
		net_mark(pid_tgid, NET_RECORDED);
	__u8 *buf = scratch_buf();
	if (!buf)
		return 0;
	struct rec_enter *r = (void *)buf;
	fill_hdr(&r->h, REC_ENTER, pid_tgid);
	if (compat)
		r->h.flags |= F_COMPAT;
	r->nr = id;
	r->nslots = 0;
	if (compat) {
		r->args[0] = regs->bx;
		r->args[1] = regs->cx;
		r->args[2] = regs->dx;
		r->args[3] = regs->si;
		r->args[4] = regs->di;
		r->args[5] = regs->bp;
	} else {
		r->args[0] = regs->di;
		r->args[1] = regs->si;
		r->args[2] = regs->dx;
		r->args[3] = regs->r10;
		r->args[4] = regs->r8;
		r->args[5] = regs->r9;
	}
	__builtin_memset(r->fds, 0, sizeof(r->fds));
	__u32 off = sizeof(struct rec_enter);
	struct argspec *sp = 0;
	if (!compat) {
		__u32 key = (__u32)id & ~X32_BIT;
		if (key < NR_MAX)
			sp = bpf_map_lookup_elem(&specs, &key);
	}
	if (sp) {
		int nfd = 0, nslot = 0;
#pragma unroll
		for (int i = 0; i < 6; i++) {
			__u8 k = sp->kind[i];
			if (k == AK_FD && nfd < NFDS) {
				fd_info(t, (__s32)r->args[i], &r->fds[nfd & (NFDS - 1)]);
				nfd++;
			} else if ((k == AK_STR || k == AK_SOCKADDR || k == AK_U64) && nslot < NSLOTS) {
				__u32 len = k == AK_U64 ? 8 : 0;
				if (k == AK_SOCKADDR) {
					__u8 la = sp->lenarg[i];
					len = la < 6 ? (__u32)r->args[la & 7] : 0;
					if (!r->args[i] || !len)
						continue;
				}
				if (!r->args[i])
					continue;
				add_slot(buf, &off, i, k, (const void *)r->args[i], len);
				nslot++;
			}
		}
		r->nslots = nslot;
	}
	struct inflight *c = bpf_task_storage_get(&calls, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (c) {
		c->nr = id;
		c->active = 1;
		__builtin_memcpy(c->args, r->args, sizeof(c->args));
	}
	if (off > SCRATCH)
		off = SCRATCH;
	submit(buf, off);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	/* An unselected call's exit costs this array lookup: its entry was not recorded. */
	struct task_struct *t = bpf_get_current_task_btf();
	bool compat = t->thread_info.status & TS_COMPAT;
	if (!selected(regs->orig_ax, compat))
		return 0;
	struct inflight *c = bpf_task_storage_get(&calls, t, 0, 0);
	if (!c || !c->active)
		return 0;
	c->active = 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (c->nr == 42 || c->nr == 49) {
		__u32 tid = (__u32)pid_tgid;
		bpf_map_delete_elem(&in_net, &tid);
	}
	/* What an open opened, by the kernel's own path (before the exit, which takes it). */
	if (ret >= 0 && (c->nr == 2 || c->nr == 257 || c->nr == 437 || c->nr == 85)) {
		send_kpath(fd_file(t, ret), pid_tgid, 1);
		if (cfg.arm_files)
			arm_on_file(t, ret, pid_tgid);
	}
	/* The socket's own address after a connect (EINPROGRESS too), a bind, an accept. */
	if (!(BPF_CORE_READ(t, thread_info.status) & TS_COMPAT)) {
		if ((c->nr == 42 && (ret == 0 || ret == -115)) || (c->nr == 49 && ret == 0))
			send_local(t, (__s32)c->args[0], pid_tgid);
		else if ((c->nr == 43 || c->nr == 288) && ret >= 0)
			send_local(t, ret, pid_tgid);
	}
	/* The cwd a chdir/fchdir/chroot moved to, as the kernel resolved it. */
	if (ret == 0 && (c->nr == 80 || c->nr == 81 || c->nr == 161))
		send_kpath(0, pid_tgid, 3);
	__u8 *buf = scratch_buf();
	if (!buf)
		return 0;
	struct rec_exit *r = (void *)buf;
	fill_hdr(&r->h, REC_EXIT, pid_tgid);
	r->nr = c->nr;
	r->nslots = 0;
	r->ret = ret;
	r->pair[0] = -1;
	r->pair[1] = -1;
	__builtin_memset(&r->newfd, 0, sizeof(r->newfd));
	__builtin_memset(&r->newfd2, 0, sizeof(r->newfd2));
	__u32 off = sizeof(struct rec_exit);
	__u32 key = c->nr & ~X32_BIT;
	struct argspec *sp = 0;
	if (!compat && key < NR_MAX)
		sp = bpf_map_lookup_elem(&specs, &key);
	if (sp && ret >= 0) {
		__u8 out = sp->out;
		__u8 oarg = sp->out_arg;
		__u8 olen = sp->out_len;
		__u8 retfd = sp->ret_fd;
		if (retfd)
			fd_info(t, ret, &r->newfd);
		if (out == OUT_PAIR && oarg < 6) {
			bpf_probe_read_user(r->pair, sizeof(r->pair), (void *)c->args[oarg & 7]);
			fd_info(t, r->pair[0], &r->newfd);
			fd_info(t, r->pair[1], &r->newfd2);
		} else if (out == OUT_SOCKADDR && oarg < 6 && olen < 6 && c->args[oarg & 7]) {
			__u32 len = 0;
			bpf_probe_read_user(&len, sizeof(len), (void *)c->args[olen & 7]);
			if (len)
				add_slot(buf, &off, oarg, AK_SOCKADDR, (void *)c->args[oarg & 7], len);
			r->nslots = 1;
		} else if (out == OUT_STR && oarg < 6 && ret > 0) {
			add_slot(buf, &off, oarg, AK_STR, (void *)c->args[oarg & 7], ret);
			r->nslots = 1;
		}
	}
	if (off > SCRATCH)
		off = SCRATCH;
	submit(buf, off);
	return 0;
}

/* The kernel's own view of what an in-flight call acts on is sent as its own record right
 * before its exit (REC_KPATH, REC_KADDR): the exit that follows on the same thread takes it. */
static __always_inline void creds(struct task_struct *t, __u32 *uid, __u32 *euid, __u32 *gid,
				  __u32 *egid)
{
	const struct cred *c = BPF_CORE_READ(t, cred);
	*uid = BPF_CORE_READ(c, uid.val);
	*euid = BPF_CORE_READ(c, euid.val);
	*gid = BPF_CORE_READ(c, gid.val);
	*egid = BPF_CORE_READ(c, egid.val);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u32 cpid = BPF_CORE_READ(child, pid);
	if (!wanted(ptgid))
		return 0;
	if ((cfg.filters & FILTER_PID) && cfg.follow && ctgid != ptgid) {
		__u8 one = 1;
		bpf_map_update_elem(&tracked, &ctgid, &one, BPF_ANY);
	}
	struct rec_fork r = {};
	fill_hdr(&r.h, REC_FORK, bpf_get_current_pid_tgid());
	r.h.pid = ptgid;
	r.h.tid = BPF_CORE_READ(parent, pid);
	if (ctgid == ptgid)
		r.h.flags |= F_THREAD;
	r.child_pid = ctgid;
	r.child_tid = cpid;
	struct inflight *c = bpf_task_storage_get(&calls, parent, 0, 0);
	if (c && c->active) {
		r.call_nr = c->nr;
		if (c->nr == 56 /* clone */)
			r.clone_flags = c->args[0];
		else if (c->nr == 435 /* clone3: struct clone_args starts with the flags */)
			bpf_probe_read_user(&r.clone_flags, 8, (void *)c->args[0]);
	}
	creds(child, &r.uid, &r.euid, &r.gid, &r.egid);
	submit(&r, sizeof(r));
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!wanted(pid_tgid >> 32))
		return 0;
	/* The executable by the kernel's path (for a script: its interpreter). */
	send_kpath(BPF_CORE_READ(bprm, file), pid_tgid, 2);
	/* Its cwd: a process whose start was not recorded is known from here on. */
	send_kpath(0, pid_tgid, 3);
	__u8 *buf = scratch_buf();
	if (!buf)
		return 0;
	struct rec_exec *r = (void *)buf;
	fill_hdr(&r->h, REC_EXEC, pid_tgid);
	/* A script's or binfmt_misc's interpreter replaces bprm->interp (bprm_change_interp):
	 * while it is still the name the exec was given, the file run is the file named. */
	if (BPF_CORE_READ(bprm, interp) == BPF_CORE_READ(bprm, filename))
		r->h.flags |= F_EXE_NAMED;
	r->old_tid = old_pid;
	struct fdinfo fi = {};
	file_info(BPF_CORE_READ(bprm, file), &fi);
	r->dev = fi.dev;
	r->ino = fi.ino;
	creds(p, &r->uid, &r->euid, &r->gid, &r->egid);
	/* The name the kernel was asked to run (the exe path itself comes with the
	 * bprm_check_security record before this one). */
	__u8 *dst = buf + sizeof(struct rec_exec);
	long n = bpf_probe_read_kernel_str(dst, STR_MAX, BPF_CORE_READ(bprm, filename));
	r->exe_cut = 0;
	if (n <= 0)
		n = 1;
	n -= 1;
	r->exe_len = n;
	__u32 off = sizeof(struct rec_exec) + ((n + 7) & ~7);
	barrier_var(off);
	if (off > sizeof(struct rec_exec) + STR_MAX)
		off = sizeof(struct rec_exec) + STR_MAX;
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	__u64 start = BPF_CORE_READ(mm, arg_start);
	__u64 end = BPF_CORE_READ(mm, arg_end);
	__u64 total = end > start ? end - start : 0;
	__u32 copy = total > ARGV_MAX ? ARGV_MAX : total;
	r->argv_len = total;
	r->argv_copied = 0;
	barrier_var(copy);
	copy &= ARGV_MAX * 2 - 1;
	__u32 got = 0;
	if (copy && bpf_probe_read_user(buf + off, copy, (void *)start) == 0)
		got = copy;
	r->argv_copied = got;
	__u64 len = off + got;
	barrier_var(len);
	if (len > SCRATCH)
		len = SCRATCH;
	submit(buf, len);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (!wanted(tgid)) {
		return 0;
	}
	struct rec_task_exit r = {};
	fill_hdr(&r.h, REC_TASK_EXIT, bpf_get_current_pid_tgid());
	r.h.pid = tgid;
	r.h.tid = BPF_CORE_READ(p, pid);
	if (group_dead)
		r.h.flags |= F_GROUP_DEAD;
	r.exit_code = BPF_CORE_READ(p, exit_code);
	submit(&r, sizeof(r));
	if (group_dead && (cfg.filters & FILTER_PID))
		bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

SEC("tp_btf/signal_deliver")
int BPF_PROG(signal_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!wanted(pid_tgid >> 32))
		return 0;
	struct rec_signal r = {};
	fill_hdr(&r.h, REC_SIGNAL, pid_tgid);
	r.sig = sig;
	if (info) {
		r.code = BPF_CORE_READ(info, si_code);
		/* si_pid/si_uid of a signal a process sent (SI_USER, SI_TKILL, SI_QUEUE). */
		if (r.code <= 0) {
			r.sender_pid = BPF_CORE_READ(info, _sifields._kill._pid);
			r.sender_uid = BPF_CORE_READ(info, _sifields._kill._uid);
		}
	}
	submit(&r, sizeof(r));
	return 0;
}
