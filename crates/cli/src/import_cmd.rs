//! `isoflop import` (runs that other trainers logged, as run records) and `isoflop count`
//! (the parameters and FLOPs of a model config, every convention).

use anyhow::{bail, Result};
use clap::Args;
use isoflop_core::arch::{Arch, ArchCount};
use isoflop_core::import::{import_runs, Format, ImportOptions, Keys, Output};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `isoflop import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Run logs: W&B run folders or CSV exports, TensorBoard event files or folders of them,
    /// trainer_state.json, JSON Lines or CSV logs; a folder is searched.
    #[arg(required = true, value_name = "SOURCE")]
    sources: Vec<PathBuf>,
    /// The folder to write one run record per run into.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "table",
        conflicts_with = "table"
    )]
    out: Option<PathBuf>,
    /// Write one run table (CSV) of the finished runs instead.
    #[arg(long, value_name = "FILE.csv")]
    table: Option<PathBuf>,
    /// The format of every source (default: told by name and contents): tensorboard,
    /// wandb, wandb-csv, trainer-state, jsonl, csv.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// The training loss's metric (default: the first of train/loss, loss, train_loss,
    /// lm loss, ...).
    #[arg(long, value_name = "KEY")]
    loss_key: Option<String>,
    /// The held-out loss's metric (default: eval/loss, eval_loss, val/loss, val_loss, ...).
    #[arg(long, value_name = "KEY")]
    eval_loss_key: Option<String>,
    /// The step's field in JSON Lines and CSV logs (default: step, _step, global_step, ...).
    #[arg(long, value_name = "KEY")]
    step_key: Option<String>,
    /// The metric counting tokens trained on (default: tokens, num_input_tokens_seen, ...).
    #[arg(long, value_name = "KEY")]
    tokens_key: Option<String>,
    /// Tokens per optimizer step, where the log counts no tokens (batch x sequence length).
    #[arg(long, value_name = "N")]
    tokens_per_step: Option<f64>,
    /// The learning rate's metric (default: lr, learning_rate, train/learning_rate, ...).
    #[arg(long, value_name = "KEY")]
    lr_key: Option<String>,
    /// The field naming the run in a log of several runs (default: run, run_id, run_name).
    #[arg(long, value_name = "KEY")]
    run_key: Option<String>,
    /// Every run's total parameters.
    #[arg(long, value_name = "N", conflicts_with = "model_config")]
    params: Option<f64>,
    /// The parameter count's key in a run's config or among its scalars (default: params,
    /// n_params, num_params, num_parameters, ...).
    #[arg(long, value_name = "KEY")]
    params_key: Option<String>,
    /// Every run's model config (a Hugging Face config.json, or an isoflop run's): adds the
    /// parameter and FLOP columns of each convention (see `isoflop count`).
    #[arg(long, value_name = "config.json")]
    model_config: Option<PathBuf>,
    /// With --model-config: the sequence length trained at (default: the config's).
    #[arg(long, value_name = "T", requires = "model_config")]
    context: Option<usize>,
    /// The configured total of steps, for sources that do not say: a run whose last logged
    /// step is below it is imported as unfinished.
    #[arg(long, value_name = "STEPS")]
    total_steps: Option<u64>,
    /// Import the sources that can be read, naming each one that cannot (default: nothing
    /// is written when any source fails).
    #[arg(long)]
    skip_bad: bool,
    /// Replace run folders (or the table) an earlier import wrote.
    #[arg(long)]
    force: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_format(s: &str) -> std::result::Result<Format, String> {
    Format::parse(s)
        .ok_or_else(|| format!("'{s}': one of {}", Format::ALL.map(Format::name).join(", ")))
}

fn count_of(path: &std::path::Path, context: Option<usize>) -> Result<ArchCount> {
    Ok(Arch::read(path, context)?.count())
}

/// `isoflop import`.
pub fn import(a: ImportArgs) -> Result<()> {
    if let Some(t) = a.tokens_per_step {
        if !(t.is_finite() && t >= 1.0) {
            bail!("--tokens-per-step {t}: give a positive number of tokens");
        }
    }
    if let Some(p) = a.params {
        if !(p.is_finite() && p >= 1.0) {
            bail!("--params {p}: give a positive number of parameters");
        }
    }
    let model = match &a.model_config {
        Some(p) => Some(count_of(p, a.context)?),
        None => None,
    };
    let opts = ImportOptions {
        format: a.format,
        keys: Keys {
            loss: a.loss_key.clone(),
            eval_loss: a.eval_loss_key.clone(),
            step: a.step_key.clone(),
            tokens: a.tokens_key.clone(),
            lr: a.lr_key.clone(),
            run: a.run_key.clone(),
            params: a.params_key.clone(),
        },
        tokens_per_step: a.tokens_per_step,
        params: a.params,
        model,
        total_steps: a.total_steps,
    };
    let output = match (&a.out, &a.table) {
        (Some(d), _) => Output::Runs(d.clone()),
        (None, Some(t)) => Output::Table(t.clone()),
        (None, None) => bail!("give --out DIR or --table FILE.csv"),
    };
    let report = import_runs(&a.sources, &opts, &output, a.skip_bad, a.force)?;
    for s in &report.skipped {
        eprintln!("warning: skipped {s}");
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &report)?;
        writeln!(w)?;
        return Ok(());
    }
    let dest = match &output {
        Output::Runs(d) => d.display().to_string(),
        Output::Table(t) => t.display().to_string(),
    };
    let finished = report.runs.iter().filter(|r| r.finished).count();
    writeln!(
        w,
        "imported {} runs ({} finished, {} unfinished) into {dest}",
        report.runs.len(),
        finished,
        report.runs.len() - finished
    )?;
    for r in &report.runs {
        writeln!(
            w,
            "  {:<28} {:>6} rows  {:<10} {:<13} {}",
            r.written_as,
            r.rows,
            if r.finished { "finished" } else { "unfinished" },
            r.format.name(),
            r.final_loss
                .map(|l| format!("final loss {l:.4}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Arguments of `isoflop count`.
#[derive(Args, Debug)]
pub struct CountArgs {
    /// A model config: a Hugging Face config.json (gpt2, llama, mistral, mixtral, qwen2,
    /// qwen2_moe, deepseek) or an isoflop run's config.json.
    #[arg(
        long,
        value_name = "config.json",
        required_unless_present = "layers",
        conflicts_with = "layers"
    )]
    config: Option<PathBuf>,
    /// Or isoflop's own shape: layers (with --d-model and --heads).
    #[arg(long, requires_all = ["d_model", "heads"])]
    layers: Option<usize>,
    /// isoflop's shape: the width.
    #[arg(long)]
    d_model: Option<usize>,
    /// isoflop's shape: the heads.
    #[arg(long)]
    heads: Option<usize>,
    /// isoflop's shape: the vocabulary (256: bytes).
    #[arg(long, default_value_t = 256)]
    vocab: usize,
    /// isoflop's shape: rotary positions instead of learned ones.
    #[arg(long)]
    rotary: bool,
    /// The sequence length the FLOPs per token are counted at (default: the config's
    /// n_positions or max_position_embeddings).
    #[arg(long, value_name = "T")]
    context: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `isoflop count`.
pub fn count(a: CountArgs) -> Result<()> {
    let (arch, name) = match (&a.config, a.layers, a.d_model, a.heads) {
        (Some(p), ..) => (Arch::read(p, a.context)?, p.display().to_string()),
        (None, Some(l), Some(d), Some(h)) => {
            let t = a
                .context
                .unwrap_or(isoflop_core::TrainSettings::default().context);
            let shape = isoflop_core::shape::ModelShape::new(l, d, h, a.vocab, t, a.rotary)?;
            (
                shape.arch(),
                format!("isoflop shape ({l} layers, d {d}, {h} heads)"),
            )
        }
        _ => bail!("give --config FILE, or --layers with --d-model and --heads"),
    };
    let c = arch.count();
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &serde_json::json!({"arch": arch, "count": c}))?;
        writeln!(w)?;
        return Ok(());
    }
    let p = c.params;
    let f = c.flops_per_token;
    let n = |x: usize| format!("{x:>16}  ({})", isoflop_core::units::count(x as f64));
    writeln!(
        w,
        "{}: {} layers, d {}, {} heads ({} key/value), head size {}, feed-forward {}{}, vocab {}, context {}",
        name,
        arch.layers,
        arch.d_model,
        arch.heads,
        arch.kv_heads,
        arch.head_dim,
        arch.d_ff,
        if arch.experts > 1 {
            format!(" x {} experts ({} per token)", arch.experts, arch.experts_per_token)
        } else {
            String::new()
        },
        arch.vocab,
        arch.context
    )?;
    writeln!(w, "parameters")?;
    writeln!(w, "  total (Hoffmann et al. 2022)     {}", n(p.total))?;
    writeln!(
        w,
        "  non-embedding (Kaplan et al.)    {}",
        n(p.non_embedding)
    )?;
    if p.active != p.total {
        writeln!(w, "  active per token                 {}", n(p.active))?;
        writeln!(
            w,
            "  active non-embedding             {}",
            n(p.active_non_embedding)
        )?;
    }
    writeln!(
        w,
        "  of which: embedding {}, positions {}, attention {}, feed-forward {}, norms {}, head {}{}",
        p.token_embedding,
        p.position_embedding,
        p.attention,
        p.mlp,
        p.layer_norm,
        p.head,
        if arch.tied { " (tied)" } else { "" }
    )?;
    writeln!(w, "training FLOPs per token (forward and backward)")?;
    for (name, v) in [
        ("6N (N active)", f.six_n),
        ("6N without embeddings", f.six_n_no_embed),
        ("Kaplan et al. 2020, Table 1", f.kaplan),
        ("Hoffmann et al. 2022, App. F", f.chinchilla),
        ("DeepSeek-AI 2024, M", f.deepseek),
    ] {
        writeln!(w, "  {name:<32} {v:>16.6e}  ({:.3}x 6N)", v / f.six_n)?;
    }
    Ok(())
}
