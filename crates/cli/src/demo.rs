//! `vigil demo`: records a small built-in scenario and prints its summary, so a new user sees
//! what vigil does in one command.

use crate::exit::Failure;
use crate::record::{self, LogSink};
use std::path::PathBuf;
use vigil_capture::Selection;

/// Touches files, a pipe, child processes, a rename and a delete.
const SCENARIO: &str = r#"set -e
cd "$1"
printf 'alice\nbob\nmallory\n' > users.txt
sort users.txt | tr a-z A-Z > upper.txt
cp upper.txt backup.txt
mv backup.txt archive.txt
sh -c 'wc -l < upper.txt' > count.txt
rm archive.txt
cat count.txt
"#;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where to keep the log (a temporary directory by default).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(a: DemoArgs) -> Result<i32, Failure> {
    let dir = std::env::temp_dir().join(format!("vigil-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Failure::io(&dir, "cannot create", e))?;
    let script = dir.join("scenario.sh");
    std::fs::write(&script, SCENARIO).map_err(|e| Failure::io(&script, "cannot write", e))?;
    let log = a.output.unwrap_or_else(|| dir.join("demo.vlog"));
    let command = vec![
        "/bin/sh".into(),
        script.clone().into_os_string(),
        dir.clone().into_os_string(),
    ];
    println!(
        "vigil demo: recording `sh scenario.sh` (files, a pipe, child processes) into {}\n",
        log.display()
    );
    let selection = Selection::default();
    let mut backend = record::backend(&command, selection.clone())?;
    let mut sink = LogSink::create(&log, &record::meta_for("ptrace", &command, &selection))?;
    let outcome = record::run_backend(&mut backend, &mut sink);
    sink.finish().map_err(Failure::log)?;
    let outcome = outcome?;
    println!("\n--- vigil summary {} ---", log.display());
    let code = crate::summary::run(crate::summary::SummaryArgs { log: log.clone() })?;
    let me =
        std::env::current_exe().map_or_else(|_| "vigil".to_string(), |p| p.display().to_string());
    println!(
        "\nNext: `{me} show {}` lists every call; add `--path '*upper*'` for those touching upper.txt.",
        log.display()
    );
    if outcome.status.is_some_and(|s| s.shell_code() != 0) {
        return Err(Failure::new(
            1,
            format!(
                "the demo scenario failed: {}",
                outcome.status.map_or(String::new(), |s| s.to_string())
            ),
        ));
    }
    Ok(code)
}
