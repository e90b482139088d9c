//! Every committed input of every fuzz target (`fuzz/corpus/<target>/`:
//! the seeds and the regression inputs of the bugs the fuzzers found) run
//! through the target on stable, as an ordinary test. A target without
//! inputs fails.

// A test reads its inputs from the file system.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;

#[test]
fn every_committed_input_of_every_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in iked_fuzz::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no inputs", dir.display());
        for f in &files {
            let data = fs::read(f).unwrap();
            // On a panic the harness names the input.
            eprintln!("{name}: {}", f.display());
            target(&data);
        }
        println!("{name}: {} inputs", files.len());
    }
}

#[test]
fn every_fuzz_target_is_replayed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz_targets");
    let mut bins: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .collect();
    bins.sort();
    let mut listed: Vec<String> = iked_fuzz::TARGETS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    listed.sort();
    assert_eq!(bins, listed, "fuzz_targets/ and iked_fuzz::TARGETS differ");
}
