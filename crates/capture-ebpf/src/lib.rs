//! vigil's system-wide capture backend: every selected process on the machine, through eBPF.
//!
//! The kernel side (src/bpf/vigil.bpf.c, built by build.rs with clang, CO-RE against the
//! committed vmlinux.h) records at the syscall tracepoints and the scheduler's process
//! tracepoints (tp_btf: this kernel has no kprobes), and takes the kernel's own view of what
//! a call acts on at the BPF LSM hooks (the path of the file opened or executed, the address
//! connected to). What is recorded is chosen in the kernel: the selected syscall numbers and
//! the pid / comm / cgroup filters are maps, so unselected calls cost only the tracepoint.
//! Records go through one ring buffer; those that do not fit are counted per CPU and come
//! back as `lost` events at the place they were lost.
//!
//! The user side (decode.rs) turns records into the same events the ptrace backend makes,
//! with process state from vigil-procstate, and hands them to the sink through the
//! `Sequencer`: nothing downstream knows which backend produced an event.
//!
//! Enforcement: a deny or kill that a rule asks for at a file open, an exec or a connect is
//! done by the kernel side itself, before the call goes ahead (`Enforce`): the BPF LSM hook
//! returns the errno, and a kill is `bpf_send_signal(SIGKILL)` in the calling task. A kill
//! that depends on what the process did before is armed per process by user space (`arm`).

mod decode;
mod fanotify;
mod record;
mod scan;
mod spec;

// The generated skeleton (libbpf-cargo): its code is not ours to lint.
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    unsafe_op_in_unsafe_fn,
    dead_code
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/vigil.skel.rs"));
}

pub use decode::{argv_value, fold};

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::mem::MaybeUninit;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vigil_capture::{
    Backend, BackendError, EventSink, Outcome, Selection, Sequencer, StopHandle, Verdict,
};
use vigil_event::{EventKind, Lost, ProcessStart, Str};

/// Why the system-wide backend cannot capture.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error(
        "recording the whole machine needs root: {missing} is missing (run vigil as root, or give it CAP_BPF, CAP_PERFMON and CAP_MAC_ADMIN)"
    )]
    Privilege { missing: String },
    #[error("this kernel cannot run vigil's eBPF programs: {0}")]
    NoBpf(String),
    #[error("--pid {0}: no such process")]
    NoSuchPid(u32),
    #[error("--cgroup {path}: {why}")]
    BadCgroup { path: String, why: String },
    #[error("--comm {name}: {why}")]
    BadComm { name: String, why: String },
    #[error("--buffer {0}: {1}")]
    BadBuffer(u64, &'static str),
    #[error("loading the eBPF programs failed at {step}: {source}")]
    Load {
        step: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("{0}")]
    Enforce(String),
}

impl BackendError for EbpfError {
    fn exit_code(&self) -> i32 {
        match self {
            EbpfError::NoSuchPid(_)
            | EbpfError::BadCgroup { .. }
            | EbpfError::BadComm { .. }
            | EbpfError::BadBuffer(..)
            | EbpfError::Enforce(_) => 2,
            _ => 1,
        }
    }
}

