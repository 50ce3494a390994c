//! What a capture backend is, as seen by everything downstream of it.
//!
//! A backend (ptrace for one command tree, eBPF for the machine) turns what processes do into
//! `Event`s and hands each one, in sequence order, to an `EventSink`. Log writing, online rules
//! and everything else sit behind the sink, so they never know where events came from.

mod selection;

pub use selection::{Selection, SelectionError};
use vigil_event::{Event, EventKind, ExitStatus};

/// What the sink wants done about the event it was just given. Only entry events of a backend
/// that stops the caller before the call runs (ptrace) can be denied; others ignore `Deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[must_use]
pub enum Verdict {
    #[default]
    Continue,
    /// Do not execute the call; make it return `-errno`.
    Deny(i32),
    /// SIGKILL the process.
    Kill,
    /// SIGSTOP the process.
    Stop,
}

/// Receives every event a backend produces, on the backend's capture thread.
pub trait EventSink {
    fn event(&mut self, event: Event) -> Verdict;

    /// Events the sink itself produced while handling the last event (the actions a rule
    /// took). The backend numbers them, timestamps them and gives them back through `event`,
    /// so they are recorded in the one sequence order. Called after every `event`.
    fn generated(&mut self) -> Vec<(u32, u32, EventKind)> {
        Vec::new()
    }

    /// Verdicts for processes other than the one whose event was just handled (a rule's
    /// match completed by another process's event is about the matched process). The backend
    /// applies each to that process if it still traces it. Called after every `event`.
    fn verdicts_for_others(&mut self) -> Vec<(u32, Verdict)> {
        Vec::new()
    }
}

impl<F: FnMut(Event) -> Verdict> EventSink for F {
    fn event(&mut self, event: Event) -> Verdict {
        self(event)
    }
}

/// How a capture ended.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The traced command's own exit status (the root of the tree), when there is one.
    pub status: Option<ExitStatus>,
    /// Events handed to the sink.
    pub events: u64,
    /// Events the backend could not deliver (also reported in-stream as `Lost` events).
    pub lost: u64,
    /// Processes still running when the capture was told to stop waiting for them, left to
    /// run on their own.
    pub detached: u64,
}

/// A capture backend.
pub trait Backend {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Captures until there is nothing left to watch, giving every event to `sink`.
    fn run(&mut self, sink: &mut dyn EventSink) -> Result<Outcome, Self::Error>;
}
