//! Timing helpers: medians over repeated runs.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs a command to completion (output discarded), returning the wall time.
pub fn time_command(cmd: &[String]) -> Duration {
    let start = Instant::now();
    let status = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cmd[0]));
    let t = start.elapsed();
    assert!(
        status.success(),
        "benchmark command failed ({status}): {}",
        cmd.join(" ")
    );
    t
}

/// Starts one copy of `cmd` per file of `stderr_files`, all at once (stdin from /dev/null,
/// stdout discarded, each one's standard error into its file: no pipe to drain while timing),
/// and waits for all of them: the wall time from the first start to the last exit, and each
/// copy's status and standard error. A command that fails is not an error here: the caller
/// says what failed (the multi-variant benchmark goes on with its other workloads).
pub fn time_copies(
    cmd: &[String],
    stderr_files: &[PathBuf],
) -> std::io::Result<(Duration, Vec<(ExitStatus, String)>)> {
    let start = Instant::now();
    let mut children = Vec::new();
    for f in stderr_files {
        let spawned = std::fs::File::create(f).and_then(|err| {
            Command::new(&cmd[0])
                .args(&cmd[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
        });
        match spawned {
            Ok(c) => children.push(c),
            Err(e) => {
                // No copy left running behind the error.
                for c in &mut children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                return Err(e);
            }
        }
    }
    let mut statuses = Vec::new();
    for c in &mut children {
        statuses.push(c.wait()?);
    }
    let t = start.elapsed();
    let mut out = Vec::new();
    for (status, f) in statuses.into_iter().zip(stderr_files) {
        let bytes = std::fs::read(f)?;
        out.push((status, String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok((t, out))
}

/// The value after `flag` in a section's arguments (`--only B`), if the flag is there.
pub fn flag_value(args: &[String], flag: &str) -> Result<Option<String>, String> {
    args.iter()
        .position(|a| a == flag)
        .map(|i| {
            args.get(i + 1)
                .cloned()
                .ok_or(format!("{flag} needs a value"))
        })
        .transpose()
}

/// `flag`'s value as a positive number, if the flag is there.
pub fn flag_count(args: &[String], flag: &str) -> Result<Option<u64>, String> {
    flag_value(args, flag)?
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("{flag} {v}: expected a positive number"))
        })
        .transpose()
}
