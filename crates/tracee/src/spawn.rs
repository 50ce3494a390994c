//! Starting a traced command: a builder for program, arguments, environment, working
//! directory and standard I/O, with steps the child runs after fork and before exec (a seccomp
//! filter, prctl, personality, a hook), seized with PTRACE_SEIZE before any of those steps run.
//!
//! The child stops itself (SIGSTOP) right after fork; the tracer seizes it, lets it go on and
//! consumes the SIGCONT that woke it, so the caller's first stop is one of the command's own.
//! Everything the child uses is prepared before fork: after fork it only makes
//! async-signal-safe calls. A failure in the child (a step, chdir, execve) is sent back over a
//! close-on-exec pipe, which reads EOF once exec succeeded, and becomes a typed
//! [`SpawnError`].
//!
//! The child keeps the caller's signal mask and ignored dispositions (exec resets handlers).
//! SIGPIPE is the exception Rust needs: its runtime ignores SIGPIPE, so by default the child
//! gets back the disposition the process inherited, recorded by [`remember_inherited_sigpipe`]
//! before the runtime started (default action when unknown).

use crate::Options;
use crate::error::SpawnError;
use crate::stop::{Event, Exit, Stop};
use crate::tracer::{Running, Stopped, Tracer, Wait};
use nix::errno::Errno;
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

/// SIGPIPE's disposition when the process started: 0 unknown, 1 default, 2 ignored.
static INHERITED_SIGPIPE: AtomicU8 = AtomicU8::new(0);

/// Records the SIGPIPE disposition this process inherited. Call it before Rust's runtime
/// starts (from an `.init_array` constructor), so a traced command starts with SIGPIPE as it
/// would have without the tracer: default, or ignored if the tracer's caller ignored it.
pub fn remember_inherited_sigpipe() {
    // SAFETY: a zeroed sigaction is a valid out-buffer; querying changes nothing.
    let ignored = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    };
    INHERITED_SIGPIPE.store(if ignored { 2 } else { 1 }, Ordering::Relaxed);
}

/// What the child does with SIGPIPE before exec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SigPipe {
    /// The disposition recorded by [`remember_inherited_sigpipe`] (default action if none).
    #[default]
    Inherited,
    Default,
    Ignore,
    /// Leave it as this process has it.
    Unchanged,
}

/// A standard stream of the child.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The tracer's own.
    #[default]
    Inherit,
    /// /dev/null.
    Null,
    /// This fd (e.g. one end of a pipe).
    Fd(OwnedFd),
}

/// A pre-exec hook: runs in the child after fork; must be async-signal-safe.
pub type Hook = Box<dyn FnMut() -> std::io::Result<()> + Send + Sync>;

/// A step the child runs after it is seized and before exec, in the order added.
enum Step {
    /// seccomp(SECCOMP_SET_MODE_FILTER); without CAP_SYS_ADMIN it sets no_new_privs first.
    Seccomp(Vec<libc::sock_filter>),
    Prctl(libc::c_int, [libc::c_ulong; 4]),
    /// personality(current | flags).
    Personality(libc::c_ulong),
    Hook(Hook),
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Seccomp(_) => "seccomp filter",
            Step::Prctl(..) => "prctl",
            Step::Personality(_) => "personality",
            Step::Hook(_) => "hook",
        }
    }
}

