//! What an open asks of its file, read from its flags as the kernel reads them.
//!
//! One definition for every consumer (rules, graph, summary), because the obvious test
//! (`flags has O_WRONLY`) is wrong twice: O_RDWR (2) does not contain the O_WRONLY bit (1), and
//! Linux truncates a file opened O_RDONLY|O_TRUNC. With O_PATH the kernel ignores every other
//! flag but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC, so such an open touches nothing.

use crate::event::{Event, EventKind};
use syscalls::Sysno;

pub const O_ACCMODE: u64 = 0o3;
pub const O_WRONLY: u64 = 0o1;
pub const O_RDWR: u64 = 0o2;
pub const O_CREAT: u64 = 0o100;
pub const O_TRUNC: u64 = 0o1000;
pub const O_PATH: u64 = 0o10000000;

/// What an open-like call (open, openat, openat2, creat, through any ABI or io_uring) asks of
/// the file it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OpenIntent {
    /// The fd it returns can write: access mode O_WRONLY or O_RDWR (O_TMPFILE needs one of them).
    pub writable: bool,
    /// O_CREAT: the file is created if it does not exist.
    pub create: bool,
    /// O_TRUNC: an existing regular file is truncated, whatever the access mode.
    pub truncate: bool,
}

impl OpenIntent {
    /// `creat(path, mode)`, which is `open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)`.
    pub const CREAT: OpenIntent = OpenIntent {
        writable: true,
        create: true,
        truncate: true,
    };

    /// The intent of open flags (for openat2, `struct open_how`'s `flags`).
    pub fn of_flags(flags: u64) -> OpenIntent {
        if flags & O_PATH != 0 {
            return OpenIntent::default();
        }
        OpenIntent {
            writable: matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR),
            create: flags & O_CREAT != 0,
            truncate: flags & O_TRUNC != 0,
        }
    }

    /// Whether the open may change the file or its directory: it can write, create or
    /// truncate. This is "opened for writing" as vigil's rules mean it.
    pub fn for_write(self) -> bool {
        self.writable || self.create || self.truncate
    }
}

impl Event {
    /// What an open-like syscall event (entry or exit, any ABI, io_uring included) asks of its
    /// file; `None` for any other event, and for an open whose flags were not recorded.
    pub fn open_intent(&self) -> Option<OpenIntent> {
        let call = match &self.kind {
            EventKind::SyscallEntry(e) => e.call,
            EventKind::SyscallExit(x) => x.call,
            _ => return None,
        };
        match call.canonical()? {
            Sysno::creat => Some(OpenIntent::CREAT),
            Sysno::open | Sysno::openat | Sysno::openat2 => {
                self.arg("flags")?.as_uint().map(OpenIntent::of_flags)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Args, SyscallEntry, SyscallId, Value};

    fn open_event(name: &str, flags: Option<u64>) -> Event {
        let call = SyscallId::from_name(name).unwrap_or_default();
        let sig = call.signature();
        let mut args: Args = (0..sig.args.len()).map(|_| Value::Absent).collect();
        if let (Some(f), Some(i)) = (flags, sig.field_index("flags")) {
            args[i] = Value::Uint(f);
        }
        Event {
            seq: 1,
            time_ns: 1,
            pid: 1,
            tid: 1,
            kind: EventKind::SyscallEntry(SyscallEntry { call, args }),
        }
    }

    #[test]
    fn access_mode_creat_trunc_and_o_path() {
        let w = |f| OpenIntent::of_flags(f).for_write();
        assert!(!w(0), "O_RDONLY");
        assert!(w(O_WRONLY));
        assert!(w(O_RDWR), "O_RDWR has no O_WRONLY bit and still writes");
        assert!(!w(O_ACCMODE), "access mode 3 gives an fd for ioctl only");
        assert!(w(O_CREAT), "O_RDONLY|O_CREAT may create the file");
        assert!(w(O_TRUNC), "Linux truncates on O_RDONLY|O_TRUNC");
        assert!(
            !w(O_PATH | O_RDWR | O_CREAT | O_TRUNC),
            "O_PATH ignores them all"
        );
        assert!(OpenIntent::CREAT.for_write());
    }

    #[test]
    fn every_open_like_call_and_abi() {
        let w = |name, flags| open_event(name, flags).open_intent().map(|i| i.for_write());
        assert_eq!(w("openat", Some(O_RDWR)), Some(true));
        assert_eq!(w("open", Some(0)), Some(false));
        assert_eq!(w("openat2", Some(O_WRONLY)), Some(true));
        assert_eq!(w("creat", None), Some(true), "creat always writes");
        assert_eq!(w("io_uring:openat", Some(O_RDWR)), Some(true));
        assert_eq!(w("i386:open", Some(O_WRONLY)), Some(true));
        assert_eq!(w("i386:creat", None), Some(true));
        assert_eq!(w("openat", None), None, "flags not recorded");
        assert_eq!(w("read", None), None, "not an open");
    }
}
