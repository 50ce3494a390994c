//! vigil's process state as a pure library: what each traced process has open (fd tables),
//! where it is (cwd, root) and what it maps (address spaces: VMAs over time), kept as the
//! kernel keeps them across fork, clone, exec and exit.
//!
//! It depends on the event model alone (no ptrace, no /proc: the /proc/PID/maps parser takes
//! the text), so every consumer computes the same state: the ptrace recorder through the
//! lower-level methods (`Processes::clone_task`, `exec`, `FdTable::insert`,
//! `AddressSpace::mmap`, ...) with the kernel's own answers, and an eBPF backend or an offline
//! analysis of a log through `Processes::apply(&Event)`.
//!
//! On top of that, `replay` keeps what each mapping was used for while a log is replayed (the
//! parts of shared-memory objects read and written, the private pages copied on write) and
//! stops at a moment of the log (`vigil maps`); `fault` explains a SIGSEGV/SIGBUS against the
//! model (`vigil summary` and `show`).

#![forbid(unsafe_code)]

pub mod apply;
pub mod fault;
pub mod fd;
pub mod maps;
pub mod mem;
pub mod procs;
pub mod replay;

pub use fault::{FaultExplanation, FaultKind};
pub use fd::{FdEntry, FdTable, FsState};
pub use maps::{MapsError, parse_maps};
pub use mem::{
    AddressSpace, Backing, Brk, MappedObject, MemError, Mmap, ObjectId, PAGE_SIZE, Prot, Role, Vma,
};
pub use procs::{FilesId, FsId, MmId, PageMapping, Processes, ShmSegment, StateError};
pub use replay::{MapsAt, MapsAtError, Moment, Replay, SpaceView, VmaView, maps_at};
