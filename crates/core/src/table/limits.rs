//! What any model of any lab can be: a cell outside these bounds is an error naming its
//! file, line and column (a value in the wrong units, a typo, or a hostile file), never a
//! point that moves the law silently.

/// Fewest parameters of a model.
pub const MIN_PARAMS: f64 = 1.0;
/// Most parameters (1e15: a thousand times the largest models trained).
pub const MAX_PARAMS: f64 = 1e15;
/// Fewest tokens a run has seen.
pub const MIN_TOKENS: f64 = 1.0;
/// Most tokens (1e16: far above any corpus).
pub const MAX_TOKENS: f64 = 1e16;
/// The lowest loss in nats per token (a cross-entropy below it is not a language
/// model's; 1e-320 is a subnormal, not a loss).
pub const MIN_LOSS: f64 = 1e-3;
pub(super) const PARAMS_PROBLEM: &str =
    "parameters outside what any model has (1 to 1e15); are the units right?";
pub(super) const TOKENS_PROBLEM: &str =
    "tokens outside what any run sees (1 to 1e16; derived as C/(6N) where the table has no tokens); are the units right?";
pub(super) const LOSS_PROBLEM: &str = "a loss below 1e-3 nats per token is no language model's";
