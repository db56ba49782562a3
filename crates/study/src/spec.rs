//! A study's fit options ([`FitSpec`]): what `isoflop fit`, `plot`, `validate` and `run`
//! take on the command line and Python's `isoflop.fit` passes as keywords, with one
//! [`Default`] (the command line's defaults are read from the fit crate's, and a test checks
//! that parsing no options gives [`FitSpec::default`]), and the one conversion into the fit
//! crate's [`FitSettings`].

use isoflop_fit::isoflop::Grouping;
use isoflop_fit::report::FitSettings;

/// The fit options of a study, as `isoflop fit`, `plot`, `run` and `validate` take them and
/// Python's `isoflop.fit` passes them: one [`Default`] (the command line's defaults are
/// read from it), one [`FitSpec::settings`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default, deny_unknown_fields)]
pub struct FitSpec {
    /// Approaches to fit, e.g. `3` or `2,3` (default: every one the data supports).
    #[cfg_attr(feature = "clap", arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=3)))]
    pub approach: Vec<u8>,
    /// Drop the K highest-loss runs before Approaches 2 and 3 (Epoch drops 5).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0, value_name = "K"))]
    pub drop_top: usize,
    /// Bootstrap resamples (0 for none).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = isoflop_fit::stats::DEFAULT_RESAMPLES))]
    pub boot: usize,
    /// Bootstrap seed.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// What a bootstrap resample draws: `run` (each run on its own, as the paper and Epoch
    /// do) or `size` (each model size with all its runs: for runs of one size that are not
    /// independent, such as cooldown branches of one trunk, and to count which model shapes
    /// were trained).
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value = "run", value_name = "run|size")
    )]
    pub boot_by: isoflop_fit::stats::BootUnit,
    /// Approach 2 budgets: `chinchilla` (the paper's nine, 6e18..3e21) or a list of FLOPs;
    /// runs go to the nearest within --budget-tol decades. Default: the `budget` column,
    /// else clusters of FLOPs.
    #[cfg_attr(feature = "clap", arg(long))]
    pub budgets: Option<String>,
    /// Approach 2 tolerance in decades of FLOPs (grouping gap, or distance to a budget).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = isoflop_fit::isoflop::TOL_DECADES))]
    pub budget_tol: f64,
    /// Approach 2: fit each budget's parabola to the runs within this many decades of N
    /// around its minimum (0.6 keeps a 16x band), or `all` (every run, as the paper did; the
    /// default, chosen by measurement: docs/deviations.md).
    #[cfg_attr(feature = "clap", arg(long, default_value = "all", value_parser = parse_window, value_name = "DECADES|all"))]
    pub window: Window,
    /// Approach 2: regress the frontier on each budget's `mean` FLOPs (geometric mean of 6ND
    /// over its runs) or its `nominal` budget (the budget column or --budgets list).
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value = "mean"))]
    pub budget_flops: BudgetFlopsArg,
    /// Approach 3's search: `vpnls` (variable projection: (E, A, B) solved for each
    /// exponent pair of a grid, the best refined and polished on the paper's objective; no
    /// starts; the default, chosen by measurement: docs/deviations.md) or `lbfgs` (L-BFGS
    /// from each of the paper's 4,500 starts).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = isoflop_fit::ParametricOptions::default().solver, value_name = "vpnls|lbfgs"))]
    pub solver: isoflop_fit::parametric::Solver,
    /// Approach 3 Huber delta.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = isoflop_fit::objective::HUBER_DELTA))]
    pub delta: f64,
    /// Approach 1 Gaussian smoothing, standard deviation in training steps.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = isoflop_fit::EnvelopeOptions::default().smooth_steps))]
    pub smooth_steps: f64,
    /// Law forms to fit, e.g. `chinchilla,kaplan`: `chinchilla` (the three approaches),
    /// `data-constrained` (Muennighoff et al. 2023; the table needs unique_tokens), `kaplan`
    /// (Kaplan et al. 2020). Two or more are compared on the runs they were fitted to, and
    /// each refitted without the largest budget and scored on it.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "law",
            value_delimiter = ',',
            default_value = "chinchilla",
            value_name = "FORM"
        )
    )]
    pub laws: Vec<String>,
    /// Approach 3 on big tables: `auto` screens the starts on 4,096 points when the table
    /// has more than 20,000, then polishes the distinct optima on all points; `off` runs
    /// every start on every point; a number screens on that many points.
    #[cfg_attr(feature = "clap", arg(long, default_value = "auto", value_parser = parse_screen))]
    pub screen: isoflop_fit::parametric::Screen,
    /// Keep only the rows where a text column has (COL=VALUE) or has not (COL!=VALUE) a
    /// value; repeat for several conditions.
    #[cfg_attr(feature = "clap", arg(long = "where", value_name = "COL=VALUE", value_parser = isoflop_core::Filter::parse))]
    pub filters: Vec<isoflop_core::Filter>,
    /// Fit each group of rows that share these columns' values separately, and compare them
    /// (`fit` only), e.g. `--group-by source` or `--group-by dataset,condition`.
    #[cfg_attr(feature = "clap", arg(long, value_delimiter = ',', value_name = "COL"))]
    pub group_by: Vec<String>,
    /// The loss column, where several columns could be it (e.g. loss and val_loss).
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub loss_column: Option<String>,
    /// The params (N) column, where several could be it.
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub params_column: Option<String>,
    /// The tokens (D) column, where several could be it.
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub tokens_column: Option<String>,
    /// The flops (C) column, where several could be it.
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub flops_column: Option<String>,
    /// The unit the loss column is written in: nats (per token, PyTorch's cross-entropy)
    /// or bits (per token).
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value = "nats"))]
    pub loss_unit: LossUnitArg,
    /// Bytes of text per token (a number, or a column of the table): losses are converted
    /// to bits per byte, so runs with different tokenizers can be fitted together.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N|COLUMN"))]
    pub bytes_per_token: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum LossUnitArg {
    /// Nats per token.
    #[default]
    Nats,
    /// Bits per token.
    Bits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum BudgetFlopsArg {
    /// The geometric mean of 6ND over the budget's runs.
    #[default]
    Mean,
    /// The nominal budget.
    Nominal,
}

/// `--window`: decades, or `all` (none).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Window(pub Option<f64>);

pub fn parse_window(s: &str) -> std::result::Result<Window, String> {
    if s == "all" {
        return Ok(Window(None));
    }
    match s.parse::<f64>() {
        Ok(w) if w > 0.0 && w.is_finite() => Ok(Window(Some(w))),
        _ => Err(format!("'{s}': give a positive number of decades, or all")),
    }
}

pub fn parse_screen(s: &str) -> std::result::Result<isoflop_fit::parametric::Screen, String> {
    use isoflop_fit::parametric::Screen;
    match s {
        "auto" => Ok(Screen::Auto),
        "off" => Ok(Screen::Off),
        n => match n.parse::<usize>() {
            Ok(m) if m >= 6 => Ok(Screen::Points(m)),
            _ => Err(format!(
                "'{n}': give auto, off, or a number of points (at least 6)"
            )),
        },
    }
}

impl Default for FitSpec {
    fn default() -> Self {
        FitSpec {
            approach: Vec::new(),
            drop_top: 0,
            boot: isoflop_fit::stats::DEFAULT_RESAMPLES,
            seed: 0,
            boot_by: isoflop_fit::stats::BootUnit::Run,
            budgets: None,
            budget_tol: isoflop_fit::isoflop::TOL_DECADES,
            window: Window(None),
            budget_flops: BudgetFlopsArg::Mean,
            solver: isoflop_fit::ParametricOptions::default().solver,
            delta: isoflop_fit::objective::HUBER_DELTA,
            smooth_steps: isoflop_fit::EnvelopeOptions::default().smooth_steps,
            laws: vec!["chinchilla".into()],
            screen: isoflop_fit::parametric::Screen::Auto,
            filters: Vec::new(),
            group_by: Vec::new(),
            loss_column: None,
            params_column: None,
            tokens_column: None,
            flops_column: None,
            loss_unit: LossUnitArg::Nats,
            bytes_per_token: None,
        }
    }
}

impl FitSpec {
    /// The columns the user chose.
    pub fn columns(&self) -> isoflop_core::ColumnChoice {
        isoflop_core::ColumnChoice {
            params: self.params_column.clone(),
            tokens: self.tokens_column.clone(),
            flops: self.flops_column.clone(),
            loss: self.loss_column.clone(),
            filters: self.filters.clone(),
            loss_unit: match self.loss_unit {
                LossUnitArg::Nats => isoflop_core::LossUnit::Nats,
                LossUnitArg::Bits => isoflop_core::LossUnit::Bits,
            },
            bytes_per_token: self.bytes_per_token.clone(),
        }
    }

    /// The fit settings of the options, checked ([`FitSettings::check`]).
    ///
    /// # Errors
    /// [`isoflop_fit::FitError::InvalidOption`] naming the option (`--budgets`, or the
    /// setting [`FitSettings::check`] refuses).
    pub fn settings(&self) -> Result<FitSettings, isoflop_fit::FitError> {
        let boot = isoflop_fit::stats::Bootstrap {
            resamples: self.boot,
            seed: self.seed,
            unit: self.boot_by,
            ..Default::default()
        };
        let mut s = FitSettings::default().with_boot(boot);
        if !self.approach.is_empty() {
            s.approaches = self.approach.clone();
            s.explicit = true;
        }
        s.drop_top = self.drop_top;
        s.parametric.delta = self.delta;
        s.parametric.solver = self.solver;
        s.parametric.screen = self.screen;
        s.isoflop.window_decades = self.window.0;
        s.isoflop.budget_flops = match self.budget_flops {
            BudgetFlopsArg::Mean => isoflop_fit::isoflop::BudgetFlops::Mean,
            BudgetFlopsArg::Nominal => isoflop_fit::isoflop::BudgetFlops::Nominal,
        };
        s.laws = self.laws.clone();
        s.envelope.smooth_steps = self.smooth_steps;
        s.isoflop.grouping = Grouping::from_spec(self.budgets.as_deref(), self.budget_tol)
            .map_err(|e| isoflop_fit::FitError::InvalidOption(format!("--budgets: {e}")))?;
        s.check()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "clap")]
    #[test]
    fn no_options_on_the_command_line_are_the_one_default() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            spec: FitSpec,
        }
        let parsed = Cli::try_parse_from(["isoflop"]).unwrap().spec;
        assert_eq!(parsed, FitSpec::default());
    }

    #[test]
    fn no_keywords_from_python_are_the_one_default() {
        let from_json: FitSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(from_json, FitSpec::default());
        assert_eq!(FitSpec::default().boot, 1000);
    }

    #[test]
    fn the_settings_carry_every_option_to_every_approach() {
        let spec: FitSpec = serde_json::from_str(
            r#"{"boot": 7, "seed": 3, "boot_by": "size", "delta": 0.01, "window": 0.7, "approach": [2, 3], "solver": "lbfgs"}"#,
        )
        .unwrap();
        let s = spec.settings().unwrap();
        for b in [s.envelope.boot, s.isoflop.boot, s.parametric.boot] {
            assert_eq!(
                (b.resamples, b.seed, b.unit),
                (7, 3, isoflop_fit::stats::BootUnit::Size)
            );
        }
        assert_eq!(s.parametric.delta, 0.01);
        assert_eq!(s.parametric.solver, isoflop_fit::parametric::Solver::Lbfgs);
        assert_eq!(s.isoflop.window_decades, Some(0.7));
        assert!(s.explicit && s.approaches == [2, 3]);
        let bad: FitSpec = serde_json::from_str(r#"{"delta": -1}"#).unwrap();
        assert!(bad.settings().unwrap_err().to_string().contains("delta"));
        assert!(serde_json::from_str::<FitSpec>(r#"{"bootz": 1}"#).is_err());
    }
}
