//! Shared-memory objects in the graph: the granularity an analysis uses (object, vma, page,
//! minipage:N), which granularities a recording allows (never finer than what it recorded),
//! the part of an object an access touches at that granularity, and the index of the parts
//! an object has so far. docs/graph.md describes the model; crate::build applies it.

use crate::GraphError;
use crate::build::NodeId;
use std::collections::BTreeMap;

/// The size of a page, for `page` granularity.
pub const PAGE: u64 = 4096;
pub use vigil_event::memory::{MINIPAGE_MAX, MINIPAGE_MIN, SmoMode, minipage_size};

/// The granularity an analysis of a recording uses by default: the recorded one.
fn recorded_granularity(m: SmoMode) -> Granularity {
    match m {
        SmoMode::Off | SmoMode::Object => Granularity::Object,
        SmoMode::Vma => Granularity::Vma,
        SmoMode::Page => Granularity::Page,
        SmoMode::Minipage(n) => Granularity::Minipage(n),
    }
}

/// The parts shared-memory objects are divided into for an analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// One part per object.
    Object,
    /// The range of the object a mapping covers (an access's `map_offset`/`map_len`).
    Vma,
    /// 4096-byte aligned pages.
    Page,
    /// N-byte aligned parts.
    Minipage(u64),
    /// Each access's own range as the log records it: the default for a log whose header does
    /// not say how it was recorded (an import, an older log).
    Recorded,
}

impl std::fmt::Display for Granularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Granularity::Object => f.write_str("object"),
            Granularity::Vma => f.write_str("vma"),
            Granularity::Page => f.write_str("page"),
            Granularity::Minipage(n) => write!(f, "minipage:{n}"),
            Granularity::Recorded => f.write_str("recorded"),
        }
    }
}

/// What the graph needs to know about shared-memory monitoring: the granularity of its parts,
/// whether the recording monitored every shared mapping (then an `mmap` with PROT_WRITE and
/// MAP_SHARED is no flow of its own: the stores through it are `smo_write` events), and the
/// monitoring slice that bounds an access episode (docs/graph.md, "Access episodes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmoConfig {
    pub granularity: Granularity,
    pub monitored: bool,
    pub slice_ns: Option<u64>,
}

impl Default for SmoConfig {
    /// A log that does not say: parts are the events' own ranges, mmap edges stay, episodes
    /// last until the writer's next syscall.
    fn default() -> Self {
        SmoConfig {
            granularity: Granularity::Recorded,
            monitored: false,
            slice_ns: None,
        }
    }
}

impl SmoConfig {
    /// The configuration for a log recorded with `recorded` (`LogMeta::smo`) and slice
    /// `slice_ns` (`LogMeta::smo_slice_ns`), analysed at `requested` (`--granularity`, None
    /// for the recording's own). A granularity finer than the recording is an error, as is a
    /// malformed one. A header that does not say (None, or a mode this vigil does not know)
    /// accepts every granularity: each access then covers every part its recorded range
    /// overlaps, which is conservative (a vma-wide access touches every page of the vma).
    pub fn for_log(
        recorded: Option<&str>,
        slice_ns: Option<u64>,
        requested: Option<&str>,
    ) -> Result<SmoConfig, GraphError> {
        let mode = recorded.and_then(|r| SmoMode::parse(r).ok());
        let granularity = match requested {
            None => mode.map_or(Granularity::Recorded, recorded_granularity),
            Some(r) => check(r, mode)?,
        };
        Ok(SmoConfig {
            granularity,
            monitored: mode.is_some_and(|m| m != SmoMode::Off),
            slice_ns: slice_ns.filter(|&s| s > 0),
        })
    }
}

