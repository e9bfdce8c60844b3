//! The fuzz targets' corpora and kept crashers (`fuzz/corpus/<target>/`, `fuzz/regressions/
//! <target>/`) replayed through the same entry points the fuzzer calls: an input that once
//! crashed a parser stays a test after the fix, and every run checks the corpus without the
//! fuzzer's toolchain.

use std::path::Path;

use tessera::fuzzing::TARGETS;

/// Every file in `dir`, if it exists.
fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn every_corpus_input_and_kept_crasher_runs_through_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(name));
        assert!(!corpus.is_empty(), "{name} has a corpus");
        for input in corpus
            .into_iter()
            .chain(inputs(&fuzz.join("regressions").join(name)))
        {
            let data = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} panicked on {}", input.display());
        }
    }
}
