//! The training settings every run of a study shares: one type, its defaults written once.
//!
//! The sweep file's `[defaults]` table is this type; `isoflop train` and `isoflop plan` take
//! its fields as options (flattened, with the `clap` feature); the trainer reads it; and
//! [`TrainSettings::to_args`] turns it back into `isoflop train` options for a sweep's
//! runs. A default changed in [`Default`] changes everywhere.

/// The learning-rate schedule after the linear warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// A cosine decay to `min_lr_ratio` of the peak over exactly the horizon (Hoffmann et al.
    /// 2022).
    #[default]
    Cosine,
    /// Warm-up, stable, decay: the peak rate until the last `cooldown_frac` of the horizon,
    /// then a cooldown to `min_lr_ratio` of the peak (Hägele et al. 2024).
    Wsd,
    /// The peak rate to the end (a trunk that cooldown branches fork from).
    Constant,
}

/// The shape of a WSD cooldown, from the peak (progress 0) to `min_lr_ratio` of it
/// (progress 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CooldownShape {
    /// Falls linearly in the progress.
    #[serde(rename = "linear")]
    #[cfg_attr(feature = "clap", value(name = "linear"))]
    Linear,
    /// Falls as 1 - sqrt(progress): Hägele et al. 2024 found it the best of their shapes.
    #[default]
    #[serde(rename = "1-sqrt")]
    #[cfg_attr(feature = "clap", value(name = "1-sqrt"))]
    OneMinusSqrt,
}

/// The precision of a run's forward and backward pass. Master weights, gradients and
/// AdamW's moments stay fp32 either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// Everything in fp32.
    #[default]
    F32,
    /// Autocast-style mixed precision: matrix products and attention in bfloat16 (weights
    /// cast from their fp32 masters each step), LayerNorms, the residual stream, the loss
    /// and the optimizer in fp32.
    Bf16,
}

/// How attention is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    /// Softmax(QK^T / sqrt(d) + mask) V written out (the reference; fp32 runs' default).
    #[default]
    Math,
    /// libtorch's scaled_dot_product_attention (fused kernels where the device has them:
    /// flash or memory-efficient attention on CUDA).
    Fused,
}

impl Dtype {
    /// The name the options and files use.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
        }
    }
}

impl Attention {
    /// The name the options and files use.
    pub fn name(self) -> &'static str {
        match self {
            Attention::Math => "math",
            Attention::Fused => "fused",
        }
    }
}

impl Schedule {
    /// The name the options and files use.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Cosine => "cosine",
            Schedule::Wsd => "wsd",
            Schedule::Constant => "constant",
        }
    }
}

impl CooldownShape {
    /// The name the options and files use.
    pub fn name(self) -> &'static str {
        match self {
            CooldownShape::Linear => "linear",
            CooldownShape::OneMinusSqrt => "1-sqrt",
        }
    }
}

/// The default fraction of the horizon a WSD schedule spends cooling down (Hägele et al.
/// 2024 report cosine's loss with a 20% cooldown).
pub const DEFAULT_COOLDOWN_FRAC: f64 = 0.2;

