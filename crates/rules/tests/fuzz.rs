//! Property tests over the rule language's input, beyond tests/diagnostics.rs (which checks
//! that nothing panics): run by `cargo test` with a few dozen cases each, and by `scripts/fuzz`
//! with as many as its time allows (PROPTEST_CASES, docs/fuzzing.md). A rule file is written by
//! a user, or handed to one by someone else: vigil must answer every file, quickly, with an
//! error that points into it or with rules that run.
//!
//! Inputs: random bytes; random token sequences drawn from the grammar of docs/rules.md, edge
//! literals included (numbers and durations past their range, bad escapes, unclosed strings,
//! comments, non-ASCII); rules generated clause by clause from the grammar; the repository's
//! rule files (rules/detections.rules, the examples of docs/rules.md) mutated token by token.
//!
//! What must hold, for every input of at most a few kilobytes:
//! - parsing ends within seconds and never panics;
//! - an error list is never empty, and every error's span lies inside the input, on character
//!   boundaries, and is rendered with its file:line:column;
//! - rules that compile can be drawn (`rules dot`) and run over an event stream;
//! - what `rules check` reports of a valid file (its rules, compiled) does not change when the
//!   whitespace between tokens is changed or comments are added.

use proptest::prelude::*;
use std::time::{Duration, Instant};
use vigil_rules::{Limits, RuleSet};

const DETECTIONS: &str = include_str!("../../../rules/detections.rules");
const DOC: &str = include_str!("../../../docs/rules.md");

/// How long one input may take to parse, check and run, at most (a debug build, a loaded CI
/// machine: generous; the slowest seen is well under a second).
const TIME_MAX: Duration = Duration::from_secs(10);

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
        max_shrink_iters: 1024,
        ..ProptestConfig::default()
    }
}

/// The valid rule files of the repository: detections.rules and every example of the docs.
fn valid_files() -> Vec<String> {
    let mut files = vec![DETECTIONS.to_string()];
    for block in DOC.split("```").skip(1).step_by(2) {
        let body = block.strip_prefix('\n').unwrap_or(block);
        let t = body.trim_start();
        if t.starts_with("RULE") || t.starts_with("LIST") {
            files.push(body.to_string());
        }
    }
    files
}

/// Parses `src` and checks what every answer must be; returns the rules when it compiled.
fn check(src: &str, events: &[vigil_event::Event]) -> Result<Option<RuleSet>, TestCaseError> {
    let t = Instant::now();
    let result = RuleSet::parse(src, "fuzz.rules");
    let rs = match result {
        Err(d) => {
            prop_assert!(!d.list.is_empty(), "an error with no diagnostic");
            for diag in &d.list {
                let s = &diag.span;
                prop_assert!(
                    s.start <= s.end && s.end <= src.len(),
                    "span {s:?} outside {} bytes: {}",
                    src.len(),
                    diag.message
                );
                prop_assert!(
                    src.is_char_boundary(s.start) && src.is_char_boundary(s.end),
                    "span {s:?} cuts a character: {}",
                    diag.message
                );
            }
            let text = d.render(false);
            let (line, col) = d.line_col(d.list[0].span.start);
            prop_assert!(
                text.contains(&format!("fuzz.rules:{line}:{col}")),
                "the first error is not placed at {line}:{col}:\n{text}"
            );
            None
        }
        Ok(rs) => {
            for r in rs.rules() {
                let dot = vigil_rules::dot::render(r);
                prop_assert!(dot.starts_with("digraph"), "{dot}");
            }
            let mut e = rs.engine(Limits::default());
            let mut out = Vec::new();
            for ev in events {
                e.process(ev, &mut out);
            }
            e.finish();
            for m in &out {
                let _ = vigil_rules::action::match_text(&rs.compiled, m);
                let _ = vigil_rules::action::match_json(&rs.compiled, m);
            }
            Some(rs)
        }
    };
    prop_assert!(
        t.elapsed() < TIME_MAX,
        "{:?} for {} bytes",
        t.elapsed(),
        src.len()
    );
    Ok(rs)
}

