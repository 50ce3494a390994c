//! io_uring, seen from the tracer: the operations a traced program submits through a ring.
//!
//! A program can open, read, write and connect through io_uring without making those system
//! calls: it writes submission queue entries (SQEs) into memory it shares with the kernel, and
//! calls `io_uring_enter`. io_uring_setup, io_uring_enter and io_uring_register are always
//! traced. At setup vigil learns the ring's layout (struct io_uring_params); the ring's
//! mappings are found in /proc/PID/maps by the ring file's inode (each ring has its own). At
//! every io_uring_enter, before the kernel reads them, vigil reads the SQEs about to be
//! submitted and records each as a call of the io_uring ABI decoded into its system-call
//! twin's signature (vigil_event::uring): paths walked as for any call, fds resolved, rules
//! applied — a deny refuses the whole io_uring_enter, since one SQE cannot be taken out of a
//! batch. Completions (CQEs) read at each io_uring_enter become the operations' exit events,
//! and an OPENAT's new fd enters vigil's fd table labelled from the kernel's answer.
//!
//! What stays invisible is documented in docs/threat-model.md: rings polled by a kernel thread
//! (IORING_SETUP_SQPOLL, flagged at setup: submitting needs no system call), completions the
//! program consumes without entering the kernel again before it exits, and a thread rewriting
//! an SQE between vigil's read and the kernel's.

use crate::tracer::Tracer;
use crate::view::Pending;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use vigil_capture::Verdict;
use vigil_event::uring::{self, SqeField};
use vigil_event::*;

/// Most submitted operations kept waiting for their completion, per process.
const MAX_PENDING: usize = 65_536;
/// mmap offsets of a ring's parts (linux/io_uring.h).
const OFF_SQ_RING: u64 = 0;
const OFF_CQ_RING: u64 = 0x800_0000;
const OFF_SQES: u64 = 0x1000_0000;
/// `IORING_CQE_F_MORE`: more completions will come for this submission (multishot).
const CQE_F_MORE: u32 = 2;
const IORING_REGISTER_FILES: u64 = 2;
const IORING_UNREGISTER_FILES: u64 = 3;
const IORING_REGISTER_FILES2: u64 = 13;

/// struct io_sqring_offsets / io_cqring_offsets, the fields vigil uses.
#[derive(Clone, Copy, Debug, Default)]
struct Offsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    /// SQ: the index array; CQ: the CQE array.
    array: u32,
    user_addr: u64,
}

/// One ring of a process.
#[derive(Clone, Debug, Default)]
pub struct Ring {
    flags: u32,
    sq_entries: u32,
    sq: Offsets,
    cq: Offsets,
    /// Where the SQ ring, the CQ ring and the SQE array are mapped in the tracee.
    sq_ring: Option<u64>,
    cq_ring: Option<u64>,
    sqes: Option<u64>,
    /// The CQ index up to which vigil has read completions.
    cq_seen: u32,
    /// Registered files (IORING_REGISTER_FILES), for SQEs with IOSQE_FIXED_FILE.
    fixed: Vec<Option<Arc<Target>>>,
}

/// A submitted operation waiting for its completion.
#[derive(Clone)]
pub struct Submitted {
    pending: Arc<Pending>,
    tid: i32,
    /// Creates a registered ("direct") descriptor, not an fd.
    direct: bool,
}

/// The io_uring state of one process: its rings by the ring file's inode, and what was
/// submitted and not yet seen complete.
#[derive(Clone, Default)]
pub struct Rings {
    rings: HashMap<u64, Ring>,
    submitted: HashMap<(u64, u64), VecDeque<Submitted>>,
    waiting: usize,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// struct io_sqring_offsets (`sq`: flags @16, dropped @20, array @24) or io_cqring_offsets
/// (overflow @16, cqes @20, flags @24), at `at` in io_uring_params.
fn offsets(b: &[u8], at: usize, sq: bool) -> Offsets {
    Offsets {
        head: u32_at(b, at),
        tail: u32_at(b, at + 4),
        ring_mask: u32_at(b, at + 8),
        ring_entries: u32_at(b, at + 12),
        array: u32_at(b, at + if sq { 24 } else { 20 }),
        user_addr: u64_at(b, at + 32),
    }
}

/// The ring's mappings, from /proc/PID/maps lines naming the ring file's inode.
fn find_mappings(pid: i32, ino: u64, ring: &mut Ring) {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return;
    };
    let (mut sq, mut cq, mut sqes) = (None, None, None);
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(_perms), Some(off), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if inode.parse::<u64>().ok() != Some(ino) {
            continue;
        }
        let start = range
            .split('-')
            .next()
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        match u64::from_str_radix(off, 16).ok() {
            Some(OFF_SQ_RING) => sq = start,
            Some(OFF_CQ_RING) => cq = start,
            Some(OFF_SQES) => sqes = start,
            _ => {}
        }
    }
    ring.sq_ring = sq;
    // With IORING_FEAT_SINGLE_MMAP the CQ ring shares the SQ ring's mapping.
    ring.cq_ring = cq.or(sq);
    ring.sqes = sqes;
}

