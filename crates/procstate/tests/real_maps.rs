//! The model against a real kernel: programs/mapstep makes a sequence of mmap, mprotect,
//! munmap, mremap, brk and SysV shm calls, one at a time. The model starts from the child's
//! /proc/PID/maps and is fed the same calls as syscall-exit events through
//! `Processes::apply` (fds by number only, resolved through the model's fd table); after each
//! call the model and the real /proc/PID/maps must agree page by page: protection, shared or
//! private, the object (device and inode, SysV shmid; shared anonymous objects matched one to
//! one) and its offset. Page by page, so VMAs the kernel merged and the model did not do not
//! matter. The main stack is left out (it grows behind any model's back).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use syscalls::Sysno;
use vigil_event::{Event, EventKind, Fd, Str, SyscallExit, SyscallId, Target, Value};
use vigil_procstate::mem::*;
use vigil_procstate::{AddressSpace, FdTable, FsState, Processes, parse_maps};

const P: u64 = PAGE_SIZE;

struct Driver {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
    ps: Processes,
    seq: u64,
    steps: usize,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obj {
    Anon,
    File { dev: u64, ino: u64, page: u64 },
    SharedAnon { id: u64, page: u64 },
    SysV { id: i64, page: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageAttr {
    prot: u8,
    shared: bool,
    obj: Obj,
}

fn pages(a: &AddressSpace) -> BTreeMap<u64, PageAttr> {
    let mut out = BTreeMap::new();
    for v in a.iter() {
        if v.role == Role::Stack {
            continue;
        }
        for addr in (v.start..v.end).step_by(P as usize) {
            let page = v.offset_at(addr).unwrap_or(0) / P;
            let obj = match v.object() {
                None => Obj::Anon,
                Some(ObjectId::File { dev, ino }) => Obj::File {
                    dev: *dev,
                    ino: *ino,
                    page,
                },
                Some(ObjectId::SharedAnon(id)) => Obj::SharedAnon { id: *id, page },
                Some(ObjectId::SysV(id)) => Obj::SysV { id: *id, page },
            };
            out.insert(
                addr,
                PageAttr {
                    prot: v.prot.bits(),
                    shared: v.shared,
                    obj,
                },
            );
        }
    }
    out
}

impl Driver {
    fn start(file: &std::path::Path) -> Driver {
        let prog = vigil_testkit::program("mapstep");
        let mut child = Command::new(prog)
            .arg(file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run mapstep");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let fd: i32 = line
            .trim()
            .strip_prefix("fd ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("mapstep said {line:?}"));
        let pid = child.id();
        let meta = std::fs::metadata(file).unwrap();
        let mut fds = FdTable::new();
        fds.insert(
            fd,
            Arc::new(Target::File {
                path: Str::from(file.to_str().unwrap()),
                dev: meta.dev(),
                ino: meta.ino(),
            }),
            false,
        );
        let mut ps = Processes::new();
        ps.add_process(pid, 1, fds, FsState::default(), AddressSpace::new());
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        ps.load_maps(pid, &maps).unwrap();
        let d = Driver {
            child,
            stdin,
            stdout,
            pid,
            ps,
            seq: 0,
            steps: 0,
        };
        d.compare("the snapshot");
        d.fd_check(fd);
        d
    }

    fn fd_check(&self, fd: i32) {
        assert!(self.ps.files(self.pid).unwrap().get(fd).is_some());
    }

    /// Makes the call in the child, feeds its exit event to the model, compares. `args` by
    /// name in the call's signature (fd arguments by number only); others are 0.
    fn call(&mut self, sys: Sysno, args: &[(&str, i64)]) -> i64 {
        let call = SyscallId::from_sysno(sys);
        let sig = call.signature();
        let mut raw = [0i64; 6];
        let mut values = Vec::new();
        for (i, a) in sig.args.iter().enumerate() {
            let v = args
                .iter()
                .find(|(n, _)| *n == a.name)
                .map_or(0, |(_, v)| *v);
            raw[i] = v;
            values.push(match a.kind {
                vigil_event::ArgKind::Fd => Value::Fd(Fd::new(v as i32, None)),
                _ => Value::Uint(v as u64),
            });
        }
        for (n, _) in args {
            assert!(sig.field_index(n).is_some(), "{sys} has no argument {n}");
        }
        let line = format!(
            "{} {} {} {} {} {} {}\n",
            sys.id(),
            raw[0],
            raw[1],
            raw[2],
            raw[3],
            raw[4],
            raw[5]
        );
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        let ret: i64 = reply
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("mapstep answered {reply:?} to {line}"));
        self.seq += 1;
        let ev = Event {
            seq: self.seq,
            time_ns: self.seq,
            pid: self.pid,
            tid: self.pid,
            kind: EventKind::SyscallExit(SyscallExit {
                call,
                entry_seq: 0,
                ret,
                args: values.into_iter().collect(),
            }),
        };
        self.ps
            .apply(&ev)
            .unwrap_or_else(|e| panic!("{sys} {args:?} = {ret:#x}: {e}"));
        self.steps += 1;
        self.compare(&format!("{sys} {args:?} = {ret:#x}"));
        ret
    }

    fn compare(&self, what: &str) {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid)).unwrap();
        let real = parse_maps(&maps).unwrap();
        let model = self.ps.mm(self.pid).unwrap();
        model.check().unwrap();
        let (want, got) = (pages(&real), pages(model));
        // Shared anonymous objects have the kernel's inode on one side and the model's own id
        // on the other: they must correspond one to one.
        let mut ids: BTreeMap<u64, u64> = BTreeMap::new();
        let mut diffs = Vec::new();
        let keys: std::collections::BTreeSet<u64> =
            want.keys().chain(got.keys()).copied().collect();
        for k in keys {
            let (w, g) = (want.get(&k), got.get(&k));
            let same = match (w, g) {
                (Some(w), Some(g)) => match (w.obj, g.obj) {
                    (
                        Obj::SharedAnon { id: wi, page: wp },
                        Obj::SharedAnon { id: gi, page: gp },
                    ) => {
                        wp == gp
                            && w.prot == g.prot
                            && w.shared == g.shared
                            && *ids.entry(gi).or_insert(wi) == wi
                    }
                    _ => w == g,
                },
                _ => false,
            };
            if !same {
                diffs.push(format!("{k:#x}: real {w:?}, model {g:?}"));
            }
        }
        assert!(
            diffs.is_empty(),
            "after {what}: {} pages differ:\n{}\n--- real:\n{maps}--- model:\n{}",
            diffs.len(),
            diffs
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            model.to_maps_text()
        );
        // MADV_DONTFORK shows in smaps as the VmFlags `dc`.
        let mut real_dc = std::collections::BTreeSet::new();
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", self.pid)).unwrap();
        let mut range = None;
        for line in smaps.lines() {
            if let Some(flags) = line.strip_prefix("VmFlags:") {
                if let (Some((s, e)), true) = (range, flags.split_whitespace().any(|f| f == "dc")) {
                    real_dc.extend((s..e).step_by(P as usize));
                }
            } else if let Ok(v) = vigil_procstate::maps::parse_line(line) {
                range = Some((v.start, v.end));
            }
        }
        let model_dc: std::collections::BTreeSet<u64> = model
            .iter()
            .filter(|v| v.dontfork)
            .flat_map(|v| (v.start..v.end).step_by(P as usize))
            .collect();
        assert_eq!(
            model_dc, real_dc,
            "after {what}: MADV_DONTFORK pages differ"
        );
        let mut seen: Vec<u64> = ids.values().copied().collect();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            ids.len(),
            "two model objects are one kernel object"
        );
    }
}

const RW: i64 = 3;
const R: i64 = 1;
const RX: i64 = 5;
const PRIV_ANON: i64 = (MAP_PRIVATE | MAP_ANONYMOUS) as i64;

#[test]
fn model_follows_the_kernel_call_by_call() {
    let dir = std::path::Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        vigil_testkit::scratch_dir("procstate")
    };
    let file = dir.join(format!("vigil-procstate-{}", std::process::id()));
    std::fs::File::create(&file)
        .unwrap()
        .set_len(16 * P)
        .unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _rm = Rm(file.clone());
    let mut d = Driver::start(&file);
    let fd =
        d.ps.files(d.pid)
            .unwrap()
            .iter()
            .next()
            .map(|(fd, _)| fd as i64)
            .unwrap();
    let p = P as i64;