/// Something enforced before the call goes ahead, for a rule (by its index in the rule set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enforce {
    /// An open of this file (by identity: every path and hard link to it), refused through
    /// fanotify permission events.
    FileOpen {
        path: PathBuf,
        action: EnforceAction,
    },
    /// An exec of this file, the same way.
    Exec {
        path: PathBuf,
        action: EnforceAction,
    },
    /// A connect to this address (family 2 or 10; `port` 0: any port; `addr` None: any
    /// address), or any connect at all (`family` 0), refused in the kernel's connect hook.
    /// A kill of any connect is sent at the connect's entry, in the kernel.
    Connect {
        family: u16,
        port: u16,
        addr: Option<std::net::IpAddr>,
        action: EnforceAction,
    },
    /// Opening or reading this file arms the process, in the kernel, for rule `rule`'s
    /// `Connect` kill (`armed_only`): a two-step rule "read this file, then connect".
    ArmOnFile { path: PathBuf, rule: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforceAction {
    /// The rule's index (its name is `SystemConfig::rule_names[rule]`).
    pub rule: u32,
    pub kind: EnforceKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnforceKind {
    /// Refuse the call with this errno (fanotify and the connect hook can only give EPERM).
    Deny(i32),
    /// SIGKILL the caller and refuse the call; `armed_only`: only a process armed for this
    /// rule (by `ArmOnFile` in the kernel, or by user space through `ArmHandle`).
    Kill { armed_only: bool },
}

/// What to record.
#[derive(Clone, Debug)]
pub struct SystemConfig {
    pub selection: Selection,
    /// Processes followed with their descendants (`--pid`).
    pub pids: Vec<u32>,
    /// Process names (`--comm`), as the kernel keeps them (at most 15 bytes).
    pub comms: Vec<String>,
    /// cgroup v2 directories (`--cgroup`): processes in them or in cgroups below them.
    pub cgroups: Vec<PathBuf>,
    /// The ring buffer's size in bytes (a power of two, at least one page).
    pub buffer: u64,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop at SIGINT, SIGTERM or SIGHUP sent to vigil.
    pub stop_on_signals: bool,
    pub enforce: Vec<Enforce>,
    /// The names of the rules `Enforce` entries refer to, for their `action` events.
    pub rule_names: Vec<String>,
    /// How often the reader drains the ring when the kernel side has not woken it (it wakes
    /// it when a quarter of the ring is used): short when rules run online (a match is acted
    /// on this late at most), long when only recording (fewer, larger batches disturb the
    /// recorded programs less).
    pub drain_every: Duration,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            selection: Selection::default(),
            pids: Vec::new(),
            comms: Vec::new(),
            cgroups: Vec::new(),
            buffer: 16 << 20,
            duration: None,
            stop_on_signals: true,
            enforce: Vec::new(),
            rule_names: Vec::new(),
            drain_every: Duration::from_millis(10),
        }
    }
}

/// Counters of one capture, beside the `Outcome`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemStats {
    pub records: u64,
    /// Records the kernel side could not put in the ring buffer.
    pub lost: u64,
    pub malformed: u64,
    /// Processes already running that matched the filters at the start.
    pub existing: u64,
    /// vigil's own user + system CPU time during the capture, µs.
    pub cpu_us: u64,
}

/// Called once the capture runs (see `EbpfBackend::on_ready`).
pub type OnReady = Box<dyn FnMut(&SystemStats)>;

/// The system-wide backend.
pub struct EbpfBackend {
    config: SystemConfig,
    stop: StopHandle,
    cgroup_ids: Vec<(u64, Vec<u8>)>,
    pub stats: SystemStats,
    /// A process armed by user space for a kill rule: (pid, rule index), set or cleared.
    arms: std::sync::Arc<std::sync::Mutex<Vec<(u32, u32, bool)>>>,
    on_ready: Option<OnReady>,
}

/// Handle to arm processes for a kill rule from the sink's thread.
#[derive(Clone)]
pub struct ArmHandle(std::sync::Arc<std::sync::Mutex<Vec<(u32, u32, bool)>>>);

impl ArmHandle {
    /// Arms (or disarms) process `pid` for the kill of rule `rule` (its index in the
    /// configuration's kill rules).
    pub fn arm(&self, pid: u32, rule: u32, on: bool) {
        if let Ok(mut v) = self.0.lock() {
            v.push((pid, rule, on));
        }
    }
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const CAP_MAC_ADMIN: u32 = 33;

fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Whether this process may load and attach vigil's programs; the missing capability if not.
pub fn check_privilege() -> Result<(), EbpfError> {
    let caps = effective_caps();
    let has = |c: u32| caps & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) {
        return Ok(());
    }
    let missing: Vec<&str> = [
        (CAP_BPF, "CAP_BPF"),
        (CAP_PERFMON, "CAP_PERFMON"),
        (CAP_MAC_ADMIN, "CAP_MAC_ADMIN"),
    ]
    .iter()
    .filter(|(c, _)| !has(*c))
    .map(|(_, n)| *n)
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EbpfError::Privilege {
            missing: missing.join(", "),
        })
    }
}

/// Whether the kernel has what the programs need: BTF (CO-RE and tp_btf).
pub fn check_kernel() -> Result<(), EbpfError> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(EbpfError::NoBpf(
            "it has no BTF (/sys/kernel/btf/vmlinux is missing: CONFIG_DEBUG_INFO_BTF is off)"
                .into(),
        ));
    }
    Ok(())
}

