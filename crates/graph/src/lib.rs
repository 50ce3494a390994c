//! Dependency graph, backtracking and forward tracking (issue #3; being written).