/// Parses `--granularity` and checks it against the recording's mode.
fn check(requested: &str, mode: Option<SmoMode>) -> Result<Granularity, GraphError> {
    let bad = |why: String| GraphError::BadGranularity {
        given: requested.to_string(),
        why,
    };
    let g = match requested {
        "object" => Granularity::Object,
        "vma" => Granularity::Vma,
        "page" => Granularity::Page,
        "minipage" => match mode {
            Some(SmoMode::Minipage(n)) => Granularity::Minipage(n),
            // Finer than any of these: said below with the recording's mode.
            Some(SmoMode::Page | SmoMode::Vma | SmoMode::Object | SmoMode::Off) => {
                Granularity::Minipage(MINIPAGE_MIN)
            }
            None => {
                return Err(bad(
                    "the log does not say how it was recorded, so it has no minipage size of its own: give one, e.g. minipage:64".into(),
                ));
            }
        },
        other => match other.strip_prefix("minipage:") {
            Some(n) => Granularity::Minipage(minipage_size(n).ok_or_else(|| {
                bad(format!(
                    "the minipage size must be a power of two from {MINIPAGE_MIN} to {MINIPAGE_MAX}"
                ))
            })?),
            None => {
                return Err(bad(
                    "use object, vma, page, minipage or minipage:N (N a power of two from 8 to 2048)"
                        .into(),
                ));
            }
        },
    };
    let Some(mode) = mode else {
        return Ok(g);
    };
    let allowed = match (mode, g) {
        (_, Granularity::Object) => true,
        (SmoMode::Off, _) => {
            return Err(GraphError::NotMonitored {
                given: requested.to_string(),
            });
        }
        (SmoMode::Object, _) => false,
        (SmoMode::Vma, g) => g == Granularity::Vma,
        (SmoMode::Page, g) => matches!(g, Granularity::Vma | Granularity::Page),
        (SmoMode::Minipage(m), Granularity::Minipage(n)) => n % m == 0,
        (SmoMode::Minipage(_), _) => true,
    };
    if allowed {
        return Ok(g);
    }
    let what = match g {
        Granularity::Vma => "which mapping an access went through".to_string(),
        Granularity::Page => "which page was accessed".to_string(),
        Granularity::Minipage(_) if requested == "minipage" => {
            "which minipage was accessed".to_string()
        }
        Granularity::Minipage(n) => format!("which {n}-byte part was accessed"),
        Granularity::Object | Granularity::Recorded => "more than the object".to_string(),
    };
    Err(GraphError::TooFine {
        given: requested.to_string(),
        recorded: mode.to_string(),
        what,
    })
}

/// A range of an object's bytes: `[start, end)`, or the whole object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Range {
    Whole,
    Bytes(u64, u64),
}

fn aligned(start: u64, end: u64, n: u64) -> Range {
    let s = start - start % n;
    let e = match end % n {
        0 => end,
        r => end.saturating_add(n - r),
    };
    Range::Bytes(s, e.max(s.saturating_add(1)))
}

impl Granularity {
    /// The part a shared-memory access touches: its own range `[offset, offset+len)` widened
    /// to this granularity; at `vma`, the range of the mapping it went through (and its own,
    /// if the mapping's range does not hold it).
    pub(crate) fn access_range(self, offset: u64, len: u64, map: (u64, u64)) -> Range {
        let end = offset.saturating_add(len.max(1));
        match self {
            Granularity::Vma if map.1 > 0 => {
                Range::Bytes(map.0.min(offset), map.0.saturating_add(map.1).max(end))
            }
            _ => self.io_range(offset, end),
        }
    }

    /// The part a read(2)/write(2) of `[start, end)` touches: the bytes widened to this
    /// granularity (at `vma`, the bytes themselves: no mapping is involved).
    pub(crate) fn io_range(self, start: u64, end: u64) -> Range {
        match self {
            Granularity::Object => Range::Whole,
            Granularity::Page => aligned(start, end, PAGE),
            Granularity::Minipage(n) => aligned(start, end, n.max(1)),
            Granularity::Vma | Granularity::Recorded => {
                Range::Bytes(start, end.max(start.saturating_add(1)))
            }
        }
    }
}

/// The parts one shared-memory object has so far, by range.
#[derive(Default)]
pub(crate) struct Parts {
    /// The file's node, for a file.
    pub file: Option<NodeId>,
    /// The part that stands for the whole object (object granularity, and for files what was
    /// written at no known offset, including before monitoring began).
    pub whole: Option<NodeId>,
    pub by_range: BTreeMap<(u64, u64), NodeId>,
    /// The longest range in `by_range`: a search for overlaps starts this far back.
    pub max_len: u64,
    /// The label parts are named by (the path, or the object's kind and inode).
    pub base: String,
}

impl Parts {
    /// Every part that overlaps `r`, the whole-object part first.
    pub fn overlapping(&self, r: Range, out: &mut Vec<NodeId>) {
        out.clear();
        out.extend(self.whole);
        match r {
            Range::Whole => out.extend(self.by_range.values().copied()),
            Range::Bytes(a, b) => {
                let lo = a.saturating_sub(self.max_len);
                out.extend(
                    self.by_range
                        .range((lo, 0)..(b, 0))
                        .filter(|((_, e), _)| *e > a)
                        .map(|(_, &n)| n),
                );
            }
        }
    }
}

