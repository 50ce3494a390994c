//! Property tests of `--syscalls`, the one input of the capture crate (a user's text on the
//! command line): run by `cargo test` with a few hundred cases, by `scripts/fuzz` with as many
//! as PROPTEST_CASES says (docs/fuzzing.md).
//!
//! What must hold: any text gets an answer (a selection, or an error naming what is wrong)
//! without a panic; a list of known names is accepted whatever its order, repetitions, spaces
//! and empty items; and what a selection says of itself (`describe`, written in the log header)
//! reads back as the same selection.

use proptest::prelude::*;
use vigil_capture::{Selection, SelectionError};
use vigil_event::syscall::{self, Class};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(128),
        ..ProptestConfig::default()
    }
}

/// Every name `--syscalls` knows: x86_64 syscall names, classes, `all`, `default`.
fn names() -> Vec<&'static str> {
    syscall::known()
        .map(|(s, _)| s.name())
        .chain(Class::NAMES.iter().map(|(n, _)| *n))
        .chain(["all", "default"])
        .collect()
}

/// What a selection records: with `all`, the numbers it also lists do not matter.
fn same(s: &Selection) -> (bool, Vec<u32>) {
    (
        s.all,
        if s.all {
            Vec::new()
        } else {
            s.nrs.iter().copied().collect()
        },
    )
}

proptest! {
    #![proptest_config(config())]

    /// Random text, commas and near-names among it.
    #[test]
    fn any_text_gets_an_answer(text in "[a-z_0-9, \\t\\PC]{0,200}") {
        match Selection::parse(&text) {
            Ok(sel) => prop_assert!(sel.all || !sel.nrs.is_empty() || text.contains("default")),
            Err(SelectionError::Unknown { name, .. }) => {
                prop_assert!(!name.is_empty() && text.contains(&name), "`{name}` is not in `{text}`");
            }
            Err(SelectionError::Empty) => {
                prop_assert!(text.split(',').all(|s| s.trim().is_empty()), "`{text}` is not empty");
            }
        }
    }

    /// Known names in any order, repeated, with spaces and empty items: accepted, the same
    /// selection whatever the order, and its description reads back as itself.
    #[test]
    fn known_names_round_trip(picks in proptest::collection::vec(
                                  (any::<prop::sample::Index>(), "[ \\t]{0,2}", "[ ,]{0,2}"), 1..12),
                              rotate in any::<prop::sample::Index>()) {
        let all = names();
        let items: Vec<String> = picks
            .iter()
            .map(|(i, pad, sep)| format!("{pad}{}{pad}{sep}", all[i.index(all.len())]))
            .collect();
        let text = items.join(",");
        let sel = Selection::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("`{text}`: {e}")))?;
        let mut turned = items.clone();
        turned.rotate_left(rotate.index(items.len()));
        let other = Selection::parse(&turned.join(",")).unwrap();
        prop_assert_eq!(same(&other), same(&sel));
        let described = sel.describe();
        let back = Selection::parse(&described)
            .map_err(|e| TestCaseError::fail(format!("`{described}`: {e}")))?;
        prop_assert_eq!(same(&back), same(&sel));
    }
}
