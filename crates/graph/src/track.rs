//! Backtracking and forward tracking with the time rule of King & Chen's Backtracker.
//!
//! Every object reached carries a threshold in the log's total order (seq). Backward: an edge
//! into an object is followed only if it happened no later than the object's threshold, and its
//! source then gets the edge's seq as threshold, or keeps a later one it already has. Forward is
//! the mirror image: edges out of an object no earlier than its threshold; targets keep the
//! earliest. An object whose threshold moves is looked at again. Noise filters hide reads of
//! an object, never writes to it (crate::filter).
//!
//! A store through a shared mapping lasts for its access episode, `[Edge::at, Edge::until]`:
//! backward, the writer's threshold is the end of the episode (or the object's threshold, if
//! earlier): what it obtained until then may be in the part; forward, a store is followed if
//! its episode is still going on at the writer's threshold, and the part gets the later of
//! the two moments.

use crate::build::{Call, Graph, NodeId};
use crate::filter::Filters;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Backward,
    Forward,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// At most this many edges from the starting object.
    pub max_depth: Option<u32>,
    /// Only edges at or after this seq.
    pub since: Option<u64>,
    /// Only edges at or before this seq.
    pub until: Option<u64>,
}

/// The result: the objects reached, their thresholds, and the edges followed (one per
/// (from, to, call): the latest followed backward, the earliest forward).
pub struct Tracked {
    pub direction: Direction,
    pub start: NodeId,
    pub at: u64,
    /// Objects reached, in the order they were first reached (the start first).
    pub nodes: Vec<NodeId>,
    pub threshold: FxHashMap<NodeId, u64>,
    pub depth: FxHashMap<NodeId, u32>,
    /// Indices into `Graph::edges`, in seq order.
    pub edges: Vec<usize>,
    /// Backward: reached objects no followed edge leads into (where it came in). Forward: the start.
    pub entry_points: Vec<NodeId>,
    /// Objects each filter kept out (counted once per object).
    pub filtered: BTreeMap<String, u64>,
}

