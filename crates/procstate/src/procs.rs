//! The registry of processes and threads and the state they share: which fd table, fs context
//! and address space each task uses, shared and copied as clone(2) flags, exec and exit say.
//!
//! Tables live in pools with reference counts, addressed by ids (`FilesId`, `FsId`, `MmId`)
//! rather than `Rc<RefCell<_>>`, so the registry is plain data: `Clone` (a snapshot at a point
//! of a log), `Send`, deterministic. A backend that keeps its own handles per table (the
//! ptrace recorder's cwd and root fds) can key them by these ids.

use crate::fd::{FdTable, FsState};
use crate::maps::{MapsError, parse_maps};
use crate::mem::{AddressSpace, ObjectId, Prot, Vma};
use std::collections::BTreeMap;
use vigil_event::Str;

// clone(2) flags.
pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_NEWNS: u64 = 0x20000;
/// What pthread_create passes (with CLONE_SIGHAND, CLONE_SYSVSEM, ... which the model ignores).
pub const THREAD_FLAGS: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_THREAD | 0x800;

/// An fd table in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilesId(u64);
/// An fs context (cwd, root) in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FsId(u64);
/// An address space in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MmId(u64);

/// Reference-counted values by id.
#[derive(Clone, Debug)]
struct Pool<T> {
    items: BTreeMap<u64, (u32, T)>,
    next: u64,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            items: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<T: Clone> Pool<T> {
    fn add(&mut self, v: T) -> u64 {
        let id = self.next;
        self.next += 1;
        self.items.insert(id, (1, v));
        id
    }

    fn share(&mut self, id: u64) -> u64 {
        if let Some((refs, _)) = self.items.get_mut(&id) {
            *refs = refs.saturating_add(1);
        }
        id
    }

    fn release(&mut self, id: u64) {
        if let Some((refs, _)) = self.items.get_mut(&id) {
            *refs -= 1;
            if *refs == 0 {
                self.items.remove(&id);
            }
        }
    }

    /// A private copy of `id` (a new, empty value when `id` is unknown).
    fn copy(&mut self, id: u64) -> u64
    where
        T: Default,
    {
        let v = self.get(id).cloned().unwrap_or_default();
        self.add(v)
    }

    fn get(&self, id: u64) -> Option<&T> {
        self.items.get(&id).map(|(_, v)| v)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.items.get_mut(&id).map(|(_, v)| v)
    }

    fn refs(&self, id: u64) -> u32 {
        self.items.get(&id).map_or(0, |(r, _)| *r)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Thread {
    pid: u32,
    files: u64,
    fs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Process {
    ppid: u32,
    mm: u64,
}

/// A SysV shared memory segment, as shmget made it known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShmSegment {
    pub key: u64,
    /// Bytes, as passed to the shmget that created it (or at least that much, when it was
    /// seen only through a shmget of an existing key).
    pub size: u64,
}

/// Where an object's page is mapped: one process, one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageMapping {
    pub pid: u32,
    /// The virtual address of the page's start in that process.
    pub addr: u64,
    pub prot: Prot,
    /// MAP_SHARED; a private mapping sees the object's page until it writes it.
    pub shared: bool,
}

/// Why the registry could not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("no thread {0} is known")]
    UnknownThread(u32),
    #[error("no process {0} is known")]
    UnknownProcess(u32),
    #[error("the size of SysV segment {0} is unknown (its shmget was not seen)")]
    UnknownShmSegment(i64),
    #[error("{call}: {what} was not recorded")]
    Missing { call: String, what: &'static str },
    #[error("{call}: {source}")]
    Mem {
        call: String,
        #[source]
        source: crate::mem::MemError,
    },
    #[error(transparent)]
    Maps(#[from] MapsError),
}

/// Every known process and thread and the tables they use.
#[derive(Clone, Debug, Default)]
pub struct Processes {
    threads: BTreeMap<u32, Thread>,
    procs: BTreeMap<u32, Process>,
    files: Pool<FdTable>,
    fs: Pool<FsState>,
    mms: Pool<AddressSpace>,
    shm: BTreeMap<i64, ShmSegment>,
    next_anon: u64,
    /// Clone flags of a clone-family call in progress, by calling thread (event path).
    pub(crate) in_clone: BTreeMap<u32, u64>,
}

/// Synthetic shared-anonymous ids start here, far from any kernel inode number.
const SYNTHETIC_ANON: u64 = 1 << 62;

impl Processes {
    pub fn new() -> Processes {
        Processes::default()
    }

    /// A process whose start vigil did not see (the traced command itself, an attached
    /// process, one a system-wide backend meets first): its leader thread `pid` with the
    /// tables given. Replaces any earlier process of that pid (pid reuse).
    pub fn add_process(
        &mut self,
        pid: u32,
        ppid: u32,
        files: FdTable,
        fs: FsState,
        mm: AddressSpace,
    ) {
        self.exit_process(pid);
        self.exit_thread(pid);
        let files = self.files.add(files);
        let fs = self.fs.add(fs);
        let mm = self.mms.add(mm);
        self.threads.insert(pid, Thread { pid, files, fs });
        self.procs.insert(pid, Process { ppid, mm });
    }

    /// `add_process` with nothing known: empty tables, unknown cwd.
    pub fn adopt(&mut self, pid: u32, tid: u32) {
        if !self.procs.contains_key(&pid) {
            self.add_process(
                pid,
                0,
                FdTable::new(),
                FsState::default(),
                AddressSpace::new(),
            );
        }
        if tid != pid && !self.threads.contains_key(&tid) {
            // A thread of a known process that was never seen starting: it shares the
            // leader's tables, as threads normally do.
            let _ = self.clone_task(pid, tid, THREAD_FLAGS);
        }
    }

    /// A new task `child` created by thread `parent` with clone flags `flags` (fork: 0 or
    /// SIGCHLD; vfork: CLONE_VM|CLONE_VFORK). CLONE_THREAD makes it a thread of the parent's
    /// process; CLONE_VM shares the address space (otherwise it is `AddressSpace::fork`ed),
    /// CLONE_FILES the fd table, CLONE_FS the cwd and root (otherwise copied); CLONE_PARENT
    /// makes the new process a sibling of its creator.
    pub fn clone_task(&mut self, parent: u32, child: u32, flags: u64) -> Result<(), StateError> {
        let p = self
            .threads
            .get(&parent)
            .cloned()
            .ok_or(StateError::UnknownThread(parent))?;
        let pp = self
            .procs
            .get(&p.pid)
            .cloned()
            .ok_or(StateError::UnknownProcess(p.pid))?;
        // A tid being reused: whatever it was is gone.
        if self.procs.contains_key(&child) {
            self.exit_process(child);
        }
        self.exit_thread(child);
        let files = if flags & CLONE_FILES != 0 {
            self.files.share(p.files)
        } else {
            self.files.copy(p.files)
        };
        let fs = if flags & CLONE_FS != 0 {
            self.fs.share(p.fs)
        } else {
            self.fs.copy(p.fs)
        };
        if flags & CLONE_THREAD != 0 {
            self.threads.insert(
                child,
                Thread {
                    pid: p.pid,
                    files,
                    fs,
                },
            );
            return Ok(());
        }
        let mm = if flags & CLONE_VM != 0 {
            self.mms.share(pp.mm)
        } else {
            let forked = self
                .mms
                .get(pp.mm)
                .map(AddressSpace::fork)
                .unwrap_or_default();
            self.mms.add(forked)
        };
        let ppid = if flags & CLONE_PARENT != 0 {
            pp.ppid
        } else {
            p.pid
        };
        self.threads.insert(
            child,
            Thread {
                pid: child,
                files,
                fs,
            },
        );
        self.procs.insert(child, Process { ppid, mm });
        Ok(())
    }

    /// A successful exec in process `pid`, made by thread `tid` (a non-leader thread that
    /// execs takes over the pid; every other thread is gone). The process gets its own copy
    /// of the fd table without the close-on-exec fds, and a new, empty address space (load
    /// the new layout with `load_maps` or `set_address_space`). The fs context stays shared.
    pub fn exec(&mut self, pid: u32, tid: u32) -> Result<(), StateError> {
        let old_mm = self
            .procs
            .get(&pid)
            .map(|p| p.mm)
            .ok_or(StateError::UnknownProcess(pid))?;
        let by = if self.threads.get(&tid).is_some_and(|t| t.pid == pid) {
            tid
        } else {
            pid
        };
        let Some(execer) = self.threads.get(&by).cloned() else {
            return Err(StateError::UnknownThread(by));
        };
        let mut table = self.files.get(execer.files).cloned().unwrap_or_default();
        table.exec();
        let files = self.files.add(table);
        let fs = self.fs.share(execer.fs);
        for t in self.tids_of(pid) {
            self.exit_thread(t);
        }
        self.threads.insert(pid, Thread { pid, files, fs });
        self.mms.release(old_mm);
        let mm = self.mms.add(AddressSpace::new());
        if let Some(p) = self.procs.get_mut(&pid) {
            p.mm = mm;
        }
        Ok(())
    }

    /// A thread ended. The process stays until `exit_process` (its leader's exit is the
    /// process's when it is the last thread).
    pub fn exit_thread(&mut self, tid: u32) {
        if let Some(t) = self.threads.remove(&tid) {
            self.files.release(t.files);
            self.fs.release(t.fs);
        }
        self.in_clone.remove(&tid);
    }

    /// A process ended: it and all its threads are gone.
    pub fn exit_process(&mut self, pid: u32) {
        for t in self.tids_of(pid) {
            self.exit_thread(t);
        }
        if let Some(p) = self.procs.remove(&pid) {
            self.mms.release(p.mm);
        }
    }

    /// unshare(2) (and CLOSE_RANGE_UNSHARE): the thread gets its own copy of the fd table
    /// (CLONE_FILES) and of the fs context (CLONE_FS, also implied by CLONE_NEWNS).
    pub fn unshare(&mut self, tid: u32, flags: u64) -> Result<(), StateError> {
        let t = self
            .threads
            .get(&tid)
            .cloned()
            .ok_or(StateError::UnknownThread(tid))?;
        let mut files = t.files;
        let mut fs = t.fs;
        if flags & CLONE_FILES != 0 && self.files.refs(t.files) > 1 {
            files = self.files.copy(t.files);
            self.files.release(t.files);
        }
        if flags & (CLONE_FS | CLONE_NEWNS) != 0 && self.fs.refs(t.fs) > 1 {
            fs = self.fs.copy(t.fs);
            self.fs.release(t.fs);
        }
        if let Some(t) = self.threads.get_mut(&tid) {
            t.files = files;
            t.fs = fs;
        }
        Ok(())
    }

    /// The process of a thread.
    pub fn pid_of(&self, tid: u32) -> Option<u32> {
        self.threads.get(&tid).map(|t| t.pid)
    }

    /// Corrects a process's parent (an event that names it).
    pub fn set_ppid(&mut self, pid: u32, ppid: u32) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.ppid = ppid;
        }
    }

    pub fn ppid_of(&self, pid: u32) -> Option<u32> {
        self.procs.get(&pid).map(|p| p.ppid)
    }

    /// Known processes, in pid order.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.procs.keys().copied()
    }