/// The cgroup v2 mount point.
fn cgroup2_root() -> Option<PathBuf> {
    let m = std::fs::read_to_string("/proc/self/mounts").ok()?;
    m.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f.get(1).copied().unwrap_or("")))
    })
}

impl EbpfBackend {
    /// Checks the configuration against the machine (privilege, BTF, the pids, cgroups and
    /// names given) without loading anything yet.
    pub fn new(config: SystemConfig) -> Result<EbpfBackend, EbpfError> {
        check_privilege()?;
        check_kernel()?;
        if config.buffer < 4096 || !config.buffer.is_power_of_two() {
            return Err(EbpfError::BadBuffer(
                config.buffer,
                "the ring buffer's size must be a power of two of at least 4096 bytes (4k, 1m, 64m)",
            ));
        }
        if config.buffer > 1 << 30 {
            return Err(EbpfError::BadBuffer(config.buffer, "at most 1g"));
        }
        for &p in &config.pids {
            if p == 0 || !Path::new(&format!("/proc/{p}")).exists() {
                return Err(EbpfError::NoSuchPid(p));
            }
        }
        for c in &config.comms {
            let why = if c.is_empty() {
                Some("an empty name matches no process".to_string())
            } else if c.len() > 15 {
                Some(format!(
                    "the kernel keeps at most 15 bytes of a process's name, and `{c}` has {}: no process can match it (give its first 15 bytes, `{}`)",
                    c.len(),
                    String::from_utf8_lossy(&c.as_bytes()[..15])
                ))
            } else if c.contains(['*', '?', '[']) {
                Some(
                    "patterns are not supported: give the exact name (as `ps -o comm` shows it)"
                        .to_string(),
                )
            } else {
                None
            };
            if let Some(why) = why {
                return Err(EbpfError::BadComm {
                    name: c.clone(),
                    why,
                });
            }
        }
        let mut cgroup_ids = Vec::new();
        if !config.cgroups.is_empty() {
            let root = cgroup2_root().ok_or_else(|| EbpfError::BadCgroup {
                path: config.cgroups[0].display().to_string(),
                why: "no cgroup v2 hierarchy is mounted".into(),
            })?;
            for c in &config.cgroups {
                // An absolute path under the mount, or a path relative to it.
                let full = if c.starts_with(&root) {
                    c.clone()
                } else {
                    root.join(c.strip_prefix("/").unwrap_or(c))
                };
                let md = std::fs::metadata(&full).map_err(|e| EbpfError::BadCgroup {
                    path: c.display().to_string(),
                    why: format!("{} ({e})", full.display()),
                })?;
                if !md.is_dir() {
                    return Err(EbpfError::BadCgroup {
                        path: c.display().to_string(),
                        why: format!("{} is not a cgroup directory", full.display()),
                    });
                }
                use std::os::unix::ffi::OsStrExt;
                let rel = full
                    .strip_prefix(&root)
                    .map(|r| {
                        let mut v = b"/".to_vec();
                        v.extend_from_slice(r.as_os_str().as_bytes());
                        v
                    })
                    .unwrap_or_else(|_| b"/".to_vec());
                // The cgroup's id is its directory's inode in cgroupfs.
                cgroup_ids.push((md.ino(), rel));
            }
        }
        Ok(EbpfBackend {
            config,
            stop: StopHandle::default(),
            cgroup_ids,
            stats: SystemStats::default(),
            arms: Default::default(),
            on_ready: None,
        })
    }

    /// Called once the programs are attached and running processes were read: from then
    /// on, everything the filters select is recorded.
    pub fn on_ready(&mut self, f: impl FnMut(&SystemStats) + 'static) {
        self.on_ready = Some(Box::new(f));
    }

    pub fn arm_handle(&self) -> ArmHandle {
        ArmHandle(self.arms.clone())
    }

    /// Whether an existing process matches the filters (as the kernel side will judge it).
    fn matches(&self, e: &scan::Existing, tracked: &HashSet<u32>) -> bool {
        self.filters()
            .selects(tracked.contains(&e.pid), &e.comm, e.cgroup.as_deref())
    }

