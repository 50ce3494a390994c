//! Naming a starting point (`file:PATH`, `proc:PID`, `proc:PID@N`, `event:SEQ`) and a moment
//! (`1234`, `+2.5s`, `1763820000.25`), resolved against a graph.

use crate::GraphError;
use crate::build::{Graph, NodeId, NodeKind};
use vigil_event::Str;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectSpec {
    File(String),
    Process { pid: u32, nth: Option<usize> },
    Event(u64),
}

impl ObjectSpec {
    pub fn parse(s: &str) -> Result<ObjectSpec, GraphError> {
        let bad = || GraphError::BadObject(s.to_string());
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "file" if !rest.is_empty() => Ok(ObjectSpec::File(rest.to_string())),
            "proc" => {
                let (pid, nth) = match rest.split_once('@') {
                    Some((p, n)) => (
                        p,
                        Some(n.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(bad)?),
                    ),
                    None => (rest, None),
                };
                Ok(ObjectSpec::Process {
                    pid: pid.parse().map_err(|_| bad())?,
                    nth,
                })
            }
            "event" => Ok(ObjectSpec::Event(rest.parse().map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    }

    /// The object, and for `event:SEQ` the moment it names.
    pub fn resolve(&self, g: &Graph) -> Result<(NodeId, Option<u64>), GraphError> {
        match self {
            ObjectSpec::File(path) => {
                let key = Str::from(path.as_str());
                if let Some(&n) = g.by_path.get(&key) {
                    return Ok((n, None));
                }
                // A file known under that name earlier (renamed or deleted since), or the name.
                if let Some((i, _)) = g
                    .nodes
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, n)| n.kind == NodeKind::File && n.paths.contains(&key))
                {
                    return Ok((i as NodeId, None));
                }
                if let Some(&n) = g.filenames.get(&key) {
                    return Ok((n, None));
                }
                let candidates: Vec<String> = g.by_path.keys().map(|p| p.to_string()).collect();
                Err(GraphError::NotInLog {
                    what: format!("file {path}"),
                    hint: nearest(path, &candidates),
                })
            }
            ObjectSpec::Process { pid, nth } => {
                let list = g.pid_history.get(pid).filter(|l| !l.is_empty());
                let Some(list) = list else {
                    let mut pids: Vec<u32> = g.pid_history.keys().copied().collect();
                    pids.sort_unstable();
                    let shown: Vec<String> = pids.iter().take(12).map(|p| p.to_string()).collect();
                    let more = if pids.len() > 12 { ", ..." } else { "" };
                    return Err(GraphError::NotInLog {
                        what: format!("process {pid}"),
                        hint: format!(" (processes in the log: {}{more})", shown.join(", ")),
                    });
                };
                match nth {
                    None => Ok((*list.last().unwrap_or(&0), None)),
                    Some(n) => {
                        list.get(n - 1)
                            .map(|&id| (id, None))
                            .ok_or_else(|| GraphError::NotInLog {
                                what: format!("process {pid}@{n}"),
                                hint: format!(
                                    " (pid {pid} was used by {} process(es))",
                                    list.len()
                                ),
                            })
                    }
                }
            }
            ObjectSpec::Event(seq) => {
                if *seq < g.first_seq || *seq > g.last_seq {
                    return Err(GraphError::NotInLog {
                        what: format!("event {seq}"),
                        hint: format!(" (its events are {} to {})", g.first_seq, g.last_seq),
                    });
                }
                // The event's effect: what it wrote to, started or delivered into (not the
                // file contents a first shared-memory access brings into the graph with it).
                let i = g.edges.partition_point(|e| e.seq < *seq);
                let effect = g.edges[i.min(g.edges.len())..]
                    .iter()
                    .take_while(|e| e.seq == *seq)
                    .find(|e| g.call_name(e.call) != crate::build::CONTENTS);
                match effect {
                    Some(e) => Ok((e.to, Some(*seq))),
                    None if g.detections.contains_key(seq) => {
                        Ok((g.detections[seq], Some(*seq)))
                    }
                    None => Err(GraphError::NotInLog {
                        what: format!("information flow at event {seq}"),
                        hint: " (that event moved no information and is no detection point: a failed call, a syscall entry, or a call with no edge rule; name an object instead)".into(),
                    }),
                }
            }
        }
    }
}

/// ` (nearest: a, b, c)` for the paths closest to `want`.
fn nearest(want: &str, candidates: &[String]) -> String {
    let mut scored: Vec<(f64, &String)> = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(want, c), c))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let best: Vec<&str> = scored
        .iter()
        .take(3)
        .filter(|(s, _)| *s > 0.5)
        .map(|(_, c)| c.as_str())
        .collect();
    if best.is_empty() {
        String::new()
    } else {
        format!(" (nearest paths in the log: {})", best.join(", "))
    }
}

/// A moment: a sequence number, an offset from the log's start, or epoch seconds.
#[derive(Clone, Debug, PartialEq)]
pub enum TimeSpec {
    Seq(u64),
    Offset(f64),
    Epoch(f64),
}

impl TimeSpec {
    pub fn parse(s: &str) -> Result<TimeSpec, GraphError> {
        let bad = || GraphError::BadTime(s.to_string());
        if let Some(rest) = s.strip_prefix('+') {
            let (num, scale) = if let Some(n) = rest.strip_suffix("ms") {
                (n, 1e-3)
            } else if let Some(n) = rest.strip_suffix("us") {
                (n, 1e-6)
            } else if let Some(n) = rest.strip_suffix('s') {
                (n, 1.0)
            } else if let Some(n) = rest.strip_suffix('m') {
                (n, 60.0)
            } else {
                (rest, 1.0)
            };
            let v: f64 = num.parse().map_err(|_| bad())?;
            return if v.is_finite() && v >= 0.0 {
                Ok(TimeSpec::Offset(v * scale))
            } else {
                Err(bad())
            };
        }
        if s.contains('.') {
            let v: f64 = s.parse().map_err(|_| bad())?;
            return if v.is_finite() && v >= 0.0 {
                Ok(TimeSpec::Epoch(v))
            } else {
                Err(bad())
            };
        }
        s.parse().map(TimeSpec::Seq).map_err(|_| bad())
    }

    /// The last seq at or before this moment; an error if the moment is outside the log.
    pub fn to_seq(&self, g: &Graph, given: &str) -> Result<u64, GraphError> {
        let outside = || GraphError::TimeOutsideLog {
            given: given.to_string(),
            first: format!("event {} ({})", g.first_seq, clock(g.first_time)),
            last: format!("event {} ({})", g.last_seq, clock(g.last_time)),
        };
        let time = match self {
            TimeSpec::Seq(s) => {
                return if (g.first_seq..=g.last_seq).contains(s) {
                    Ok(*s)
                } else {
                    Err(outside())
                };
            }
            TimeSpec::Offset(o) => g.first_time.saturating_add((o * 1e9) as u64),
            TimeSpec::Epoch(e) => (e * 1e9) as u64,
        };
        if time < g.first_time || time > g.last_time {
            return Err(outside());
        }
        let i = g.edges.partition_point(|e| e.time_ns <= time);
        Ok(if i == 0 {
            g.first_seq
        } else {
            g.edges[i - 1].seq
        })
    }
}

/// UTC time of day, for messages.
pub fn clock(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06} UTC",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        (ns / 1000) % 1_000_000
    )
}
