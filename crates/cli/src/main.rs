//! `isoflop`: compute-optimal scaling laws from the command line. The policy lives here;
//! the work lives in the library crates. This binary does not link libtorch (it starts in
//! milliseconds); `isoflop train` runs the `isoflop-train` binary beside it.

mod commands;
mod compare;
mod exit;
mod format;
mod import_cmd;
mod plan_cmd;
mod run_cmd;
mod slurm_opts;
mod study;
mod sweep_cmd;
mod text;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    exit::finish(commands::run(commands::Cli::parse()))
}
