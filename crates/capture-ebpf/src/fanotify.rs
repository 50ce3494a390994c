//! Refusing opens and execs of given files system-wide: fanotify permission events
//! (FAN_OPEN_PERM, FAN_OPEN_EXEC_PERM) on those files. The opener waits in the kernel until
//! vigil answers, so a deny is an EPERM before the file is open, and a kill happens before
//! the process can use it.
//!
//! (The BPF LSM would do this in the kernel side itself, but this kernel refuses every
//! trampoline-based program, LSM ones included: see docs/ebpf.md. fanotify is the kernel's own
//! on-access decision interface, made for this.)

use crate::{EbpfError, EnforceKind};
use nix::sys::fanotify::{
    EventFFlags, Fanotify, FanotifyResponse, InitFlags, MarkFlags, MaskFlags, Response,
};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

/// One file to refuse: its identity, the rule and what to do.
#[derive(Clone, Debug)]
pub struct Guarded {
    pub path: PathBuf,
    pub exec: bool,
    pub rule: u32,
    pub kind: EnforceKind,
    dev: u64,
    ino: u64,
}

/// What was done, for the action event: (pid, rule, kind, exec, path).
pub type Done = (u32, u32, EnforceKind, bool, PathBuf);

/// Who is acted on: the filters' processes (or all but vigil).
pub type Judge = Arc<dyn Fn(u32) -> bool + Send + Sync>;

pub struct Guard {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Guard {
    pub fn start(
        files: Vec<(PathBuf, bool, u32, EnforceKind)>,
        names: &[String],
        judge: Judge,
        done: Sender<Done>,
    ) -> Result<Guard, EbpfError> {
        let fan = Fanotify::init(
            InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC,
            EventFFlags::O_RDONLY | EventFFlags::O_LARGEFILE | EventFFlags::O_CLOEXEC,
        )
        .map_err(|e| EbpfError::Enforce(format!("fanotify (to refuse opens and execs): {e}")))?;
        let mut guarded = Vec::new();
        for (path, exec, rule, kind) in files {
            let rule_name = names.get(rule as usize).map_or("?", String::as_str);
            let md = std::fs::metadata(&path).map_err(|e| {
                EbpfError::Enforce(format!(
                    "rule {rule_name}: {}: {e} (its deny or kill names this file)",
                    path.display()
                ))
            })?;
            let mask = if exec {
                MaskFlags::FAN_OPEN_EXEC_PERM
            } else {
                MaskFlags::FAN_OPEN_PERM
            };
            fan.mark(
                MarkFlags::FAN_MARK_ADD,
                mask,
                nix::fcntl::AT_FDCWD,
                Some(&path),
            )
            .map_err(|e| {
                EbpfError::Enforce(format!(
                    "rule {rule_name}: fanotify mark on {}: {e}",
                    path.display()
                ))
            })?;
            guarded.push(Guarded {
                path,
                exec,
                rule,
                kind,
                dev: md.dev(),
                ino: md.ino(),
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-fanotify".into())
            .spawn(move || serve(fan, guarded, judge, done, stop2))
            .map_err(|e| EbpfError::Enforce(format!("cannot start the fanotify thread: {e}")))?;
        Ok(Guard {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    fan: Fanotify,
    guarded: Vec<Guarded>,
    judge: Judge,
    done: Sender<Done>,
    stop: Arc<AtomicBool>,
) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let me = std::process::id();
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(fan.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let Ok(events) = fan.read_events() else {
            continue;
        };
        for ev in events {
            let Some(fd) = ev.fd() else { continue };
            let pid = ev.pid() as u32;
            let st = nix::sys::stat::fstat(fd).ok();
            let exec = ev.mask().contains(MaskFlags::FAN_OPEN_EXEC_PERM);
            let hit = st.and_then(|st| {
                guarded
                    .iter()
                    .find(|g| g.dev == st.st_dev && g.ino == st.st_ino && g.exec == exec)
            });
            let mut allow = true;
            if let Some(g) = hit
                && pid != me
                && judge(pid)
            {
                allow = false;
                if matches!(g.kind, EnforceKind::Kill { .. }) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = done.send((pid, g.rule, g.kind, g.exec, g.path.clone()));
            }
            let r = if allow {
                Response::FAN_ALLOW
            } else {
                Response::FAN_DENY
            };
            let _ = fan.write_response(FanotifyResponse::new(fd, r));
        }
    }
}