    fn filters(&self) -> Filters {
        Filters {
            none: self.config.pids.is_empty()
                && self.config.comms.is_empty()
                && self.config.cgroups.is_empty(),
            comms: self
                .config
                .comms
                .iter()
                .map(|c| c.as_bytes().to_vec())
                .collect(),
            cgroups: self.cgroup_ids.iter().map(|(_, r)| r.clone()).collect(),
        }
    }

    /// Who a refused open or exec applies to: processes the filters select (read from /proc
    /// at the moment of the open), never vigil.
    fn judge(&self, tracked: &HashSet<u32>) -> fanotify::Judge {
        let f = self.filters();
        let roots: HashSet<u32> = tracked.iter().chain(&self.config.pids).copied().collect();
        std::sync::Arc::new(move |pid: u32| {
            if f.none {
                return true;
            }
            // The pid filter: the process or one of its ancestors was given.
            let mut in_tree = false;
            let mut p = pid;
            for _ in 0..64 {
                if roots.contains(&p) {
                    in_tree = true;
                    break;
                }
                match scan::stat(p) {
                    Some((_, ppid, _)) if ppid > 1 => p = ppid,
                    _ => break,
                }
            }
            let comm = scan::stat(pid).map(|(c, _, _)| c).unwrap_or_default();
            f.selects(in_tree, &comm, scan::cgroup_of(pid).as_deref())
        })
    }
}

/// The --pid/--comm/--cgroup filters as user space applies them (to processes running at the
/// start, and to fanotify's openers), the same rules as the kernel side's `wanted`.
#[derive(Clone)]
struct Filters {
    /// No filter given: every process.
    none: bool,
    comms: Vec<Vec<u8>>,
    /// cgroup v2 paths relative to the mount (`/a/b`).
    cgroups: Vec<Vec<u8>>,
}

impl Filters {
    /// `in_tree`: the process is one of --pid's trees; `comm` as /proc gives it; `cgroup`
    /// its v2 path.
    fn selects(&self, in_tree: bool, comm: &[u8], cgroup: Option<&[u8]>) -> bool {
        if self.none || in_tree {
            return true;
        }
        // The kernel keeps 15 bytes of a name.
        let comm = &comm[..comm.len().min(15)];
        if self.comms.iter().any(|n| n.as_slice() == comm) {
            return true;
        }
        cgroup.is_some_and(|g| {
            self.cgroups.iter().any(|rel| {
                g == rel.as_slice()
                    || (g.starts_with(rel) && (rel == b"/" || g.get(rel.len()) == Some(&b'/')))
            })
        })
    }
}

fn load_err(step: &'static str) -> impl FnOnce(libbpf_rs::Error) -> EbpfError {
    move |source| EbpfError::Load { step, source }
}

/// The kernel's dev_t encoding of a stat(2) device number.
fn kdev(dev: u64) -> u64 {
    let major = libc::major(dev) as u64;
    let minor = libc::minor(dev) as u64;
    (major << 20) | minor
}

fn enforce_value(rule: u32, kind: EnforceKind) -> [u8; 16] {
    let (what, err, armed) = match kind {
        EnforceKind::Deny(e) => (1u32, e, 0u32),
        EnforceKind::Kill { armed_only } => (2u32, 0, u32::from(armed_only)),
    };
    let mut v = [0u8; 16];
    v[0..4].copy_from_slice(&what.to_le_bytes());
    v[4..8].copy_from_slice(&rule.to_le_bytes());
    v[8..12].copy_from_slice(&err.to_le_bytes());
    v[12..16].copy_from_slice(&armed.to_le_bytes());
    v
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread and returns a signalfd for them: the
/// capture loop reads it between polls and stops cleanly.
fn stop_signals() -> Option<nix::sys::signalfd::SignalFd> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.thread_block().ok()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()
}

fn cpu_us() -> u64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t =
                |tv: nix::sys::time::TimeVal| tv.tv_sec() as u64 * 1_000_000 + tv.tv_usec() as u64;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0)
}

impl Backend for EbpfBackend {
    type Error = EbpfError;

