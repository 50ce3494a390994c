//! Pids as seen from inside a pid namespace, mapped to the pids vigil sees.
//!
//! A process in its own pid namespace (unshare(CLONE_NEWPID), a container) names processes by
//! their pid in that namespace: its `kill(2, SIGTERM)` hits whatever is pid 2 there, which vigil
//! knows by another number. Every pid argument of such a process is translated through the
//! `NSpid:` lines of /proc/PID/status (the pid at every level from vigil's namespace down) and
//! recorded as the pid vigil sees, with the number the program passed beside it; a pid that no
//! process has in that namespace is recorded as given and marked unknown.

use crate::view::View;
use std::sync::Arc;
use vigil_event::{Resolution, Resolved, Value};

/// A task's pid namespace (the inode of /proc/TID/ns/pid) and its ids from vigil's namespace
/// (index 0) down to its own (last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsIds {
    pub ns: u64,
    pub ids: Vec<u32>,
}

impl NsIds {
    /// How many namespaces below vigil's the task lives in (0: vigil's own).
    pub fn depth(&self) -> usize {
        self.ids.len().saturating_sub(1)
    }
}

/// The pid namespace and ids of a task, from /proc (`None` if it is gone).
pub fn ns_ids(tid: i32) -> Option<NsIds> {
    let ns = std::fs::metadata(format!("/proc/{tid}/ns/pid")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    let ids = line["NSpid:".len()..]
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect::<Vec<u32>>();
    use std::os::unix::fs::MetadataExt;
    Some(NsIds { ns: ns.ino(), ids })
}

/// vigil's own pid namespace.
pub fn own_ns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

impl View<'_> {
    /// The namespace ids of a traced task, cached until it exits.
    pub(crate) fn task_ns(&mut self, tid: i32) -> Option<NsIds> {
        if let Some(n) = self.ns_cache.get(&tid) {
            return Some(n.clone());
        }
        let n = ns_ids(tid)?;
        self.ns_cache.insert(tid, n.clone());
        Some(n)
    }

    /// The pid vigil sees for `v` as named by process `caller` (`None`: no such process).
    pub(crate) fn translate_pid(&mut self, caller: i32, v: u32) -> Option<u32> {
        let c = self.task_ns(caller)?;
        if c.ns == self.own_pidns {
            return Some(v);
        }
        let depth = c.depth();
        let tids: Vec<i32> = self.threads.keys().copied().collect();
        for t in tids {
            if let Some(n) = self.task_ns(t)
                && n.ns == c.ns
                && n.ids.get(depth) == Some(&v)
            {
                return n.ids.first().copied();
            }
        }
        // Not a traced process: any process of that namespace.
        let dir = std::fs::read_dir("/proc").ok()?;
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(n) = ns_ids(pid)
                && n.ns == c.ns
                && n.ids.get(depth) == Some(&v)
            {
                return n.ids.first().copied();
            }
        }
        None
    }

    /// A pid argument (`kill`'s pid, `tgkill`'s tgid and tid...), translated when the caller
    /// lives in another pid namespace than vigil. 0 and -1 mean the caller's group and every
    /// process; -N is process group N.
    pub(crate) fn pid_value(&mut self, caller: i32, v: i32) -> Value {
        if v == 0 || v == -1 || v == i32::MIN {
            return Value::Int(v as i64);
        }
        let Some(c) = self.task_ns(caller) else {
            return Value::Int(v as i64);
        };
        if c.ns == self.own_pidns {
            return Value::Int(v as i64);
        }
        let sign = if v < 0 { -1 } else { 1 };
        match self.translate_pid(caller, v.unsigned_abs()) {
            Some(real) => Value::resolved(
                Value::Int(sign * real as i64),
                Value::Int(v as i64),
                Resolution::Exact,
            ),
            None => Value::Resolved(Arc::new(Resolved {
                value: Value::Int(v as i64),
                given: Value::Absent,
                how: Resolution::Unknown,
            })),
        }
    }
}
