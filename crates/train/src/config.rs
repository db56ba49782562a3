//! What a user asks of one run ([`Settings`]) and the [`RunConfig`] it becomes: steps,
//! warm-up, schedule, the checkpoints a trunk keeps.

use crate::error::{Result, TrainError};
use isoflop_core::record::RunConfig;
use isoflop_core::shape::{FlopCount, ModelShape};
use isoflop_core::TrainSettings;

/// What a user asks for; [`Settings::config`] turns it into a [`RunConfig`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// Run name.
    pub run: String,
    /// The model (its context is the run's).
    pub shape: ModelShape,
    /// Token horizon (rounded up to whole steps).
    pub tokens: u64,
    /// The training settings a study shares (one type, `isoflop_core::settings`).
    pub train: TrainSettings,
    /// FLOP count for the curve.
    pub flop_count: FlopCount,
    /// Corpus description.
    pub data: String,
    /// Device name.
    pub device: String,
    /// CPU threads (0: libtorch's default).
    pub threads: usize,
    /// A trunk: the token counts whose checkpoints its cooldown branches fork from (each
    /// rounded up to a whole step, as the horizon is).
    pub keep_tokens: Vec<u64>,
}

impl Settings {
    /// The default [`TrainSettings`] for a shape and horizon (its context the shape's), FLOPs
    /// counted as 6N, on the CPU with libtorch's default threads.
    pub fn new(run: &str, shape: ModelShape, tokens: u64) -> Settings {
        Settings {
            run: run.to_string(),
            shape,
            tokens,
            train: TrainSettings {
                context: shape.context,
                ..TrainSettings::default()
            },
            flop_count: FlopCount::SixN,
            data: String::new(),
            device: "cpu".into(),
            threads: 0,
            keep_tokens: Vec::new(),
        }
    }

    /// The run's config.
    ///
    /// # Errors
    /// [`TrainError::Setting`] for a zero horizon, a setting no run could use
    /// ([`TrainSettings::check`]), or a context that differs from the shape's.
    pub fn config(&self) -> Result<RunConfig> {
        let t = &self.train;
        if self.tokens == 0 {
            return Err(TrainError::Setting("tokens must be at least 1".into()));
        }
        t.check().map_err(|e| TrainError::Setting(e.to_string()))?;
        if t.context != self.shape.context {
            return Err(TrainError::Setting(format!(
                "context {} differs from the model's {}",
                t.context, self.shape.context
            )));
        }
        let per_step = (t.batch * self.shape.context) as u64;
        let steps = self.tokens.div_ceil(per_step);
        let mut keep_steps: Vec<u64> = self
            .keep_tokens
            .iter()
            .map(|&k| k.div_ceil(per_step))
            .collect();
        keep_steps.sort_unstable();
        keep_steps.dedup();
        if let Some(&bad) = keep_steps.iter().find(|&&k| k == 0 || k > steps) {
            return Err(TrainError::Setting(format!(
                "run {}: a branch point at step {bad} lies {} the run's {steps} steps ({} tokens)",
                self.run,
                if bad == 0 { "before" } else { "beyond" },
                steps * per_step
            )));
        }
        Ok(RunConfig {
            run: self.run.clone(),
            shape: self.shape,
            params: self.shape.params(),
            flops_per_token: self.shape.flops_per_token(),
            flop_count: self.flop_count,
            tokens: steps * per_step,
            batch: t.batch,
            steps,
            lr: t.lr,
            min_lr_ratio: t.min_lr_ratio,
            warmup_steps: t.warmup_steps(steps),
            schedule: t.schedule,
            cooldown_frac: t.cooldown_frac,
            cooldown_shape: t.cooldown_shape,
            weight_decay: t.weight_decay,
            grad_clip: t.grad_clip,
            seed: t.seed,
            log_every: t.log_every.max(1),
            eval_every: t.eval_every,
            eval_batches: t.eval_batches,
            checkpoint_every: t.checkpoint_every,
            dtype: t.dtype,
            attention: t.attention,
            data: self.data.clone(),
            device: self.device.clone(),
            threads: self.threads,
            trainer: format!("isoflop {}", env!("CARGO_PKG_VERSION")),
            branch: None,
            keep_steps,
        })
    }
}
