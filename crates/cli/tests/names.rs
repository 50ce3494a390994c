//! File names a program chooses, rendered everywhere vigil shows them (show, summary, the
//! tree, DOT, the JSON of graphs and matches): two different names never look the same, and
//! characters that reorder or hide text (a right-to-left override) are escaped, not printed.

mod common;

use common::*;
use serde_json::Value as J;
use std::path::{Path, PathBuf};
use vigil_testkit::scratch_dir;

/// `/tmp/a\nb` with a backslash, with a real newline, with a right-to-left override (shown as
/// `/tmp/evilexe.jpg` by a terminal), and a name that is not UTF-8.
const TYPED: &str = r"/tmp/a\nb";
const NEWLINE: &str = "/tmp/a\nb";
const RLO: &str = "/tmp/evil\u{202e}gpj.exe";
const NOT_UTF8_HEX: &str = "2f746d702f78ff";

/// Human forms.
const TYPED_SHOWN: &str = r"/tmp/a\\nb";
const NEWLINE_SHOWN: &str = r"/tmp/a\nb";
const RLO_SHOWN: &str = r"/tmp/evil\u{202e}gpj.exe";
const NOT_UTF8_SHOWN: &str = r"/tmp/x\xff";

fn events() -> String {
    let names = [
        J::from(TYPED),
        J::from(NEWLINE),
        J::from(RLO),
        serde_json::json!({ "bytes_hex": NOT_UTF8_HEX }),
    ];
    let mut lines = vec![
        serde_json::json!({"seq":1,"time_ns":1000,"pid":10,"tid":10,"type":"process_start","ppid":1,"exe":"/bin/app","argv":["app"]}),
    ];
    let mut seq = 1;
    for (i, name) in names.iter().enumerate() {
        let target = serde_json::json!({"kind":"file","path":name,"dev":1,"ino":100 + i});
        seq += 1;
        lines.push(serde_json::json!({"seq":seq,"time_ns":seq * 1000,"pid":10,"tid":10,"type":"syscall_exit","syscall":"openat","entry_seq":0,"ret":3,
            "args":{"dirfd":{"fd":-100},"path":name,"flags":"O_WRONLY|O_CREAT","mode":420,"fd":{"fd":3,"target":target}}}));
        seq += 1;
        lines.push(serde_json::json!({"seq":seq,"time_ns":seq * 1000,"pid":10,"tid":10,"type":"syscall_exit","syscall":"write","entry_seq":0,"ret":1,
            "args":{"fd":{"fd":3,"target":target},"buf":4096,"count":1}}));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn import(dir: &Path) -> PathBuf {
    // The import's name is the log's command, which summary shows in its header.
    let src = dir.join("names\u{202e}lsonj.jsonl");
    std::fs::write(&src, events()).unwrap();
    let log = dir.join("names.vlog");
    let out = run(vigil().arg("import").arg(&src).arg("-o").arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    log
}

fn stdout_of(args: &[&str], log: &Path) -> String {
    let out = run(vigil().arg(args[0]).arg(log).args(&args[1..]));
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// What a person reads: each name in its own escaped form, none raw.
fn assert_human(what: &str, out: &str, typed: &str, newline: &str, rlo: &str, not_utf8: &str) {
    for (name, shown) in [
        ("typed backslash", typed),
        ("newline", newline),
        ("right-to-left override", rlo),
        ("invalid UTF-8", not_utf8),
    ] {
        assert!(
            out.contains(shown),
            "{what}: the {name} name is not shown as {shown}:\n{out}"
        );
    }
    assert!(
        !out.contains('\u{202e}'),
        "{what}: a raw right-to-left override:\n{out}"
    );
    assert!(
        !out.contains(NEWLINE),
        "{what}: a raw newline inside a name:\n{out}"
    );
}

#[test]
fn names_are_shown_unambiguously_with_invisible_characters_escaped() {
    let dir = scratch_dir("names");
    let log = import(&dir);
    // show quotes strings (escaped, `"` too); its fd targets and everything else use the
    // human form.
    let show = stdout_of(&["show", "--time", "none"], &log);
    assert_human(
        "show",
        &show,
        TYPED_SHOWN,
        NEWLINE_SHOWN,
        RLO_SHOWN,
        NOT_UTF8_SHOWN,
    );
    assert!(show.contains(&format!("\"{TYPED_SHOWN}\"")), "{show}");
    assert!(show.contains(&format!("<{RLO_SHOWN}>")), "{show}");
    let summary = stdout_of(&["summary"], &log);
    assert_human(
        "summary",
        &summary,
        TYPED_SHOWN,
        NEWLINE_SHOWN,
        RLO_SHOWN,
        NOT_UTF8_SHOWN,
    );
    let tree = stdout_of(&["forward", "--from", "proc:10"], &log);
    assert_human(
        "tree",
        &tree,
        TYPED_SHOWN,
        NEWLINE_SHOWN,
        RLO_SHOWN,
        NOT_UTF8_SHOWN,
    );
    // DOT escapes the backslashes of the human form once more.
    let dot = stdout_of(&["forward", "--from", "proc:10", "--format", "dot"], &log);
    assert_human(
        "dot",
        &dot,
        r"/tmp/a\\\\nb",
        r"/tmp/a\\nb",
        r"/tmp/evil\\u{202e}gpj.exe",
        r"/tmp/x\\xff",
    );

    // JSON for tools holds the names as the export does: exact text, or bytes_hex.
    let g: J = serde_json::from_str(&stdout_of(
        &["forward", "--from", "proc:10", "--format", "json"],
        &log,
    ))
    .unwrap();
    let paths: Vec<&J> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["path"])
        .filter(|p| !p.is_null())
        .collect();
    for want in [
        J::from(TYPED),
        J::from(NEWLINE),
        J::from(RLO),
        serde_json::json!({ "bytes_hex": NOT_UTF8_HEX }),
    ] {
        assert!(paths.contains(&&want), "graph JSON lacks {want}: {paths:?}");
    }

    // Matches: text in the human form, JSON in the export's form.
    let rules = dir.join("open.rules");
    std::fs::write(&rules, "RULE o PATTERN { [openat:o] } RETURN { o.path }\n").unwrap();
    let out = run(vigil().arg("match").arg("--rules").arg(&rules).arg(&log));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let matches = text(&out.stdout);
    assert_human(
        "match",
        &matches,
        TYPED_SHOWN,
        NEWLINE_SHOWN,
        RLO_SHOWN,
        NOT_UTF8_SHOWN,
    );
    let out = run(vigil()
        .arg("match")
        .arg("--rules")
        .arg(&rules)
        .arg(&log)
        .args(["--format", "json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let values: Vec<J> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<J>(l).unwrap()["values"]["o.path"].clone())
        .collect();
    assert_eq!(
        values,
        [
            J::from(TYPED),
            J::from(NEWLINE),
            J::from(RLO),
            serde_json::json!({ "bytes_hex": NOT_UTF8_HEX }),
        ],
        "match JSON holds names as the export does"
    );
}

#[test]
fn a_bad_glob_is_a_command_line_error_everywhere() {
    let dir = scratch_dir("names-glob");
    let log = import(&dir);
    let code = |args: &[&str]| {
        let out = run(vigil().args(args));
        let err = text(&out.stderr);
        assert!(err.contains('['), "{args:?}: names the pattern: {err}");
        out.status.code()
    };
    let log = log.display().to_string();
    assert_eq!(code(&["show", &log, "--path", "["]), Some(2));
    assert_eq!(
        code(&["backtrack", &log, "--from", "proc:10", "--exclude", "["]),
        Some(2)
    );
    assert_eq!(
        code(&["forward", &log, "--from", "proc:10", "--exclude", "a[b"]),
        Some(2)
    );
    assert_eq!(
        code(&["backtrack", "--explain-filters", "--exclude", "["]),
        Some(2)
    );
}
