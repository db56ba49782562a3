//! Number formatting and hints for the text output.

/// 40.3B, 1.52T, 875k: a count with an SI-style suffix, three significant figures.
pub fn count(x: f64) -> String {
    let (v, s) = if x >= 1e12 {
        (x / 1e12, "T")
    } else if x >= 1e9 {
        (x / 1e9, "B")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{s}")
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_like_the_paper() {
        assert_eq!(count(6.7e10), "67.0B");
        assert_eq!(count(1.5e12), "1.50T");
        assert_eq!(count(875_264.0), "875k");
        assert_eq!(count(12.0), "12.0");
    }
}
