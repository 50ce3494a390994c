//! The graph benchmark (being written).

pub fn run(_vigil: &std::path::Path, _scratch: &std::path::Path) -> serde_json::Value {
    println!("\n== graph: not written yet ==");
    serde_json::json!({})
}
