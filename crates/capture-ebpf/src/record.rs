//! The records the kernel side writes to the ring buffer, parsed (layouts in src/bpf/vigil.h).
//!
//! Parsed by offset with bounds checks, no `unsafe` casts: a record shorter than its header
//! says is refused (`None`) and counted by the caller, never trusted.

use vigil_event::Creds;

/// Record kinds (`REC_*` in vigil.h).
pub const REC_ENTER: u16 = 1;
pub const REC_EXIT: u16 = 2;
pub const REC_FORK: u16 = 3;
pub const REC_EXEC: u16 = 4;
pub const REC_TASK_EXIT: u16 = 5;
pub const REC_SIGNAL: u16 = 6;
pub const REC_ENFORCED: u16 = 7;
pub const REC_KPATH: u16 = 8;
pub const REC_KADDR: u16 = 9;

pub const F_THREAD: u16 = 8;
pub const F_GROUP_DEAD: u16 = 16;
pub const F_COMPAT: u16 = 32;
pub const F_EXE_NAMED: u16 = 64;

#[cfg(test)]
pub const AK_STR: u16 = 1;

pub const HDR: usize = 32;
const SLOT_HDR: usize = 8;
pub const ENTER_FIXED: usize = HDR + 8 + 48 + 2 * 16;
pub const EXIT_FIXED: usize = HDR + 8 + 8 + 8 + 32;
pub const EXEC_FIXED: usize = HDR + 8 + 16 + 16 + 8;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    pub flags: u16,
    pub cpu: u32,
    /// CLOCK_BOOTTIME, ns.
    pub time: u64,
    pub pid: u32,
    pub tid: u32,
    /// Records lost on this CPU just before this one.
    pub lost: u64,
}

/// What an fd referred to in the kernel at the call (0s: no file there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdInfo {
    pub ino: u64,
    /// The kernel's dev_t (major << 20 | minor).
    pub dev: u32,
    pub mode: u32,
}

impl FdInfo {
    pub fn is_some(&self) -> bool {
        self.mode != 0
    }

    /// The file type bits (S_IFMT).
    pub fn kind(&self) -> u32 {
        self.mode & 0o170000
    }

    /// The device as user space numbers it (stat's st_dev).
    pub fn dev_user(&self) -> u64 {
        kdev_to_user(self.dev as u64)
    }
}

/// The kernel's internal dev_t (12-bit major << 20 | 20-bit minor) as stat(2) gives it.
pub fn kdev_to_user(kdev: u64) -> u64 {
    let major = kdev >> 20;
    let minor = kdev & 0xfffff;
    libc::makedev(major as u32, minor as u32)
}

/// A string or address the kernel side copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The argument's index (0xff: the kernel's own path or address of an exit).
    pub arg: u16,
    pub kind: u16,
    /// `None`: the memory could not be read.
    pub bytes: Option<Vec<u8>>,
    /// The string went on past what the kernel side copies.
    pub cut: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Enter {
        nr: u32,
        args: [u64; 6],
        fds: [FdInfo; 2],
        slots: Vec<Slot>,
    },
    Exit {
        nr: u32,
        ret: i64,
        pair: [i32; 2],
        /// What the returned fd (or `pair[0]`) refers to, and `pair[1]`.
        newfd: [FdInfo; 2],
        slots: Vec<Slot>,
    },
    Fork {
        child_pid: u32,
        child_tid: u32,
        clone_flags: u64,
        call_nr: u32,
        creds: Creds,
    },
    Exec {
        old_tid: u32,
        dev: u64,
        ino: u64,
        creds: Creds,
        /// The name exec was asked to run (the kernel's copy).
        filename: Vec<u8>,
        /// argv as the new image has it (NUL-separated), and its whole length.
        argv: Vec<u8>,
        argv_len: u32,
    },
    TaskExit {
        code: i32,
    },
    Signal {
        sig: i32,
        code: i32,
        sender_pid: u32,
        sender_uid: u32,
    },
    Enforced {
        what: u32,
        rule: u32,
        err: i32,
        hook: u32,
        dev: u64,
        ino: u64,
    },
    /// The kernel's path of a file an in-flight call opened (hook 1) or an exec runs (2).
    KPath {
        hook: u32,
        dev: u64,
        ino: u64,
        path: Option<Vec<u8>>,
        /// Deeper or longer than the kernel side walks.
        cut: bool,
    },
    /// The kernel's copy of a connect's (hook 3) or bind's (4) address.
    KAddr {
        hook: u32,
        addr: Vec<u8>,
    },
}