    /// The known threads of a process, in tid order.
    pub fn tids_of(&self, pid: u32) -> Vec<u32> {
        self.threads
            .iter()
            .filter(|(_, t)| t.pid == pid)
            .map(|(tid, _)| *tid)
            .collect()
    }

    pub fn has_thread(&self, tid: u32) -> bool {
        self.threads.contains_key(&tid)
    }

    pub fn files_id(&self, tid: u32) -> Option<FilesId> {
        self.threads.get(&tid).map(|t| FilesId(t.files))
    }

    pub fn fs_id(&self, tid: u32) -> Option<FsId> {
        self.threads.get(&tid).map(|t| FsId(t.fs))
    }

    /// The address space of a process (or of the process of a thread).
    pub fn mm_id(&self, pid_or_tid: u32) -> Option<MmId> {
        let pid = self.pid_of(pid_or_tid).unwrap_or(pid_or_tid);
        self.procs.get(&pid).map(|p| MmId(p.mm))
    }

    /// The fd table a thread uses.
    pub fn files(&self, tid: u32) -> Option<&FdTable> {
        self.files.get(self.threads.get(&tid)?.files)
    }

    pub fn files_mut(&mut self, tid: u32) -> Option<&mut FdTable> {
        let id = self.threads.get(&tid)?.files;
        self.files.get_mut(id)
    }