impl Tracer<'_> {
    /// The ring an fd refers to (its file's inode), when it is one this process set up.
    fn ring_of(&mut self, pid: i32, tid: i32, fd: i32) -> Option<u64> {
        let ino = self.view.fd_target(pid, tid, fd)?.ino();
        self.view
            .procs
            .get(&pid)?
            .rings
            .rings
            .contains_key(&ino)
            .then_some(ino)
    }

    /// io_uring_setup returned a ring: its layout, from the params the kernel filled in.
    pub(crate) fn uring_setup_exit(&mut self, pid: i32, tid: i32, raw: &[u64; 6], fd: i32) {
        let mut params = [0u8; 120];
        let Some(p) = self.view.procs.get_mut(&pid) else {
            return;
        };
        if p.mem.read(raw[1], &mut params).is_err() {
            return;
        }
        let Some(ino) = self.view.fd_target(pid, tid, fd).map(|t| t.ino()) else {
            return;
        };
        let flags = u32_at(&params, 8);
        let mut ring = Ring {
            flags,
            sq_entries: u32_at(&params, 0),
            sq: offsets(&params, 40, true),
            cq: offsets(&params, 80, false),
            ..Ring::default()
        };
        if flags & uring::IORING_SETUP_NO_MMAP != 0 {
            // The program gave the memory: the rings at cq_off.user_addr, SQEs at sq_off's.
            ring.sq_ring = Some(ring.cq.user_addr);
            ring.cq_ring = Some(ring.cq.user_addr);
            ring.sqes = Some(ring.sq.user_addr);
        }
        if let Some(p) = self.view.procs.get_mut(&pid) {
            p.rings.rings.insert(ino, ring);
        }
        if flags & uring::IORING_SETUP_SQPOLL != 0 {
            self.action(
                pid,
                tid,
                "alert",
                format!(
                    "io_uring ring fd {fd} is polled by a kernel thread (IORING_SETUP_SQPOLL): operations submitted to it need no system call, so vigil sees only those still in the ring when the program next enters the kernel"
                ),
            );
        }
    }

    /// io_uring_register of files: the ring's fixed-file table, for SQEs that name a file by
    /// its index.
    pub(crate) fn uring_register_exit(&mut self, pid: i32, tid: i32, raw: &[u64; 6]) {
        let Some(ino) = self.ring_of(pid, tid, raw[0] as i32) else {
            return;
        };
        let op = raw[1] & 0xff;
        let fds: Vec<i32> = match op {
            IORING_REGISTER_FILES => {
                let n = (raw[3] as usize).min(1 << 16);
                let mut b = vec![0u8; n * 4];
                match self
                    .view
                    .procs
                    .get_mut(&pid)
                    .map(|p| p.mem.read(raw[2], &mut b))
                {
                    Some(Ok(())) => b.chunks_exact(4).map(|c| u32_at(c, 0) as i32).collect(),
                    _ => return,
                }
            }
            IORING_REGISTER_FILES2 => {
                // struct io_uring_rsrc_register { nr, flags, resv2, data, tags }.
                let mut hdr = [0u8; 32];
                let Some(Ok(())) = self
                    .view
                    .procs
                    .get_mut(&pid)
                    .map(|p| p.mem.read(raw[2], &mut hdr))
                else {
                    return;
                };
                let n = (u32_at(&hdr, 0) as usize).min(1 << 16);
                let mut b = vec![0u8; n * 4];
                match self
                    .view
                    .procs
                    .get_mut(&pid)
                    .map(|p| p.mem.read(u64_at(&hdr, 16), &mut b))
                {
                    Some(Ok(())) => b.chunks_exact(4).map(|c| u32_at(c, 0) as i32).collect(),
                    _ => return,
                }
            }
            IORING_UNREGISTER_FILES => Vec::new(),
            _ => return,
        };
        let fixed: Vec<Option<Arc<Target>>> = fds
            .into_iter()
            .map(|fd| self.view.fd_target(pid, tid, fd))
            .collect();
        if let Some(r) = self
            .view
            .procs
            .get_mut(&pid)
            .and_then(|p| p.rings.rings.get_mut(&ino))
        {
            r.fixed = fixed;
        }
    }

    /// io_uring_enter's entry: completions not seen yet, then each SQE about to be submitted,
    /// recorded as a call of the io_uring ABI. `Some(errno)` when the call must be refused
    /// (a rule denied one of its operations, or the guard refused one).
    pub(crate) fn uring_enter_entry(&mut self, pid: i32, tid: i32, raw: &[u64; 6]) -> Option<i32> {
        if raw[3] & uring::IORING_ENTER_REGISTERED_RING as u64 != 0 {
            // The fd is an index into the thread's registered rings: vigil only knows which
            // ring when the process has one.
            let only = self.view.procs.get(&pid).and_then(|p| {
                (p.rings.rings.len() == 1).then(|| p.rings.rings.keys().next().copied())?
            });
            return only.and_then(|ino| self.uring_submit(pid, tid, ino, raw[1] as u32));
        }
        let ino = self.ring_of(pid, tid, raw[0] as i32)?;
        self.uring_complete(pid, ino);
        self.uring_submit(pid, tid, ino, raw[1] as u32)
    }

    /// io_uring_enter's exit: the completions it brought.
    pub(crate) fn uring_enter_exit(&mut self, pid: i32, tid: i32, raw: &[u64; 6]) {
        let ino = if raw[3] & uring::IORING_ENTER_REGISTERED_RING as u64 != 0 {
            self.view.procs.get(&pid).and_then(|p| {
                (p.rings.rings.len() == 1).then(|| p.rings.rings.keys().next().copied())?
            })
        } else {
            self.ring_of(pid, tid, raw[0] as i32)
        };
        if let Some(ino) = ino {
            self.uring_complete(pid, ino);
        }
    }

    /// The ring, with its mappings found (and checked: its ring size is where it should be).
    fn ring_ready(&mut self, pid: i32, ino: u64) -> Option<Ring> {
        let p = self.view.procs.get_mut(&pid)?;
        let ring = p.rings.rings.get_mut(&ino)?;
        let valid = |mem: &mut crate::memory::Memory, r: &Ring| {
            r.sq_ring.is_some_and(|a| {
                mem.read_u32(a + r.sq.ring_entries as u64).ok() == Some(r.sq_entries)
            }) && r.sqes.is_some()
        };
        if !valid(&mut p.mem, ring) {
            find_mappings(pid, ino, ring);
            if !valid(&mut p.mem, ring) {
                return None;
            }
        }
        Some(ring.clone())
    }

    fn uring_submit(&mut self, pid: i32, tid: i32, ino: u64, to_submit: u32) -> Option<i32> {
        let ring = self.ring_ready(pid, ino)?;
        let (sq_ring, sqes) = (ring.sq_ring?, ring.sqes?);
        let mem = &mut self.view.procs.get_mut(&pid)?.mem;
        let head = mem.read_u32(sq_ring + ring.sq.head as u64).ok()?;
        let tail = mem.read_u32(sq_ring + ring.sq.tail as u64).ok()?;
        // The offsets say where the mask is; its value is in the ring.
        let mask = mem.read_u32(sq_ring + ring.sq.ring_mask as u64).ok()?;
        let n = tail.wrapping_sub(head).min(to_submit).min(ring.sq_entries);
        let sqe_size: u64 = if ring.flags & uring::IORING_SETUP_SQE128 != 0 {
            128
        } else {
            64
        };
        let mut refused = None;
        for i in 0..n {
            let slot = head.wrapping_add(i) & mask;
            let index = if ring.flags & uring::IORING_SETUP_NO_SQARRAY != 0 {
                slot
            } else {
                let mem = &mut self.view.procs.get_mut(&pid)?.mem;
                mem.read_u32(sq_ring + ring.sq.array as u64 + 4 * slot as u64)
                    .ok()?
            };
            let mut sqe = [0u8; 64];
            let mem = &mut self.view.procs.get_mut(&pid)?.mem;
            if mem
                .read(sqes + (index & mask) as u64 * sqe_size, &mut sqe)
                .is_err()
            {
                break;
            }
            if let Some(errno) = self.uring_op(pid, tid, ino, &ring, &sqe) {
                refused.get_or_insert(errno);
            }
        }
        refused
    }

    /// One SQE: decoded, checked, recorded. `Some(errno)` if it must not run.
    fn uring_op(
        &mut self,
        pid: i32,
        tid: i32,
        ino: u64,
        ring: &Ring,
        sqe: &[u8; 64],
    ) -> Option<i32> {
        let opcode = sqe[0] as u32;
        let fixed_file = sqe[1] & uring::IOSQE_FIXED_FILE != 0;
        let field = |f: SqeField| -> u64 {
            match f {
                SqeField::Fd => u32_at(sqe, 4) as i32 as i64 as u64,
                SqeField::Off => u64_at(sqe, 8),
                SqeField::Addr => u64_at(sqe, 16),
                SqeField::Len => u32_at(sqe, 24) as u64,
                SqeField::OpFlags => u32_at(sqe, 28) as u64,
                SqeField::AddrLen => u32_at(sqe, 44) as u64 & 0xffff,
                SqeField::Addr3 => u64_at(sqe, 48),
            }
        };
        let user_data = u64_at(sqe, 32);
        let file_index = u32_at(sqe, 44);
        let call = SyscallId {
            abi: Abi::IoUring,
            nr: opcode,
        };
        let mut raw = [0u64; 6];
        match uring::op(opcode).filter(|o| o.twin.is_some()) {
            Some(op) => {
                for (i, f) in op.fields.iter().enumerate() {
                    raw[i] = field(*f);
                }
            }
            None => {
                // No twin: the SQE's main fields as six raw values.
                raw = [
                    field(SqeField::Fd),
                    field(SqeField::Addr),
                    field(SqeField::Len),
                    field(SqeField::Off),
                    field(SqeField::OpFlags),
                    user_data,
                ];
            }
        }
        let twin = call.canonical();
        let record = match twin {
            Some(_) => self.view.selection.contains(call),
            None => {
                self.view.selection.all
                    || self
                        .view
                        .selection
                        .nrs
                        .contains(&(syscalls::Sysno::io_uring_enter.id() as u32))
            }
        };
        let (mut args, walked) = self.view.decode_entry(pid, tid, call, &raw);
        if fixed_file {
            // The fd is an index into the ring's registered files.
            let sig = call.signature();
            if let Some(i) = sig.args.iter().position(|a| a.kind == ArgKind::Fd) {
                let idx = raw[i] as i32;
                let target = ring.fixed.get(idx as usize).cloned().flatten();
                if let Some(v) = args.get_mut(i) {
                    *v = Value::Fd(Fd::new(idx, target));
                }
            }
        }
        let guarded = self.guard(pid, tid, call, &raw, &args, &walked);
        let (entry_seq, verdict) = self.view.emit_entry(pid, tid, call, &args, record);
        if let crate::guard::Guarded::Refuse { errno, detail } = guarded {
            self.action(
                pid,
                tid,
                "refused",
                format!("{detail} (submitted through io_uring: the io_uring_enter is refused)"),
            );
            return Some(errno);
        }
        if let Verdict::Deny(errno) = verdict {
            return Some(errno);
        }
        let direct = uring::creates_fd(opcode) && file_index != 0;
        let pending = Pending {
            call,
            entry_seq,
            raw,
            args,
            walked,
            record,
            awaiting_exit: false,
            created: None,
            smo_out: Vec::new(),
            smo_maps_of: None,
        };
        let p = self.view.procs.get_mut(&pid)?;
        if p.rings.waiting >= MAX_PENDING {
            // A program that never waits for its completions: forget the oldest.
            if let Some(k) = p.rings.submitted.keys().next().copied() {
                if let Some(q) = p.rings.submitted.get_mut(&k) {
                    p.rings.waiting = p.rings.waiting.saturating_sub(q.len());
                }
                p.rings.submitted.remove(&k);
            }
        }
        p.rings.waiting += 1;
        p.rings
            .submitted
            .entry((ino, user_data))
            .or_default()
            .push_back(Submitted {
                pending: Arc::new(pending),
                tid,
                direct,
            });
        None
    }

    /// Reads the completions the kernel posted since vigil last looked, and records each as
    /// its operation's exit.
    fn uring_complete(&mut self, pid: i32, ino: u64) {
        let Some(ring) = self.ring_ready(pid, ino) else {
            return;
        };
        let Some(cq_ring) = ring.cq_ring else {
            return;
        };
        let Some(p) = self.view.procs.get_mut(&pid) else {
            return;
        };
        let (Ok(tail), Ok(mask), Ok(entries)) = (
            p.mem.read_u32(cq_ring + ring.cq.tail as u64),
            p.mem.read_u32(cq_ring + ring.cq.ring_mask as u64),
            p.mem.read_u32(cq_ring + ring.cq.ring_entries as u64),
        ) else {
            return;
        };
        let entries = entries.max(1);
        let mut from = ring.cq_seen;
        if tail.wrapping_sub(from) > entries {
            // Overwritten before vigil looked: those completions are gone.
            from = tail.wrapping_sub(entries);
        }
        let cqe_size: u64 = if ring.flags & uring::IORING_SETUP_CQE32 != 0 {
            32
        } else {
            16
        };
        let mut i = from;
        while i != tail {
            let slot = i & mask;
            let mut cqe = [0u8; 16];
            let at = cq_ring + ring.cq.array as u64 + slot as u64 * cqe_size;
            let read = self
                .view
                .procs
                .get_mut(&pid)
                .map(|p| p.mem.read(at, &mut cqe));
            if !matches!(read, Some(Ok(()))) {
                break;
            }
            let user_data = u64_at(&cqe, 0);
            let res = u32_at(&cqe, 8) as i32 as i64;
            let more = u32_at(&cqe, 12) & CQE_F_MORE != 0;
            self.uring_completed(pid, ino, user_data, res, more);
            i = i.wrapping_add(1);
        }
        if let Some(r) = self
            .view
            .procs
            .get_mut(&pid)
            .and_then(|p| p.rings.rings.get_mut(&ino))
        {
            r.cq_seen = tail;
        }
    }

    fn uring_completed(&mut self, pid: i32, ino: u64, user_data: u64, res: i64, more: bool) {
        let Some(p) = self.view.procs.get_mut(&pid) else {
            return;
        };
        let key = (ino, user_data);
        let Some(q) = p.rings.submitted.get_mut(&key) else {
            return;
        };
        let Some(s) = (if more {
            q.front().cloned()
        } else {
            q.pop_front()
        }) else {
            return;
        };
        if !more {
            p.rings.waiting = p.rings.waiting.saturating_sub(1);
            if q.is_empty() {
                p.rings.submitted.remove(&key);
            }
        }
        let pending = &s.pending;
        let args = if s.direct || res < 0 {
            pending.args.clone()
        } else if pending.call.canonical() == Some(syscalls::Sysno::close) {
            if let Some(files) = self.view.thread_files(s.tid) {
                files.borrow_mut().remove(pending.raw[0] as i32);
            }
            pending.args.clone()
        } else {
            self.view.finish_call(pid, s.tid, pending, res)
        };
        if pending.record {
            self.emit(
                pid,
                s.tid,
                EventKind::SyscallExit(SyscallExit {
                    call: pending.call,
                    entry_seq: pending.entry_seq,
                    ret: res,
                    args,
                }),
            );
        }
    }
}

/// The state a forked child inherits: the rings (same mappings, same fds), not what its
/// parent submitted.
impl Rings {
    pub fn inherit(&self) -> Rings {
        Rings {
            rings: self.rings.clone(),
            submitted: HashMap::new(),
            waiting: 0,
        }
    }
}
