//! Rules online (its own crate so that the rules depend on the event model alone, and a
//! capture backend on neither): an EventSink that runs the engine on every event the backend produces, acts
//! on matches (kill/stop/deny become the verdict for that very event, or for the matched
//! process when another process's event completed the match), reports the actions
//! taken as events, and passes every event on (to the log, when recording).

use vigil_capture::{EventSink, SinkError, Verdict};
use vigil_event::{Event, EventKind};
use vigil_rules::action::{Actor, TargetState};
use vigil_rules::{Engine, Match};

/// What to do with each match (the CLI prints it).
pub type OnMatch<'a> = dyn FnMut(&Match, &vigil_rules::Compiled) + 'a;

pub struct RulesSink<'a> {
    pub engine: Engine,
    pub actor: Actor,
    /// Where each match goes (printed by the CLI).
    on_match: Box<OnMatch<'a>>,
    /// Where each event goes after the rules saw it (the log).
    next: Option<&'a mut dyn EventSink>,
    /// The first error of `next` (a full disk): from then on events are no longer passed on,
    /// but the rules go on watching and acting (a full disk must not switch protection off).
    next_error: Option<SinkError>,
    /// Events not passed on after `next` failed (the one it failed on included).
    pub unforwarded: u64,
    pending: Vec<(u32, u32, EventKind)>,
    /// Kill/stop verdicts for other processes than the current event's.
    others: Vec<(u32, Verdict)>,
    matches: Vec<Match>,
}

impl<'a> RulesSink<'a> {
    pub fn new(
        engine: Engine,
        on_match: impl FnMut(&Match, &vigil_rules::Compiled) + 'a,
        next: Option<&'a mut dyn EventSink>,
    ) -> Self {
        RulesSink {
            engine,
            actor: Actor::default(),
            on_match: Box::new(on_match),
            next,
            next_error: None,
            unforwarded: 0,
            pending: Vec::new(),
            others: Vec::new(),
            matches: Vec::new(),
        }
    }
}

/// The stronger of two verdicts: kill > deny > stop > continue.
fn stronger(a: Verdict, b: Verdict) -> Verdict {
    let rank = |v: Verdict| match v {
        Verdict::Continue => 0,
        Verdict::Stop => 1,
        Verdict::Deny(_) => 2,
        Verdict::Kill => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

impl RulesSink<'_> {
    /// Reports the matches `event` completed and acts on them: the verdict for the event's own
    /// process (those for others and the actions taken are kept for the backend).
    fn act(&mut self, event: &Event, matches: &[Match]) -> Verdict {
        let mut verdict = Verdict::Continue;
        let compiled = self.engine.compiled().clone(); // an Arc: shared, not copied
        let at_entry = matches!(event.kind, EventKind::SyscallEntry(_));
        // Actions are never taken in response to an action (no loops).
        let acting = !matches!(event.kind, EventKind::Action(_));
        for m in matches {
            (self.on_match)(m, &compiled);
            if !acting {
                continue;
            }
            // A match can complete on another process's event (a trailing negation decided
            // late, a rule not joined on the process): the verdict is only for this event's
            // process; one for any other goes to the backend, which still knows whether it
            // traces that process. A process whose exit completed the match is gone.
            let own = m.pid == event.pid;
            let gone = own && matches!(event.kind, EventKind::ProcessExit(_));
            let target = if gone {
                TargetState::Exited
            } else {
                TargetState::Live
            };
            let (v, taken) =
                self.actor
                    .act(&compiled, m, target, at_entry && m.at_seq == event.seq);
            if own {
                verdict = stronger(verdict, v);
            } else if v != Verdict::Continue {
                self.others.push((m.pid, v));
            }
            self.pending.extend(
                taken
                    .into_iter()
                    .map(|a| (m.pid, m.tid, EventKind::Action(a))),
            );
        }
        verdict
    }
}

impl EventSink for RulesSink<'_> {
    fn event(&mut self, event: Event) -> Result<Verdict, SinkError> {
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        self.engine.process(&event, &mut matches);
        // Most events complete no match: nothing more to do for them here.
        let verdict = if matches.is_empty() {
            Verdict::Continue
        } else {
            self.act(&event, &matches)
        };
        self.matches = matches;
        if let Some(next) = self.next.as_mut() {
            if self.next_error.is_some() {
                self.unforwarded += 1;
            } else if let Err(e) = next.event(event) {
                self.unforwarded += 1;
                self.next_error = Some(e);
            }
        }
        Ok(verdict)
    }

    fn generated(&mut self) -> Vec<(u32, u32, EventKind)> {
        std::mem::take(&mut self.pending)
    }

    fn verdicts_for_others(&mut self) -> Vec<(u32, Verdict)> {
        std::mem::take(&mut self.others)
    }
}
