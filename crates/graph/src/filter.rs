//! What a reconstruction leaves out by default, and why: objects every process touches that
//! carry no attacker-controlled information. What a filter removed is always counted.

use crate::GraphError;
use crate::build::{Graph, NodeId, NodeKind};
use globset::{Glob, GlobMatcher};

/// The default noise filters: (name, globs over file paths).
pub const NOISE: &[(&str, &[&str])] = &[
    (
        "shared libraries and the loader cache",
        &[
            "**/*.so",
            "**/*.so.*",
            "/etc/ld.so.cache",
            "/etc/ld.so.preload",
        ],
    ),
    (
        "locale files",
        &[
            "/usr/lib/locale/**",
            "/usr/share/locale/**",
            "/usr/lib/*/gconv/**",
            "/usr/share/i18n/**",
        ],
    ),
    ("/proc", &["/proc/**"]),
    ("/sys", &["/sys/**"]),
    ("/dev/null", &["/dev/null"]),
    ("terminals", &["/dev/tty", "/dev/tty[0-9]*", "/dev/pts/*"]),
    (
        "/dev/urandom and /dev/random",
        &["/dev/urandom", "/dev/random"],
    ),
];

pub struct Filters {
    rules: Vec<(String, Vec<GlobMatcher>)>,
}

impl Filters {
    /// The default noise filters (unless `include_all`) plus `--exclude` patterns.
    pub fn new(include_all: bool, exclude: &[String]) -> Result<Filters, GraphError> {
        let mut rules = Vec::new();
        if !include_all {
            for (name, globs) in NOISE {
                let m = globs
                    .iter()
                    .map(|g| compile(g))
                    .collect::<Result<Vec<_>, _>>()?;
                rules.push((name.to_string(), m));
            }
        }
        for pattern in exclude {
            rules.push((format!("--exclude {pattern}"), vec![compile(pattern)?]));
        }
        Ok(Filters { rules })
    }

    /// The filter that removes this node, if one does. Only files and names are filtered.
    pub fn removes(&self, g: &Graph, n: NodeId) -> Option<&str> {
        let node = g.node(n);
        if !matches!(node.kind, NodeKind::File | NodeKind::Filename) {
            return None;
        }
        self.rules.iter().find_map(|(name, globs)| {
            node.paths
                .iter()
                .any(|p| {
                    globs
                        .iter()
                        .any(|g| g.is_match(String::from_utf8_lossy(p.as_bytes()).as_ref()))
                })
                .then_some(name.as_str())
        })
    }

    /// What each filter does, for `--explain-filters`.
    pub fn explain(&self) -> Vec<String> {
        if self.rules.is_empty() {
            return vec!["no filters: every object is followed (--include-all)".into()];
        }
        let mut out = Vec::new();
        for (name, globs) in &self.rules {
            let list: Vec<&str> = globs.iter().map(|g| g.glob().glob()).collect();
            out.push(format!("{name}: {}", list.join(", ")));
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
