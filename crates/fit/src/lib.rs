//! # isoflop-fit
//!
//! The three ways Hoffmann et al. (2022) derive the compute-optimal frontier, with the
//! bootstrap and the allocation that turn a fit into a prediction:
//!
//! - [`envelope`]: Approach 1, the minimum-loss envelope of training curves.
//! - [`isoflop`]: Approach 2, IsoFLOP parabolas.
//! - [`parametric`]: Approach 3, L(N, D) = E + A/N^alpha + B/D^beta by Huber loss in log space.
//! - [`design`]: what a study's design alone does to Approaches 1 and 2.
//! - [`mod@allocate`]: the optimal N, D and loss for a FLOP budget, a model size or a target loss.
//! - [`lbfgs`]: the optimizer, with documented stopping rules.

pub mod data_constrained;
pub mod design;
pub mod error;
pub mod fastmath;
pub mod forms;
pub mod inference;
pub mod kaplan;
pub mod law;
pub mod law_file;
pub mod lbfgs;
pub mod lr;
pub mod objective;
pub mod parametric;
pub mod screen;
#[cfg(target_arch = "x86_64")]
pub mod simd512;
pub mod stats;
pub mod synthetic;
pub mod vpnls;

pub use error::FitError;
pub use parametric::{fit_parametric, ParametricFit, ParametricLaw, ParametricOptions};
pub mod frontier;
pub mod isoflop;
pub use frontier::Frontier;
pub use isoflop::{fit_isoflop, IsoFlopFit, IsoFlopOptions};
pub mod envelope;
pub use envelope::{fit_envelope, EnvelopeFit, EnvelopeOptions};
pub mod allocate;
pub use allocate::{allocate, Allocation, LawSet, Target};
pub mod report;
pub mod study;
pub mod validate;
pub use report::{FitReport, FitSettings, Outcome};
pub use study::fit_table;
