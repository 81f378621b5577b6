//! Fuzz targets for sluice; the bodies live in `targets.rs` so that the stable test
//! `tests/it/fuzz_targets_replay_corpus.rs` runs exactly the same code.
pub mod targets;
