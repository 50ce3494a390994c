//! Prints every event of a traced command, strace-like, to stderr: a debugging aid for the
//! backend alone (`cargo run -p vigil-capture-ptrace --example trace -- CMD ARGS...`).

use vigil_capture::{Backend, BackendError, Selection, Verdict};
use vigil_event::{Event, EventKind, render};

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut backend = match vigil_capture_ptrace::PtraceBackend::new(argv, Selection::default()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("trace: {e}");
            std::process::exit(e.exit_code());
        }
    };
    let mut sink = |ev: Event| {
        let mut line = format!("{:>4} {}/{} ", ev.seq, ev.pid, ev.tid);
        match &ev.kind {
            EventKind::SyscallEntry(e) => {
                render::call(e.call, &e.args, &mut line);
                line.push_str(" ...");
            }
            EventKind::SyscallExit(x) => {
                line.push_str("... ");
                render::call(x.call, &x.args, &mut line);
                render::result(x.call, x.ret, &x.args, &mut line);
            }
            _ => line.push_str(&render::lifecycle(&ev).unwrap_or_default()),
        }
        eprintln!("{line}");
        Verdict::Continue
    };
    match backend.run(&mut sink) {
        Ok(o) => std::process::exit(o.status.map_or(0, |s| s.shell_code())),
        Err(e) => {
            eprintln!("trace: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
