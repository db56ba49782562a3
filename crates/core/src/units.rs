//! How counts of parameters, tokens and FLOPs are written for people.

fn split(x: f64) -> (f64, &'static str) {
    if x >= 1e12 {
        (x / 1e12, "T")
    } else if x >= 1e9 {
        (x / 1e9, "B")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    }
}

/// Three significant figures with a suffix: `67.0B`, `1.50T`, `875k`, `31.2k`.
pub fn count(x: f64) -> String {
    let (v, s) = split(x);
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{s}")
}

/// [`count`] with `sig` significant figures (at least 3): `1.000448M` at 7. Enough figures
/// write any count below 1e17 exactly, so ids built from counts can always be made distinct.
pub fn count_sig(x: f64, sig: usize) -> String {
    let (v, s) = split(x);
    let int_digits = if v >= 100.0 {
        3
    } else if v >= 10.0 {
        2
    } else {
        1
    };
    let digits = sig.max(3).saturating_sub(int_digits);
    format!("{v:.digits$}{s}")
}

/// As the Chinchilla paper writes a projection on a figure: `67B`, `1.5T`, `1B`.
pub fn count_short(x: f64) -> String {
    let (v, s) = split(x);
    if v >= 10.0 || (v - v.round()).abs() < 0.05 {
        format!("{v:.0}{s}")
    } else {
        format!("{v:.1}{s}")
    }
}

/// Checks a list of FLOP budgets (`plan --budgets`, `fit --budgets`): each a positive finite
/// number, none given twice. One check, so what `plan` refuses `fit` refuses too.
///
/// # Errors
/// The first budget that is not positive and finite, or the first repeated one.
///
/// # Example
/// ```
/// assert!(isoflop_core::units::check_budgets(&[6e18, 1e19]).is_ok());
/// assert!(isoflop_core::units::check_budgets(&[6e18, 6e18, 1e19]).unwrap_err().contains("twice"));
/// ```
pub fn check_budgets(budgets: &[f64]) -> Result<(), String> {
    if let Some(b) = budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        return Err(format!("budgets must be positive numbers, got {b}"));
    }
    let mut sorted = budgets.to_vec();
    sorted.sort_by(f64::total_cmp);
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("lists {:e} twice", w[0]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_like_the_paper() {
        assert_eq!(count(6.7e10), "67.0B");
        assert_eq!(count(1.5e12), "1.50T");
        assert_eq!(count(875_264.0), "875k");
        assert_eq!(count(31_200.0), "31.2k");
        assert_eq!(count(12.0), "12.0");
        assert_eq!(count_short(6.7e10), "67B");
        assert_eq!(count_short(1.5e12), "1.5T");
        assert_eq!(count_short(1.0e9), "1B");
    }
}