/// What the graph counts about shared-memory accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmoStats {
    /// Shared-memory access events.
    pub accesses: u64,
    /// Part objects made.
    pub parts: u64,
    /// read(2)/write(2)-like calls on a file with parts whose file offset the log does not
    /// have (an older recorder, an import): counted as touching the whole object.
    pub whole_object: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rec: Option<&str>, req: &str) -> Result<Granularity, GraphError> {
        SmoConfig::for_log(rec, None, Some(req)).map(|c| c.granularity)
    }

    #[test]
    fn coarser_or_equal_is_allowed_finer_is_refused() {
        use Granularity::*;
        assert_eq!(cfg(Some("page"), "page"), Ok(Page));
        assert_eq!(cfg(Some("page"), "vma"), Ok(Vma));
        assert_eq!(cfg(Some("page"), "object"), Ok(Object));
        assert!(cfg(Some("page"), "minipage:64").is_err());
        assert!(cfg(Some("page"), "minipage").is_err());
        assert!(cfg(Some("vma"), "page").is_err());
        assert_eq!(cfg(Some("vma"), "vma"), Ok(Vma));
        assert!(cfg(Some("object"), "vma").is_err());
        assert_eq!(cfg(Some("minipage:64"), "minipage"), Ok(Minipage(64)));
        assert_eq!(cfg(Some("minipage:64"), "minipage:128"), Ok(Minipage(128)));
        assert!(cfg(Some("minipage:64"), "minipage:32").is_err());
        assert_eq!(cfg(Some("minipage:64"), "page"), Ok(Page));
        assert_eq!(cfg(Some("minipage:64"), "vma"), Ok(Vma));
        assert_eq!(cfg(Some("off"), "object"), Ok(Object));
        assert!(matches!(
            cfg(Some("off"), "page"),
            Err(GraphError::NotMonitored { .. })
        ));
        // A log that does not say: anything well formed but a bare minipage.
        assert_eq!(cfg(None, "minipage:8"), Ok(Minipage(8)));
        assert!(cfg(None, "minipage").is_err());
        assert!(cfg(None, "minipage:100").is_err());
        assert!(cfg(None, "pages").is_err());
        let e = cfg(Some("object"), "page").unwrap_err().to_string();
        assert_eq!(
            e,
            "--granularity page is finer than the recording (--smo object): the log cannot say which page was accessed"
        );
    }

    #[test]
    fn defaults_follow_the_recording() {
        let c = SmoConfig::for_log(Some("minipage:256"), Some(10_000_000), None).unwrap();
        assert_eq!(c.granularity, Granularity::Minipage(256));
        assert!(c.monitored);
        assert_eq!(c.slice_ns, Some(10_000_000));
        let c = SmoConfig::for_log(None, None, None).unwrap();
        assert_eq!(c, SmoConfig::default());
        assert!(
            !SmoConfig::for_log(Some("off"), None, None)
                .unwrap()
                .monitored
        );
    }

    #[test]
    fn ranges_widen_to_the_granularity() {
        use Granularity::*;
        assert_eq!(Page.access_range(100, 8, (0, 0)), Range::Bytes(0, 4096));
        assert_eq!(Page.access_range(4090, 8, (0, 0)), Range::Bytes(0, 8192));
        assert_eq!(
            Minipage(64).access_range(2048, 8, (0, 0)),
            Range::Bytes(2048, 2112)
        );
        assert_eq!(
            Vma.access_range(4096, 4096, (0, 12288)),
            Range::Bytes(0, 12288)
        );
        assert_eq!(Vma.io_range(10, 20), Range::Bytes(10, 20));
        assert_eq!(Object.access_range(4096, 4096, (0, 12288)), Range::Whole);
        assert_eq!(Recorded.access_range(3, 0, (0, 0)), Range::Bytes(3, 4));
        // No overflow at the top of the range.
        assert_eq!(
            Page.io_range(u64::MAX - 1, u64::MAX),
            Range::Bytes(u64::MAX - 4095, u64::MAX)
        );
    }

    #[test]
    fn overlaps_find_every_part_that_shares_a_byte() {
        let mut p = Parts::default();
        for (i, r) in [(0u64, 8192u64), (4096, 12288), (12288, 16384)]
            .into_iter()
            .enumerate()
        {
            p.by_range.insert(r, i as NodeId);
            p.max_len = p.max_len.max(r.1 - r.0);
        }
        let mut out = Vec::new();
        p.overlapping(Range::Bytes(8192, 8193), &mut out);
        assert_eq!(out, vec![1]);
        p.overlapping(Range::Bytes(4096, 4097), &mut out);
        assert_eq!(out, vec![0, 1]);
        p.overlapping(Range::Bytes(16384, 20000), &mut out);
        assert!(out.is_empty());
        p.whole = Some(9);
        p.overlapping(Range::Whole, &mut out);
        assert_eq!(out, vec![9, 0, 1, 2]);
    }
}
