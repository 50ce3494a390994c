//! `vigil rules check|dot`, `vigil match`, `vigil watch` (issue #4; being written).

use crate::exit::Failure;

#[derive(clap::Args)]
pub struct RulesArgs {}

#[derive(clap::Args)]
pub struct MatchArgs {}

#[derive(clap::Args)]
pub struct WatchArgs {}

pub fn rules(_a: RulesArgs) -> Result<i32, Failure> {
    Err(Failure::new(1, "rules is not built yet (issue #4)"))
}

pub fn match_log(_a: MatchArgs) -> Result<i32, Failure> {
    Err(Failure::new(1, "match is not built yet (issue #4)"))
}

pub fn watch(_a: WatchArgs) -> Result<i32, Failure> {
    Err(Failure::new(1, "watch is not built yet (issue #4)"))
}
