//! `--syscalls`: which system calls are recorded, by name or class.

use std::collections::BTreeSet;
use syscalls::Sysno;
use vigil_event::SyscallId;
use vigil_event::syscall::{self, Class};

/// The set of syscalls a backend records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Every x86_64 syscall, decoded where vigil knows it, raw otherwise.
    pub all: bool,
    /// x86_64 numbers of the selected syscalls (ignored when `all`).
    pub nrs: BTreeSet<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error("unknown syscall or class `{name}` in --syscalls{hint}")]
    Unknown { name: String, hint: String },
    #[error(
        "--syscalls is empty: name syscalls or classes (file, process, network, memory, identity, all)"
    )]
    Empty,
}

impl Default for Selection {
    /// The default set: every syscall vigil decodes (docs/DESIGN.md part 1 and fd bookkeeping).
    fn default() -> Self {
        Selection {
            all: false,
            nrs: syscall::known().map(|(s, _)| s.id() as u32).collect(),
        }
    }
}

impl Selection {
    /// Parses `openat,read,network`: syscall names and class names, `all`, `default`.
    pub fn parse(spec: &str) -> Result<Selection, SelectionError> {
        let mut sel = Selection {
            all: false,
            nrs: BTreeSet::new(),
        };
        let mut any = false;
        for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            any = true;
            if name == "all" {
                sel.all = true;
            } else if name == "default" {
                sel.nrs.extend(Selection::default().nrs);
            } else if let Some(class) = Class::from_name(name) {
                sel.nrs.extend(
                    syscall::known()
                        .filter(|(_, s)| s.class.intersects(class))
                        .map(|(s, _)| s.id() as u32),
                );
            } else if let Ok(s) = name.parse::<Sysno>() {
                sel.nrs.insert(s.id() as u32);
            } else {
                let candidates = syscall::all_names()
                    .chain(Class::NAMES.iter().map(|(n, _)| *n))
                    .chain(["all", "default"]);
                return Err(SelectionError::Unknown {
                    name: name.to_string(),
                    hint: vigil_event::suggest(name, candidates),
                });
            }
        }
        if !any {
            return Err(SelectionError::Empty);
        }
        Ok(sel)
    }

    /// Whether a call made through any ABI is recorded.
    pub fn contains(&self, call: SyscallId) -> bool {
        if self.all {
            return true;
        }
        match call.canonical() {
            Some(s) => self.nrs.contains(&(s.id() as u32)),
            // i386/x32 calls with no x86_64 twin: recorded when the user asked for everything.
            None => false,
        }
    }

    /// Names of the selected calls, for messages and the log header.
    pub fn describe(&self) -> String {
        if self.all {
            return "all".into();
        }
        self.nrs
            .iter()
            .filter_map(|n| Sysno::new(*n as usize).map(|s| s.name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_classes() {
        let s = Selection::parse("openat, network").unwrap();
        assert!(s.contains(SyscallId::from_name("openat").unwrap()));
        assert!(s.contains(SyscallId::from_name("connect").unwrap()));
        assert!(!s.contains(SyscallId::from_name("read").unwrap()));
        assert!(
            Selection::parse("all")
                .unwrap()
                .contains(SyscallId::x86_64(0))
        );
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        match Selection::parse("openatt") {
            Err(SelectionError::Unknown { name, hint }) => {
                assert_eq!(name, "openatt");
                assert!(hint.contains("openat"), "{hint}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(Selection::parse(" , "), Err(SelectionError::Empty));
        assert!(
            Selection::parse("netwrk")
                .unwrap_err()
                .to_string()
                .contains("network")
        );
    }

    #[test]
    fn default_is_the_designed_set() {
        let d = Selection::default();
        for name in [
            "execve", "openat", "read", "mmap", "setuid", "connect", "close", "dup2", "ioperm",
        ] {
            assert!(d.contains(SyscallId::from_name(name).unwrap()), "{name}");
        }
        assert!(!d.contains(SyscallId::from_name("getpid").unwrap()));
    }
}
