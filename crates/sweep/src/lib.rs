//! # isoflop-sweep
//!
//! A scaling-law study is many training runs. This crate plans them ([`plan`]), runs them
//! as separate processes ([`exec`]) through an executor ([`executor`]: a local pool, a Slurm
//! job array), and reads back what they wrote. It never links libtorch: each run is `isoflop train` (or a user's
//! trainer) in its own process, so a crashed run cannot take the sweep down, and one
//! results folder serves a laptop and a cluster.

pub mod design;
pub mod error;
pub mod exec;
pub mod executor;
pub mod plan;
pub mod resources;
pub mod spec;

pub use error::SweepError;

pub use plan::{PlannedRun, RunDefaults, Sweep};
