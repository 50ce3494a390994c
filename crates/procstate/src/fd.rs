//! A process's fd table (fd -> what it refers to, and close-on-exec) and its filesystem
//! context (cwd, root): what vigil needs to show an fd in an event as the object it names and
//! to resolve a relative path. Shared and copied by `Processes` as the kernel shares and
//! copies them (threads and CLONE_FILES / CLONE_FS share; fork copies; exec drops
//! close-on-exec fds).

use std::collections::BTreeMap;
use std::sync::Arc;
use vigil_event::Target;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdEntry {
    pub target: Arc<Target>,
    pub cloexec: bool,
}

/// fd number -> what it refers to. Ordered, so iteration is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdTable {
    fds: BTreeMap<i32, FdEntry>,
}

// close_range(2) flags.
pub const CLOSE_RANGE_UNSHARE: u64 = 2;
pub const CLOSE_RANGE_CLOEXEC: u64 = 4;

impl FdTable {
    pub fn new() -> FdTable {
        FdTable::default()
    }

    pub fn get(&self, fd: i32) -> Option<&FdEntry> {
        self.fds.get(&fd)
    }

    pub fn target(&self, fd: i32) -> Option<&Arc<Target>> {
        self.fds.get(&fd).map(|e| &e.target)
    }

    pub fn len(&self) -> usize {
        self.fds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// The open fds in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &FdEntry)> {
        self.fds.iter().map(|(fd, e)| (*fd, e))
    }

    /// A new fd (or one replaced: the kernel closes what `fd` was first).
    pub fn insert(&mut self, fd: i32, target: Arc<Target>, cloexec: bool) {
        if fd >= 0 {
            self.fds.insert(fd, FdEntry { target, cloexec });
        }
    }

    pub fn remove(&mut self, fd: i32) -> Option<FdEntry> {
        self.fds.remove(&fd)
    }

    /// F_SETFD: whether the fd is closed at exec.
    pub fn set_cloexec(&mut self, fd: i32, cloexec: bool) {
        if let Some(e) = self.fds.get_mut(&fd) {
            e.cloexec = cloexec;
        }
    }

    /// A target already in the table that satisfies `pred` (the lowest fd holding one).
    pub fn find(&self, pred: impl Fn(&Target) -> bool) -> Option<Arc<Target>> {
        self.fds
            .values()
            .find(|e| pred(&e.target))
            .map(|e| e.target.clone())
    }

    /// dup/dup2/dup3/F_DUPFD: `new` now refers to what `old` does, with its own close-on-exec
    /// flag. When `old` is unknown here, `new` is forgotten rather than left stale (the caller
    /// can look it up). Returns whether `old` was known. `dup2(fd, fd)` changes nothing.
    pub fn dup(&mut self, old: i32, new: i32, cloexec: bool) -> bool {
        if old == new {
            return self.fds.contains_key(&old);
        }
        match self.fds.get(&old) {
            Some(e) => {
                let target = e.target.clone();
                self.insert(new, target, cloexec);
                true
            }
            None => {
                self.fds.remove(&new);
                false
            }
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

/// A process's filesystem context, shared by CLONE_FS: the cwd and the root directory, as
/// targets (a directory's path and identity). `None`: not known (a process vigil did not see
/// start, whose backend has not told).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsState {
    pub cwd: Option<Arc<Target>>,
    pub root: Option<Arc<Target>>,
}

impl FsState {
    pub fn new(cwd: Target, root: Target) -> FsState {
        FsState {
            cwd: Some(Arc::new(cwd)),
            root: Some(Arc::new(root)),
        }
    }

    /// The cwd's path, when it is known and the kernel can name it.
    pub fn cwd_path(&self) -> Option<&[u8]> {
        match self.cwd.as_deref() {
            Some(Target::File { path, .. }) => Some(path.as_bytes()),
            _ => None,
        }
    }

    /// The root's path, when known.
    pub fn root_path(&self) -> Option<&[u8]> {
        match self.root.as_deref() {
            Some(Target::File { path, .. }) => Some(path.as_bytes()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe(ino: u64) -> Arc<Target> {
        Arc::new(Target::Pipe { ino })
    }

    #[test]
    fn exec_drops_cloexec_and_dup_copies() {
        let mut t = FdTable::default();
        t.insert(3, pipe(7), true);
        t.insert(4, pipe(8), false);
        assert!(t.dup(4, 1, false));
        assert!(t.dup(3, 5, false), "dup'd fds do not inherit close-on-exec");
        t.exec();
        assert!(t.get(3).is_none());
        assert_eq!(t.target(1).map(|t| t.ino()), Some(8));
        assert_eq!(t.target(5).map(|t| t.ino()), Some(7));
        let fds: Vec<i32> = t.iter().map(|(fd, _)| fd).collect();
        assert_eq!(fds, vec![1, 4, 5]);
    }

    #[test]
    fn dup_of_an_unknown_fd_forgets_the_target_and_dup2_to_itself_is_nothing() {
        let mut t = FdTable::default();
        t.insert(4, pipe(8), true);
        t.insert(6, pipe(9), false);
        assert!(!t.dup(10, 6, false));
        assert!(t.get(6).is_none());
        assert!(t.dup(4, 4, false));
        assert!(
            t.get(4).is_some_and(|e| e.cloexec),
            "dup2(fd, fd) keeps the flag"
        );
        t.insert(-1, pipe(1), false);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn close_range_closes_or_marks() {
        let mut t = FdTable::default();
        for fd in 0..6 {
            t.insert(fd, pipe(fd as u64), false);
        }
        t.close_range(4, u32::MAX, true);
        t.set_cloexec(4, false);
        t.close_range(1, 2, false);
        let left: Vec<(i32, bool)> = t.iter().map(|(fd, e)| (fd, e.cloexec)).collect();
        assert_eq!(left, vec![(0, false), (3, false), (4, false), (5, true)]);
        t.exec();
        assert_eq!(t.len(), 3);
        assert_eq!(t.find(|x| x.ino() == 3).map(|x| x.ino()), Some(3));
        assert!(t.find(|x| x.ino() == 5).is_none());
    }
}