    fn name(&self) -> &'static str {
        "ebpf"
    }

    fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    fn run(&mut self, sink: &mut dyn EventSink) -> Result<Outcome, EbpfError> {
        let c = self.config.clone();
        let sigfd = if c.stop_on_signals {
            stop_signals()
        } else {
            None
        };
        capture_libbpf_log();
        let mut cgroup_links: Vec<libbpf_rs::Link> = Vec::new();
        let mut obj = MaybeUninit::uninit();
        let mut open = skel::VigilSkelBuilder::default()
            .open(&mut obj)
            .map_err(load_err("opening the object"))?;
        let mut filters = 0u32;
        if !c.pids.is_empty() {
            filters |= 1;
        }
        if !c.comms.is_empty() {
            filters |= 2;
        }
        if !c.cgroups.is_empty() {
            filters |= 4;
        }
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.cfg.self_tgid = std::process::id();
            ro.cfg.filters = filters;
            ro.cfg.follow = 1;
            ro.cfg.all = u32::from(c.selection.all);
            ro.cfg.arm_files = u32::from(
                c.enforce
                    .iter()
                    .any(|e| matches!(e, Enforce::ArmOnFile { .. })),
            );
            ro.cfg.kill_connect = u32::from(c.enforce.iter().any(|e| {
                matches!(
                    e,
                    Enforce::Connect {
                        family: 0,
                        action: EnforceAction {
                            kind: EnforceKind::Kill { .. },
                            ..
                        },
                        ..
                    }
                )
            }));
            // A quarter of the ring: the reader also drains it every `drain_every`.
            ro.cfg.wake_bytes = (c.buffer / 4) as u32;
        }
        open.maps
            .events
            .set_max_entries(c.buffer as u32)
            .map_err(load_err("sizing the ring buffer"))?;
        let mut skel = open.load().map_err(|source| {
            let log = libbpf_log();
            // The end of the log explains a refusal; VIGIL_BPF_LOG=1 asks for all of it.
            let keep = if std::env::var_os("VIGIL_BPF_LOG").is_some() {
                usize::MAX
            } else {
                12
            };
            if log.contains("-EPERM") && !log.contains("-- END PROG LOAD LOG --") {
                EbpfError::Privilege {
                    missing: "the permission to load BPF programs (the kernel refused with EPERM)"
                        .into(),
                }
            } else {
                EbpfError::NoBpf(format!(
                    "the kernel refused the programs ({source}); libbpf said:\n{}",
                    log.lines()
                        .rev()
                        .take(keep)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n")
                ))
            }
        })?;
        // The selection, the argument specs and the filters.
        let one = [1u8];
        for nr in 0..512u32 {
            let id64 = vigil_event::SyscallId::x86_64(nr);
            if c.selection.contains(id64) {
                skel.maps
                    .sel64
                    .update(&nr.to_le_bytes(), &one, MapFlags::ANY)
                    .map_err(load_err("filling the selection"))?;
            }
            let id32 = vigil_event::SyscallId {
                abi: vigil_event::Abi::I386,
                nr,
            };
            if c.selection.contains(id32) {
                skel.maps
                    .sel32
                    .update(&nr.to_le_bytes(), &one, MapFlags::ANY)
                    .map_err(load_err("filling the selection"))?;
            }
        }
        for (nr, s) in spec::all() {
            if nr < 512 {
                skel.maps
                    .specs
                    .update(&nr.to_le_bytes(), &s.to_bytes(), MapFlags::ANY)
                    .map_err(load_err("filling the argument specs"))?;
            }
        }
        // Running processes: read before attaching would miss children forked in between;
        // after attaching, a process may make a call before it is added. Both: the tree is
        // read after the programs run, and --pid's descendants are added then.
        let mut guarded = Vec::new();
        for e in &c.enforce {
            match e {
                Enforce::FileOpen { path, action } | Enforce::Exec { path, action } => {
                    guarded.push((
                        path.clone(),
                        matches!(e, Enforce::Exec { .. }),
                        action.rule,
                        action.kind,
                    ));
                }
                Enforce::ArmOnFile { path, rule } => {
                    let md = std::fs::metadata(path).map_err(|err| {
                        EbpfError::Enforce(format!(
                            "rule {}: {}: {err} (its first step names this file)",
                            c.rule_names.get(*rule as usize).map_or("?", String::as_str),
                            path.display()
                        ))
                    })?;
                    let mut k = [0u8; 16];
                    k[..8].copy_from_slice(&kdev(md.dev()).to_le_bytes());
                    k[8..].copy_from_slice(&md.ino().to_le_bytes());
                    skel.maps
                        .arm_files
                        .update(&k, &rule.to_le_bytes(), MapFlags::ANY)
                        .map_err(load_err("filling the kill rules' first steps"))?;
                }
                Enforce::Connect {
                    family,
                    port,
                    addr,
                    action,
                } => {
                    let mut k = vec![0u8; 20];
                    k[0..2].copy_from_slice(&family.to_le_bytes());
                    k[2..4].copy_from_slice(&port.to_be_bytes());
                    match addr {
                        Some(std::net::IpAddr::V4(a)) => k[4..8].copy_from_slice(&a.octets()),
                        Some(std::net::IpAddr::V6(a)) => k[4..20].copy_from_slice(&a.octets()),
                        None => {}
                    }
                    skel.maps
                        .enforce_net
                        .update(&k, &enforce_value(action.rule, action.kind), MapFlags::ANY)
                        .map_err(load_err("filling the connect rules"))?;
                }
            }
        }
        for name in &c.comms {
            let mut k = [0u8; 16];
            k[..name.len().min(15)].copy_from_slice(&name.as_bytes()[..name.len().min(15)]);
            skel.maps
                .comms
                .update(&k, &one, MapFlags::ANY)
                .map_err(load_err("filling the comm filter"))?;
        }
        for (id, _) in &self.cgroup_ids {
            skel.maps
                .cgroups
                .update(&id.to_le_bytes(), &one, MapFlags::ANY)
                .map_err(load_err("filling the cgroup filter"))?;
        }
        for p in &c.pids {
            skel.maps
                .tracked
                .update(&p.to_le_bytes(), &one, MapFlags::ANY)
                .map_err(load_err("filling the pid filter"))?;
        }
        skel.attach().map_err(|source| EbpfError::Load {
            step: "attaching (tp_btf and BPF LSM programs: is `bpf` in the kernel's lsm= list?)",
            source,
        })?;

        // The socket hooks, on the root of the cgroup v2 tree: every process on the machine.
        let cg_root = cgroup2_root().ok_or_else(|| {
            EbpfError::NoBpf(
                "no cgroup v2 hierarchy is mounted (the connect and bind hooks attach to its root)"
                    .into(),
            )
        })?;
        let cg = std::fs::File::open(&cg_root)
            .map_err(|e| EbpfError::NoBpf(format!("{}: {e}", cg_root.display())))?;
        {
            use std::os::fd::AsRawFd;
            let fd = cg.as_raw_fd();
            let progs = [
                &skel.progs.connect4,
                &skel.progs.connect6,
                &skel.progs.bind4,
                &skel.progs.bind6,
            ];
            for p in progs {
                let link = p.attach_cgroup(fd).map_err(|source| EbpfError::Load {
                    step: "attaching the connect and bind hooks to the cgroup v2 root",
                    source,
                })?;
                cgroup_links.push(link);
            }
        }

        // Processes already running: their tree, with --pid's descendants added to the filter.
        let mut existing: Vec<scan::Existing> = scan::pids()
            .into_iter()
            .filter(|p| *p != std::process::id())
            .filter_map(scan::read)
            .collect();
        existing.sort_by_key(|e| (e.start, e.pid));
        let mut tracked: HashSet<u32> = c.pids.iter().copied().collect();
        let children: BTreeMap<u32, Vec<u32>> =
            existing.iter().fold(BTreeMap::new(), |mut m, e| {
                m.entry(e.ppid).or_insert_with(Vec::new).push(e.pid);
                m
            });
        let mut stack: Vec<u32> = c.pids.clone();
        while let Some(p) = stack.pop() {
            for &ch in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
                if tracked.insert(ch) {
                    let _ = skel
                        .maps
                        .tracked
                        .update(&ch.to_le_bytes(), &one, MapFlags::ANY);
                    stack.push(ch);
                }
            }
        }
        let decoder = RefCell::new(decode::Decoder::new());
        decoder.borrow_mut().rule_names = c.rule_names.clone();
        // Opens and execs refused through fanotify (its thread answers the kernel).
        let (done_tx, done_rx) = std::sync::mpsc::channel::<fanotify::Done>();
        let _guard = if guarded.is_empty() {
            None
        } else {
            let judge = self.judge(&tracked);
            Some(fanotify::Guard::start(
                guarded,
                &c.rule_names,
                judge,
                done_tx,
            )?)
        };
        let seq = RefCell::new(Sequencer::new(sink));
        let mut n_existing = 0;
        for e in existing {
            if !self.matches(&e, &tracked) {
                continue;
            }
            n_existing += 1;
            let mut d = decoder.borrow_mut();
            let mut s = seq.borrow_mut();
            s.emit(
                e.pid,
                e.pid,
                EventKind::ProcessStart(ProcessStart {
                    ppid: e.ppid,
                    exe: e.info.exe.clone(),
                    argv: e.info.argv.clone(),
                    creds: e.info.creds.clone(),
                    clone_flags: 0,
                }),
            );
            d.add_existing(e.pid, e.ppid, e.files, e.fs, e.info, &e.tids);
        }
        self.stats.existing = n_existing;
        // vigil's own CPU from here on: what recording costs, not loading the programs.
        let cpu0 = cpu_us();
        if let Some(f) = self.on_ready.as_mut() {
            f(&self.stats);
        }

        // The capture loop.
        let verdicts: RefCell<Vec<(u32, vigil_capture::Delivery)>> = RefCell::new(Vec::new());
        let mut rb = RingBufferBuilder::new();
        rb.add(&skel.maps.events, |data: &[u8]| {
            let mut s = seq.borrow_mut();
            if s.failed().is_some() {
                return 0;
            }
            decoder
                .borrow_mut()
                .handle(data, &mut s, &mut verdicts.borrow_mut());
            0
        })
        .map_err(load_err("opening the ring buffer"))?;
        let rb = rb.build().map_err(load_err("opening the ring buffer"))?;
        let start = Instant::now();
        let mut stopped = false;
        loop {
            // Woken when a quarter of the ring is used, else every `drain_every`: then whatever
            // is there is read (the kernel side does not wake the reader for each record).
            let _ = rb.poll(c.drain_every);
            let _ = rb.consume();
            // What the sink decided about the processes.
            for (pid, d) in verdicts.borrow_mut().drain(..) {
                apply_verdict(pid, d.verdict);
                for (p, v) in d.others {
                    apply_verdict(p, v);
                }
            }
            // Processes the sink armed for a kill rule.
            if let Ok(mut arms) = self.arms.lock() {
                for (pid, rule, on) in arms.drain(..) {
                    let mut k = [0u8; 8];
                    k[..4].copy_from_slice(&pid.to_le_bytes());
                    k[4..].copy_from_slice(&rule.to_le_bytes());
                    let _ = if on {
                        skel.maps.armed.update(&k, &one, MapFlags::ANY)
                    } else {
                        skel.maps.armed.delete(&k)
                    };
                }
            }
            // What the fanotify thread refused, as action events.
            for (pid, rule, kind, exec, path) in done_rx.try_iter() {
                let name = c.rule_names.get(rule as usize).cloned().unwrap_or_default();
                let (action, detail) = match kind {
                    EnforceKind::Kill { .. } => (
                        "kill",
                        format!(
                            "SIGKILL at the {} of {}, which was refused (EPERM) before it was open (fanotify)",
                            if exec { "exec" } else { "open" },
                            path.display()
                        ),
                    ),
                    EnforceKind::Deny(_) => (
                        "deny",
                        format!(
                            "EPERM at the {} of {}, refused before it was open (fanotify)",
                            if exec { "exec" } else { "open" },
                            path.display()
                        ),
                    ),
                };
                seq.borrow_mut().emit(
                    pid,
                    pid,
                    EventKind::Action(vigil_event::Action {
                        action: Str::from(action),
                        by: Str::from(name),
                        target_pid: pid,
                        detail: Str::from(detail),
                    }),
                );
            }
            if seq.borrow().failed().is_some() {
                break;
            }
            if self.stop.is_stopped() {
                stopped = true;
                break;
            }
            if c.duration.is_some_and(|d| start.elapsed() >= d) {
                break;
            }
            if let Some(fd) = &sigfd
                && let Ok(Some(_)) = fd.read_signal()
            {
                stopped = true;
                break;
            }
        }
        // Detach, then take what is left in the ring buffer.
        drop(std::mem::take(&mut skel.links));
        drop(cgroup_links);
        let _ = rb.consume();
        // Records lost after the last record of their CPU: reported at the end.
        let mut unreported = 0u64;
        if let Ok(Some(per_cpu)) = skel
            .maps
            .lost
            .lookup_percpu(&0u32.to_le_bytes(), MapFlags::ANY)
        {
            for v in per_cpu {
                if let Ok(b) = <[u8; 8]>::try_from(v.as_slice()) {
                    unreported += u64::from_le_bytes(b);
                }
            }
        }
        let mut total_lost = 0u64;
        if let Ok(Some(per_cpu)) = skel
            .maps
            .lost_total
            .lookup_percpu(&0u32.to_le_bytes(), MapFlags::ANY)
        {
            for v in per_cpu {
                if let Ok(b) = <[u8; 8]>::try_from(v.as_slice()) {
                    total_lost += u64::from_le_bytes(b);
                }
            }
        }
        if unreported > 0 {
            seq.borrow_mut().emit(
                0,
                0,
                EventKind::Lost(Lost {
                    count: unreported,
                    reason: Str::from(
                        "the ring buffer was full at the end of the capture: records of the kernel side dropped",
                    ),
                }),
            );
        }
        drop(rb);
        let d = decoder.into_inner();
        self.stats.records = d.counts.records;
        self.stats.lost = total_lost;
        self.stats.malformed = d.counts.malformed;
        self.stats.cpu_us = cpu_us().saturating_sub(cpu0);
        let mut s = seq.into_inner();
        Ok(Outcome {
            status: None,
            events: s.delivered(),
            lost: total_lost + d.counts.malformed,
            detached: 0,
            sink_error: s.take_error(),
            undelivered: s.undelivered(),
            stopped,
        })
    }
}

