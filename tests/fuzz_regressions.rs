//! Fuzzing regressions: every input kept in `tests/fuzz-cases/<target>/` (a
//! crash a fuzz target found, minimised) is fed to the same function as the
//! fuzz target `<target>`: `fuzz/src/lib.rs`, included here as it is, so the
//! invariants checked are exactly the fuzzers'. None may panic. How to add a
//! case: `fuzz/README.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use std::path::{Path, PathBuf};

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut list: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n != "README.md")
        })
        .collect();
    list.sort();
    list
}

#[test]
fn every_kept_fuzz_case_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-cases");
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in sorted_entries(&root).into_iter().filter(|p| p.is_dir()) {
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        for case in sorted_entries(&dir) {
            let data = std::fs::read(&case).unwrap();
            count += 1;
            let run = std::panic::catch_unwind(|| fuzz::run(&target, &data));
            match run {
                Ok(true) => {}
                Ok(false) => failures.push(format!("{}: no fuzz target {target}", case.display())),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)");
                    failures.push(format!("{}: {message}", case.display()));
                }
            }
        }
    }
    fuzz::remove_scratch_dir();
    assert!(count > 0, "no case in {}", root.display());
    assert!(
        failures.is_empty(),
        "{} of {count} fuzz cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
