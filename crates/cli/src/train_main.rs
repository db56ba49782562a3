//! `isoflop-train`: the one binary that links libtorch. `isoflop train ARGS` runs it as
//! `isoflop-train ARGS`.

mod exit;
#[allow(dead_code, unused_imports)] // shared with `isoflop`; only `hint` is used here
mod format;
mod train_cmd;

use clap::Parser;
use std::process::ExitCode;

/// Train one GPT for one token horizon, writing its run record (config, curve, summary).
#[derive(Parser, Debug)]
#[command(name = "isoflop train", version)]
struct Cli {
    #[command(flatten)]
    args: train_cmd::TrainArgs,
}

fn main() -> ExitCode {
    exit::finish(train_cmd::run(Cli::parse().args))
}
