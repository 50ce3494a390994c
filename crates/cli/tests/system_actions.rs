//! `vigil watch --system`: rules that act on the whole machine before the call goes ahead.
//! A deny on one path makes `cat` of it fail with EPERM while other paths open; a kill rule
//! stops a process that reads a secret and then connects, before anything leaves (the
//! listener never sees the connection); a deny the backend cannot enforce is refused when the
//! rules are loaded. Every process here is started outside vigil, after it attached, in the
//! test's own cgroup (the filter).

mod common;

use common::{read_log, text, vigil};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use vigil_event::EventKind;

fn require_root() {
    let caps = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string()))
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0);
    assert!(
        caps & (1 << 21) != 0,
        "PRIVILEGE MISSING: these tests load eBPF programs and need root (CAP_SYS_ADMIN); run them as root"
    );
}

/// A fresh cgroup v2 directory for one test (removed on drop).
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(name: &str) -> Cgroup {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let root = mounts
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
            })
            .expect("a cgroup v2 hierarchy (the system tests filter by cgroup)");
        let d = root.join(format!("vigil-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Cgroup(d)
    }

    /// `CMD...` started inside the cgroup.
    fn command(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec \"$@\"",
                self.0.display()
            ))
            .arg("sh")
            .args(cmd);
        c
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `vigil watch --system` running, ready (its stderr said so).
struct Watch {
    child: Child,
    err: std::thread::JoinHandle<String>,
}

