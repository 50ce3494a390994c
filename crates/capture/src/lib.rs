//! What a capture backend is, as seen by everything downstream of it.
//!
//! A backend (ptrace for one command tree, eBPF for the machine) turns what processes do into
//! `Event`s and hands each one, in sequence order, to an `EventSink`. Log writing, online rules
//! and everything else sit behind the sink, so they never know where events came from.

mod selection;

pub use selection::{Selection, SelectionError};
use vigil_event::{Event, EventKind, ExitStatus};

pub use vigil_event::Verdict;

/// Why a sink could not take an event (the log's disk is full, its writer died). The backend
/// stops capturing at the first one: nothing after it is handed on, and the capture ends
/// cleanly (see `Sequencer`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub Box<dyn std::error::Error + Send + Sync + 'static>);

impl SinkError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        SinkError(Box::new(e))
    }

    /// An error known only by its message.
    pub fn msg(m: impl std::fmt::Display) -> Self {
        SinkError(m.to_string().into())
    }
}

/// Receives every event a backend produces, on the backend's capture thread.
pub trait EventSink {
    /// Takes one event; the verdict is about that event's process. An error stops the capture.
    fn event(&mut self, event: Event) -> Result<Verdict, SinkError>;

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

/// A closure is a sink that cannot fail (tests, examples).
impl<F: FnMut(Event) -> Verdict> EventSink for F {
    fn event(&mut self, event: Event) -> Result<Verdict, SinkError> {
        Ok(self(event))
    }
}

/// What handing one event on produced: the verdict for its own process and those for others.
#[derive(Debug, Default)]
pub struct Delivery {
    pub verdict: Verdict,
    pub others: Vec<(u32, Verdict)>,
}

/// Between a backend and its sink: numbers events (one sequence, gap-free), timestamps them,
/// records what the sink generated right after the event that caused it, and collects the
/// verdicts. Every backend uses it, so the numbering rules live in one place.
///
/// At the first sink error it stops handing events on: `failed` says so, and every later
/// event is only counted (`undelivered`). The backend then ends its capture without losing
/// the traced programs (ptrace lets them run to their end untraced in effect, see its docs).
pub struct Sequencer<'s> {
    sink: &'s mut dyn EventSink,
    seq: u64,
    delivered: u64,
    undelivered: u64,
    error: Option<SinkError>,
    clock: fn() -> u64,
}

/// Nanoseconds since the Unix epoch (the events' clock).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl<'s> Sequencer<'s> {
    pub fn new(sink: &'s mut dyn EventSink) -> Self {
        Sequencer {
            sink,
            seq: 0,
            delivered: 0,
            undelivered: 0,
            error: None,
            clock: now_ns,
        }
    }

    /// The same with another clock (tests; a backend whose events carry kernel times).
    pub fn with_clock(sink: &'s mut dyn EventSink, clock: fn() -> u64) -> Self {
        Sequencer {
            clock,
            ..Sequencer::new(sink)
        }
    }

    /// The seq the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Numbers and hands on one event, then what the sink generated about it.
    pub fn emit(&mut self, pid: u32, tid: u32, kind: EventKind) -> Delivery {
        self.emit_at(pid, tid, (self.clock)(), kind)
    }

    /// `emit` with the event's time given (a backend whose events carry their own).
    pub fn emit_at(&mut self, pid: u32, tid: u32, time_ns: u64, kind: EventKind) -> Delivery {
        if self.error.is_some() {
            self.undelivered += 1;
            return Delivery::default();
        }
        self.seq += 1;
        let ev = Event {
            seq: self.seq,
            time_ns,
            pid,
            tid,
            kind,
        };
        let verdict = match self.sink.event(ev) {
            Ok(v) => v,
            Err(e) => {
                self.fail(e);
                return Delivery::default();
            }
        };
        self.delivered += 1;
        let others = self.sink.verdicts_for_others();
        // What the sink did about it (a rule's actions) is recorded right after it.
        for (pid, tid, kind) in self.sink.generated() {
            if self.error.is_some() {
                self.undelivered += 1;
                continue;
            }
            self.seq += 1;
            let ev = Event {
                seq: self.seq,
                time_ns: (self.clock)(),
                pid,
                tid,
                kind,
            };
            match self.sink.event(ev) {
                Ok(_) => self.delivered += 1,
                Err(e) => self.fail(e),
            }
        }
        Delivery { verdict, others }
    }

    fn fail(&mut self, e: SinkError) {
        self.undelivered += 1;
        self.error = Some(e);
    }

    /// The sink's error, once it failed: the backend should end its capture.
    pub fn failed(&self) -> Option<&SinkError> {
        self.error.as_ref()
    }

    /// Takes the sink's error (for `Outcome`).
    pub fn take_error(&mut self) -> Option<SinkError> {
        self.error.take()
    }

    /// Events the sink took.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Events produced after the sink failed (the one it failed on included).
    pub fn undelivered(&self) -> u64 {
        self.undelivered
    }
}

