//! Every rule example in docs/rules.md compiles.

#[test]
fn the_documented_examples_compile() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.md"))
        .expect("docs/rules.md");
    let mut checked = 0;
    for block in doc.split("```").skip(1).step_by(2) {
        let body = block.strip_prefix('\n').unwrap_or(block);
        if !body.trim_start().starts_with("RULE") && !body.trim_start().starts_with("LIST") {
            continue; // the grammar, not a rule
        }
        if let Err(d) = vigil_rules::RuleSet::parse(body, "docs/rules.md") {
            panic!(
                "a documented example does not compile:\n{body}\n{}",
                d.render(false)
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} examples found");
}