    // Private anonymous memory: split by mprotect (unaligned length), a hole by munmap.
    let a = d.call(
        Sysno::mmap,
        &[
            ("length", 5 * p),
            ("prot", RW),
            ("flags", PRIV_ANON),
            ("fd", -1),
        ],
    );
    assert!(a > 0);
    d.call(
        Sysno::mprotect,
        &[("addr", a + p), ("length", 2 * p - 100), ("prot", R)],
    );
    d.call(Sysno::munmap, &[("addr", a + 3 * p), ("length", 1)]);
    // A mprotect over the hole: ENOMEM, the part before it changed.
    let r = d.call(
        Sysno::mprotect,
        &[("addr", a + 2 * p), ("length", 3 * p), ("prot", RW)],
    );
    assert_eq!(r, -12);

    // A shared file mapping at an offset, split by a MAP_FIXED anonymous mapping.
    let f = d.call(
        Sysno::mmap,
        &[
            ("length", 4 * p),
            ("prot", RW),
            ("flags", MAP_SHARED as i64),
            ("fd", fd),
            ("offset", p),
        ],
    );
    assert!(f > 0);
    d.call(
        Sysno::mmap,
        &[
            ("addr", f + p),
            ("length", p + 1),
            ("prot", RX),
            ("flags", PRIV_ANON | MAP_FIXED as i64),
            ("fd", -1),
        ],
    );
    d.call(Sysno::mprotect, &[("addr", f), ("length", p), ("prot", R)]);
    // MAP_FIXED_NOREPLACE over it is refused: nothing changes.
    let r = d.call(
        Sysno::mmap,
        &[
            ("addr", f),
            ("length", 2 * p),
            ("prot", RW),
            ("flags", PRIV_ANON | MAP_FIXED_NOREPLACE as i64),
            ("fd", -1),
        ],
    );
    assert_eq!(r, -17);