struct Rd<'a>(&'a [u8]);

impl Rd<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(self.0.get(at..at + 2)?.try_into().ok()?))
    }
    fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.0.get(at..at + 4)?.try_into().ok()?))
    }
    fn i32(&self, at: usize) -> Option<i32> {
        self.u32(at).map(|v| v as i32)
    }
    fn u64(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(self.0.get(at..at + 8)?.try_into().ok()?))
    }
    fn bytes(&self, at: usize, len: usize) -> Option<&[u8]> {
        self.0.get(at..at.checked_add(len)?)
    }
    fn fdinfo(&self, at: usize) -> Option<FdInfo> {
        Some(FdInfo {
            ino: self.u64(at)?,
            dev: self.u32(at + 8)?,
            mode: self.u32(at + 12)?,
        })
    }
    /// uid, euid, gid, egid in that order.
    fn creds(&self, at: usize) -> Option<Creds> {
        Some(Creds {
            uid: self.u32(at)?,
            euid: self.u32(at + 4)?,
            gid: self.u32(at + 8)?,
            egid: self.u32(at + 12)?,
        })
    }
}

fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// `n` slots from `at` on.
fn slots(r: &Rd, mut at: usize, n: u32) -> Option<Vec<Slot>> {
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n.min(8) {
        let arg = r.u16(at)?;
        let len = r.u16(at + 2)?;
        let cut = r.u16(at + 4)? != 0;
        let kind = r.u16(at + 6)?;
        at += SLOT_HDR;
        if len == 0xffff {
            out.push(Slot {
                arg,
                kind,
                bytes: None,
                cut,
            });
            continue;
        }
        let b = r.bytes(at, len as usize)?.to_vec();
        at += pad8(len as usize);
        out.push(Slot {
            arg,
            kind,
            bytes: Some(b),
            cut,
        });
    }
    Some(out)
}

