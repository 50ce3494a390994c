//! The recorder's per-thread filesystem state: the fd table (procstate's [`FdTable`], kept in
//! step with open/close/dup/fcntl/pipe/socket/accept/exec/fork so every fd in an event can be
//! shown as what it refers to) and the cwd and root with the O_PATH handles vigil walks paths
//! from (walk.rs), which are the recorder's own: a pure model holds no fds.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;
use vigil_event::Target;
use vigil_procstate::FdTable;

/// A thread's fd table (procstate's: target and close-on-exec per fd), shared by the threads
/// of a process and by CLONE_FILES children, copied on fork; exec drops close-on-exec fds.
pub type SharedFds = Rc<RefCell<FdTable>>;

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