fn watch(rules: &Path, cg: &Cgroup, log: &Path) -> Watch {
    let mut child = vigil()
        .args(["watch", "--system", "--rules"])
        .arg(rules)
        .arg("--cgroup")
        .arg(&cg.0)
        .arg("-o")
        .arg(log)
        .args(["--duration", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = std::thread::spawn(move || {
        let mut all = String::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if l.contains("recording the machine") {
                let _ = tx.send(());
            }
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "vigil watch --system did not start: {}",
            err.join().unwrap()
        );
    }
    Watch { child, err }
}

impl Watch {
    /// Stops it as Ctrl-C does; its stdout (the matches) and stderr.
    fn stop(mut self) -> (String, String) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let mut out = String::new();
        use std::io::Read;
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let st = self.child.wait().unwrap();
        let err = self.err.join().unwrap();
        assert!(st.success(), "vigil watch --system failed: {err}");
        (out, err)
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-sysact-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.canonicalize().unwrap()
}

#[test]
fn a_deny_on_one_path_makes_cat_fail_with_eperm_while_other_paths_open() {
    require_root();
    let dir = scratch("deny");
    let cg = Cgroup::new("deny");
    std::fs::write(dir.join("secret"), "s3cr3t\n").unwrap();
    std::fs::write(dir.join("other"), "fine\n").unwrap();
    let rules = dir.join("deny.rules");
    std::fs::write(
        &rules,
        format!(
            "RULE no_secret\nPATTERN {{ [openat.entry:o] }}\nWHERE {{ o.path == \"{}\" }}\nDO {{ deny(EPERM) }}\n",
            dir.join("secret").display()
        ),
    )
    .unwrap();
    let log = dir.join("w.vlog");
    let w = watch(&rules, &cg, &log);
    let denied = cg
        .command(&["cat", dir.join("secret").to_str().unwrap()])
        .output()
        .unwrap();
    let other = cg
        .command(&["cat", dir.join("other").to_str().unwrap()])
        .output()
        .unwrap();
    // Outside the filter (not in the cgroup): the rule is not about it.
    let outside = Command::new("cat")
        .arg(dir.join("secret"))
        .output()
        .unwrap();
    let (_, err) = w.stop();
    assert!(!denied.status.success(), "cat of the secret was refused");
    assert!(
        text(&denied.stderr).contains("Operation not permitted"),
        "EPERM: {}",
        text(&denied.stderr)
    );
    assert!(denied.stdout.is_empty(), "nothing of the secret was read");
    assert!(other.status.success(), "{}", text(&other.stderr));
    assert_eq!(text(&other.stdout), "fine\n");
    assert!(
        outside.status.success(),
        "a process outside the filter opens it"
    );
    let events = read_log(&log);
    let deny = events.iter().find_map(|e| match &e.kind {
        EventKind::Action(a) if a.action.as_bytes() == b"deny" => Some(a),
        _ => None,
    });
    let deny = deny.unwrap_or_else(|| panic!("a deny action in the log: {err}"));
    assert_eq!(deny.by.as_bytes(), b"no_secret");
    // The refused open is recorded with its EPERM.
    assert!(
        events.iter().any(|e| match &e.kind {
            EventKind::SyscallExit(x) =>
                x.errno() == Some(1)
                    && e.arg("path")
                        .and_then(|p| p.as_str())
                        .is_some_and(|p| p.as_bytes().ends_with(b"/secret")),
            _ => false,
        }),
        "the refused openat is in the log with EPERM"
    );
}

/// A TCP listener that counts the connections it sees.
fn listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn accepted(l: &std::net::TcpListener) -> usize {
    let mut n = 0;
    while l.accept().is_ok() {
        n += 1;
    }
    n
}

const CONNECTOR: &str = r#"
import socket, sys
if sys.argv[1] != "-":
    data = open(sys.argv[1]).read()
else:
    data = "nothing secret"
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
s.sendall(data.encode())
print("sent")
"#;

#[test]
fn a_kill_rule_stops_a_reader_then_connector_before_anything_leaves() {
    require_root();
    let dir = scratch("kill");
    let cg = Cgroup::new("kill");
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cr3t\n").unwrap();
    std::fs::write(dir.join("c.py"), CONNECTOR).unwrap();
    let rules = dir.join("kill.rules");
    std::fs::write(
        &rules,
        format!(
            "RULE exfil\nPATTERN {{ [read:r, connect:c] }}\nWHERE {{ [ProcessId], r.fd.path == \"{}\" }}\nDO {{ kill }}\n",
            secret.display()
        ),
    )
    .unwrap();
    let log = dir.join("w.vlog");
    let w = watch(&rules, &cg, &log);
    let (l, port) = listener();
    let port_s = port.to_string();
    let py = dir.join("c.py");
    let thief = cg
        .command(&[
            "python3",
            py.to_str().unwrap(),
            secret.to_str().unwrap(),
            &port_s,
        ])
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let leaked = accepted(&l);
    // The same program without reading the secret connects and sends.
    let honest = cg
        .command(&["python3", py.to_str().unwrap(), "-", &port_s])
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let honest_conns = accepted(&l);
    let (out, err) = w.stop();
    assert_eq!(
        thief.status.signal(),
        Some(9),
        "the reader-then-connector is killed: {:?} {}",
        thief.status,
        text(&thief.stdout)
    );
    assert!(!text(&thief.stdout).contains("sent"));
    assert_eq!(
        leaked, 0,
        "no connection reached the listener before the kill"
    );
    assert!(honest.status.success(), "{}", text(&honest.stderr));
    assert_eq!(text(&honest.stdout), "sent\n");
    assert_eq!(honest_conns, 1, "the honest connection got through");
    assert!(out.contains("match #1"), "the match is printed: {out}");
    let events = read_log(&log);
    let kill = events.iter().any(|e| match &e.kind {
        EventKind::Action(a) => {
            a.action.as_bytes() == b"kill" && a.detail.to_string().contains("bpf_send_signal")
        }
        _ => false,
    });
    // Sent by the kernel side at the connect's entry (not by vigil after the hook refused
    // the connect, which a quick program can outrun): checked by its detail.
    assert!(
        kill,
        "the kernel's kill at the connect's entry is logged: {err}"
    );
}

#[test]
fn a_deny_the_backend_cannot_enforce_is_refused_at_load_with_why() {
    require_root();
    let dir = scratch("refuse");
    let rules = dir.join("two.rules");
    std::fs::write(
        &rules,
        "RULE two_steps\nPATTERN { [openat:a, openat.entry:b] }\nWHERE { [ProcessId] }\nDO { deny(EPERM) }\n",
    )
    .unwrap();
    let out = vigil()
        .args(["watch", "--system", "--duration", "5s", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("two_steps")
            && err.contains("cannot be enforced system-wide")
            && err.contains("more than one event"),
        "{err}"
    );
    // A deny on a call the backend has no check point for.
    std::fs::write(
        &rules,
        "RULE no_unlink\nPATTERN { [unlink.entry:u] }\nDO { deny(EPERM) }\n",
    )
    .unwrap();
    let out = vigil()
        .args(["watch", "--system", "--duration", "5s", "--rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not an open, exec or connect"),
        "{}",
        text(&out.stderr)
    );
}

/// `deny(EPERM)` on an exec of a named file (fanotify's exec permission) and on a connect to
/// one port (the cgroup connect hook): the exec fails with EPERM while another program runs;
/// the connect to that port is refused before anything reaches the listener while one to
/// another port gets through.
#[test]
fn a_deny_on_an_exec_and_on_a_connect_port_refuses_only_those() {
    require_root();
    let dir = scratch("deny-exec-net");
    let cg = Cgroup::new("deny-exec-net");
    let banned = dir.join("banned");
    std::fs::copy("/bin/true", &banned).unwrap();
    let (blocked, blocked_port) = listener();
    let (open, open_port) = listener();
    std::fs::write(dir.join("c.py"), CONNECTOR).unwrap();
    let rules = dir.join("deny.rules");
    std::fs::write(
        &rules,
        format!(
            "RULE no_banned\nPATTERN {{ [execve.entry:e] }}\nWHERE {{ e.path == \"{}\" }}\nDO {{ deny(EPERM) }}\n\n\
             RULE no_port\nPATTERN {{ [connect.entry:c] }}\nWHERE {{ c.addr.port == {blocked_port} }}\nDO {{ deny(EPERM) }}\n",
            banned.display()
        ),
    )
    .unwrap();
    let log = dir.join("w.vlog");
    let w = watch(&rules, &cg, &log);
    let exec_banned = cg.command(&[banned.to_str().unwrap()]).output().unwrap();
    let exec_other = cg.command(&["/bin/true"]).output().unwrap();
    let py = dir.join("c.py");
    let to_blocked = cg
        .command(&[
            "python3",
            py.to_str().unwrap(),
            "-",
            &blocked_port.to_string(),
        ])
        .output()
        .unwrap();
    let to_open = cg
        .command(&["python3", py.to_str().unwrap(), "-", &open_port.to_string()])
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (blocked_conns, open_conns) = (accepted(&blocked), accepted(&open));
    let (_, err) = w.stop();
    assert!(
        !exec_banned.status.success(),
        "the banned program did not run"
    );
    assert!(
        text(&exec_banned.stderr).contains("Permission denied")
            || text(&exec_banned.stderr).contains("Operation not permitted"),
        "{}",
        text(&exec_banned.stderr)
    );
    assert!(exec_other.status.success(), "{}", text(&exec_other.stderr));
    assert!(
        !to_blocked.status.success(),
        "the connect to the denied port failed"
    );
    assert!(
        text(&to_blocked.stderr).contains("PermissionError"),
        "{}",
        text(&to_blocked.stderr)
    );
    assert_eq!(blocked_conns, 0, "nothing reached the denied port");
    assert!(to_open.status.success(), "{}", text(&to_open.stderr));
    assert_eq!(open_conns, 1);
    let events = read_log(&log);
    let by: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Action(a) if a.action.as_bytes() == b"deny" => Some(a.by.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        by.iter().any(|b| b == "no_banned") && by.iter().any(|b| b == "no_port"),
        "both refusals are logged: {by:?} {err}"
    );
}
