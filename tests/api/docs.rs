//! Every repository file a document or a comment cites exists: README, the benches' README,
//! `dravo.toml.example`, and the comments of the code, tests, benches, examples and CI scripts.
//! (Earlier comments cited files that only ever lived outside the repository.)

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The files whose text is read for citations.
fn citing_files() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files = vec![
        root.join("README.md"),
        root.join("benches/README.md"),
        root.join("dravo.toml.example"),
        root.join("Cargo.toml"),
    ];
    for dir in ["src", "tests", "benches", "examples", ".ci"] {
        walk(&root.join(dir), &mut files);
    }
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if !path.extension().is_some_and(|e| e == "json" || e == "db") {
            out.push(path);
        }
    }
}

/// Repository paths in `text`: under a top-level folder of the repository, or a Markdown file
/// named in capitals. Templates (`<name>`, `{provider}`, `*`) are not paths.
fn citations(text: &str) -> Vec<String> {
    let path = regex::Regex::new(
        r"(?:^|[\s`(\[])((?:src|tests|benches|examples|openapi|\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_/]|[A-Z][A-Z_]+\.md)",
    )
    .unwrap();
    path.captures_iter(text)
        .map(|c| c.get(1).unwrap())
        .filter(|m| !text[m.end()..].starts_with(['<', '{', '*']))
        .map(|m| m.as_str().to_owned())
        .collect()
}

#[test]
fn every_cited_repository_file_exists() {
    let root = Path::new(ROOT);
    let mut missing = Vec::new();
    for file in citing_files() {
        // This file's own examples are not citations.
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if file.ends_with("tests/api/docs.rs") {
            continue;
        }
        for cited in citations(&text) {
            // A bare Markdown name means the file at the root, or beside the citing file.
            let beside = file.parent().unwrap().join(&cited);
            if !root.join(&cited).exists() && !beside.exists() {
                missing.push(format!(
                    "{} cites {cited}",
                    file.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "cited but missing:\n{}",
        missing.join("\n")
    );
}

#[test]
fn citations_are_found_in_prose_code_and_backticks() {
    assert_eq!(
        citations("see `src/net.rs`, (tests/support/mod.rs) and PROVIDERS.md."),
        ["src/net.rs", "tests/support/mod.rs", "PROVIDERS.md"]
    );
    assert!(citations("src/providers/<name>.rs and tests/*.rs").is_empty());
}
