//! Errors for data a fit cannot use. Non-convergence is not an error: it is reported in the
//! fit's diagnostics.

/// Why a fit could not be attempted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// Fewer points than the approach needs.
    #[error("{approach}: {have} points, but at least {need} are needed ({why})")]
    TooFewPoints {
        /// Which approach.
        approach: &'static str,
        /// Points available.
        have: usize,
        /// Points needed.
        need: usize,
        /// What they are needed for.
        why: &'static str,
    },
    /// The data cannot support the approach for a stated reason.
    #[error("{approach}: {reason}")]
    Unsupported {
        /// Which approach.
        approach: &'static str,
        /// Why.
        reason: String,
    },
    /// A parameter of the fit is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}
