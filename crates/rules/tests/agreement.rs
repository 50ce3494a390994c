//! Online (the sink a capture backend drives) and offline (the engine over a log) find the same
//! matches for the same events.

use proptest::prelude::*;
use vigil_capture::EventSink;
use vigil_event::Event;
use vigil_rules::watch::RulesSink;
use vigil_rules::{Limits, RuleSet};

/// Rules that random streams (a few pids and tids, all kinds of events) match often.
const RULES: &str = r#"
RULE dangling PATTERN { [syscall:a, ~(syscallexit|threadtermination), syscall] } WHERE { [ProcessId], [ThreadId] } RETURN { a.seq, a.nr }
RULE pairs PATTERN { [syscallexit:a, ~processexit, syscallexit:b] } WHERE { [ProcessId], b.ret > a.ret } WITHIN 3ms RETURN { a.seq, b.seq }
RULE burst PATTERN { [syscall[>=3]:s] } WHERE { [ThreadId] } WITHIN 2ms RETURN { count(s) }
RULE quiet PATTERN { [processstart:p, ~syscall] } WHERE { [ProcessId] } WITHIN 1ms RETURN { p.pid }
RULE signals PATTERN { [signal:s] } WHERE { s.signal < 10 }
RULE counted PATTERN { [syscallexit[2..4]:e, threadexit] } WHERE { [ThreadId] } RETURN { count(e) }
"#;

fn offline(rs: &RuleSet, events: &[Event]) -> Vec<String> {
    let mut e = rs.engine(Limits::default());
    let mut out = Vec::new();
    for ev in events {
        e.process(ev, &mut out);
    }
    out.iter()
        .map(|m| vigil_rules::action::match_json(&rs.compiled, m).to_string())
        .collect()
}

fn online(rs: &RuleSet, events: &[Event]) -> Vec<String> {
    let mut got = Vec::new();
    {
        let mut sink = RulesSink::new(
            rs.engine(Limits::default()),
            |m, c| got.push(vigil_rules::action::match_json(c, m).to_string()),
            None,
        );
        for ev in events {
            let _ = sink.event(ev.clone());
            assert!(sink.generated().is_empty(), "these rules take no actions");
        }
    }
    got
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn online_and_offline_agree(events in vigil_event::testing::stream(0..400)) {
        let rs = RuleSet::parse(&RULES.replace("threadexit", "threadtermination"), "agree.rules").map_err(|d| TestCaseError::fail(d.render(false)))?;
        let a = offline(&rs, &events);
        let b = online(&rs, &events);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn random_streams_do_match_these_rules() {
    // Guard against the agreement test passing vacuously.
    use proptest::strategy::{Strategy, ValueTree};
    let rs = RuleSet::parse(
        &RULES.replace("threadexit", "threadtermination"),
        "agree.rules",
    )
    .unwrap();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut total = 0;
    for _ in 0..20 {
        let events = vigil_event::testing::stream(300..400)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        total += offline(&rs, &events).len();
    }
    assert!(total > 50, "only {total} matches in 20 random streams");
}