/// Tells a running backend to stop: from a signal handler's thread, a timer, another thread.
/// Cheap to clone; `stop` may be called any number of times from any thread.
#[derive(Clone, Default)]
pub struct StopHandle {
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    wake: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl StopHandle {
    /// A handle whose `stop` also calls `wake` (to interrupt the backend's wait).
    pub fn with_waker(wake: impl Fn() + Send + Sync + 'static) -> Self {
        StopHandle {
            flag: Default::default(),
            wake: Some(std::sync::Arc::new(wake)),
        }
    }

    pub fn stop(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(w) = &self.wake {
            w();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How a capture ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The exit status of the command the backend started, for a backend that starts one
    /// (ptrace: the root of the traced tree). None for a system-wide backend, or when the
    /// command's status could not be known.
    pub status: Option<ExitStatus>,
    /// Events handed to the sink.
    pub events: u64,
    /// Events the backend could not deliver (also reported in-stream as `Lost` events).
    pub lost: u64,
    /// Processes still running when the capture was told to stop waiting for them, left to
    /// run on their own.
    pub detached: u64,
    /// The sink failed (a full disk): the capture stopped handing events on at that point,
    /// and `undelivered` events came after it.
    pub sink_error: Option<SinkError>,
    pub undelivered: u64,
    /// The capture ended because its `StopHandle` was used.
    pub stopped: bool,
}

/// A backend's failure to capture at all (the command cannot be started, no privilege).
pub trait BackendError: std::error::Error + Send + Sync + 'static {
    /// The exit status vigil ends with: what a shell would give for the same failure where
    /// there is one (127 command not found, 126 not executable), else 1.
    fn exit_code(&self) -> i32 {
        1
    }
}

/// A capture backend.
pub trait Backend {
    type Error: BackendError;

    /// Its name, written in the log's header ("ptrace", "ebpf").
    fn name(&self) -> &'static str;

    /// A handle that makes `run` end early and cleanly (a system-wide backend runs until
    /// told; the ptrace backend then stops waiting for what is left of its tree).
    fn stop_handle(&self) -> StopHandle;

    /// Captures until there is nothing left to watch or it is stopped, giving every event to
    /// `sink`. A sink error ends the capture (`Outcome::sink_error`), not `run` itself.
    fn run(&mut self, sink: &mut dyn EventSink) -> Result<Outcome, Self::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing {
        after: usize,
        got: Vec<u64>,
    }

    impl EventSink for Failing {
        fn event(&mut self, e: Event) -> Result<Verdict, SinkError> {
            if self.got.len() == self.after {
                return Err(SinkError::new(std::io::Error::from_raw_os_error(
                    libc_enospc(),
                )));
            }
            self.got.push(e.seq);
            Ok(Verdict::Continue)
        }
        fn generated(&mut self) -> Vec<(u32, u32, EventKind)> {
            vec![(1, 1, lost())]
        }
    }

    fn libc_enospc() -> i32 {
        28
    }

    fn lost() -> EventKind {
        EventKind::Lost(vigil_event::Lost {
            count: 1,
            reason: "test".into(),
        })
    }

    #[test]
    fn numbers_events_and_generated_ones_in_order_and_stops_at_the_first_sink_error() {
        let mut sink = Failing {
            after: 3,
            got: Vec::new(),
        };
        let mut s = Sequencer::with_clock(&mut sink, || 7);
        s.emit(1, 1, lost());
        assert!(s.failed().is_none());
        // The second event's generated one is the sink's fourth: refused.
        s.emit(1, 1, lost());
        assert!(s.failed().is_some());
        s.emit(1, 1, lost());
        assert_eq!(s.delivered(), 3);
        assert_eq!(s.undelivered(), 2);
        assert_eq!(sink.got, vec![1, 2, 3]);
    }
}
