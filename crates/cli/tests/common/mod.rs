//! Shared helpers for the CLI's integration tests: run `vigil`, read logs back.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vigil_event::{Event, EventKind, SyscallExit, Target, Value};

pub fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `vigil record -q -o LOG [extra] -- CMD...` in `dir`; returns the output and the events.
pub fn record_in(dir: &Path, extra: &[&str], cmd: &[&OsStr]) -> (Output, Vec<Event>, PathBuf) {
    vigil_testkit::require_ptrace();
    let log = dir.join("run.vlog");
    let out = run(vigil()
        .current_dir(dir)
        .arg("record")
        .arg("-q")
        .arg("-o")
        .arg(&log)
        .args(extra)
        .arg("--")
        .args(cmd));
    let events = read_log(&log);
    (out, events, log)
}

pub fn read_log(log: &Path) -> Vec<Event> {
    let reader = vigil_log::LogReader::open(log).unwrap_or_else(|e| panic!("{e}"));
    reader
        .map(|r| r.unwrap_or_else(|issue| panic!("log {}: {issue}", log.display())))
        .collect()
}

pub fn exits<'a>(events: &'a [Event], name: &str) -> Vec<(&'a Event, &'a SyscallExit)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SyscallExit(x) if x.call.to_string() == name => Some((e, x)),
            _ => None,
        })
        .collect()
}

pub fn path_arg(ev: &Event, name: &str) -> Option<String> {
    ev.arg(name)?.as_str().map(|s| s.to_string())
}

pub fn fd_target(ev: &Event, name: &str) -> Option<Target> {
    match ev.arg(name)? {
        Value::Fd(fd) => fd.target.as_deref().cloned(),
        _ => None,
    }
}

pub fn fd_path(ev: &Event, name: &str) -> Option<String> {
    match fd_target(ev, name)? {
        Target::File { path, .. } => Some(path.to_string()),
        _ => None,
    }
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Where a version 2 log's frames are (docs/log-format.md): the header, each block, the end
/// record; for tests that damage a log the way a crash, a cut copy or an editor would.
pub struct Layout {
    pub header: std::ops::Range<usize>,
    pub blocks: Vec<std::ops::Range<usize>>,
    pub end: Option<std::ops::Range<usize>>,
}

pub fn layout(b: &[u8]) -> Layout {
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    let header = 0..16 + u32_at(12) + 4;
    let (mut blocks, mut end) = (Vec::new(), None);
    let mut at = header.end;
    while at + 8 <= b.len() {
        match &b[at..at + 4] {
            b"VBK2" => {
                let next = at + 44 + u32_at(at + 4);
                blocks.push(at..next);
                at = next;
            }
            b"VEND" => {
                end = Some(at..at + 8 + u32_at(at + 4) + 4);
                break;
            }
            other => panic!("no frame at byte {at}: {other:?}"),
        }
    }
    Layout {
        header,
        blocks,
        end,
    }
}
