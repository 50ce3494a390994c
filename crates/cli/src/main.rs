//! The `vigil` command line: wires capture backends, the log and the analyses together.
//! Library crates return typed errors; this is the only place that prints them.

mod demo;
mod exit;
mod faults;
mod files;
mod graph_cmd;
mod maps;
mod mvee;
mod out;
mod record;
mod rules_cmd;
mod show;
mod summary;
mod system;
mod system_rules;

use clap::{Parser, Subcommand};
use exit::Failure;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "vigil", version, about = "Record what processes do, catch attacks while they run, trace them back.", after_help = exit::EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trace a command and all its descendants into a log (ptrace + seccomp).
    Record(record::RecordArgs),
    /// List a log's system calls and process events, strace-like.
    Show(show::ShowArgs),
    /// Summarise a log: process tree, syscalls, files, network endpoints.
    Summary(summary::SummaryArgs),
    /// A process's address space at a moment of a log, as /proc/PID/maps plus what each
    /// mapping was used for.
    Maps(maps::MapsArgs),
    /// Write a log's events as JSON lines (the schema is in docs/event-schema.md).
    Export(ExportArgs),
    /// Read JSON lines (the export format) into a new log.
    Import(ImportArgs),
    /// Record a built-in example scenario and print its summary.
    Demo(demo::DemoArgs),
    /// From a detection point, the processes, files and endpoints that could have led to it.
    Backtrack(graph_cmd::TrackArgs),
    /// From an entry point, everything it went on to affect.
    Forward(graph_cmd::TrackArgs),
    /// Check a rule file, or draw a rule's automaton.
    Rules(rules_cmd::RulesArgs),
    /// Run rules over a recorded log.
    Match(rules_cmd::MatchArgs),
    /// Run rules online while tracing a command (and record it with -o).
    Watch(rules_cmd::WatchArgs),
    /// Run a command as N variants in lockstep; any disagreement between them is a
    /// divergence (exit 4): every variant is stopped and the divergence reported.
    Mvee(mvee::MveeArgs),
}

#[derive(clap::Args)]
struct ExportArgs {
    /// The log to read.
    log: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: ExportFormat,
    /// Where to write (standard output by default, or `-`). A file is written under a
    /// temporary name and renamed into place once complete; it may not be the log.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Jsonl,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// JSON lines to read (`-` for standard input).
    input: PathBuf,
    /// The log to create (`-`: standard output, not a terminal). A file is written under a
    /// temporary name and renamed into place once the import is complete: an import that
    /// fails leaves no log, and an existing file of that name as it was.
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs before Rust's runtime, which sets SIGPIPE to ignored: the disposition vigil inherited is
/// what a traced command must start with (crates/tracee/src/spawn.rs).
extern "C" fn before_runtime() {
    vigil_capture_ptrace::remember_inherited_sigpipe();
}

#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_RUNTIME: extern "C" fn() = before_runtime;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_for_clap(e),
    };
    let result = match cli.command {
        Command::Record(a) => record::run(a),
        Command::Show(a) => show::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Maps(a) => maps::run(a),
        Command::Export(a) => export(a),
        Command::Import(a) => import(a),
        Command::Demo(a) => demo::run(a),
        Command::Backtrack(a) => graph_cmd::backtrack(a),
        Command::Forward(a) => graph_cmd::forward(a),
        Command::Rules(a) => rules_cmd::rules(a),
        Command::Match(a) => rules_cmd::match_log(a),
        Command::Watch(a) => rules_cmd::watch(a),
        Command::Mvee(a) => mvee::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(f) => {
            if !f.message.is_empty() {
                out::err(format_args!("vigil: {}", f.message));
            }
            std::process::exit(f.code);
        }
    }
}

/// A bad command line (exit 2, on standard error), or --help and --version (exit 0, on
/// standard output, whose errors take the one exit path of crate::out).
fn exit_for_clap(e: clap::Error) -> ! {
    use std::io::IsTerminal;
    if e.use_stderr() || std::io::stdout().is_terminal() {
        // Coloured on a terminal; a failing standard error is ignored.
        let _ = e.print();
        std::process::exit(e.exit_code());
    }
    match out::print(&e.render().to_string()) {
        Ok(()) => std::process::exit(e.exit_code()),
        Err(f) => {
            if !f.message.is_empty() {
                out::err(format_args!("vigil: {}", f.message));
            }
            std::process::exit(f.code)
        }
    }
}