/// A command to start traced.
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    arg0: Option<OsString>,
    env_clear: bool,
    env: BTreeMap<OsString, Option<OsString>>,
    cwd: Option<PathBuf>,
    stdio: [Stdio; 3],
    steps: Vec<Step>,
    options: Options,
    sigpipe: SigPipe,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field(
                "steps",
                &self.steps.iter().map(Step::name).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Where the child failed, in the error pipe's message.
const STAGE_CHDIR: u32 = 1;
const STAGE_STEP: u32 = 2;
const STAGE_EXEC: u32 = 3;
const STAGE_STDIO: u32 = 4;

impl Command {
    /// `program` is looked up on PATH (the command's own PATH if set, else this process's)
    /// unless it contains a slash.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            arg0: None,
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            stdio: [Stdio::Inherit, Stdio::Inherit, Stdio::Inherit],
            steps: Vec::new(),
            options: Options::empty(),
            sigpipe: SigPipe::Inherited,
        }
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// argv[0] (default: the program as given).
    pub fn arg0(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.arg0 = Some(a.as_ref().to_owned());
        self
    }

    pub fn env(&mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> &mut Self {
        self.env
            .insert(k.as_ref().to_owned(), Some(v.as_ref().to_owned()));
        self
    }

    pub fn env_remove(&mut self, k: impl AsRef<OsStr>) -> &mut Self {
        self.env.insert(k.as_ref().to_owned(), None);
        self
    }

    /// Starts from an empty environment instead of this process's.
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    pub fn stdin(&mut self, s: Stdio) -> &mut Self {
        self.stdio[0] = s;
        self
    }

    pub fn stdout(&mut self, s: Stdio) -> &mut Self {
        self.stdio[1] = s;
        self
    }

    pub fn stderr(&mut self, s: Stdio) -> &mut Self {
        self.stdio[2] = s;
        self
    }

    /// The PTRACE_O_* options it is seized with (PTRACE_O_TRACEEXEC is always added: with
    /// PTRACE_SEIZE, an exec without it raises a SIGTRAP the program would receive).
    pub fn options(&mut self, o: Options) -> &mut Self {
        self.options = o;
        self
    }

    pub fn sigpipe(&mut self, s: SigPipe) -> &mut Self {
        self.sigpipe = s;
        self
    }

    /// Installs a seccomp BPF filter (the instructions as given). The steps added after it
    /// run under it, and stop at the tracer if it traps them.
    pub fn seccomp(&mut self, filter: Vec<libc::sock_filter>) -> &mut Self {
        self.steps.push(Step::Seccomp(filter));
        self
    }

    /// prctl(option, args...).
    pub fn prctl(&mut self, option: libc::c_int, args: [libc::c_ulong; 4]) -> &mut Self {
        self.steps.push(Step::Prctl(option, args));
        self
    }

    /// Adds persona flags (e.g. `libc::ADDR_NO_RANDOMIZE`) to the child's personality.
    pub fn personality(&mut self, flags: libc::c_ulong) -> &mut Self {
        self.steps.push(Step::Personality(flags));
        self
    }

    /// Runs `hook` in the child after fork, in order with the other steps.
    ///
    /// # Safety
    /// The hook runs in a forked copy of a possibly multi-threaded process: it may only make
    /// async-signal-safe calls (no allocation, no locks), as with
    /// `std::os::unix::process::CommandExt::pre_exec`.
    pub unsafe fn pre_exec(
        &mut self,
        hook: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
    ) -> &mut Self {
        self.steps.push(Step::Hook(Box::new(hook)));
        self
    }

    /// The environment the child will get, as `KEY=VALUE` strings: this process's in its own
    /// order (a program that prints its environment sees what it would see untraced), with
    /// the changes applied in place and new variables appended in key order.
    fn envp(&self) -> Result<Vec<CString>, SpawnError> {
        let mut vars: Vec<(OsString, OsString)> = if self.env_clear {
            Vec::new()
        } else {
            std::env::vars_os().collect()
        };
        for (k, v) in &self.env {
            let at = vars.iter().position(|(key, _)| key == k);
            match (v, at) {
                (Some(v), Some(i)) => vars[i].1 = v.clone(),
                (Some(v), None) => vars.push((k.clone(), v.clone())),
                (None, _) => vars.retain(|(key, _)| key != k),
            }
        }
        vars.into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).map_err(|e| SpawnError::Nul {
                    what: String::from_utf8_lossy(&e.into_vec()).into_owned(),
                })
            })
            .collect()
    }

    fn path_var(&self) -> Option<OsString> {
        match self.env.get(OsStr::new("PATH")) {
            Some(v) => v.clone(),
            None if self.env_clear => None,
            None => std::env::var_os("PATH"),
        }
    }
}

/// Finds `name` as a shell would: with a slash it is used as is, otherwise each directory of
/// `path` (default PATH if `None`) is tried. Not found: [`SpawnError::NotFound`]; found but
/// not an executable file: [`SpawnError::NotExecutable`].
pub fn resolve_program(name: &OsStr, path: Option<&OsStr>) -> Result<PathBuf, SpawnError> {
    let shown = name.to_string_lossy().into_owned();
    if name.is_empty() {
        return Err(SpawnError::NotFound { program: shown });
    }
    let executable = |m: &std::fs::Metadata| m.is_file() && m.permissions().mode() & 0o111 != 0;
    if name.as_bytes().contains(&b'/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Err(_) => Err(SpawnError::NotFound { program: shown }),
            Ok(m) if executable(&m) => Ok(p),
            Ok(_) => Err(SpawnError::NotExecutable {
                path: p.display().to_string(),
            }),
        };
    }
    let default = OsStr::new("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut not_executable = None;
    for dir in std::env::split_paths(path.unwrap_or(default)) {
        let candidate = if dir.as_os_str().is_empty() {
            Path::new(".").join(name)
        } else {
            dir.join(name)
        };
        if let Ok(m) = std::fs::metadata(&candidate) {
            if executable(&m) {
                return Ok(candidate);
            }
            not_executable.get_or_insert(candidate);
        }
    }
    match not_executable {
        Some(p) => Err(SpawnError::NotExecutable {
            path: p.display().to_string(),
        }),
        None => Err(SpawnError::NotFound { program: shown }),
    }
}

