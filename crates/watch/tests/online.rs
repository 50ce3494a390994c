//! The online sink alone: what it asks the backend to do, and the actions it reports.

use vigil_capture::{EventSink, Verdict};
use vigil_event::*;

#[test]
fn a_kill_for_a_process_whose_exit_completed_the_match_is_logged_as_skipped() {
    // "exec, then no open within 5s": the process exits first, which decides the match.
    let src =
        "RULE quiet PATTERN { [exec:e, ~openat] } WHERE { [ProcessId] } WITHIN 5s DO { kill }";
    let ev = |seq: u64, kind: EventKind| Event {
        seq,
        time_ns: 1_000_000_000 + seq,
        pid: 7,
        tid: 7,
        kind,
    };
    let events = [
        ev(
            1,
            EventKind::ProcessExec(ProcessExec {
                exe: "/bin/x".into(),
                argv: Vec::<Str>::new().into(),
                creds: Creds::default(),
                dev: 1,
                ino: 2,
            }),
        ),
        ev(
            2,
            EventKind::ThreadExit(ThreadExit {
                status: ExitStatus::Code(0),
            }),
        ),
        ev(
            3,
            EventKind::ProcessExit(ProcessExit {
                status: ExitStatus::Code(0),
            }),
        ),
    ];
    let rs = vigil_rules::RuleSet::parse(src, "t.rules").unwrap();
    let mut matched = 0;
    let mut sink = vigil_watch::RulesSink::new(
        rs.engine(vigil_rules::Limits::default()),
        |_, _| matched += 1,
        None,
    );
    let mut actions = Vec::new();
    for e in &events {
        assert_eq!(
            sink.event(e.clone()).unwrap(),
            Verdict::Continue,
            "nothing to kill"
        );
        assert!(sink.verdicts_for_others().is_empty());
        actions.extend(sink.generated());
    }
    drop(sink);
    assert_eq!(matched, 1);
    assert!(
        matches!(&actions[..], [(7, _, vigil_event::EventKind::Action(a))] if a.action == "skipped" && a.target_pid == 7),
        "{actions:?}"
    );
}
