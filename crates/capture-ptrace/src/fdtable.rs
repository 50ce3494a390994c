//! vigil's copy of each process's fd table and cwd, kept in step with open/close/dup/fcntl/
//! pipe/socket/accept/exec/fork so every fd in an event can be shown as what it refers to.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use vigil_event::Target;

#[derive(Clone, Debug)]
pub struct FdEntry {
    pub target: Arc<Target>,
    pub cloexec: bool,
}

#[derive(Clone, Debug, Default)]
pub struct FdTable {
    fds: HashMap<i32, FdEntry>,
}

/// Shared by threads (and CLONE_FILES children); copied on fork.
pub type SharedFds = Rc<RefCell<FdTable>>;

impl FdTable {
    pub fn get(&self, fd: i32) -> Option<&FdEntry> {
        self.fds.get(&fd)
    }

    pub fn insert(&mut self, fd: i32, target: Arc<Target>, cloexec: bool) {
        self.fds.insert(fd, FdEntry { target, cloexec });
    }

    pub fn remove(&mut self, fd: i32) -> Option<FdEntry> {
        self.fds.remove(&fd)
    }

    pub fn set_cloexec(&mut self, fd: i32, cloexec: bool) {
        if let Some(e) = self.fds.get_mut(&fd) {
            e.cloexec = cloexec;
        }
    }

    /// A target already in the table that satisfies `pred`.
    pub fn find(&self, pred: impl Fn(&Target) -> bool) -> Option<Arc<Target>> {
        self.fds
            .values()
            .find(|e| pred(&e.target))
            .map(|e| e.target.clone())
    }

    /// `dup2(old, new)`: `new` now refers to what `old` does, without close-on-exec.
    pub fn dup(&mut self, old: i32, new: i32, cloexec: bool) {
        if let Some(e) = self.fds.get(&old) {
            let target = e.target.clone();
            self.fds.insert(new, FdEntry { target, cloexec });
        } else {
            // The source is unknown to us; the new fd will be looked up when used.
            self.fds.remove(&new);
        }
    }

    /// close_range(first, last): closes, or with CLOSE_RANGE_CLOEXEC marks, every fd in range.
    pub fn close_range(&mut self, first: u32, last: u32, only_cloexec: bool) {
        let in_range = |fd: &i32| *fd >= 0 && (*fd as u32) >= first && (*fd as u32) <= last;
        if only_cloexec {
            for (_, e) in self.fds.iter_mut().filter(|(fd, _)| in_range(fd)) {
                e.cloexec = true;
            }
        } else {
            self.fds.retain(|fd, _| !in_range(fd));
        }
    }

    /// What exec does: close-on-exec fds go away.
    pub fn exec(&mut self) {
        self.fds.retain(|_, e| !e.cloexec);
    }
}

/// A process's filesystem context (shared by CLONE_FS): its cwd and root, and vigil's handles
/// on them for walking paths as the process would (walk.rs).
#[derive(Clone, Debug)]
pub struct Fs {
    /// The cwd as a directory target (its path is what paths are folded against when they
    /// cannot be walked); `Target::Other` when the kernel cannot name it (longer than
    /// PATH_MAX).
    pub cwd: Arc<Target>,
    /// The cwd opened with O_PATH, once a walk needed it; dropped when the cwd changes.
    pub cwd_fd: Option<Rc<OwnedFd>>,
    /// The root, once a walk needed it; dropped by chroot, pivot_root, setns, unshare.
    pub root: Option<Rc<Root>>,
}

/// A process's root directory as vigil holds it.
#[derive(Debug)]
pub struct Root {
    pub fd: OwnedFd,
    /// The same root and mount namespace as vigil's: absolute paths mean the same to both.
    pub same_as_vigil: bool,
}

pub type SharedFs = Rc<RefCell<Fs>>;

impl Fs {
    pub fn new(cwd: Target) -> Fs {
        Fs {
            cwd: Arc::new(cwd),
            cwd_fd: None,
            root: None,
        }
    }

    /// The cwd's path, when the kernel can name it.
    pub fn cwd_path(&self) -> Option<&[u8]> {
        match &*self.cwd {
            Target::File { path, .. } => Some(path.as_bytes()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_drops_cloexec_and_dup_copies() {
        let mut t = FdTable::default();
        let f = Arc::new(Target::Pipe { ino: 7 });
        t.insert(3, f.clone(), true);
        t.insert(4, f, false);
        t.dup(4, 1, false);
        t.exec();
        assert!(t.get(3).is_none());
        assert!(matches!(*t.get(1).unwrap().target, Target::Pipe { ino: 7 }));
        t.close_range(0, u32::MAX, false);
        assert!(t.get(1).is_none());
    }
}