fn export(a: ExportArgs) -> Result<i32, Failure> {
    let output = files::output_arg(a.output.as_deref());
    files::refuse_same(output, &[files::Input::File(&a.log)])?;
    let mut reader = exit::open_log(&a.log)?;
    let mut damage = exit::Damage::new(&a.log);
    let ExportFormat::Jsonl = a.format;
    match output {
        Some(p) => {
            let file = files::NewFile::create(p)?;
            let mut w = std::io::BufWriter::new(file.writer()?);
            vigil_log::jsonl::export(&mut reader, &mut w, &mut |issue| damage.report(issue))
                .map_err(Failure::log)?;
            std::io::Write::flush(&mut w).map_err(|e| Failure::io(p, "cannot write", e))?;
            drop(w);
            // Complete (damage included: everything intact was exported): into place.
            file.commit()?;
        }
        None => {
            let mut stdout = out::Stdout::new();
            let written = vigil_log::jsonl::export(&mut reader, &mut stdout, &mut |issue| {
                damage.report(issue)
            });
            // The log crate names the output only as "output": the cause is what standard
            // output itself said.
            if let Some(f) = stdout.failed() {
                return Err(f);
            }
            written.map_err(Failure::log)?;
            stdout.finish()?;
        }
    }
    Ok(damage.exit_code(0))
}

fn import(a: ImportArgs) -> Result<i32, Failure> {
    let to_stdout = files::is_dash(&a.output);
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Failure::new(
            2,
            "import -o -: standard output is a terminal; redirect it to a file or a pipe",
        ));
    }
    let input = if a.input.as_os_str() == "-" {
        files::Input::Stdin
    } else {
        files::Input::File(&a.input)
    };
    files::refuse_same((!to_stdout).then_some(a.output.as_path()), &[input])?;
    let meta = vigil_log::LogMeta {
        created_ns: vigil_capture_ptrace_now(),
        hostname: exit::hostname(),
        backend: "import".into(),
        command: vec![a.input.display().to_string()],
        selection: String::new(),
        vigil_version: env!("CARGO_PKG_VERSION").into(),
        // Imported seqs only have to increase.
        contiguous_seq: false,
        command_cut: None,
        smo: None,
        smo_slice_ns: None,
    };
    // The input first: a missing one must not cost an existing log of the output's name.
    let input: Box<dyn std::io::BufRead> = if a.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f =
            std::fs::File::open(&a.input).map_err(|e| Failure::io(&a.input, "cannot open", e))?;
        Box::new(std::io::BufReader::new(f))
    };
    let (file, out): (_, Box<dyn std::io::Write>) = if to_stdout {
        (
            None,
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        )
    } else {
        let f = files::NewFile::create(&a.output)?;
        let w = f.writer()?;
        (Some(f), Box::new(w))
    };
    let name = if to_stdout {
        "standard output".to_string()
    } else {
        a.output.display().to_string()
    };
    let mut writer = vigil_log::LogWriter::new(out, &meta)
        .map_err(Failure::log)?
        .named(&name);
    let stats = match vigil_log::jsonl::import(input, &mut writer) {
        Ok(stats) => stats,
        Err(e) => {
            let left = if to_stdout {
                // Not closed: whoever reads it is told it is incomplete.
                let _ = writer.flush();
                "the log written to standard output is not closed".to_string()
            } else {
                // The temporary file goes with `file`: nothing reads as a valid log.
                format!("nothing was written to {name}")
            };
            return Err(Failure::new(
                1,
                format!("{}: {e} ({left})", a.input.display()),
            ));
        }
    };
    let written = writer.finish().map_err(Failure::log)?;
    file.map(files::NewFile::commit).transpose()?;
    let cut = match written.cut {
        0 => String::new(),
        n => format!(" ({n} with argument lists cut to fit the log: see their `_cut` fields)"),
    };
    out::err(format_args!(
        "vigil: imported {} events into {name}{cut}",
        stats.events
    ));
    Ok(0)
}

fn vigil_capture_ptrace_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
