//! Law files (`isoflop fit --out`, Python's `Fit.save`): their format number and the check
//! every law file passes when read (`isoflop allocate --law`, Python's `Law.load` and
//! allocations), so that no law with a negative exponent or a NaN is ever used.

use crate::error::FitError;
use crate::frontier::Frontier;
use crate::law::ParametricLaw;
use crate::stats::Interval;

/// The format of law files this build writes and reads; a file of a newer format is
/// refused naming both (its fields may mean what this build does not know).
pub const LAW_FORMAT: u32 = 1;

/// A law file's format number: [`LAW_FORMAT`] when written, 1 for files written before the
/// number existed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct LawFormat(pub u32);

impl Default for LawFormat {
    fn default() -> Self {
        LawFormat(LAW_FORMAT)
    }
}

/// A law as saved by `isoflop fit --out`: the point estimate and its bootstrap samples.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Sampled<T> {
    /// The fit to the full data.
    pub estimate: T,
    /// Bootstrap refits (may be empty).
    pub samples: Vec<T>,
}

/// Every law a fit produced, as saved to `law.json`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LawSet {
    /// The file's format ([`LAW_FORMAT`]).
    #[serde(default)]
    pub format: LawFormat,
    /// Where the laws came from (a file, or a preset's citation).
    pub source: String,
    /// Approach 1's frontier.
    pub approach1: Option<Sampled<Frontier>>,
    /// Approach 2's frontier.
    pub approach2: Option<Sampled<Frontier>>,
    /// Approach 3's law.
    pub approach3: Option<Sampled<ParametricLaw>>,
    /// The smallest and largest training FLOPs of the runs the laws were fitted to, where
    /// known (an allocation far beyond them is an extrapolation, and is warned about).
    #[serde(default)]
    pub fitted_flops: Option<[f64; 2]>,
    /// The data-constrained law (Muennighoff et al. 2023), where fitted or preset.
    #[serde(default)]
    pub data_constrained: Option<Sampled<crate::data_constrained::DataConstrainedLaw>>,
    /// Kaplan et al.'s form, where fitted or preset.
    #[serde(default)]
    pub kaplan: Option<crate::kaplan::KaplanLaw>,
    /// Approach 3's residuals on its runs (ln L - ln L_fit): the scatter a prediction
    /// interval of the loss adds to the parameters' uncertainty.
    #[serde(default)]
    pub residuals: Vec<f64>,
    /// A preset's published uncertainty, where its authors gave one: (parameter, 95%
    /// interval) and the source. Published without the parameters' joint distribution, so
    /// no allocation interval follows from it.
    #[serde(default)]
    pub published: Option<(Vec<(String, Interval)>, String)>,
}