fn cstring(b: &[u8]) -> Result<CString, SpawnError> {
    CString::new(b).map_err(|_| SpawnError::Nul {
        what: String::from_utf8_lossy(b).into_owned(),
    })
}

fn sys(what: &'static str) -> impl Fn(Errno) -> SpawnError {
    move |errno| SpawnError::Sys { what, errno }
}

/// A spawned, traced child.
#[derive(Debug)]
pub struct Child {
    pid: i32,
    program: PathBuf,
    cwd: Option<PathBuf>,
    step_names: Vec<&'static str>,
    /// Read end of the error pipe: EOF once exec succeeded (or the child died).
    errors: OwnedFd,
}

impl Child {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The program path that was executed (after the PATH search).
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// What the child reported before it exited without exec, if anything. Call it once the
    /// child has exited or exec'd (it does not block then).
    pub fn exec_error(&self) -> Option<SpawnError> {
        let mut msg = [0u8; 12];
        // SAFETY: `msg` is a valid buffer of 12 bytes; the read end is ours.
        let n = unsafe { libc::read(self.errors.as_raw_fd(), msg.as_mut_ptr().cast(), 12) };
        if n != 12 {
            return None;
        }
        let word = |i: usize| u32::from_ne_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
        let (stage, index, errno) = (word(0), word(4), Errno::from_raw(word(8) as i32));
        Some(match stage {
            STAGE_CHDIR => SpawnError::Chdir {
                dir: self
                    .cwd
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                errno,
            },
            STAGE_STEP => SpawnError::PreExec {
                step: index as usize,
                what: self
                    .step_names
                    .get(index as usize)
                    .copied()
                    .unwrap_or("pre-exec step"),
                errno,
            },
            STAGE_STDIO => SpawnError::Sys {
                what: "dup2 of a standard stream",
                errno,
            },
            _ => SpawnError::Exec {
                program: self.program.display().to_string(),
                errno,
            },
        })
    }
}

