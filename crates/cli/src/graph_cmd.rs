//! `vigil backtrack` and `vigil forward` (issue #3; being written).

use crate::exit::Failure;

#[derive(clap::Args)]
pub struct TrackArgs {}

pub fn backtrack(_a: TrackArgs) -> Result<i32, Failure> {
    Err(Failure::new(1, "backtrack is not built yet (issue #3)"))
}

pub fn forward(_a: TrackArgs) -> Result<i32, Failure> {
    Err(Failure::new(1, "forward is not built yet (issue #3)"))
}
