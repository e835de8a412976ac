//! Replays the `admin_requests` fuzz corpus (`fuzz/corpus/admin_requests/`) through its check on
//! stable, under `cargo test`. See `fuzz/README.md`.

#[path = "../fuzz/admin_checks.rs"]
mod admin_checks;

#[test]
fn admin_requests_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/admin_requests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the admin_requests corpus")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "too few corpus files in {}",
        dir.display()
    );
    for path in &files {
        admin_checks::check_admin_request(&std::fs::read(path).unwrap());
    }
    eprintln!("admin_requests: replayed {} files", files.len());
}