impl Tracer {
    /// Forks `cmd`, seizes it with its options and lets it run its pre-exec steps and exec.
    /// Returns once the child is traced and running; its stops (seccomp stops of the steps
    /// after a filter, the exec event, ...) come with this tracer's waits. If it exits
    /// instead, [`Child::exec_error`] says why.
    pub fn spawn(&mut self, cmd: &mut Command) -> Result<(Child, Running), SpawnError> {
        let program = resolve_program(&cmd.program, cmd.path_var().as_deref())?;
        let c_program = cstring(program.as_os_str().as_bytes())?;
        let arg0 = cmd.arg0.clone().unwrap_or_else(|| cmd.program.clone());
        let c_args: Vec<CString> = std::iter::once(&arg0)
            .chain(cmd.args.iter())
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|c| c.as_ptr()).collect();
        argv.push(std::ptr::null());
        let c_env = cmd.envp()?;
        let mut envp: Vec<*const libc::c_char> = c_env.iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        let c_cwd = match &cmd.cwd {
            Some(d) => Some(cstring(d.as_os_str().as_bytes())?),
            None => None,
        };
        let null = if cmd.stdio.iter().any(|s| matches!(s, Stdio::Null)) {
            Some(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                    .map_err(|e| SpawnError::Sys {
                        what: "open /dev/null",
                        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                    })?,
            )
        } else {
            None
        };
        let stdio_fds: [i32; 3] = std::array::from_fn(|i| match &cmd.stdio[i] {
            Stdio::Inherit => -1,
            Stdio::Null => null.as_ref().map_or(-1, |f| f.as_raw_fd()),
            Stdio::Fd(fd) => fd.as_raw_fd(),
        });
        let progs: Vec<Option<libc::sock_fprog>> = cmd
            .steps
            .iter()
            .map(|s| match s {
                Step::Seccomp(f) => Some(libc::sock_fprog {
                    len: f.len().min(u16::MAX as usize) as u16,
                    filter: f.as_ptr().cast_mut(),
                }),
                _ => None,
            })
            .collect();
        let sigpipe = match cmd.sigpipe {
            SigPipe::Inherited => {
                if INHERITED_SIGPIPE.load(Ordering::Relaxed) == 2 {
                    Some(libc::SIG_IGN)
                } else {
                    Some(libc::SIG_DFL)
                }
            }
            SigPipe::Default => Some(libc::SIG_DFL),
            SigPipe::Ignore => Some(libc::SIG_IGN),
            SigPipe::Unchanged => None,
        };
        let options = cmd.options | Options::PTRACE_O_TRACEEXEC;
        let (err_read, err_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;

        // SAFETY: fork in a possibly multi-threaded process: the child below only makes
        // async-signal-safe calls on data prepared above (and runs the caller's hooks, which
        // `pre_exec`'s contract makes async-signal-safe).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(SpawnError::Sys {
                what: "fork",
                errno: Errno::last(),
            });
        }
        if pid == 0 {
            // SAFETY: in the child; see `child_main`.
            unsafe {
                child_main(
                    err_write.as_raw_fd(),
                    sigpipe,
                    stdio_fds,
                    c_cwd.as_ref(),
                    &mut cmd.steps,
                    &progs,
                    &c_program,
                    &argv,
                    &envp,
                )
            }
        }
        drop(err_write);
        let child = Child {
            pid,
            program,
            cwd: cmd.cwd.clone(),
            step_names: cmd.steps.iter().map(Step::name).collect(),
            errors: err_read,
        };
        let kill_and_reap = || {
            // SAFETY: plain syscalls on our own child's pid.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
            }
        };
        // Wait for the child's own SIGSTOP, then seize it.
        let mut status = 0;
        // SAFETY: valid out-pointer; our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED | libc::__WALL) };
        if r != pid || !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGSTOP {
            let detail = if r == pid && libc::WIFEXITED(status) {
                match child.exec_error() {
                    Some(e) => return Err(e),
                    None => format!("exited with {}", libc::WEXITSTATUS(status)),
                }
            } else {
                format!("raw wait status {status:#x}")
            };
            kill_and_reap();
            return Err(SpawnError::Startup {
                detail: format!("the child did not stop before exec: {detail}"),
            });
        }
        if let Err(errno) = crate::raw::seize(pid, options.bits()) {
            kill_and_reap();
            return Err(SpawnError::Attach { pid, errno });
        }
        // SAFETY: plain syscall on our own child.
        if unsafe { libc::kill(pid, libc::SIGCONT) } != 0 {
            let errno = Errno::last();
            kill_and_reap();
            return Err(SpawnError::Sys {
                what: "kill(SIGCONT)",
                errno,
            });
        }
        // The seize turns the stop into a trap-stop and the SIGCONT is then reported as a
        // signal: both are ours, not the command's.
        loop {
            match self.wait_tid(pid) {
                Ok(Wait::Stopped(s)) => match *s.stop() {
                    Stop::Signal { sig, .. } if sig == libc::SIGCONT => {
                        return Ok((child, s.cont()?));
                    }
                    Stop::GroupStop { .. } | Stop::Interrupt => {
                        s.cont()?;
                    }
                    other => {
                        drop(s);
                        kill_and_reap();
                        return Err(SpawnError::Startup {
                            detail: format!("unexpected stop before exec: {other:?}"),
                        });
                    }
                },
                Ok(Wait::Exited { exit, .. }) => {
                    return Err(SpawnError::Startup {
                        detail: format!("the child {exit} before exec"),
                    });
                }
                Err(e) => {
                    kill_and_reap();
                    return Err(e.into());
                }
            }
        }
    }

    /// [`Tracer::spawn`], then runs the child up to its exec: seccomp and syscall stops and
    /// stops of its pre-exec steps are resumed, signals delivered. Returns the child stopped
    /// at its exec event ([`Event::Exec`]), or its error if it exited without exec.
    pub fn spawn_until_exec(&mut self, cmd: &mut Command) -> Result<(Child, Stopped), SpawnError> {
        let (child, _running) = self.spawn(cmd)?;
        loop {
            match self.wait_tid(child.pid)? {
                Wait::Stopped(s) => match *s.stop() {
                    Stop::Event(Event::Exec { .. }) => return Ok((child, s)),
                    Stop::Signal { .. } => {
                        s.deliver(crate::Resume::Cont)?;
                    }
                    _ => {
                        s.cont()?;
                    }
                },
                Wait::Exited { exit, .. } => {
                    return Err(child.exec_error().unwrap_or(SpawnError::Startup {
                        detail: match exit {
                            Exit::Exited(c) => format!("the child exited with {c} before exec"),
                            Exit::Killed { signal, .. } => {
                                format!("the child was killed by signal {signal} before exec")
                            }
                        },
                    }));
                }
            }
        }
    }
}

