//! Which rules' actions `watch --system` can carry out before the call goes ahead, and how.
//!
//! The eBPF backend sees a call after the kernel has let it run, except at its check points:
//! the connect hook (refuses a connect; a kill is sent at the connect's entry), fanotify
//! permission events (refuse an open or an exec of a given file, kill the opener), and
//! in-kernel arming (a process that opens or reads a given file is armed for a kill at its
//! next connect). A rule whose action maps onto one of them is enforced there; a `deny` that
//! maps onto none cannot be enforced and is refused when the rules are loaded, with why; a
//! `kill` or `stop` that maps onto none is carried out from user space after the event that
//! completed the match (said at load time, and in the action event).

use std::path::PathBuf;
use syscalls::Sysno;
use vigil_capture_ebpf::{Enforce, EnforceAction, EnforceKind};
use vigil_rules::{CAction, CCond, CExpr, CmpOp, EventClass, FieldRef, Rule, RuleSet, Sub, Val};

const EPERM: i32 = 1;

/// What the rules ask of the backend.
#[derive(Default, Debug)]
pub struct Plan {
    pub enforce: Vec<Enforce>,
    pub names: Vec<String>,
    /// Rules whose kill user space arms per process (their run waits for the last step, a
    /// connect): the kernel then kills at that connect's entry.
    pub armed_by_user: Vec<u32>,
    /// Said once at start: kills and stops done from user space, after the call.
    pub notes: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Hook {
    Open,
    Exec,
    Connect,
    Read,
}

fn hook_of(classes: &[EventClass]) -> Option<Hook> {
    let mut hook = None;
    for c in classes {
        let h = match c {
            EventClass::Entry(nr) => match Sysno::new(*nr as usize)? {
                Sysno::open | Sysno::openat | Sysno::openat2 | Sysno::creat => Hook::Open,
                Sysno::execve | Sysno::execveat => Hook::Exec,
                Sysno::connect => Hook::Connect,
                Sysno::read | Sysno::pread64 | Sysno::readv | Sysno::preadv | Sysno::preadv2 => {
                    Hook::Read
                }
                _ => return None,
            },
            // A rule names a call by its exit (`openat`) or entry (`openat.entry`); either is
            // enforced at the kernel's check point, before the call goes ahead.
            EventClass::Exit(nr) => match Sysno::new(*nr as usize)? {
                Sysno::open | Sysno::openat | Sysno::openat2 | Sysno::creat => Hook::Open,
                Sysno::execve | Sysno::execveat => Hook::Exec,
                Sysno::connect => Hook::Connect,
                Sysno::read | Sysno::pread64 | Sysno::readv | Sysno::preadv | Sysno::preadv2 => {
                    Hook::Read
                }
                _ => return None,
            },
            _ => return None,
        };
        if hook.is_some_and(|x| x != h) {
            return None;
        }
        hook = Some(h);
    }
    hook
}

/// `field == "const"` (either way round) or `field in (...)`: the constants.
fn equals(c: &CCond, want: FieldRef) -> Option<Vec<Val>> {
    match c {
        CCond::Cmp(CExpr::Field { f, .. }, op, CExpr::Const(v))
        | CCond::Cmp(CExpr::Const(v), op, CExpr::Field { f, .. })
            if *f == want && *op == CmpOp::Eq =>
        {
            Some(vec![v.clone()])
        }
        CCond::In(CExpr::Field { f, .. }, set) if *f == want => Some(set.iter().cloned().collect()),
        _ => None,
    }
}

/// The files a step names by path (`a.path == "/x"`, or for a read `r.fd.path == "/x"`); None
/// when it has another condition, or none.
fn paths(rule: &Rule, step: usize, hook: Hook) -> Option<Vec<PathBuf>> {
    let s = rule.steps.get(step)?;
    let field = match hook {
        Hook::Read => FieldRef::Arg("fd", Sub::Path),
        _ => FieldRef::Arg("path", Sub::None),
    };
    if s.conds.len() != 1 {
        return None;
    }
    let vals = equals(&s.conds[0], field)?;
    vals.into_iter()
        .map(|v| match v {
            Val::Str(p) => Some(PathBuf::from(
                String::from_utf8_lossy(p.as_bytes()).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

/// A connect step's address: (port, ip) from `c.addr.port == N` / `c.addr.ip == "a.b.c.d"`;
/// Some((0, None)) for no condition; None for any other condition.
fn address(rule: &Rule, step: usize) -> Option<(u16, Option<std::net::IpAddr>)> {
    let s = rule.steps.get(step)?;
    let (mut port, mut ip) = (0u16, None);
    for c in &s.conds {
        if let Some(v) = equals(c, FieldRef::Arg("addr", Sub::Port)) {
            match v.as_slice() {
                [Val::Int(p)] => port = u16::try_from(*p).ok()?,
                _ => return None,
            }
        } else if let Some(v) = equals(c, FieldRef::Arg("addr", Sub::Ip)) {
            match v.as_slice() {
                [Val::Str(a)] => ip = Some(String::from_utf8_lossy(a.as_bytes()).parse().ok()?),
                _ => return None,
            }
        } else {
            return None;
        }
    }
    Some((port, ip))
}

fn connects(port: u16, ip: Option<std::net::IpAddr>, action: EnforceAction) -> Vec<Enforce> {
    let families: &[u16] = match (port, ip) {
        (0, None) => &[0],
        (_, Some(std::net::IpAddr::V4(_))) => &[2],
        (_, Some(std::net::IpAddr::V6(_))) => &[10],
        (_, None) => &[2, 10],
    };
    families
        .iter()
        .map(|&family| Enforce::Connect {
            family,
            port,
            addr: ip,
            action: action.clone(),
        })
        .collect()
}

/// The plan for a rule set, or the message saying which rule's deny cannot be enforced.
pub fn plan(rs: &RuleSet) -> Result<Plan, String> {
    let mut p = Plan::default();
    for (i, r) in rs.rules().iter().enumerate() {
        p.names.push(r.name.clone());
        let rule = i as u32;
        let deny = r.actions.iter().find_map(|a| match a {
            CAction::Deny(e) => Some(*e),
            _ => None,
        });
        let kill = r.actions.iter().any(|a| matches!(a, CAction::Kill));
        let stop = r.actions.iter().any(|a| matches!(a, CAction::Stop));
        let single =
            r.steps.len() == 1 && r.steps[0].rep.is_none() && r.gaps.iter().all(Vec::is_empty);
        let hook = r.steps.last().and_then(|s| hook_of(&s.classes));
        if let Some(errno) = deny {
            let why = |w: &str| {
                format!(
                    "rule {}: deny({}) cannot be enforced system-wide: {w}. The eBPF backend sees a call after the kernel ran it; it can refuse only an open or exec of a file named by its path (a.path == \"/x\"), or a connect (optionally c.addr.port == N, c.addr.ip == \"a.b.c.d\"), matched by a one-event pattern",
                    r.name,
                    nix::errno::Errno::from_raw(errno)
                )
            };
            if errno != EPERM {
                return Err(why("fanotify and the connect hook refuse with EPERM only"));
            }
            if !single {
                return Err(why("its pattern has more than one event"));
            }
            let action = EnforceAction {
                rule,
                kind: EnforceKind::Deny(errno),
            };
            match hook {
                Some(Hook::Open) | Some(Hook::Exec) => {
                    let Some(files) = paths(r, 0, hook.unwrap_or(Hook::Open)) else {
                        return Err(why("its condition is not only the file's path"));
                    };
                    for path in files {
                        p.enforce.push(if hook == Some(Hook::Exec) {
                            Enforce::Exec {
                                path,
                                action: action.clone(),
                            }
                        } else {
                            Enforce::FileOpen {
                                path,
                                action: action.clone(),
                            }
                        });
                    }
                }
                Some(Hook::Connect) => {
                    let Some((port, ip)) = address(r, 0) else {
                        return Err(why("its condition is not only the address's port and ip"));
                    };
                    p.enforce.extend(connects(port, ip, action));
                }
                _ => return Err(why("its event is not an open, exec or connect")),
            }
            continue;
        }
        if !kill {
            if stop {
                p.notes.push(format!(
                    "rule {}: stop is sent from user space, after the event that completes the match",
                    r.name
                ));
            }
            continue;
        }
        let kill_now = EnforceAction {
            rule,
            kind: EnforceKind::Kill { armed_only: false },
        };
        let armed = EnforceAction {
            rule,
            kind: EnforceKind::Kill { armed_only: true },
        };
        let joined = r.join.contains(&FieldRef::Pid);
        // One event, an open or exec of named files: refused and killed by fanotify.
        let one_file = match (single, hook) {
            (true, Some(h @ (Hook::Open | Hook::Exec))) => paths(r, 0, h).map(|f| (h, f)),
            _ => None,
        };
        if let Some((h, files)) = one_file {
            for path in files {
                p.enforce.push(if h == Hook::Exec {
                    Enforce::Exec {
                        path,
                        action: kill_now.clone(),
                    }
                } else {
                    Enforce::FileOpen {
                        path,
                        action: kill_now.clone(),
                    }
                });
            }
            continue;
        }
        match (single, hook) {
            (true, Some(Hook::Connect)) if address(r, 0).is_some() => {
                let (port, ip) = address(r, 0).unwrap_or((0, None));
                p.enforce.extend(connects(port, ip, kill_now));
            }
            (false, Some(Hook::Connect))
                if joined && r.steps.len() == 2 && address(r, 1) == Some((0, None)) =>
            {
                // "Read (or open) this file, then connect": armed in the kernel at the read.
                let first = hook_of(&r.steps[0].classes);
                let files = first.and_then(|h| {
                    matches!(h, Hook::Open | Hook::Read)
                        .then(|| paths(r, 0, h))
                        .flatten()
                });
                match files {
                    Some(files) => {
                        for path in files {
                            p.enforce.push(Enforce::ArmOnFile { path, rule });
                        }
                    }
                    None => {
                        p.armed_by_user.push(rule);
                        p.notes.push(format!(
                            "rule {}: its first step is armed from user space: a process that connects right after it may get through the kill (the connect is still recorded, and killed after)",
                            r.name
                        ));
                    }
                }
                p.enforce.extend(connects(0, None, armed));
            }
            (false, Some(Hook::Connect)) if joined && address(r, r.steps.len() - 1) == Some((0, None)) => {
                p.armed_by_user.push(rule);
                p.enforce.extend(connects(0, None, armed));
                p.notes.push(format!(
                    "rule {}: armed from user space when its run waits for the final connect; a process faster than vigil is killed after its connect",
                    r.name
                ));
            }
            _ => p.notes.push(format!(
                "rule {}: kill is sent from user space, after the event that completes the match (its last event is not an open or exec of a named file, nor a connect)",
                r.name
            )),
        }
    }
    // One rule per connect key: a second one would silently replace the first.
    let mut seen = std::collections::HashSet::new();
    for e in &p.enforce {
        if let Enforce::Connect {
            family, port, addr, ..
        } = e
            && !seen.insert((*family, *port, *addr))
        {
            return Err(
                "two deny/kill rules act on the same connects: the kernel side keeps one per address; merge them".into(),
            );
        }
    }
    Ok(p)
}
