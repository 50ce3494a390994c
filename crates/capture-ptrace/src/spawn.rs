//! Starting the traced command: resolve it like a shell, fork, let the child stop itself so vigil
//! can PTRACE_SEIZE it, then install the seccomp filter and exec.

use crate::PtraceError;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// SIGPIPE's disposition when vigil started, before Rust's runtime set it to ignored:
/// 0 not known (taken as the default action), 1 default, 2 ignored.
static INHERITED_SIGPIPE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Records the SIGPIPE disposition vigil inherited. Call it before Rust's runtime starts (the
/// `vigil` binary does, from an `.init_array` constructor), so a traced command starts as it
/// would have without vigil: with SIGPIPE at its default action, or ignored if vigil's caller
/// ignored it (`nohup`, a shell started with it ignored).
pub fn remember_inherited_sigpipe() {
    // SAFETY: a zeroed sigaction is a valid out-buffer; querying changes nothing.
    let ignored = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    };
    INHERITED_SIGPIPE.store(
        if ignored { 2 } else { 1 },
        std::sync::atomic::Ordering::Relaxed,
    );
}

fn inherited_sigpipe_ignored() -> bool {
    INHERITED_SIGPIPE.load(std::sync::atomic::Ordering::Relaxed) == 2
}

/// Where the child failed, sent back over the error pipe.
pub const STAGE_SECCOMP: u32 = 1;
pub const STAGE_EXEC: u32 = 2;

/// Finds the program as a shell would: a name with a slash is used as is, otherwise PATH is
/// searched. Not found → 127, found but not executable → 126 (as sh reports them).
pub fn resolve_program(name: &OsStr) -> Result<PathBuf, PtraceError> {
    let shown = name.to_string_lossy().into_owned();
    if name.is_empty() {
        return Err(PtraceError::CommandNotFound { command: shown });
    }
    if name.as_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Err(_) => Err(PtraceError::CommandNotFound { command: shown }),
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(p),
            Ok(_) => Err(PtraceError::NotExecutable {
                path: p.display().to_string(),
            }),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| {
        OsString::from("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    });
    let mut not_executable = None;
    for dir in std::env::split_paths(&path) {
        let candidate = if dir.as_os_str().is_empty() {
            Path::new(".").join(name)
        } else {
            dir.join(name)
        };
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            not_executable.get_or_insert(candidate);
        }
    }
    match not_executable {
        Some(p) => Err(PtraceError::NotExecutable {
            path: p.display().to_string(),
        }),
        None => Err(PtraceError::CommandNotFound { command: shown }),
    }
}

pub struct Spawned {
    pub pid: Pid,
    /// Read end of the child's error pipe: EOF once exec succeeded.
    pub errors: OwnedFd,
}

/// Forks the command, seizes it with `options`, and returns once it is traced and running
/// towards its exec.
pub fn spawn(
    program: &Path,
    argv: &[OsString],
    filter: &[libc::sock_filter],
    options: nix::sys::ptrace::Options,
) -> Result<Spawned, PtraceError> {
    // Everything the child needs is prepared before fork: after fork it may only make
    // async-signal-safe calls.
    let c_program =
        CString::new(program.as_os_str().as_bytes()).map_err(|_| PtraceError::CommandNotFound {
            command: program.display().to_string(),
        })?;
    let c_args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| PtraceError::BadArgument)?;
    let mut arg_ptrs: Vec<*const libc::c_char> = c_args.iter().map(|c| c.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let (err_read, err_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| PtraceError::Sys {
            what: "pipe2",
            errno: e,
        })?;

    // SAFETY: the child only calls async-signal-safe functions (signal, kill, prctl, syscall,
    // execve, write, _exit) and reads an atomic, on data prepared above.
    match unsafe { fork() }.map_err(|e| PtraceError::Sys {
        what: "fork",
        errno: e,
    })? {
        ForkResult::Child => unsafe {
            let fail = |stage: u32| -> ! {
                let errno = *libc::__errno_location();
                let mut msg = [0u8; 8];
                msg[..4].copy_from_slice(&stage.to_ne_bytes());
                msg[4..].copy_from_slice(&errno.to_ne_bytes());
                libc::write(err_write.as_raw_fd(), msg.as_ptr().cast(), 8);
                libc::_exit(if stage == STAGE_EXEC && errno == libc::ENOENT {
                    127
                } else {
                    126
                });
            };
            // The command starts with the signal setup vigil itself was started with: the
            // blocked mask is inherited as it is (vigil blocks nothing), handlers are reset by
            // exec, and SIGPIPE, which Rust's runtime ignored in vigil, gets back the
            // disposition vigil inherited (see `inherited_sigpipe_ignored`).
            if !inherited_sigpipe_ignored() {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            }
            // Wait here until the parent has seized us.
            libc::kill(libc::getpid(), libc::SIGSTOP);
            // Without CAP_SYS_ADMIN a filter needs no_new_privs; as root keep setuid semantics.
            if libc::syscall(
                libc::SYS_seccomp,
                1, /* SECCOMP_SET_MODE_FILTER */
                0,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const libc::sock_fprog) != 0 {
                    fail(STAGE_SECCOMP);
                }
            }
            unsafe extern "C" {
                static environ: *const *const libc::c_char;
            }
            libc::execve(c_program.as_ptr(), arg_ptrs.as_ptr(), environ);
            fail(STAGE_EXEC);
        },
        ForkResult::Parent { child } => {
            drop(err_write);
            match waitpid(child, Some(WaitPidFlag::WSTOPPED)) {
                Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
                other => {
                    let _ = kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    return Err(PtraceError::Startup {
                        detail: format!("child did not stop as expected: {other:?}"),
                    });
                }
            }
            if let Err(e) = nix::sys::ptrace::seize(child, options) {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(PtraceError::attach(child.as_raw(), e));
            }
            kill(child, Signal::SIGCONT).map_err(|e| PtraceError::Sys {
                what: "kill(SIGCONT)",
                errno: e,
            })?;
            Ok(Spawned {
                pid: child,
                errors: err_read,
            })
        }
    }
}

/// What the child reported before exiting without exec, if anything.
pub fn read_child_error(fd: &OwnedFd) -> Option<(u32, i32)> {
    let mut msg = [0u8; 8];
    // SAFETY: `msg` is a valid buffer of 8 bytes. The write end is closed, so this cannot block.
    let n = unsafe { libc::read(fd.as_raw_fd(), msg.as_mut_ptr().cast(), 8) };
    if n != 8 {
        return None;
    }
    let stage = u32::from_ne_bytes(msg[..4].try_into().ok()?);
    let errno = i32::from_ne_bytes(msg[4..].try_into().ok()?);
    Some((stage, errno))
}
