//! # isoflop-study
//!
//! A scaling-law study as one type. [`Study`] holds the plan (a sweep file and its runs),
//! the fit options ([`FitSpec`], one default for the command line and Python) and the study
//! folder ([`isoflop_core::study_dir::StudyDir`], which owns the file names); [`run_study`]
//! runs it: dispatch (the caller's: a local pool, or nothing where the runs were trained
//! elsewhere), collect, fit, validate, draw. `isoflop run`, `isoflop collect`, `isoflop
//! fit`, `plot` and `validate` (their stages [`collect`], [`read_and_fit`] and [`draw`]), a
//! sweep's chained Slurm job (`isoflop run --sweep FILE --no-train`) and Python's
//! `isoflop.fit` (its keywords are a [`FitSpec`] as JSON) go through it. The plan comes from
//! [`isoflop_sweep::spec::PlanSpec`] (one default, `isoflop plan`'s options).
//!
//! It sits above the approaches ([`isoflop_fit`]), the figures ([`isoflop_plot`]) and the
//! sweep ([`isoflop_sweep`]), and never links libtorch.

pub mod error;
pub mod pipeline;
pub mod spec;

pub use error::StudyError;
pub use pipeline::{
    collect, draw, fit, groups, mixed_warnings, read_and_fit, run_study, usable, Collected, Done,
    Study,
};
pub use spec::FitSpec;
