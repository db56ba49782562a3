//! # isoflop-sweep
//!
//! A scaling-law study is many training runs. This crate plans them ([`plan`]), runs them
//! as separate processes on a local pool or as a Slurm job array, and reads back what they
//! wrote ([`exec`]). It never links libtorch: each run is `isoflop train` (or a user's
//! trainer) in its own process, so a crashed run cannot take the sweep down, and one
//! results folder serves a laptop and a cluster.

pub mod exec;
pub mod plan;

pub use plan::{PlannedRun, RunDefaults, Sweep};
