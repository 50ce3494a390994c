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