/// Settings shared by every run of a study. Missing fields of a sweep file take the
/// defaults.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default)]
pub struct TrainSettings {
    /// Sequences per step.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().batch))]
    pub batch: usize,
    /// Context length (tokens per sequence).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().context))]
    pub context: usize,
    /// Peak learning rate.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().lr))]
    pub lr: f64,
    /// Final learning rate as a fraction of the peak (0.1: the paper's 10x cosine decay).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().min_lr_ratio))]
    pub min_lr_ratio: f64,
    /// Linear warm-up steps (default: a tenth of the steps, at most 100).
    #[cfg_attr(feature = "clap", arg(long))]
    pub warmup: Option<u64>,
    /// The schedule after the warm-up: `cosine` (to `min_lr_ratio` over exactly the
    /// horizon), `wsd` (constant, then a cooldown over the last `cooldown_frac`) or
    /// `constant`.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = TrainSettings::default().schedule))]
    pub schedule: Schedule,
    /// The fraction of the horizon a `wsd` schedule spends cooling down.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().cooldown_frac))]
    pub cooldown_frac: f64,
    /// The shape of a `wsd` cooldown: `linear` or `1-sqrt`.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = TrainSettings::default().cooldown_shape))]
    pub cooldown_shape: CooldownShape,
    /// AdamW weight decay on matrices.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().weight_decay))]
    pub weight_decay: f64,
    /// Gradient clipping norm (0: none).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().grad_clip))]
    pub grad_clip: f64,
    /// Seed of initialisation and data order.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().seed))]
    pub seed: u64,
    /// Log a curve row every N steps.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().log_every))]
    pub log_every: u64,
    /// Held-out evaluation every N steps (and at the end; 0: never).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().eval_every))]
    pub eval_every: u64,
    /// Batches per held-out evaluation.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().eval_batches))]
    pub eval_batches: usize,
    /// Checkpoint every N steps (0: only on Ctrl-C).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = TrainSettings::default().checkpoint_every))]
    pub checkpoint_every: u64,
    /// The precision of the forward and backward pass: `f32`, or `bf16` (mixed precision,
    /// fp32 master weights and AdamW state).
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = TrainSettings::default().dtype))]
    pub dtype: Dtype,
    /// Attention: `math` (written out) or `fused` (libtorch's scaled_dot_product_attention).
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = TrainSettings::default().attention))]
    pub attention: Attention,
}

impl Default for TrainSettings {
    /// Batch 16 of context 64 (what the default study fits in ten minutes on two cores),
    /// lr 2e-3 with a cosine to 10% (a `wsd` cooldown: the last 20%, 1-sqrt) and a warm-up of a tenth of the steps (at most 100),
    /// AdamW weight decay 0.1, clipping at 1.0, seed 0, a curve row every 5 steps, 8
    /// held-out batches every 100 steps, a checkpoint every 50 steps.
    fn default() -> Self {
        TrainSettings {
            batch: 16,
            context: 64,
            lr: 2e-3,
            min_lr_ratio: 0.1,
            warmup: None,
            schedule: Schedule::Cosine,
            cooldown_frac: DEFAULT_COOLDOWN_FRAC,
            cooldown_shape: CooldownShape::OneMinusSqrt,
            weight_decay: 0.1,
            grad_clip: 1.0,
            seed: 0,
            log_every: 5,
            eval_every: 100,
            eval_batches: 8,
            checkpoint_every: 50,
            dtype: Dtype::F32,
            attention: Attention::Math,
        }
    }
}

impl TrainSettings {
    /// The settings as `isoflop train` options (`--batch 16 --context 64 ...`), every field.
    pub fn to_args(&self) -> Vec<String> {
        let mut v: Vec<(&str, String)> = vec![
            ("--batch", self.batch.to_string()),
            ("--context", self.context.to_string()),
            ("--lr", self.lr.to_string()),
            ("--min-lr-ratio", self.min_lr_ratio.to_string()),
            ("--schedule", self.schedule.name().to_string()),
            ("--cooldown-frac", self.cooldown_frac.to_string()),
            ("--cooldown-shape", self.cooldown_shape.name().to_string()),
            ("--weight-decay", self.weight_decay.to_string()),
            ("--grad-clip", self.grad_clip.to_string()),
            ("--seed", self.seed.to_string()),
            ("--log-every", self.log_every.to_string()),
            ("--eval-every", self.eval_every.to_string()),
            ("--eval-batches", self.eval_batches.to_string()),
            ("--checkpoint-every", self.checkpoint_every.to_string()),
            ("--dtype", self.dtype.name().to_string()),
            ("--attention", self.attention.name().to_string()),
        ];
        if let Some(w) = self.warmup {
            v.push(("--warmup", w.to_string()));
        }
        v.into_iter()
            .flat_map(|(k, x)| [k.to_string(), x])
            .collect()
    }

    /// Optimizer steps for a horizon of `tokens`: tokens / (batch x context), rounded up.
    pub fn steps(&self, tokens: u64) -> u64 {
        tokens.div_ceil((self.batch * self.context).max(1) as u64)
    }