pub fn track(
    g: &Graph,
    start: NodeId,
    at: u64,
    direction: Direction,
    filters: &Filters,
    limits: Limits,
) -> Tracked {
    let mut threshold: FxHashMap<NodeId, u64> = FxHashMap::default();
    let mut depth: FxHashMap<NodeId, u32> = FxHashMap::default();
    let mut order = vec![start];
    let mut followed: FxHashMap<(NodeId, NodeId, Call), usize> = FxHashMap::default();
    // What a filter (or --max-depth) kept out, by the first reason it was kept out for.
    let mut filtered_nodes: FxHashMap<NodeId, String> = FxHashMap::default();
    let mut scanned: FxHashMap<NodeId, u64> = FxHashMap::default();
    // Each object is matched against the filters once.
    let mut removed: FxHashMap<NodeId, Option<(&str, bool)>> = FxHashMap::default();
    threshold.insert(start, at);
    depth.insert(start, 0);
    let mut work = vec![start];
    // An edge is in the window if its moments meet it.
    let in_window = |e: &crate::build::Edge| {
        limits.since.is_none_or(|s| e.until() >= s) && limits.until.is_none_or(|u| e.at() <= u)
    };
    while let Some(o) = work.pop() {
        let t = threshold[&o];
        let d = depth[&o];
        // Edges already looked at under an earlier threshold cannot change anything now: only
        // the range the threshold moved over is new (this keeps busy objects linear).
        let seen = scanned.insert(o, t);
        // A store during an episode reaches its far end at a moment that depends on this
        // object's threshold: backward, one seen under an earlier threshold may reach later
        // now; forward, one that began before the threshold may still be going on. Both look
        // back as far as the longest episode (no distance at all in a log without stores
        // through mappings); forward keeps those that end at or after the threshold.
        let range = match direction {
            Direction::Backward => {
                g.incoming_between(o, seen.and_then(|s| s.checked_sub(g.max_tail)), t)
            }
            Direction::Forward => g.outgoing_between(o, t.saturating_sub(g.max_tail), seen),
        };
        let candidates: Vec<usize> = range
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| in_window(&g.edges[i]))
            .filter(|&i| direction == Direction::Backward || g.edges[i].until() >= t)
            .collect();
        for i in candidates {
            let e = g.edges[i];
            let other = if direction == Direction::Backward {
                e.from
            } else {
                e.to
            };
            if other == start {
                continue;
            }
            // Filters hide what leaves a filtered object (a read of it, its name leading to
            // the file), never what goes into it (a write): backward the object left is the
            // edge's source (`other`), forward it is the object being looked at. A read is
            // followed after all when the object keeps what is written and a recorded event
            // changed it at or before the read (a library or /etc/ld.so.preload an attacker
            // wrote); the starting object is never filtered.
            let source = e.from;
            let verdict = match source == start {
                true => None,
                false => *removed
                    .entry(source)
                    .or_insert_with(|| filters.filter_of(g, source)),
            };
            let hidden = verdict.and_then(|(why, stores)| {
                let written = stores && !g.incoming_between(source, None, e.at()).is_empty();
                (!written).then_some(why)
            });
            if let Some(why) = hidden {
                filtered_nodes
                    .entry(other)
                    .or_insert_with(|| why.to_string());
                continue;
            }
            if limits.max_depth.is_some_and(|m| d + 1 > m) {
                filtered_nodes
                    .entry(other)
                    .or_insert_with(|| "--max-depth".to_string());
                continue;
            }
            let key = (e.from, e.to, e.call);
            let better = |old: &usize| match direction {
                Direction::Backward => e.at() > g.edges[*old].at(),
                Direction::Forward => e.at() < g.edges[*old].at(),
            };
            match followed.get(&key) {
                Some(old) if !better(old) => {}
                _ => {
                    followed.insert(key, i);
                }
            }
            // The moment the far end is reached at: backward, the last moment of the edge
            // that is still no later than this object's threshold; forward, the first that is
            // no earlier (the same as `at` but for stores during an episode).
            let reached = match direction {
                Direction::Backward => e.until().min(t).max(e.at()),
                Direction::Forward => e.at().max(t),
            };
            let moved = match threshold.get(&other) {
                None => {
                    order.push(other);
                    true
                }
                Some(&old) => match direction {
                    Direction::Backward => reached > old,
                    Direction::Forward => reached < old,
                },
            };
            if moved {
                threshold.insert(other, reached);
                let nd = depth.get(&other).map_or(d + 1, |&x| x.min(d + 1));
                depth.insert(other, nd);
                work.push(other);
            } else if depth.get(&other).is_some_and(|&x| d + 1 < x) {
                // Reached by a shorter path: look at all its edges again under --max-depth.
                depth.insert(other, d + 1);
                scanned.remove(&other);
                work.push(other);
            }
        }
    }
    // Objects a filter removed but that were reached another way (or by a later edge) are
    // not "removed".
    let mut filtered: BTreeMap<String, u64> = BTreeMap::new();
    for (n, why) in filtered_nodes {
        if !threshold.contains_key(&n) {
            *filtered.entry(why).or_default() += 1;
        }
    }
    let mut edges: Vec<usize> = followed.into_values().collect();
    edges.sort_by_key(|&i| (g.edges[i].seq, i));
    edges.dedup();
    let entry_points = match direction {
        Direction::Backward => {
            let mut has_in: FxHashMap<NodeId, ()> = FxHashMap::default();
            for &i in &edges {
                has_in.insert(g.edges[i].to, ());
            }
            order
                .iter()
                .copied()
                .filter(|n| !has_in.contains_key(n))
                .collect()
        }
        Direction::Forward => vec![start],
    };
    Tracked {
        direction,
        start,
        at,
        nodes: order,
        threshold,
        depth,
        edges,
        entry_points,
        filtered,
    }
}

/// The default moment for a starting object: its last event backward, its first forward.
pub fn default_at(g: &Graph, n: NodeId, direction: Direction) -> u64 {
    let node = g.node(n);
    match direction {
        Direction::Backward => node.last_seq,
        Direction::Forward => node.first_seq,
    }
}
