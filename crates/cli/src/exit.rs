//! How both binaries end: the error chain on stderr, a `hint:` where the fix is known, exit
//! code 2 (1 where runs failed, [`RunsFailed`]); a closed pipe is not an error.

use std::process::ExitCode;

/// The exit code for `result`, after printing its error, if any.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    let code = if err.downcast_ref::<RunsFailed>().is_some() {
        1
    } else {
        2
    };
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(hint) = crate::format::hint(&err) {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(code)
}

/// Marks an error as "the command ran, and some of its runs failed" (exit code 1, not the
/// 2 of bad input).
#[derive(Debug)]
#[allow(dead_code)] // the trainer binary shares this module and never fails runs
pub struct RunsFailed(pub String);

impl std::fmt::Display for RunsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunsFailed {}
