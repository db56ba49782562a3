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
    // A panic's message becomes the run's failure reason (one line); the default hook's
    // "note: run with RUST_BACKTRACE" adds nothing a user can act on.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error: {info}");
    }));
    let result = train_cmd::run(Cli::parse().args);
    if let Err(e) = &result {
        if e.downcast_ref::<train_cmd::Held>().is_some() {
            eprintln!("error: {}", e.root_cause());
            return ExitCode::from(isoflop_core::record::EXIT_HELD as u8);
        }
        if let Some(i) = e.downcast_ref::<train_cmd::Interrupted>() {
            eprintln!("error: {}", e.root_cause());
            return ExitCode::from(i.code());
        }
        if e.downcast_ref::<train_cmd::Transient>().is_some() {
            eprintln!("error: {}", e.root_cause());
            eprintln!("hint: {}", train_cmd::Transient);
            return ExitCode::from(1);
        }
    }
    exit::finish(result)
}
