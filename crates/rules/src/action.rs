//! Acting on matches: `exec` runs a program (never through a shell) with the match as JSON on
//! its stdin and in its environment, detached so tracing never waits for it; kill/stop/deny
//! become the backend's verdict. Every action taken is reported for logging.

use crate::compile::{CAction, Compiled};
use crate::engine::Match;
use crate::fields::Val;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;
use vigil_capture::Verdict;
use vigil_event::{Action, Str};

/// At most this many exec actions per rule per second; the rest are counted, not run.
pub const EXEC_PER_SECOND: u32 = 10;

/// The process a match is about, as the actor finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// Traced and running: kill, stop and deny apply.
    Live,
    /// Its own exit completed the match: there is nothing left to kill or stop.
    Exited,
    /// Offline (`vigil match` over a log): only exec applies.
    Recorded,
}

pub struct Actor {
    /// Per rule: start of the current one-second window and execs in it.
    windows: Vec<(Instant, u32)>,
    pub execs: u64,
    pub suppressed: u64,
    pub failed: u64,
    /// Run exec actions at all (offline `match --no-actions` turns them off).
    pub exec_enabled: bool,
}

/// The match in JSON: rule, priority, tags, RETURN values by name, seqs of matched events.
pub fn match_json(c: &Compiled, m: &Match) -> serde_json::Value {
    let rule = &c.rules[m.rule];
    let mut values = serde_json::Map::new();
    for ((label, _), v) in rule.returns.iter().zip(&m.values) {
        values.insert(label.clone(), v.to_json());
    }
    let mut j = serde_json::json!({
        "match": m.number,
        "rule": rule.name,
        "priority": rule.priority,
        "tags": rule.tags,
        "values": values,
        "seqs": m.seqs,
        "pid": m.pid,
        "tid": m.tid,
        "time_ns": m.time_ns,
    });
    if m.seqs_omitted > 0 {
        j["seqs_omitted"] = m.seqs_omitted.into();
    }
    if let Some(o) = &m.output {
        j["output"] = o.clone().into();
    }
    j
}

/// `match #N { v1 v2 ... }` as in the source design.
pub fn match_text(c: &Compiled, m: &Match) -> String {
    let vals: Vec<String> = m.values.iter().map(|v| v.to_string()).collect();
    let mut s = format!("match #{} {{ {} }}", m.number, vals.join(" "));
    if c.rules.len() > 1 {
        s.push_str(&format!("  # {}", c.rules[m.rule].name));
    }
    if let Some(o) = &m.output {
        s.push_str(&format!("  {o}"));
    }
    s
}

impl Default for Actor {
    fn default() -> Self {
        Actor {
            windows: Vec::new(),
            execs: 0,
            suppressed: 0,
            failed: 0,
            exec_enabled: true,
        }
    }
}