/// The child between fork and exec. Only async-signal-safe calls.
///
/// # Safety
/// Must only be called in the child of a fork, with pointers into live data of the parent's
/// copy of the address space.
#[allow(clippy::too_many_arguments)]
unsafe fn child_main(
    err_fd: i32,
    sigpipe: Option<libc::sighandler_t>,
    stdio: [i32; 3],
    cwd: Option<&CString>,
    steps: &mut [Step],
    progs: &[Option<libc::sock_fprog>],
    program: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: (the whole body) only async-signal-safe libc calls, on data prepared before the
    // fork and valid in this copy of the address space.
    unsafe {
        let fail = |stage: u32, index: u32, errno: i32| -> ! {
            let mut msg = [0u8; 12];
            msg[..4].copy_from_slice(&stage.to_ne_bytes());
            msg[4..8].copy_from_slice(&index.to_ne_bytes());
            msg[8..].copy_from_slice(&errno.to_ne_bytes());
            libc::write(err_fd, msg.as_ptr().cast(), 12);
            libc::_exit(if stage == STAGE_EXEC && errno == libc::ENOENT {
                127
            } else {
                126
            });
        };
        let errno = || *libc::__errno_location();
        if let Some(h) = sigpipe {
            libc::signal(libc::SIGPIPE, h);
        }
        for (target, &fd) in stdio.iter().enumerate() {
            if fd < 0 {
                continue;
            }
            if fd == target as i32 {
                // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else if libc::dup2(fd, target as i32) < 0 {
                fail(STAGE_STDIO, target as u32, errno());
            }
        }
        if let Some(dir) = cwd
            && libc::chdir(dir.as_ptr()) != 0
        {
            fail(STAGE_CHDIR, 0, errno());
        }
        // Wait here until the tracer has seized us. The SIGCONT that wakes us must reach the
        // tracer, which takes it out, even when the caller's mask blocks it (it would stay
        // pending into the command, and the tracer wait for it in vain): unblocked for the
        // stop, then the caller's mask is back.
        let mut cont: libc::sigset_t = std::mem::zeroed();
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut cont);
        libc::sigaddset(&mut cont, libc::SIGCONT);
        libc::sigprocmask(libc::SIG_UNBLOCK, &cont, &mut mask);
        libc::kill(libc::getpid(), libc::SIGSTOP);
        libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
        for (i, step) in steps.iter_mut().enumerate() {
            let ok = match step {
                Step::Seccomp(_) => {
                    let prog = match progs.get(i) {
                        Some(Some(p)) => p as *const libc::sock_fprog,
                        _ => fail(STAGE_STEP, i as u32, libc::EINVAL),
                    };
                    // Without CAP_SYS_ADMIN a filter needs no_new_privs; as root keep
                    // setuid programs' semantics by not setting it.
                    libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, prog) == 0
                        || (errno() == libc::EACCES
                            && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                            && libc::syscall(
                                libc::SYS_seccomp,
                                libc::SECCOMP_SET_MODE_FILTER,
                                0,
                                prog,
                            ) == 0)
                }
                Step::Prctl(op, a) => libc::prctl(*op, a[0], a[1], a[2], a[3]) >= 0,
                Step::Personality(flags) => {
                    let cur = libc::personality(0xffff_ffff);
                    cur >= 0 && libc::personality(cur as libc::c_ulong | *flags) >= 0
                }
                Step::Hook(h) => match h() {
                    Ok(()) => true,
                    Err(e) => {
                        *libc::__errno_location() = e.raw_os_error().unwrap_or(libc::EINVAL);
                        false
                    }
                },
            };
            if !ok {
                fail(STAGE_STEP, i as u32, errno());
            }
        }
        libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(STAGE_EXEC, 0, errno())
    }
}
