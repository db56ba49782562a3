//! How both binaries end: the error chain on stderr, a `hint:` where the fix is known, exit
//! code 2; a closed pipe is not an error.

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
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(hint) = crate::format::hint(&err) {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(2)
}