/// libbpf's messages, kept for the error that needs them instead of printed.
static LIBBPF_LOG: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn capture_libbpf_log() {
    fn keep(_: libbpf_rs::PrintLevel, msg: String) {
        if let Ok(mut l) = LIBBPF_LOG.lock() {
            // The end of a long verifier log is what explains it.
            if l.len() > 1 << 20 {
                l.clear();
            }
            l.push_str(&msg);
        }
    }
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, keep)));
}

fn libbpf_log() -> String {
    LIBBPF_LOG.lock().map(|l| l.clone()).unwrap_or_default()
}

/// A rule's verdict on a process, from user space: the kernel side has already let the call
/// run (a deny that a hook could enforce is the kernel side's, see `Enforce`).
fn apply_verdict(pid: u32, v: Verdict) {
    use nix::sys::signal::{Signal, kill};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let _ = match v {
        Verdict::Kill => kill(pid, Signal::SIGKILL),
        Verdict::Stop => kill(pid, Signal::SIGSTOP),
        Verdict::Continue | Verdict::Deny(_) => Ok(()),
    };
}

#[cfg(test)]
mod tests {
    use super::Filters;

    fn f(comms: &[&str], cgroups: &[&str]) -> Filters {
        Filters {
            none: comms.is_empty() && cgroups.is_empty(),
            comms: comms.iter().map(|c| c.as_bytes().to_vec()).collect(),
            cgroups: cgroups.iter().map(|c| c.as_bytes().to_vec()).collect(),
        }
    }

    /// A cgroup selects itself and what is below it, not a sibling whose name starts alike;
    /// a name is compared as the kernel keeps it (15 bytes).
    #[test]
    fn filters_select_as_the_kernel_side_does() {
        let by_cg = f(&[], &["/web"]);
        assert!(by_cg.selects(false, b"x", Some(b"/web")));
        assert!(by_cg.selects(false, b"x", Some(b"/web/worker")));
        assert!(!by_cg.selects(false, b"x", Some(b"/webby")));
        assert!(!by_cg.selects(false, b"x", None));
        assert!(by_cg.selects(true, b"x", None), "--pid's tree");
        let by_name = f(&["averyveryverylo"], &[]);
        assert!(by_name.selects(false, b"averyveryverylongname", None));
        assert!(!by_name.selects(false, b"other", None));
        assert!(f(&[], &[]).selects(false, b"any", None));
    }
}
