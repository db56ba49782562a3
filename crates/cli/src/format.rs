//! Number formatting and hints for the text output.

pub use isoflop_core::units::count;

/// Scientific notation with four significant figures.
pub fn sci(x: f64) -> String {
    format!("{x:.3e}")
}

/// A `hint:` line for errors whose fix is known.
pub fn hint(err: &anyhow::Error) -> Option<&'static str> {
    let text = format!("{err:#}");
    if text.contains("no column for") {
        Some("name the columns as in `isoflop fit --help` (e.g. params, tokens or flops, loss)")
    } else if text.contains("are the units right") {
        Some("params, tokens and flops must be raw counts (2e6, not 2 for 2M)")
    } else if text.contains("budget") && text.contains("at least 2") {
        Some("Approach 2 needs IsoFLOP runs at two budgets or more; try --budgets or --approach 3")
    } else if text.contains("irreducible loss") {
        Some("a loss below E cannot be reached at any scale; pick a higher target")
    } else {
        None
    }
}
