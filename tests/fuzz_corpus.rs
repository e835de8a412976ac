//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and any saved crash inputs
//! (`fuzz/artifacts/<target>/`) through the fuzz targets' checks, on stable, under `cargo test`.
//! See `fuzz/README.md`.

use std::path::{Path, PathBuf};

#[path = "../fuzz/checks.rs"]
mod checks;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no corpus files for fuzz target {target}"
    );
    for path in &files {
        let data = std::fs::read(path).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
    eprintln!("{target}: replayed {} files", files.len());
}

#[test]
fn header_parsers_corpus() {
    replay("header_parsers", checks::check_header_parsers);
}

#[test]
fn secrets_corpus() {
    replay("secrets", checks::check_secrets);
}

#[test]
fn verify_mutations_corpus() {
    replay("verify_mutations", checks::check_verify_mutations);
}

#[test]
fn layer_corpus() {
    replay("layer", checks::check_layer);
}
