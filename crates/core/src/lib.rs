//! # isoflop-core
//!
//! The vocabulary every other isoflop crate shares: the run table that fitting reads
//! ([`table`]), a seeded random number generator whose stream never changes between
//! versions ([`rng`]), and the error type that names the file, line and column of bad input.
//!
//! Units are spelled out in names: `params` (N, parameters), `tokens` (D, training tokens),
//! `flops` (C, training FLOPs), `loss` (nats per token).

pub mod arch;
pub mod corpus;
pub mod error;
pub mod import;
pub mod lease;
pub mod machine;
pub mod manifest;
pub mod record;
pub mod rng;
pub mod settings;
pub mod shape;
pub mod study_dir;
pub mod table;
pub mod units;
pub mod writer;

pub use error::{CoreError, Result};
pub use rng::Rng;
pub use settings::{Attention, CooldownShape, Dtype, LrLaw, Schedule, TrainSettings};
pub use table::{ColumnChoice, Counted, Filter, LossUnit, Observation, RunTable};
