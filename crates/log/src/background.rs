//! A LogWriter on its own thread, so the capture thread never waits for compression or I/O.
//!
//! push() only appends to a mutex-protected Vec (no syscall, no channel per event). The writer
//! thread takes the whole Vec when it grows past a threshold or every `flush_every`, and then
//! writes a block even if small: after `kill -9` of vigil at most that much is lost. If the
//! writer falls far behind, push() waits: events are never dropped. An event the log cannot
//! hold (`LogError::EventTooLarge`) is recorded as a `Lost` event in its place, with its seq,
//! so the loss is in the log and the numbering has no gap.

use crate::{LogError, LogWriter, WriterStats};
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vigil_event::{Event, EventKind, Lost};

const WAKE_AT: usize = 4096;
const MAX_QUEUED: usize = 1 << 20;

struct Queue {
    events: Vec<Event>,
    error: Option<String>,
    closing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signals the writer: work to do, or closing.
    work: Condvar,
    /// Signals producers: the queue was drained.
    space: Condvar,
}

pub struct BackgroundWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<WriterStats, LogError>>>,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A panic in the other thread must not hide the events: keep going with the data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BackgroundWriter {
    pub fn spawn(mut writer: LogWriter<File>, flush_every: Duration) -> BackgroundWriter {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                events: Vec::with_capacity(WAKE_AT * 2),
                error: None,
                closing: false,
            }),
            work: Condvar::new(),
            space: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-log-writer".into())
            .spawn(move || {
                // A helper thread takes no process signal: they are for the thread that
                // supervises tracees (the multi-variant monitor waits for its variants' stops
                // on a signalfd for SIGCHLD, which a thread that does not block it would take
                // and ignore) or handles Ctrl-C. Best effort: without it, signals still arrive.
                let _ = nix::sys::signal::pthread_sigmask(
                    nix::sys::signal::SigmaskHow::SIG_BLOCK,
                    Some(&nix::sys::signal::SigSet::all()),
                    None,
                );
                let mut batch: Vec<Event> = Vec::with_capacity(WAKE_AT * 2);
                let mut last_flush = Instant::now();
                loop {
                    let closing = {
                        let mut q = lock(&s.queue);
                        while q.events.is_empty() && !q.closing {
                            let (g, timeout) = s
                                .work
                                .wait_timeout(q, flush_every)
                                .unwrap_or_else(|e| e.into_inner());
                            q = g;
                            if timeout.timed_out() {
                                break;
                            }
                        }
                        std::mem::swap(&mut q.events, &mut batch);
                        s.space.notify_all();
                        q.closing
                    };
                    for ev in batch.drain(..) {
                        if let Err(e) = append_or_lost(&mut writer, &ev) {
                            lock(&s.queue).error = Some(e.to_string());
                            s.space.notify_all();
                            return Err(e);
                        }
                    }
                    if closing {
                        return writer.finish();
                    }
                    if last_flush.elapsed() >= flush_every && !writer.is_flushed() {
                        if let Err(e) = writer.flush() {
                            lock(&s.queue).error = Some(e.to_string());
                            return Err(e);
                        }
                        last_flush = Instant::now();
                    }
                }
            })
            .ok();
        BackgroundWriter { shared, thread }
    }

    /// Queues an event. Returns the writer's error if it has failed.
    pub fn push(&self, ev: Event) -> Result<(), LogError> {
        let mut q = lock(&self.shared.queue);
        if let Some(e) = &q.error {
            return Err(LogError::WriterGone(e.clone()));
        }
        if self.thread.is_none() {
            return Err(LogError::WriterGone(
                "the writer thread could not be started".into(),
            ));
        }
        q.events.push(ev);
        let n = q.events.len();
        if n == WAKE_AT {
            self.shared.work.notify_one();
        }
        while q.events.len() >= MAX_QUEUED && q.error.is_none() {
            self.shared.work.notify_one();
            q = self.shared.space.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    /// Writes everything queued and closes the log.
    pub fn finish(mut self) -> Result<WriterStats, LogError> {
        lock(&self.shared.queue).closing = true;
        self.shared.work.notify_one();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(LogError::WriterGone("the writer thread panicked".into())),
            None => Err(LogError::WriterGone(
                "the writer thread could not be started".into(),
            )),
        }
    }
}

/// Appends `ev`, or, when it is too large for the log, a `Lost` event saying so in its place.
fn append_or_lost(writer: &mut LogWriter<File>, ev: &Event) -> Result<(), LogError> {
    match writer.append(ev) {
        Err(e) if e.is_event_too_large() => {
            let lost = Event {
                seq: ev.seq,
                time_ns: ev.time_ns,
                pid: ev.pid,
                tid: ev.tid,
                kind: EventKind::Lost(Lost {
                    count: 1,
                    reason: format!("{} event: {e}", ev.type_name()).into(),
                }),
            };
            writer.append(&lost)
        }
        other => other,
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            lock(&self.shared.queue).closing = true;
            self.shared.work.notify_one();
            let _ = t.join();
        }
    }
}