impl Actor {
    /// Carries out a match's actions on the process `m.pid`, in the state `target`;
    /// `at_entry`: the match completed on a syscall entry, which can still be denied.
    pub fn act(
        &mut self,
        c: &Compiled,
        m: &Match,
        target: TargetState,
        at_entry: bool,
    ) -> (Verdict, Vec<Action>) {
        let online = target == TargetState::Live;
        let rule = &c.rules[m.rule];
        let mut verdict = Verdict::Continue;
        let mut taken = Vec::new();
        let mut exec_i = 0;
        let record = |action: &str, detail: String| Action {
            action: Str::from(action),
            by: Str::from(rule.name.as_str()),
            target_pid: m.pid,
            detail: Str::from(detail),
        };
        for a in &rule.actions {
            match a {
                CAction::Kill if online => {
                    verdict = Verdict::Kill;
                    taken.push(record("kill", format!("match #{}", m.number)));
                }
                CAction::Stop if online => {
                    if verdict != Verdict::Kill {
                        verdict = Verdict::Stop;
                    }
                    taken.push(record("stop", format!("match #{}", m.number)));
                }
                CAction::Kill | CAction::Stop if target == TargetState::Exited => {
                    let what = if matches!(a, CAction::Kill) {
                        "kill"
                    } else {
                        "stop"
                    };
                    taken.push(record(
                        "skipped",
                        format!(
                            "{what} for match #{}: the process had already exited",
                            m.number
                        ),
                    ));
                }
                CAction::Deny(errno) if online && at_entry => {
                    if verdict == Verdict::Continue {
                        verdict = Verdict::Deny(*errno);
                    }
                    let name = syscalls::Errno::new(*errno)
                        .name()
                        .unwrap_or("?")
                        .to_string();
                    taken.push(record("deny", name));
                }
                CAction::Exec(_) => {
                    let args = m.exec.get(exec_i).cloned().unwrap_or_default();
                    exec_i += 1;
                    if !self.exec_enabled {
                        continue;
                    }
                    match self.exec(m.rule, &args, &match_json(c, m)) {
                        Ok(true) => taken.push(record(
                            "exec",
                            args.iter()
                                .map(|v| v.to_string())
                                .collect::<Vec<_>>()
                                .join(" "),
                        )),
                        Ok(false) => {}
                        Err(e) => {
                            self.failed += 1;
                            taken.push(record(
                                "exec-failed",
                                format!(
                                    "{}: {e}",
                                    args.first().map(|v| v.to_string()).unwrap_or_default()
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        (verdict, taken)
    }

    /// Runs a program; Ok(false) when the rate limit held it back.
    fn exec(
        &mut self,
        rule: usize,
        args: &[Val],
        json: &serde_json::Value,
    ) -> std::io::Result<bool> {
        if self.windows.len() <= rule {
            self.windows.resize(rule + 1, (Instant::now(), 0));
        }
        let (start, n) = &mut self.windows[rule];
        if start.elapsed().as_secs() >= 1 {
            *start = Instant::now();
            *n = 0;
        }
        if *n >= EXEC_PER_SECOND {
            self.suppressed += 1;
            return Ok(false);
        }
        *n += 1;
        // The values themselves, not their human form (a path keeps its backslashes).
        let argv: Vec<String> = args
            .iter()
            .map(|v| match v {
                Val::Str(s) => s.to_text().into_owned(),
                v => v.to_string(),
            })
            .collect();
        let program = resolve(argv.first().map(String::as_str).unwrap_or(""))?;
        let body = serde_json::to_vec(json).unwrap_or_default();
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        env.push((
            "VIGIL_MATCH".into(),
            String::from_utf8_lossy(&body).into_owned(),
        ));
        env.push((
            "VIGIL_RULE".into(),
            json["rule"].as_str().unwrap_or("").into(),
        ));
        env.push(("VIGIL_PID".into(), json["pid"].to_string()));
        env.push(("VIGIL_MATCH_NUMBER".into(), json["match"].to_string()));
        spawn_detached(&program, &argv, &env, &body)?;
        self.execs += 1;
        Ok(true)
    }
}

/// The program as a shell would find it (a name with a slash as is, otherwise on PATH).
fn resolve(name: &str) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let not_found = || {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{name}: program not found"),
        )
    };
    if name.is_empty() {
        return Err(not_found());
    }
    if name.contains('/') {
        return Ok(name.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(not_found)
}

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "argument contains a NUL byte",
        )
    })
}

/// Starts `program` in its own session (its stdout goes to our stderr), as a grandchild (so it is never this process's child:
/// the ptrace loop reaps with waitpid(-1) and must not see it), with `stdin_data` on stdin.
fn spawn_detached(
    program: &std::path::Path,
    argv: &[String],
    env: &[(String, String)],
    stdin_data: &[u8],
) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let prog = CString::new(program.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "program path contains a NUL byte",
        )
    })?;
    let c_args: Vec<CString> = argv.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
    let c_env: Vec<CString> = env
        .iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect();
    let mut arg_ptrs: Vec<*const libc::c_char> = c_args.iter().map(|c| c.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = c_env.iter().map(|c| c.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let (r, w): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    // SAFETY: between fork and exec only async-signal-safe calls, on data prepared above.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        // SAFETY: in the forked child only async-signal-safe calls (setsid, fork, dup2,
        // execve, _exit) on pointers into CStrings and arrays built before the fork, which
        // stay alive until execve or _exit.
        nix::unistd::ForkResult::Child => unsafe {
            libc::setsid();
            if libc::fork() == 0 {
                libc::dup2(r.as_raw_fd(), 0);
                // What it prints must not mix with the matches on our stdout.
                libc::dup2(2, 1);
                libc::execve(prog.as_ptr(), arg_ptrs.as_ptr(), env_ptrs.as_ptr());
                libc::_exit(127);
            }
            libc::_exit(0);
        },
        nix::unistd::ForkResult::Parent { child } => {
            drop(r);
            let _ = nix::sys::wait::waitpid(child, None);
            // The match is small; a program that does not read it must not block us.
            let _ = nix::fcntl::fcntl(
                &w,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            let _ = nix::unistd::write(&w, stdin_data);
            Ok(())
        }
    }
}