    /// The cwd and root a thread uses.
    pub fn fs(&self, tid: u32) -> Option<&FsState> {
        self.fs.get(self.threads.get(&tid)?.fs)
    }

    pub fn fs_mut(&mut self, tid: u32) -> Option<&mut FsState> {
        let id = self.threads.get(&tid)?.fs;
        self.fs.get_mut(id)
    }

    /// The address space of a process (or of the process of a thread).
    pub fn mm(&self, pid_or_tid: u32) -> Option<&AddressSpace> {
        self.mms.get(self.mm_id(pid_or_tid)?.0)
    }

    pub fn mm_mut(&mut self, pid_or_tid: u32) -> Option<&mut AddressSpace> {
        let id = self.mm_id(pid_or_tid)?.0;
        self.mms.get_mut(id)
    }

    /// Replaces a process's address space (a layout a backend read itself). Processes that
    /// shared the old one (CLONE_VM) keep it.
    pub fn set_address_space(&mut self, pid: u32, mm: AddressSpace) -> Result<(), StateError> {
        let old = self
            .procs
            .get(&pid)
            .map(|p| p.mm)
            .ok_or(StateError::UnknownProcess(pid))?;
        self.mms.release(old);
        let new = self.mms.add(mm);
        if let Some(p) = self.procs.get_mut(&pid) {
            p.mm = new;
        }
        Ok(())
    }

