//! Bad rule files: every problem reported at once, with its position; the parser never panics.

mod common;

use common::errors;
use proptest::prelude::*;

const DETECTIONS: &str = include_str!("../../../rules/detections.rules");

/// `file:line:col: error: message` lines of a rendering.
fn headlines(rendered: &str) -> Vec<String> {
    rendered
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(String::from)
        .collect()
}

#[test]
fn syntax_errors_point_at_line_and_column_with_a_caret() {
    let r = errors("RULE a\nPATTERN { [openat, read }\n");
    let h = headlines(&r);
    assert_eq!(h.len(), 1, "{r}");
    assert!(h[0].starts_with("bad.rules:2:25: error: expected"), "{r}");
    assert!(
        r.contains("^") || r.contains("┬"),
        "a caret under the offending text:\n{r}"
    );
}

#[test]
fn all_errors_in_one_pass() {
    let src = "RULE a PATTERN { [opnat] }\nRULE b PATTERN { [openat:o] } WHERE { o.pth == \"x\" }\nRULE c PATTERN { [openat:o] } WHERE { o.path > 3 }\n";
    let h = headlines(&errors(src));
    assert_eq!(h.len(), 3, "{h:?}");
    assert!(
        h[0].starts_with("bad.rules:1:19")
            && h[0].contains("unknown event type `opnat` (did you mean `openat`?)"),
        "{h:?}"
    );
    assert!(
        h[1].starts_with("bad.rules:2:41")
            && h[1].contains("no field `pth` on openat (did you mean `path`?)"),
        "{h:?}"
    );
    assert!(
        h[2].starts_with("bad.rules:3:39") && h[2].contains("type error: `o.path` is a string"),
        "{h:?}"
    );
}

#[test]
fn each_kind_of_bad_input_has_its_message() {
    let cases: &[(&str, &str)] = &[
        ("", "no rules in this file"),
        ("# only a comment\n", "no rules in this file"),
        (
            "RULE a PATTERN { [openat] }\nRULE a PATTERN { [read] }",
            "a rule named `a` already exists (line 1)",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { x.path == \"/\" }",
            "`x` is not an event of this pattern",
        ),
        (
            "RULE a PATTERN { [openat:o, ~close:c, read] } WHERE { c.fd == r.fd }",
            "`r` is not an event of this pattern",
        ),
        (
            "RULE a PATTERN { [openat:o, ~close:c, read:r] } WHERE { c.fd == r.fd }",
            "a condition on a negated event can only use events before it",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.path > 3 }",
            "type error: `o.path` is a string, compared with `>` to a number",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.flags glob \"x\" }",
            "`glob` works on strings",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.flags has O_BOGUS }",
            "`O_BOGUS` is not a flag of this field",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.path == \"/a\", o.path == \"/b\" }",
            "cannot equal two different values: the rule can never match",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { 1 == 2 }",
            "always false: the rule can never match",
        ),
        (
            "RULE a PATTERN { [openat[5..2]] }",
            "this count can never be met",
        ),
        ("RULE a PATTERN { [] }", "an empty pattern can never match"),
        (
            "RULE a PATTERN { [~openat, read] }",
            "a negation needs an event before it",
        ),
        ("RULE a PATTERN { [openat, ~close] }", "needs WITHIN"),
        ("RULE a WHERE { [ProcessId] }", "has no PATTERN"),
        (
            "RULE a PATTERN { [openat:o] } DO { deny(EPERM) } WHERE { o.ret < 0 }",
            "deny decides before the call runs",
        ),
        (
            "RULE a PATTERN { [openat:o] } DO { deny(EBOGUS) }",
            "`EBOGUS` is not an errno name",
        ),
        (
            "RULE a PATTERN { [openat:o] } DO { explode }",
            "unknown action `explode`",
        ),
        (
            "RULE a PATTERN { [openat:o] } DO { exec(o.path) }",
            "exec's program must be a string",
        ),
        (
            "RULE a PATTERN { [exec:x] } DO { deny(EPERM) }",
            "deny needs the pattern to end with a syscall",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.path in nolist }",
            "unknown list `nolist`",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { nomacro(o) }",
            "unknown macro `nomacro`",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { [Bogus] }",
            "cannot join on `Bogus`",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.path matches \"(\" }",
            "bad regular expression",
        ),
        (
            "RULE a PATTERN { [openat:o, read:o] }",
            "`o` is bound twice",
        ),
        (
            "RULE a PATTERN { [openat:o] } OUTPUT \"{o.nope}\"",
            "no field `nope`",
        ),
        (
            "RULE a PATTERN { [openat:o] } RETURN { count(o) }",
            "count(o) needs a repeated event",
        ),
        (
            "RULE a PATTERN { [openat:o] } WITHIN 5 ",
            "expected a duration",
        ),
        (
            "RULE a PATTERN { [openat:o] } @",
            "unexpected character `@`",
        ),
        ("RULE PATTERN { [openat] }", "expected the rule's name"),
        ("RULEZ a", "expected RULE, LIST or MACRO"),
    ];
    for (src, want) in cases {
        let r = errors(src);
        assert!(r.contains(want), "for {src:?} expected {want:?}, got:\n{r}");
        assert!(r.contains("bad.rules:"), "positions are given:\n{r}");
    }
}

#[test]
fn each_lexical_error_says_what_is_wrong() {
    let cases: &[(&str, &str)] = &[
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.fd == 99999999999999999999 }",
            "number `99999999999999999999` is too large",
        ),
        (
            "RULE a PATTERN { [openat:o] } WITHIN 99999999999999h",
            "duration `99999999999999h` is too long",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.path == \"a\\qb\" }",
            "unknown escape `\\q` in a string",
        ),
        (
            "RULE a PATTERN { [openat:o] } WHERE { o.path == \"abc }",
            "this string has no closing `\"` on its line",
        ),
    ];
    for (src, want) in cases {
        let r = errors(src);
        assert!(r.contains(want), "for {src:?} expected {want:?}, got:\n{r}");
        // The parser's stumble on what follows is not reported as a second error.
        assert_eq!(headlines(&r).len(), 1, "{r}");
    }
}

