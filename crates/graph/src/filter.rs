//! What a reconstruction leaves out by default, and why: reads of objects every process
//! touches that carry no attacker-controlled information. Writes are never left out (a write
//! to /etc/ld.so.preload is an attack), and what a filter removed is always counted.

use crate::GraphError;
use crate::build::{Graph, NodeId, NodeKind};
use globset::{Glob, GlobMatcher};

/// The default noise filters: (name, globs over file paths, whether the objects keep what is
/// written to them). Filters hide reads, never writes (crate::track): a library or
/// the loader's preload list a recorded process wrote is what an attacker changed, so reads of
/// it are followed like any other. A device or a kernel file does not hand what one process
/// wrote to the next reader (a terminal's reader gets keyboard input, /dev/null gives nothing):
/// its reads stay hidden even after a write.
pub const NOISE: &[(&str, &[&str], bool)] = &[
    (
        "shared libraries and the loader cache",
        &[
            "**/*.so",
            "**/*.so.*",
            "/etc/ld.so.cache",
            "/etc/ld.so.preload",
        ],
        true,
    ),
    (
        "locale files",
        &[
            "/usr/lib/locale/**",
            "/usr/share/locale/**",
            "/usr/lib/*/gconv/**",
            "/usr/share/i18n/**",
        ],
        true,
    ),
    ("/proc", &["/proc/**"], false),
    ("/sys", &["/sys/**"], false),
    ("/dev/null", &["/dev/null"], false),
    (
        "terminals",
        &["/dev/tty", "/dev/tty[0-9]*", "/dev/pts/*"],
        false,
    ),
    (
        "/dev/urandom and /dev/random",
        &["/dev/urandom", "/dev/random"],
        false,
    ),
];

/// One filter: its name (what `filtered` counts under), its globs, and whether the objects it
/// matches keep what is written to them (files do; devices and kernel files do not).
struct Rule {
    name: String,
    globs: Vec<GlobMatcher>,
    stores: bool,
}

pub struct Filters {
    rules: Vec<Rule>,
}

impl Filters {
    /// The default noise filters (unless `include_all`) plus `--exclude` patterns.
    pub fn new(include_all: bool, exclude: &[String]) -> Result<Filters, GraphError> {
        let mut rules = Vec::new();
        if !include_all {
            for (name, globs, stores) in NOISE {
                let globs = globs
                    .iter()
                    .map(|g| compile(g))
                    .collect::<Result<Vec<_>, _>>()?;
                rules.push(Rule {
                    name: name.to_string(),
                    globs,
                    stores: *stores,
                });
            }
        }
        // What the user excludes is taken to be files: a write to one is followed.
        for pattern in exclude {
            rules.push(Rule {
                name: format!("--exclude {pattern}"),
                globs: vec![compile(pattern)?],
                stores: true,
            });
        }
        Ok(Filters { rules })
    }

    /// The filter that matches this node, if one does: its name, and whether its objects keep
    /// what is written to them. Only files and names are filtered.
    pub fn filter_of(&self, g: &Graph, n: NodeId) -> Option<(&str, bool)> {
        let node = g.node(n);
        if !matches!(node.kind, NodeKind::File | NodeKind::Filename) {
            return None;
        }
        self.rules
            .iter()
            .find(|r| {
                node.paths.iter().any(|p| {
                    let p = String::from_utf8_lossy(p.as_bytes());
                    r.globs.iter().any(|g| g.is_match(p.as_ref()))
                })
            })
            .map(|r| (r.name.as_str(), r.stores))
    }

    /// The filter that matches this node, if one does.
    pub fn removes(&self, g: &Graph, n: NodeId) -> Option<&str> {
        self.filter_of(g, n).map(|(name, _)| name)
    }

    /// What each filter does, for `--explain-filters`.
    pub fn explain(&self) -> Vec<String> {
        if self.rules.is_empty() {
            return vec!["no filters: every object is followed (--include-all)".into()];
        }
        let mut out = Vec::new();
        for r in &self.rules {
            let list: Vec<&str> = r.globs.iter().map(|g| g.glob().glob()).collect();
            let reads = if r.stores {
                "reads hidden unless a recorded process wrote the file first"
            } else {
                "reads always hidden"
            };
            out.push(format!(
                "{}: {} ({reads}; writes shown)",
                r.name,
                list.join(", ")
            ));
        }
        out
    }
}

fn compile(pattern: &str) -> Result<GlobMatcher, GraphError> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| GraphError::BadPattern {
            pattern: pattern.to_string(),
            reason: e.kind().to_string(),
        })
}
