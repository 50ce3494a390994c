//! Pattern rules over the event stream (issue #4; being written).