/// Words of the language, and literals at the edges of what the lexer takes.
const VOCAB: &[&str] = &[
    "RULE",
    "PATTERN",
    "WHERE",
    "WITHIN",
    "RETURN",
    "DO",
    "LIST",
    "MACRO",
    "PRIORITY",
    "TAGS",
    "OUTPUT",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    ":",
    "~",
    "|",
    ".",
    "..",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!",
    "&&",
    "||",
    "-",
    "and",
    "or",
    "not",
    "in",
    "glob",
    "matches",
    "startswith",
    "endswith",
    "contains",
    "has",
    "distinct",
    "count",
    "open_for_write",
    "exec",
    "kill",
    "stop",
    "deny",
    "EPERM",
    "EACCES",
    "high",
    "low",
    "medium",
    "openat",
    "open",
    "connect",
    "execve",
    "read",
    "write",
    "close",
    "syscall",
    "syscallexit",
    "threadtermination",
    "clone",
    "fork",
    "rename",
    "unlink",
    "a",
    "b",
    "c",
    "x",
    "path",
    "pid",
    "ppid",
    "tid",
    "fd",
    "ret",
    "flags",
    "exe",
    "argv",
    "addr",
    "call",
    "result",
    "errno",
    "SyscallNr",
    "TimeStamp",
    "ProcessId",
    "ThreadId",
    "O_CREAT",
    "O_WRONLY",
    "O_TRUNC",
    "SIGKILL",
    "seq",
    "0",
    "1",
    "3",
    "20",
    "300",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "0x7fffffffffffffff",
    "0xffffffffffffffff",
    "0x1ffffffffffffffff",
    "5s",
    "0ns",
    "250ms",
    "1h",
    "18446744073709551615ns",
    "5124095576030432h",
    "99999999999999999999s",
    "\"/tmp/*\"",
    "\"/etc/\"",
    "\"\"",
    "\"a\\\"b\"",
    "\"\\q\"",
    "\"unclosed",
    "\"{a.path}\"",
    "\"{a.\"",
    "\"{}\"",
    "\"{a.path|b.path}\"",
    "\"[\"",
    "\"(?i)x\"",
    "\"*[\"",
    "# comment\n",
    "// c\n",
    "\n",
    "é",
    "\u{1F600}",
    "\\",
    "@",
    "$",
    "'",
];

fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            prop::sample::select(VOCAB),
            prop::sample::select(&[" ", "", "\n"][..]),
        ),
        0..120,
    )
    .prop_map(|t| t.into_iter().flat_map(|(a, b)| [a, b]).collect())
}