impl LawSet {
    /// Reads a law file's text (`isoflop fit --out`, Python's `Fit.save`) and checks it
    /// ([`LawSet::check`]); `name` (the file) starts every message.
    ///
    /// # Errors
    /// [`FitError::InvalidOption`] naming the file and what is wrong: not JSON of a law set,
    /// a format newer than [`LAW_FORMAT`], or a field no law can have.
    ///
    /// # Example
    /// ```
    /// let text = serde_json::to_string(&isoflop_fit::LawSet::preset("epoch").unwrap()).unwrap();
    /// assert!(isoflop_fit::LawSet::from_json(&text, "law.json").is_ok());
    /// let bad = text.replace("\"alpha\":0.3478", "\"alpha\":-0.3478");
    /// let e = isoflop_fit::LawSet::from_json(&bad, "law.json").unwrap_err().to_string();
    /// assert!(e.contains("law.json") && e.contains("approach3.estimate.alpha"), "{e}");
    /// ```
    pub fn from_json(text: &str, name: &str) -> Result<LawSet, FitError> {
        // The format first, so a newer file is refused for what it is, not for a field
        // this build cannot parse.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            if let Some(f) = v.get("format") {
                match f.as_u64() {
                    Some(n) if n <= LAW_FORMAT as u64 => {}
                    Some(n) => {
                        return Err(FitError::InvalidOption(format!(
                            "{name}: a law file of format {n}; this build of isoflop reads format {LAW_FORMAT} and older (a newer isoflop wrote it)"
                        )))
                    }
                    None => {
                        return Err(FitError::InvalidOption(format!(
                            "{name}: field 'format' = {f}: not a format number"
                        )))
                    }
                }
            }
        }
        let laws: LawSet = serde_json::from_str(text).map_err(|e| {
            FitError::InvalidOption(format!(
                "{name}: not a law file written by `isoflop fit --out`: {e}"
            ))
        })?;
        laws.check()
            .map_err(|field| FitError::InvalidOption(format!("{name}: {field}")))?;
        Ok(laws)
    }

    /// Checks every law of the set: parameters finite, coefficients, E and exponents of
    /// the parametric laws positive (a law with alpha <= 0 or A < 0 has no optimum),
    /// frontier coefficients positive. Bootstrap samples are held to the same rules.
    ///
    /// # Errors
    /// The first field that fails, with its value and the rule, e.g.
    /// `approach3.estimate.alpha = -0.3: must be positive`.
    pub fn check(&self) -> Result<(), String> {
        fn positive(field: &str, v: f64) -> Result<(), String> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{field} = {v}: must be a positive finite number"))
            }
        }
        fn finite(field: &str, v: f64) -> Result<(), String> {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("{field} = {v}: must be finite"))
            }
        }
        fn law(at: &str, l: &ParametricLaw) -> Result<(), String> {
            positive(&format!("{at}.E"), l.e)?;
            positive(&format!("{at}.A"), l.a)?;
            positive(&format!("{at}.B"), l.b)?;
            positive(&format!("{at}.alpha"), l.alpha)?;
            positive(&format!("{at}.beta"), l.beta)
        }
        fn frontier(at: &str, f: &Frontier) -> Result<(), String> {
            finite(&format!("{at}.params_exponent"), f.params_exponent)?;
            finite(&format!("{at}.tokens_exponent"), f.tokens_exponent)?;
            positive(&format!("{at}.params_coef"), f.params_coef)?;
            positive(&format!("{at}.tokens_coef"), f.tokens_coef)
        }
        fn sampled<T>(
            at: &str,
            s: &Sampled<T>,
            one: fn(&str, &T) -> Result<(), String>,
        ) -> Result<(), String> {
            one(&format!("{at}.estimate"), &s.estimate)?;
            for (i, x) in s.samples.iter().enumerate() {
                one(&format!("{at}.samples[{i}]"), x)?;
            }
            Ok(())
        }
        fn dc(at: &str, l: &crate::data_constrained::DataConstrainedLaw) -> Result<(), String> {
            law(&format!("{at}.base"), &l.base)?;
            positive(&format!("{at}.rd_star"), l.rd_star)?;
            positive(&format!("{at}.rn_star"), l.rn_star)
        }
        if let Some(a) = &self.approach1 {
            sampled("approach1", a, frontier)?;
        }
        if let Some(a) = &self.approach2 {
            sampled("approach2", a, frontier)?;
        }
        if let Some(a) = &self.approach3 {
            sampled("approach3", a, law)?;
        }
        if let Some(d) = &self.data_constrained {
            sampled("data_constrained", d, dc)?;
        }
        if let Some(k) = &self.kaplan {
            positive("kaplan.n_c", k.n_c)?;
            positive("kaplan.alpha_n", k.alpha_n)?;
            positive("kaplan.d_c", k.d_c)?;
            positive("kaplan.alpha_d", k.alpha_d)?;
        }
        if let Some([lo, hi]) = self.fitted_flops {
            positive("fitted_flops[0]", lo)?;
            positive("fitted_flops[1]", hi)?;
            if lo > hi {
                return Err(format!(
                    "fitted_flops = [{lo}, {hi}]: the smallest exceeds the largest"
                ));
            }
        }
        for (i, r) in self.residuals.iter().enumerate() {
            finite(&format!("residuals[{i}]"), *r)?;
        }
        if self.approach1.is_none()
            && self.approach2.is_none()
            && self.approach3.is_none()
            && self.data_constrained.is_none()
            && self.kaplan.is_none()
        {
            return Err(
                "holds no law (no approach1, approach2, approach3, data_constrained or kaplan)"
                    .into(),
            );
        }
        Ok(())
    }
}