    /// Replaces a process's address space with the layout in the text of its /proc/PID/maps
    /// (the snapshot taken at exec).
    pub fn load_maps(&mut self, pid: u32, maps_text: &str) -> Result<(), StateError> {
        let mm = parse_maps(maps_text)?;
        self.set_address_space(pid, mm)
    }

    /// A fresh object for a `MAP_SHARED|MAP_ANONYMOUS` mapping.
    pub fn new_shared_anon(&mut self) -> ObjectId {
        self.next_anon += 1;
        ObjectId::SharedAnon(SYNTHETIC_ANON | self.next_anon)
    }

    /// Records a SysV segment (from shmget's result and size).
    pub fn add_shm_segment(&mut self, shmid: i64, key: u64, size: u64) {
        self.shm
            .entry(shmid)
            .and_modify(|s| s.size = s.size.max(size))
            .or_insert(ShmSegment { key, size });
    }

    pub fn shm_segment(&self, shmid: i64) -> Option<&ShmSegment> {
        self.shm.get(&shmid)
    }

    /// shmctl(IPC_RMID) once nothing maps it any more: the segment is forgotten.
    pub fn remove_shm_segment(&mut self, shmid: i64) {
        self.shm.remove(&shmid);
    }

    /// Every distinct address space with the processes using it.
    pub fn spaces(&self) -> impl Iterator<Item = (u32, &AddressSpace)> {
        self.procs
            .iter()
            .filter_map(|(pid, p)| Some((*pid, self.mms.get(p.mm)?)))
    }

    /// Every shared mapping of `object`, in every process (a process per pid, also when
    /// CLONE_VM processes share one address space), in pid then address order.
    pub fn shared_mappings(&self, object: &ObjectId) -> Vec<(u32, &Vma)> {
        let mut out = Vec::new();
        for (pid, mm) in self.spaces() {
            for v in mm.iter() {
                if v.shared && v.object() == Some(object) {
                    out.push((pid, v));
                }
            }
        }
        out
    }

    /// Where the page of `object` containing byte `offset` is mapped, shared or private, in
    /// every process: what a coherence protocol over the object's pages has to reach.
    pub fn page_mappers(&self, object: &ObjectId, offset: u64) -> Vec<PageMapping> {
        let page = crate::mem::page_down(offset);
        let mut out = Vec::new();
        for (pid, mm) in self.spaces() {
            for v in mm.iter() {
                let crate::mem::Backing::Object { id, offset: vo, .. } = &v.backing else {
                    continue;
                };
                if id != object || page < *vo || page - vo >= v.len() {
                    continue;
                }
                out.push(PageMapping {
                    pid,
                    addr: v.start + (page - vo),
                    prot: v.prot,
                    shared: v.shared,
                });
            }
        }
        out
    }