/// A rule built clause by clause from the grammar, every choice random: most are well formed,
/// so the compiler and the engine see them.
fn generated_rule() -> impl Strategy<Value = String> {
    let event = prop::sample::select(vec![
        "openat", "open", "connect", "exec", "read", "write", "close", "clone", "syscall",
        "rename", "unlink",
    ]);
    let label = prop::sample::select(vec!["a", "b", "c"]);
    let rep = prop::sample::select(vec![
        "",
        "",
        "",
        "[>2]",
        "[>=3]",
        "[2]",
        "[1..4]",
        "[>2 distinct path]",
        "[0]",
        "[3..1]",
    ]);
    let element = (
        any::<bool>(),
        proptest::collection::vec(event, 1..3),
        rep,
        prop::option::of(label),
    )
        .prop_map(|(neg, evs, rep, label)| {
            let body = if evs.len() == 1 {
                evs[0].to_string()
            } else {
                format!("({})", evs.join("|"))
            };
            let label = label.map(|l| format!(":{l}")).unwrap_or_default();
            format!("{}{body}{rep}{label}", if neg { "~" } else { "" })
        });
    let field = prop::sample::select(vec![
        "a.path",
        "b.path",
        "a.pid",
        "b.ret",
        "a.flags",
        "c.exe",
        "a.fd.path",
        "count(a)",
        "a.addr",
        "b.argv",
        "a.SyscallNr",
        "x.path",
    ]);
    let literal = prop::sample::select(vec![
        "\"/tmp/*\"",
        "3",
        "-1",
        "O_CREAT",
        "\"/etc/\"",
        "0x10",
        "\"\"",
    ]);
    let op = prop::sample::select(vec![
        "==",
        "!=",
        "<",
        ">=",
        "glob",
        "startswith",
        "contains",
        "has",
        "in",
        "matches",
    ]);
    let cond = (field, op, literal).prop_map(|(f, o, l)| match o {
        "in" => format!("{f} in ({l}, \"x\")"),
        _ => format!("{f} {o} {l}"),
    });
    let conds = proptest::collection::vec(
        (cond, prop::sample::select(vec![" and ", " or ", ", "])),
        0..4,
    );
    let join = prop::sample::select(vec!["", "[ProcessId], ", "[ThreadId], "]);
    let within = prop::sample::select(vec!["", "WITHIN 5s", "WITHIN 0ns", "WITHIN 1h"]);
    let ret = prop::sample::select(vec!["a.pid", "b.path", "a.path, count(a)", "x.seq"]);
    let extra = prop::sample::select(vec![
        "",
        "PRIORITY high",
        "TAGS { t, \"u\" }",
        "OUTPUT \"{a.path} by {a.pid}\"",
        "DO { kill }",
        "DO { deny(EPERM) }",
    ]);
    (
        proptest::collection::vec(element, 1..5),
        join,
        conds,
        within,
        ret,
        extra,
    )
        .prop_map(|(elements, join, conds, within, ret, extra)| {
            let mut w = join.to_string();
            for (c, sep) in conds {
                w.push_str(&c);
                w.push_str(sep);
            }
            let w = w
                .trim_end_matches([',', ' '])
                .trim_end_matches(" and")
                .trim_end_matches(" or");
            let where_ = if w.is_empty() {
                String::new()
            } else {
                format!("WHERE {{ {w} }}")
            };
            format!(
                "RULE r PATTERN {{ [{}] }} {where_} {within} RETURN {{ {ret} }} {extra}\n",
                elements.join(", ")
            )
        })
}

/// The compiled rules, less the text kept from the source for display: each rule's source,
/// its conditions' text (`rules dot`) and its RETURN labels (the keys of a match in JSON), which
/// keep comments written inside them (docs/fuzzing.md).
fn compiled(rs: &RuleSet) -> String {
    let string = r#""(?:[^"\\]|\\.)*""#;
    let mut s = format!("{:?}", rs.rules());
    for (pattern, by) in [
        (format!("source: {string}, "), ""),
        (format!(r"cond_text: \[(?:{string}(?:, )?)*\](?:, )?"), ""),
        (format!(r"returns: \[\({string}, "), "returns: [(_, "),
        (format!(r"\), \({string}, "), "), (_, "),
    ] {
        s = regex::Regex::new(&pattern)
            .unwrap()
            .replace_all(&s, by)
            .into_owned();
    }
    s
}

