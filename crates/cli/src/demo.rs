//! `vigil demo`: records a small built-in scenario, prints its summary, runs a rule over it and
//! traces one file back to where it came from, so a new user sees what vigil does in one
//! command.

use crate::exit::Failure;
use crate::out;
use crate::record::{self, LogSink};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use vigil_capture::{Backend, Selection};

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

/// A rule the scenario matches: `mv` then `rm` of the same file, by two processes.
const RULE: &str = r#"RULE renamed_then_deleted
PATTERN { [(rename|renameat|renameat2):m, (unlink|unlinkat):d] }
WHERE   { d.path == m.newpath }
RETURN  { m.pid, m.oldpath, m.newpath, d.pid }
OUTPUT  "{m.newpath} was renamed by pid {m.pid}, then deleted by pid {d.pid}"
"#;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where to keep the log (a temporary directory by default). Not `-`: the demo prints
    /// its summary there.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(a: DemoArgs) -> Result<i32, Failure> {
    if let Some(p) = &a.output {
        crate::files::refuse_dash_log(p, "demo")?;
    }
    let dir = std::env::temp_dir().join(format!("vigil-demo-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Failure::io(&dir, "cannot create", e))?;
    let script = dir.join("scenario.sh");
    crate::files::write_private(&script, SCENARIO)
        .map_err(|e| Failure::io(&script, "cannot write", e))?;
    let log = a.output.unwrap_or_else(|| dir.join("demo.vlog"));
    let command = vec![
        "/bin/sh".into(),
        script.clone().into_os_string(),
        dir.clone().into_os_string(),
    ];
    out::print(&format!(
        "vigil demo: recording `sh scenario.sh` (files, a pipe, child processes) into {}\n\n",
        log.display()
    ))?;
    let selection = Selection::default();
    let mut backend = record::backend(&command, selection.clone())?;
    backend.decide_at_entry(false);
    backend.report_path_changes(false);
    let mut sink = LogSink::create(
        &log,
        &record::meta_for(backend.name(), &command, &selection, None),
    )?;
    record::protect_log(&mut backend, sink.path())?;
    let outcome = record::run_backend(&mut backend, &mut sink);
    if outcome.is_ok() {
        sink.publish()?;
    }
    sink.finish().map_err(Failure::log)?;
    let outcome = outcome?;
    out::print(&format!("\n--- vigil summary {} ---\n", log.display()))?;
    let mut code = crate::summary::run(crate::summary::SummaryArgs { log: log.clone() })?;
    let rules = dir.join("demo.rules");
    crate::files::write_private(&rules, RULE)
        .map_err(|e| Failure::io(&rules, "cannot write", e))?;
    out::print(&format!(
        "\n--- vigil match --rules {} {} ---\n{RULE}\n",
        rules.display(),
        log.display()
    ))?;
    code = code.max(crate::rules_cmd::match_log(crate::rules_cmd::MatchArgs {
        rules: rules.clone(),
        log: log.clone(),
        out: crate::rules_cmd::Output::default(),
        no_actions: true,
    })?);
    let count = dir.join("count.txt");
    out::print(&format!(
        "\n--- vigil backtrack {} --from file:{} (what led to count.txt) ---\n",
        log.display(),
        count.display()
    ))?;
    code = code.max(crate::graph_cmd::backtrack(
        crate::graph_cmd::TrackArgs::defaults(&log, &format!("file:{}", count.display())),
    )?);
    let me =
        std::env::current_exe().map_or_else(|_| "vigil".to_string(), |p| p.display().to_string());
    out::print(&format!(
        "\nNext: `{me} show {}` lists every call; add `--path '*upper*'` for those touching upper.txt.\n",
        log.display()
    ))?;
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