    /// The path a SysV segment shows in /proc/PID/maps.
    pub(crate) fn shm_path(&self, shmid: i64) -> Str {
        let key = self.shm.get(&shmid).map_or(0, |s| s.key);
        Str::from(format!("/SYSV{:08x} (deleted)", key as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, MappedObject, Mmap};
    use std::sync::Arc;
    use vigil_event::Target;

    const P: u64 = crate::mem::PAGE_SIZE;

    fn file(path: &str) -> Arc<Target> {
        Arc::new(Target::File {
            path: Str::from(path),
            dev: 1,
            ino: 2,
        })
    }

    fn world() -> Processes {
        let mut ps = Processes::new();
        let mut fds = FdTable::new();
        fds.insert(0, file("/dev/null"), false);
        fds.insert(3, file("/secret"), true);
        ps.add_process(
            100,
            1,
            fds,
            FsState::new(
                Target::File {
                    path: Str::from("/home"),
                    dev: 1,
                    ino: 3,
                },
                Target::File {
                    path: Str::from("/"),
                    dev: 1,
                    ino: 4,
                },
            ),
            AddressSpace::new(),
        );
        ps
    }

    fn map(ps: &mut Processes, pid: u32, addr: u64, shared: bool, obj: Option<MappedObject>) {
        let anon = obj
            .as_ref()
            .is_none_or(|o| matches!(o.id, ObjectId::SharedAnon(_)));
        let flags = if shared { MAP_SHARED } else { MAP_PRIVATE }
            | MAP_FIXED
            | if anon { MAP_ANONYMOUS } else { 0 };
        ps.mm_mut(pid)
            .unwrap()
            .mmap(&Mmap {
                addr,
                len: 2 * P,
                prot: 3,
                flags,
                object: obj,
                offset: 0,
            })
            .unwrap();
    }

    #[test]
    fn threads_share_everything_forks_copy() {
        let mut ps = world();
        ps.clone_task(100, 101, THREAD_FLAGS).unwrap();
        ps.files_mut(101).unwrap().insert(5, file("/a"), false);
        assert!(ps.files(100).unwrap().get(5).is_some(), "threads share fds");
        assert_eq!(ps.pid_of(101), Some(100));
        assert_eq!(ps.mm_id(101), ps.mm_id(100));
        // A fork from the thread: the new process copies fds, fs and memory.
        map(&mut ps, 100, 0x10000, false, None);
        ps.clone_task(101, 200, 17).unwrap();
        assert_eq!(ps.ppid_of(200), Some(100));
        ps.files_mut(200).unwrap().remove(5);
        assert!(ps.files(101).unwrap().get(5).is_some());
        ps.fs_mut(200).unwrap().cwd = Some(file("/tmp"));
        assert_eq!(ps.fs(100).unwrap().cwd_path(), Some(&b"/home"[..]));
        ps.mm_mut(200).unwrap().munmap(0x10000, P).unwrap();
        assert_eq!(ps.mm(100).unwrap().mapped_bytes(), 2 * P);
        assert_eq!(ps.mm(200).unwrap().mapped_bytes(), P);
        assert_ne!(ps.files_id(200), ps.files_id(100));
    }

    #[test]
    fn clone_flags_share_selectively() {
        let mut ps = world();
        ps.clone_task(100, 300, CLONE_VM | CLONE_FS).unwrap();
        assert_eq!(ps.mm_id(300), ps.mm_id(100));
        assert_eq!(ps.fs_id(300), ps.fs_id(100));
        assert_ne!(ps.files_id(300), ps.files_id(100));
        ps.fs_mut(300).unwrap().cwd = Some(file("/x"));
        assert_eq!(ps.fs(100).unwrap().cwd_path(), Some(&b"/x"[..]));
        ps.clone_task(100, 301, CLONE_FILES | CLONE_PARENT).unwrap();
        assert_eq!(ps.files_id(301), ps.files_id(100));
        assert_ne!(ps.mm_id(301), ps.mm_id(100));
        assert_eq!(ps.ppid_of(301), Some(1), "CLONE_PARENT: a sibling");
        assert_eq!(
            ps.clone_task(999, 1000, 0),
            Err(StateError::UnknownThread(999))
        );
    }

    #[test]
    fn vfork_child_exec_gets_its_own_space_and_drops_cloexec() {
        let mut ps = world();
        map(&mut ps, 100, 0x10000, false, None);
        ps.clone_task(100, 400, CLONE_VM | CLONE_VFORK).unwrap();
        assert_eq!(ps.mm_id(400), ps.mm_id(100));
        ps.exec(400, 400).unwrap();
        assert!(ps.mm(400).unwrap().is_empty());
        assert_eq!(
            ps.mm(100).unwrap().mapped_bytes(),
            2 * P,
            "the parent keeps it"
        );
        assert!(ps.files(400).unwrap().get(3).is_none());
        assert!(
            ps.files(100).unwrap().get(3).is_some(),
            "only the exec'd copy loses it"
        );
    }

    #[test]
    fn exec_by_a_thread_takes_over_the_pid_and_unshares_files() {
        let mut ps = world();
        ps.clone_task(100, 101, THREAD_FLAGS).unwrap();
        ps.clone_task(100, 102, THREAD_FLAGS).unwrap();
        ps.clone_task(100, 500, CLONE_FILES).unwrap(); // another process sharing the table
        ps.exec(100, 102).unwrap();
        assert_eq!(ps.tids_of(100), vec![100]);
        assert!(!ps.has_thread(102));
        assert!(ps.files(100).unwrap().get(3).is_none());
        assert!(ps.files(500).unwrap().get(3).is_some());
        assert_ne!(ps.files_id(100), ps.files_id(500));
        assert!(ps.exec(77, 77).is_err());
    }

    #[test]
    fn exits_release_tables() {
        let mut ps = world();
        ps.clone_task(100, 101, THREAD_FLAGS).unwrap();
        ps.exit_thread(101);
        assert_eq!(ps.tids_of(100), vec![100]);
        assert!(ps.files(100).is_some());
        ps.clone_task(100, 101, THREAD_FLAGS).unwrap();
        ps.exit_process(100);
        assert!(ps.files(101).is_none());
        assert_eq!(ps.pids().count(), 0);
        assert!(ps.files.items.is_empty() && ps.fs.items.is_empty() && ps.mms.items.is_empty());
    }

    #[test]
    fn unshare_copies_only_what_is_shared() {
        let mut ps = world();
        ps.clone_task(100, 101, THREAD_FLAGS).unwrap();
        ps.unshare(101, CLONE_FILES).unwrap();
        ps.files_mut(101).unwrap().remove(0);
        assert!(ps.files(100).unwrap().get(0).is_some());
        assert_eq!(ps.fs_id(101), ps.fs_id(100));
        ps.unshare(101, CLONE_NEWNS).unwrap();
        assert_ne!(ps.fs_id(101), ps.fs_id(100));
    }

    #[test]
    fn shared_mappings_and_page_mappers_across_fork_and_clone_vm() {
        let mut ps = world();
        let f = ObjectId::File { dev: 1, ino: 9 };
        let fobj = MappedObject {
            id: f,
            path: Str::from("/data"),
        };
        let anon = ps.new_shared_anon();
        map(&mut ps, 100, 0x10000, true, Some(fobj.clone()));
        map(
            &mut ps,
            100,
            0x20000,
            true,
            Some(MappedObject {
                id: anon,
                path: Str::from("/dev/zero (deleted)"),
            }),
        );
        map(&mut ps, 100, 0x30000, false, Some(fobj.clone()));
        ps.clone_task(100, 200, 17).unwrap(); // fork: shared stays shared
        ps.clone_task(100, 300, CLONE_VM).unwrap();
        ps.mm_mut(200).unwrap().munmap(0x10000, P).unwrap();
        let shared: Vec<(u32, u64)> = ps
            .shared_mappings(&f)
            .iter()
            .map(|(p, v)| (*p, v.start))
            .collect();
        assert_eq!(shared, vec![(100, 0x10000), (200, 0x11000), (300, 0x10000)]);
        assert_eq!(ps.shared_mappings(&anon).len(), 3);
        let page1: Vec<(u32, u64, bool)> = ps
            .page_mappers(&f, P + 17)
            .iter()
            .map(|m| (m.pid, m.addr, m.shared))
            .collect();
        assert_eq!(
            page1,
            vec![
                (100, 0x11000, true),
                (100, 0x31000, false),
                (200, 0x11000, true),
                (200, 0x31000, false),
                (300, 0x11000, true),
                (300, 0x31000, false),
            ]
        );
        // Page 0 is no longer mapped shared in 200.
        assert_eq!(
            ps.page_mappers(&f, 0)
                .iter()
                .filter(|m| m.pid == 200)
                .count(),
            1
        );
        assert!(ps.page_mappers(&f, 2 * P).is_empty());
        assert_ne!(ps.new_shared_anon(), anon);
    }

    #[test]
    fn load_maps_replaces_only_that_process() {
        let mut ps = world();
        ps.clone_task(100, 300, CLONE_VM).unwrap();
        ps.load_maps(100, "00400000-00401000 r--p 00000000 fd:01 1 /bin/x\n")
            .unwrap();
        assert_eq!(ps.mm(100).unwrap().len(), 1);
        assert!(ps.mm(300).unwrap().is_empty());
        assert!(matches!(
            ps.load_maps(100, "junk"),
            Err(StateError::Maps(_))
        ));
        assert!(ps.load_maps(42, "").is_err());
    }
}