/// Pieces of a file between which whitespace may go: the text split at whitespace runs that
/// are outside strings and comments.
fn pieces(src: &str) -> Vec<&str> {
    let (mut out, mut start) = (Vec::new(), 0);
    let (mut in_str, mut escaped, mut in_comment) = (false, false, false);
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_comment {
            in_comment = c != b'\n';
        } else if in_str {
            match c {
                b'\\' if !escaped => escaped = true,
                b'"' if !escaped => in_str = false,
                _ => escaped = false,
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'#' || src[i..].starts_with("//") {
            in_comment = true;
        } else if c.is_ascii_whitespace() {
            out.push(&src[start..i]);
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            start = i;
            continue;
        }
        i += 1;
    }
    out.push(&src[start..]);
    out
}

/// A token-level mutation of a file: delete, repeat, replace with a word of the language, or
/// swap pieces (pieces as `pieces` cuts them).
type Edit = (u8, prop::sample::Index, prop::sample::Index, &'static str);

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(
        (
            0u8..5,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            prop::sample::select(VOCAB),
        ),
        1..6,
    )
}

fn apply(src: &str, edits: &[Edit]) -> String {
    let mut p: Vec<String> = pieces(src).into_iter().map(String::from).collect();
    for &(op, a, b, word) in edits {
        if p.is_empty() {
            p.push(word.to_string());
            continue;
        }
        let (i, j) = (a.index(p.len()), b.index(p.len()));
        match op {
            0 => {
                p.remove(i);
            }
            1 => {
                let x = p[i].clone();
                p.insert(j, x);
            }
            2 => p[i] = word.to_string(),
            3 => p.insert(i, word.to_string()),
            _ => p.swap(i, j),
        }
    }
    p.join(" ")
}

/// Inputs are kept to a few kilobytes (rules/detections.rules is 17 kB and still passes).
const SIZE_MAX: usize = 24 * 1024;

fn events() -> impl Strategy<Value = Vec<vigil_event::Event>> {
    vigil_event::testing::stream(0..60)
}

proptest! {
    #![proptest_config(config(64))]

    /// Random bytes (read as a file is: invalid UTF-8 replaced).
    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let src = String::from_utf8_lossy(&bytes);
        check(&src, &[])?;
    }

    /// Words of the language in random order, edge literals included.
    #[test]
    fn token_sequences(src in token_soup(), events in events()) {
        check(&src, &events)?;
    }

    /// Rules generated from the grammar: most compile, and then run.
    #[test]
    fn generated_rules(rules in proptest::collection::vec(generated_rule(), 1..4),
                       lists in any::<bool>(), events in events()) {
        let mut src = String::new();
        if lists {
            src.push_str("LIST tmp = [\"/tmp/*\", \"/dev/shm/*\"]\nMACRO t(e) = { e.path glob tmp }\n");
        }
        for (i, r) in rules.iter().enumerate() {
            src.push_str(&r.replacen("RULE r ", &format!("RULE r{i} "), 1));
        }
        check(&src, &events)?;
    }
}

proptest! {
    // Each case compiles up to a 17 kB file: fewer by default.
    #![proptest_config(config(16))]

    /// The repository's valid rule files, mutated token by token.
    #[test]
    fn mutated_valid_files(which in any::<prop::sample::Index>(), edits in edits(),
                           events in events()) {
        let files = valid_files();
        let src = apply(&files[which.index(files.len())], &edits);
        prop_assume!(src.len() <= SIZE_MAX);
        check(&src, &events)?;
    }

    /// What `rules check` reports of a valid file (the rules it compiles to) does not depend on
    /// the whitespace between tokens, nor on comments added there.
    #[test]
    fn layout_does_not_change_valid_rules(which in any::<prop::sample::Index>(),
                                          seps in proptest::collection::vec(prop::sample::select(vec![
                                              " ", "\n", "\t", "  \n\n ", " # a comment\n", " // another\n",
                                              "\r\n",
                                          ]), 1..64)) {
        let files = valid_files();
        let src = &files[which.index(files.len())];
        let want = RuleSet::parse(src, "fuzz.rules").unwrap();
        let p = pieces(src);
        let mut out = String::new();
        for (i, piece) in p.iter().enumerate() {
            out.push_str(piece);
            out.push_str(seps[i % seps.len()]);
        }
        let got = check(&out, &[])?;
        let got = got.ok_or_else(|| TestCaseError::fail(format!("no longer compiles:\n{out}")))?;
        prop_assert_eq!(compiled(&got), compiled(&want));
    }
}

/// The pieces a file is cut into put back together with single spaces still compile to the
/// same rules (the layout property relies on the cut).
#[test]
fn pieces_cut_only_between_tokens() {
    for src in valid_files() {
        let joined = pieces(&src).join(" ");
        let a = RuleSet::parse(&src, "a").unwrap();
        let b = RuleSet::parse(&joined, "b").unwrap_or_else(|d| panic!("{}", d.render(false)));
        assert_eq!(compiled(&a), compiled(&b));
    }
}