    /// The warm-up of a run of `steps` steps: `warmup` where set, else a tenth of the steps,
    /// between 1 and 100. The trainer and the wsd planner both ask here.
    ///
    /// # Example
    /// ```
    /// let s = isoflop_core::TrainSettings::default();
    /// assert_eq!(s.warmup_steps(50), 5);
    /// assert_eq!(s.warmup_steps(5), 1);
    /// assert_eq!(s.warmup_steps(5000), 100);
    /// ```
    pub fn warmup_steps(&self, steps: u64) -> u64 {
        self.warmup.unwrap_or((steps / 10).clamp(1, 100))
    }

    /// The steps a `wsd` cooldown of a run of `steps` steps takes: `cooldown_frac` of them,
    /// rounded, at least one and at most all of them. The trainer's schedule and the wsd
    /// planner's branch points both ask here.
    ///
    /// # Example
    /// ```
    /// let s = isoflop_core::TrainSettings { cooldown_frac: 0.2, ..Default::default() };
    /// assert_eq!(s.cooldown_steps(100), 20);
    /// assert_eq!(s.cooldown_steps(2), 1);
    /// ```
    pub fn cooldown_steps(&self, steps: u64) -> u64 {
        cooldown_steps(self.cooldown_frac, steps)
    }

    /// Checks what no run could use.
    ///
    /// # Errors
    /// [`crate::CoreError::Setting`] naming the setting: a zero batch, context or log interval, a learning
    /// rate that is not positive, a final ratio outside [0, 1], negative decay or clipping.
    pub fn check(&self) -> Result<(), crate::CoreError> {
        self.problem()
            .map_or(Ok(()), |p| Err(crate::CoreError::Setting(p)))
    }

    fn problem(&self) -> Option<String> {
        if self.batch == 0 || self.context == 0 {
            return Some("batch and context must be at least 1".into());
        }
        if self.log_every == 0 {
            return Some("log_every must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Some(format!("lr must be positive, got {}", self.lr));
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return Some(format!(
                "min_lr_ratio must be in [0, 1], got {}",
                self.min_lr_ratio
            ));
        }
        if !(self.cooldown_frac > 0.0 && self.cooldown_frac < 1.0) {
            return Some(format!(
                "cooldown_frac must be in (0, 1), got {}",
                self.cooldown_frac
            ));
        }
        if !(self.weight_decay >= 0.0 && self.grad_clip >= 0.0) {
            return Some("weight_decay and grad_clip must not be negative".into());
        }
        None
    }
}

/// A learning rate for each model size: lr(N) = `coef` * N^`exponent`, N the total
/// parameters (the form Porian et al. 2024 and DeepSeek-AI 2024 fit to their learning-rate
/// sweeps). `isoflop lr-fit` writes one (`lr-law.json`), `isoflop plan --lr-law` uses it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrLaw {
    /// The rate of a one-parameter model.
    pub coef: f64,
    /// How the rate scales with N (negative: larger models take smaller rates).
    pub exponent: f64,
}

impl LrLaw {
    /// The rate for a model of `params` parameters.
    pub fn at(&self, params: f64) -> f64 {
        self.coef * params.powf(self.exponent)
    }

    /// Reads a law from a JSON file (an `lr-law.json`, or any object with `coef` and
    /// `exponent`).
    ///
    /// # Errors
    /// [`crate::CoreError`] naming the file when it cannot be read or parsed, or when the
    /// law gives no positive finite rate.
    pub fn read(path: &std::path::Path) -> Result<LrLaw, crate::CoreError> {
        let law: LrLaw = crate::error::read_json(path)?;
        if !(law.coef > 0.0 && law.coef.is_finite() && law.exponent.is_finite()) {
            return Err(crate::CoreError::Setting(format!(
                "{}: an lr law needs a positive coef and a finite exponent, got {} and {}",
                path.display(),
                law.coef,
                law.exponent
            )));
        }
        Ok(law)
    }
}

/// The steps a cooldown of `frac` of a run of `steps` steps takes: rounded, at least one and
/// at most `steps` (one for a run of no steps). See [`TrainSettings::cooldown_steps`].
pub fn cooldown_steps(frac: f64, steps: u64) -> u64 {
    ((frac * steps as f64).round() as u64).min(steps).max(1)
}
