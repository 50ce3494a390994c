//! The backend as every backend is seen from outside (vigil-capture's `Backend`): its name,
//! a stop handle that ends a capture early from another thread, and a sink that fails.

use std::time::{Duration, Instant};
use vigil_capture::{Backend, EventSink, Selection, SinkError, Verdict};
use vigil_capture_ptrace::PtraceBackend;
use vigil_event::{Event, EventKind};

fn backend(cmd: &[&str]) -> PtraceBackend {
    vigil_testkit::require_ptrace();
    PtraceBackend::new(cmd.iter().map(Into::into).collect(), Selection::default()).unwrap()
}

#[test]
fn the_backend_names_itself() {
    assert_eq!(backend(&["true"]).name(), "ptrace");
}

#[test]
fn a_stop_handle_ends_the_capture_from_another_thread() {
    let mut b = backend(&["sh", "-c", "sleep 30; echo done"]);
    let stop = b.stop_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stop.stop();
    });
    let start = Instant::now();
    let mut events = 0;
    let outcome = b
        .run(&mut |_: Event| {
            events += 1;
            Verdict::Continue
        })
        .unwrap();
    stopper.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "stopped long before sleep ended: {:?}",
        start.elapsed()
    );
    assert!(outcome.stopped);
    assert!(outcome.status.is_none(), "the command had not ended");
    assert!(
        outcome.detached >= 2,
        "sh and sleep left running: {outcome:?}"
    );
    assert!(events > 0);
}

/// Takes `room` events, then fails as a full disk does.
struct FullAfter {
    room: usize,
    kinds: Vec<String>,
}

impl EventSink for FullAfter {
    fn event(&mut self, e: Event) -> Result<Verdict, SinkError> {
        if self.kinds.len() == self.room {
            return Err(SinkError::new(std::io::Error::from_raw_os_error(
                libc::ENOSPC,
            )));
        }
        self.kinds.push(
            match e.kind {
                EventKind::ProcessStart(_) => "start",
                EventKind::ProcessExec(_) => "exec",
                _ => "other",
            }
            .into(),
        );
        Ok(Verdict::Continue)
    }
}

#[test]
fn a_failing_sink_stops_the_capture_and_the_command_runs_to_its_end() {
    let mut b = backend(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do cat /etc/hostname; done; exit 7",
    ]);
    let mut sink = FullAfter {
        room: 10,
        kinds: Vec::new(),
    };
    let outcome = b.run(&mut sink).unwrap();
    assert_eq!(sink.kinds.len(), 10, "nothing handed on after the failure");
    assert!(outcome.sink_error.is_some());
    assert!(
        outcome.undelivered > 10,
        "what came after is counted: {outcome:?}"
    );
    assert_eq!(outcome.events, 10);
    // Every cat ran (a detached tracee would get ENOSYS from the filter instead).
    assert_eq!(
        outcome.status.map(|s| s.shell_code()),
        Some(7),
        "the command's own status: {outcome:?}"
    );
}