/// Parses one record; `None` for a record that does not hold what its header says.
pub fn parse(data: &[u8]) -> Option<(Header, Record)> {
    let r = Rd(data);
    let h = Header {
        kind: r.u16(0)?,
        flags: r.u16(2)?,
        cpu: r.u32(4)?,
        time: r.u64(8)?,
        pid: r.u32(16)?,
        tid: r.u32(20)?,
        lost: r.u64(24)?,
    };
    let rec = match h.kind {
        REC_ENTER => {
            let nr = r.u32(HDR)?;
            let nslots = r.u32(HDR + 4)?;
            let mut args = [0u64; 6];
            for (i, a) in args.iter_mut().enumerate() {
                *a = r.u64(HDR + 8 + 8 * i)?;
            }
            let fds = [r.fdinfo(HDR + 56)?, r.fdinfo(HDR + 72)?];
            Record::Enter {
                nr,
                args,
                fds,
                slots: slots(&r, ENTER_FIXED, nslots)?,
            }
        }
        REC_EXIT => {
            let nr = r.u32(HDR)?;
            let nslots = r.u32(HDR + 4)?;
            Record::Exit {
                nr,
                ret: r.u64(HDR + 8)? as i64,
                pair: [r.i32(HDR + 16)?, r.i32(HDR + 20)?],
                newfd: [r.fdinfo(HDR + 24)?, r.fdinfo(HDR + 40)?],
                slots: slots(&r, EXIT_FIXED, nslots)?,
            }
        }
        REC_FORK => Record::Fork {
            child_pid: r.u32(HDR)?,
            child_tid: r.u32(HDR + 4)?,
            clone_flags: r.u64(HDR + 8)?,
            call_nr: r.u32(HDR + 16)?,
            creds: r.creds(HDR + 24)?,
        },
        REC_EXEC => {
            let old_tid = r.u32(HDR)?;
            let argv_len = r.u32(HDR + 4)?;
            let dev = r.u64(HDR + 8)?;
            let ino = r.u64(HDR + 16)?;
            let creds = r.creds(HDR + 24)?;
            let exe_len = r.u16(HDR + 40)? as usize;
            let argv_copied = r.u16(HDR + 44)? as usize;
            let filename = r.bytes(EXEC_FIXED, exe_len)?.to_vec();
            let argv = r.bytes(EXEC_FIXED + pad8(exe_len), argv_copied)?.to_vec();
            Record::Exec {
                old_tid,
                dev,
                ino,
                creds,
                filename,
                argv,
                argv_len,
            }
        }
        REC_TASK_EXIT => Record::TaskExit { code: r.i32(HDR)? },
        REC_SIGNAL => Record::Signal {
            sig: r.i32(HDR)?,
            code: r.i32(HDR + 4)?,
            sender_pid: r.u32(HDR + 8)?,
            sender_uid: r.u32(HDR + 12)?,
        },
        REC_ENFORCED => Record::Enforced {
            what: r.u32(HDR)?,
            rule: r.u32(HDR + 4)?,
            err: r.i32(HDR + 8)?,
            hook: r.u32(HDR + 12)?,
            dev: r.u64(HDR + 16)?,
            ino: r.u64(HDR + 24)?,
        },
        REC_KPATH | REC_KADDR => {
            let dev = r.u64(HDR)?;
            let ino = r.u64(HDR + 8)?;
            // HDR + 16: the file's mode (the decoder takes the kind from the fd's own record).
            let hook = r.u32(HDR + 20)?;
            let s = slots(&r, HDR + 24, 1)?.pop()?;
            if h.kind == REC_KPATH {
                Record::KPath {
                    hook,
                    dev,
                    ino,
                    path: s.bytes,
                    cut: s.cut,
                }
            } else {
                Record::KAddr {
                    hook,
                    addr: s.bytes.unwrap_or_default(),
                }
            }
        }
        _ => return None,
    };
    Some((h, rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(kind: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&99u64.to_le_bytes());
        v.extend_from_slice(&10u32.to_le_bytes());
        v.extend_from_slice(&11u32.to_le_bytes());
        v.extend_from_slice(&3u64.to_le_bytes());
        v
    }

    #[test]
    fn an_entry_with_a_path_and_an_unreadable_slot_parses() {
        let mut v = hdr(REC_ENTER);
        v.extend_from_slice(&257u32.to_le_bytes());
        v.extend_from_slice(&2u32.to_le_bytes());
        for a in [0xffff_ff9cu64, 0x1000, 0, 0, 0, 0] {
            v.extend_from_slice(&a.to_le_bytes());
        }
        v.extend_from_slice(&[0u8; 32]);
        assert_eq!(v.len(), ENTER_FIXED);
        // slot 1: "/etc" (padded to 8)
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&AK_STR.to_le_bytes());
        v.extend_from_slice(b"/etc\0\0\0\0");
        // slot 2: unreadable
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&0xffffu16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&AK_STR.to_le_bytes());
        let (h, r) = parse(&v).expect("parses");
        assert_eq!((h.pid, h.tid, h.lost, h.time), (10, 11, 3, 99));
        let Record::Enter { nr, slots, .. } = r else {
            panic!("an entry");
        };
        assert_eq!(nr, 257);
        assert_eq!(slots[0].bytes.as_deref(), Some(&b"/etc"[..]));
        assert_eq!(slots[1].bytes, None);
    }

    #[test]
    fn a_short_record_is_refused() {
        let mut v = hdr(REC_ENTER);
        v.extend_from_slice(&257u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        assert_eq!(parse(&v), None);
        // A slot whose length runs past the record.
        let mut v = hdr(REC_KPATH);
        v.extend_from_slice(&[0u8; 24]);
        v.extend_from_slice(&0xffu16.to_le_bytes());
        v.extend_from_slice(&100u16.to_le_bytes());
        v.extend_from_slice(&[0u8; 4]);
        v.extend_from_slice(b"/short");
        assert_eq!(parse(&v), None);
        assert_eq!(parse(&[1, 2, 3]), None);
        assert_eq!(parse(&hdr(77)), None);
    }

    #[test]
    fn kernel_dev_numbers_become_stat_ones() {
        // 8:1 (sda1) in the kernel's encoding.
        assert_eq!(kdev_to_user((8 << 20) | 1), libc::makedev(8, 1));
    }
}