    // A private file mapping; growing its first page must move it.
    let g = d.call(
        Sysno::mmap,
        &[
            ("length", 3 * p),
            ("prot", RW),
            ("flags", MAP_PRIVATE as i64),
            ("fd", fd),
            ("offset", 2 * p),
        ],
    );
    let g2 = d.call(
        Sysno::mremap,
        &[
            ("old_addr", g),
            ("old_size", p),
            ("new_size", 3 * p),
            ("flags", MREMAP_MAYMOVE as i64),
        ],
    );
    assert_ne!(g2, g);
    // Growing the end of the anonymous area, in place or moved, as the kernel decides.
    d.call(
        Sysno::mremap,
        &[
            ("old_addr", a + 4 * p),
            ("old_size", p),
            ("new_size", 3 * p),
            ("flags", MREMAP_MAYMOVE as i64),
        ],
    );

    // Shared anonymous memory: shrink, then move onto the start of the anonymous area.
    let h = d.call(
        Sysno::mmap,
        &[
            ("length", 4 * p),
            ("prot", RW),
            ("flags", (MAP_SHARED | MAP_ANONYMOUS) as i64),
            ("fd", -1),
        ],
    );
    assert_eq!(
        d.call(
            Sysno::mremap,
            &[
                ("old_addr", h),
                ("old_size", 4 * p),
                ("new_size", 2 * p + 3)
            ]
        ),
        h
    );
    let fixed = (MREMAP_MAYMOVE | MREMAP_FIXED) as i64;
    assert_eq!(
        d.call(
            Sysno::mremap,
            &[
                ("old_addr", h),
                ("old_size", 3 * p),
                ("new_size", 2 * p),
                ("flags", fixed),
                ("new_addr", a)
            ]
        ),
        a
    );
    // A second mapping of the same shared pages (old_size 0).
    let dup = d.call(
        Sysno::mremap,
        &[
            ("old_addr", a + p),
            ("old_size", 0),
            ("new_size", p),
            ("flags", MREMAP_MAYMOVE as i64),
        ],
    );
    assert!(dup > 0);
    // ... and of the file's last page, grown past the old VMA.
    d.call(
        Sysno::mremap,
        &[
            ("old_addr", f + 3 * p),
            ("old_size", 0),
            ("new_size", 2 * p),
            ("flags", MREMAP_MAYMOVE as i64),
        ],
    );

    // MREMAP_DONTUNMAP: the old range stays.
    let k = d.call(
        Sysno::mmap,
        &[
            ("length", 2 * p),
            ("prot", RW),
            ("flags", PRIV_ANON),
            ("fd", -1),
        ],
    );
    let k2 = d.call(
        Sysno::mremap,
        &[
            ("old_addr", k),
            ("old_size", 2 * p),
            ("new_size", 2 * p),
            ("flags", (MREMAP_MAYMOVE | MREMAP_DONTUNMAP) as i64),
        ],
    );
    assert!(k2 > 0 && k2 != k);

    // MADV_DONTFORK (split where it starts and ends; `dc` in smaps), MADV_DOFORK on part of
    // it; MADV_NORMAL changes nothing.
    d.call(Sysno::madvise, &[("arg0", k2 + p), ("arg1", p)]);
    let r = d.call(
        Sysno::madvise,
        &[("arg0", k + p), ("arg1", p), ("arg2", MADV_DONTFORK as i64)],
    );
    assert_eq!(r, 0);
    let r = d.call(
        Sysno::madvise,
        &[
            ("arg0", k2),
            ("arg1", 2 * p),
            ("arg2", MADV_DONTFORK as i64),
        ],
    );
    assert_eq!(r, 0);
    d.call(
        Sysno::madvise,
        &[("arg0", k2 + p), ("arg1", 1), ("arg2", MADV_DOFORK as i64)],
    );

    // brk: learn the break, grow (unaligned), shrink.
    let b = d.call(Sysno::brk, &[("arg0", 0)]);
    d.call(Sysno::brk, &[("arg0", b + 3 * p + 5)]);
    d.call(Sysno::brk, &[("arg0", b + p)]);

    // SysV shared memory: attach, split by mprotect, detach.
    let id = d.call(
        Sysno::shmget,
        &[("key", 0), ("size", 3 * p), ("flags", 0o1600)],
    );
    assert!(id >= 0, "shmget: {id}");
    let s = d.call(Sysno::shmat, &[("shmid", id), ("addr", 0), ("flags", 0)]);
    // IPC_RMID now: the segment goes when detached, even if the test fails.
    d.call(Sysno::shmctl, &[("arg0", id), ("arg1", 0)]);
    assert!(s > 0, "shmat: {s}");
    d.call(
        Sysno::mprotect,
        &[("addr", s + p), ("length", p), ("prot", R)],
    );
    assert_eq!(d.call(Sysno::shmdt, &[("addr", s)]), 0);

    // Unmapping across several VMAs and holes at once.
    d.call(Sysno::munmap, &[("addr", f), ("length", 6 * p)]);
    assert!(d.steps >= 20);
}
