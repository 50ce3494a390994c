//! Online (the sink a capture backend drives) and offline (the engine over a log) find the same
//! matches for the same events.

use proptest::prelude::*;
use vigil_capture::EventSink;
use vigil_event::Event;
use vigil_rules::{Limits, RuleSet};
use vigil_watch::RulesSink;

/// Rules that random streams (a few pids and tids, all kinds of events) match often.
const RULES: &str = r#"
RULE dangling PATTERN { [syscall:a, ~(syscallexit|threadtermination), syscall] } WHERE { [ProcessId], [ThreadId] } RETURN { a.seq, a.nr }
RULE pairs PATTERN { [syscallexit:a, ~processexit, syscallexit:b] } WHERE { [ProcessId], b.ret > a.ret } WITHIN 3ms RETURN { a.seq, b.seq }
RULE burst PATTERN { [syscall[>=3]:s] } WHERE { [ThreadId] } WITHIN 2ms RETURN { count(s) }
RULE quiet PATTERN { [processstart:p, ~syscall] } WHERE { [ProcessId] } WITHIN 1ms RETURN { p.pid }
RULE signals PATTERN { [signal:s] } WHERE { s.signal < 10 }
RULE counted PATTERN { [syscallexit[2..4]:e, threadexit] } WHERE { [ThreadId] } RETURN { count(e) }
RULE same_call PATTERN { [syscall:a, syscallexit:b] } WHERE { [ProcessId], b.nr == a.nr } WITHIN 50ms RETURN { a.seq, b.seq }
RULE chain PATTERN { [syscallexit:a, ~(processexit | signal), syscall:b, syscallexit:c] } WHERE { [ProcessId], b.nr == a.nr, a.tid == c.tid } RETURN { a.seq, b.seq, c.seq }
RULE undone PATTERN { [syscall:a, ~syscallexit:x] } WHERE { [ThreadId], x.nr == a.nr } WITHIN 1ms RETURN { a.seq }
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Runs indexed by the value their next step must bring (`b.nr == a.nr`) find exactly what
    /// checking every run finds.
    #[test]
    fn the_run_index_changes_nothing(events in vigil_event::testing::stream(0..400)) {
        let rs = RuleSet::parse(&RULES.replace("threadexit", "threadtermination"), "agree.rules").map_err(|d| TestCaseError::fail(d.render(false)))?;
        let mut a = offline(&rs, &events);
        let mut b = offline(&rs.without_run_index(), &events);
        // Matches found on the same event may come in another order.
        let strip = |v: &mut Vec<String>| {
            for s in v.iter_mut() {
                let mut j: serde_json::Value = serde_json::from_str(s).unwrap();
                j["match"] = 0.into();
                *s = j.to_string();
            }
            v.sort();
        };
        strip(&mut a);
        strip(&mut b);
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
    // The indexed rules match too.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut per_rule = std::collections::HashMap::<String, usize>::new();
    for _ in 0..20 {
        let events = vigil_event::testing::stream(300..400)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        for m in offline(&rs, &events) {
            let j: serde_json::Value = serde_json::from_str(&m).unwrap();
            *per_rule
                .entry(j["rule"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for rule in ["same_call", "chain", "undone"] {
        assert!(
            per_rule.get(rule).copied().unwrap_or(0) > 5,
            "{rule}: {per_rule:?}"
        );
    }
}
