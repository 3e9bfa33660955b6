//! Running the build's commands: their output, or an error with the command line and its stderr.

use std::process::Command;

use super::{ImageError, Result};

/// Runs `cmd` and returns its standard output; a failure or non-zero exit is an error.
pub fn output(cmd: &mut Command) -> Result<String> {
    bytes(cmd).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Runs `cmd` and returns its standard output as bytes.
pub fn bytes(cmd: &mut Command) -> Result<Vec<u8>> {
    let line = format!("{cmd:?}");
    tracing::debug!(command = %line, "running");
    let out = cmd.output().map_err(|e| ImageError::Command {
        command: line.clone(),
        output: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(ImageError::Command {
            command: line,
            output: format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
        });
    }
    Ok(out.stdout)
}

/// Runs a `sh -c` script in `dir`.
pub fn sh(dir: &std::path::Path, script: &str) -> Result<String> {
    output(Command::new("sh").arg("-c").arg(script).current_dir(dir))
}
