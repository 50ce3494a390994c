//! vigil's event model: one `Event` type for every capture backend, the syscall table with
//! argument signatures, flag names, strace-like rendering and the JSON form.

pub mod event;
pub mod flags;
pub mod json;
pub mod memory;
pub mod open;
pub mod render;
pub mod syscall;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod text;
pub mod uring;
pub mod value;

pub use event::*;
pub use memory::{
    AddressSpace, Divergence, FaultAccess, MemAccess, SignalFault, SmoAccess, SmoKind, SmoObject,
    SmoVia, VariantState, Vma,
};
pub use open::OpenIntent;
pub use syscall::{Abi, Arg, ArgKind, Class, Signature, SyscallId};
pub use text::Str;
pub use value::{AddrRange, Cut, Fd, Resolution, Resolved, SockAddr, Socket, Target, Value};

/// ` (did you mean `x`?)` for the closest candidate, or nothing when none is close.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let best = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}
