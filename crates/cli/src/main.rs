//! `isoflop`: compute-optimal scaling laws from the command line. The policy lives here;
//! the work lives in the library crates.

mod commands;
mod format;
mod sweep_cmd;
#[cfg(feature = "train")]
mod train_cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`isoflop fit x.csv | head`) is not an error.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if let Some(hint) = format::hint(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(2)
        }
    }
}