#[test]
fn columns_count_characters_in_the_header_and_the_box_alike() {
    let r = errors("RULE a PATTERN { [openat:o] } WHERE { o.path == \"ééé\" and o.fdx == 1 }");
    assert!(r.contains("bad.rules:1:61: error: no field `fdx`"), "{r}");
    assert!(r.contains("[bad.rules:1:61]"), "{r}");
}

#[test]
fn a_file_of_garbage_shows_the_first_errors_and_counts_the_rest() {
    let r = errors(&"@ ".repeat(5000));
    assert_eq!(headlines(&r).len(), 100, "{r}");
    assert!(
        r.contains("... and 4901 more (the first 100 are shown)"),
        "{r}"
    );
    assert!(r.contains("5001 errors in bad.rules"), "{r}");
}

/// Rule files built to exhaust the parser or the compiler get a diagnostic, promptly.
#[test]
fn hostile_rule_files_are_refused_not_run() {
    let rule = |where_: String| format!("RULE r PATTERN {{ [openat:o] }} WHERE {{ {where_} }}\n");
    let deep_not = rule(format!("{}o.fd == 1", "not ".repeat(20_000)));
    assert!(errors(&deep_not).contains("nested too deeply"));
    let deep_parens = rule(format!(
        "{}o.fd == 1{}",
        "(".repeat(20_000),
        ")".repeat(20_000)
    ));
    assert!(errors(&deep_parens).contains("nested too deeply"));
    // Long chains of `or` are fine (a balanced tree); past 10,000 conditions, refused.
    let wide_or = rule(vec!["o.fd == 1"; 20_000].join(" or "));
    assert!(vigil_rules::RuleSet::parse(&wide_or, "wide").is_ok());
    let wide_and = rule(vec!["o.fd == 1"; 100_000].join(" and "));
    assert!(errors(&wide_and).contains("more than 10000 conditions"));
    // 16 macros each calling the previous one 4 times: 4^15 conditions if expanded.
    let mut bomb = "MACRO m0(x) = { x.fd == 1 }\n".to_string();
    for i in 1..16 {
        let calls = vec![format!("m{}(x)", i - 1); 4].join(" and ");
        bomb.push_str(&format!("MACRO m{i}(x) = {{ {calls} }}\n"));
    }
    bomb.push_str("RULE r PATTERN { [openat:o] } WHERE { m15(o) }\n");
    let r = errors(&bomb);
    assert!(r.contains("more than 10000 conditions"), "{r}");
    assert!(
        r.contains("bad.rules:17:"),
        "reported at the rule's call: {r}"
    );
    // Counts past what a run may keep.
    assert!(
        errors("RULE r PATTERN { [openat[>1000000]:o] } WHERE { [ProcessId] } WITHIN 1h")
            .contains("a count above 65536 is not supported")
    );
}

/// 300 cases each in `cargo test` (these compile the whole detection rule file per case: 2000
/// took a minute); `scripts/fuzz` raises it through PROPTEST_CASES.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Random text never panics the parser or the checker.
    #[test]
    fn random_input_never_panics(src in "\\PC{0,200}") {
        let _ = vigil_rules::RuleSet::parse(&src, "fuzz");
    }

    /// Nor do real rule files with pieces cut, repeated or swapped (a mutation fuzzer's
    /// moves): they get past the parser into the compiler and the checks.
    #[test]
    fn mutated_rule_files_never_panic(
        edits in proptest::collection::vec((0u8..4, 0usize..4000, 0usize..4000, 1usize..40), 1..8),
        events in vigil_event::testing::stream(0..100),
    ) {
        let mut text: Vec<char> = DETECTIONS.chars().collect();
        for (op, a, b, len) in edits {
            let n = text.len().max(1);
            let (a, b) = (a % n, b % n);
            let piece: Vec<char> = text[a..(a + len).min(text.len())].to_vec();
            match op {
                0 => { text.drain(a..(a + len).min(text.len())); }
                1 => { text.splice(b..b, piece); }
                2 => { text.splice(b..(b + len).min(text.len()), piece); }
                _ => text.swap(a, b),
            }
        }
        let src: String = text.into_iter().collect();
        if let Ok(rs) = vigil_rules::RuleSet::parse(&src, "mutated") {
            // What compiles also runs.
            let mut e = rs.engine(vigil_rules::Limits::default());
            let mut out = Vec::new();
            for ev in &events {
                e.process(ev, &mut out);
            }
        }
    }

    /// Nor does random text made of the language's own tokens, which gets much further in.
    #[test]
    fn random_token_soup_never_panics(toks in proptest::collection::vec(proptest::sample::select(vec![
        "RULE", "r", "PATTERN", "WHERE", "WITHIN", "RETURN", "DO", "LIST", "MACRO", "PRIORITY", "TAGS", "OUTPUT",
        "{", "}", "[", "]", "(", ")", ",", ":", "~", "|", ".", "..", "==", "<", ">=", "!", "and", "or", "not",
        "openat", "syscall", "exec", "a", "b", "path", "pid", "ProcessId", "5s", "3", "\"/x\"", "in", "glob",
        "has", "O_CREAT", "count", "distinct", "kill", "deny", "EPERM", "exec", "=", "-",
    ]), 0..60)) {
        let src = toks.join(" ");
        let _ = vigil_rules::RuleSet::parse(&src, "fuzz");
    }
}
