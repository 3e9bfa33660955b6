//! Running tools from tests: fail loudly when a tool or root is missing (CI installs them, so a missing
//! tool is a failure, never a skip), and run commands that must succeed.

use std::path::Path;
use std::process::{Command, Output};

/// True when `tool` is an executable file: a path as given, a bare name looked up in `PATH`.
pub fn installed(tool: &str) -> bool {
    if tool.contains('/') {
        return is_executable(Path::new(tool));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_executable(&dir.join(tool))))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Panics with an install hint when `tool` (a name in `PATH` or a path) is missing.
pub fn require(tool: &str, package: &str) {
    assert!(
        installed(tool),
        "`{tool}` is missing: apt-get install -y {package} (CI installs it)"
    );
}

/// True when the test runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
    })
}

/// Panics unless the test runs as root; `why` says what needs it.
pub fn require_root(why: &str) {
    assert!(is_root(), "{why} needs root");
}

/// Panics with the command, its status and both outputs unless `out` is a success; returns stdout.
fn checked(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `script` with `sh -c`; panics unless it succeeds; returns its standard output.
pub fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
    checked(script, out)
}

/// Runs `script` with `sh -c` in `dir`; panics unless it succeeds; returns its standard output.
pub fn sh_in(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sh in {}: {e}", dir.display()));
    checked(script, out)
}

/// Runs the program `args[0]` with the other arguments, no shell; panics unless it succeeds;
/// returns its standard output.
pub fn run(args: &[&str]) -> String {
    let Some((program, rest)) = args.split_first() else {
        panic!("run: no program given");
    };
    let out = Command::new(program)
        .args(rest)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?}: {e}"));
    checked(&format!("{args:?}"), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tools_by_name_and_path() {
        assert!(installed("sh"));
        assert!(installed("/bin/sh"));
        assert!(!installed("no-such-tool-kadeploy"));
        assert!(!installed("/nonexistent/sh"));
        assert!(!installed("/etc/passwd"), "not executable");
    }

    #[test]
    #[should_panic(expected = "apt-get install -y nothing")]
    fn a_missing_tool_fails_with_its_package() {
        require("no-such-tool-kadeploy", "nothing");
    }

    #[test]
    fn commands_return_stdout_and_fail_loudly() {
        assert_eq!(sh("echo out; echo err >&2"), "out\n");
        assert_eq!(sh_in(Path::new("/"), "pwd"), "/\n");
        assert_eq!(run(&["echo", "a b"]), "a b\n");
        let failed = std::panic::catch_unwind(|| sh("echo boom >&2; exit 3"));
        let message = failed
            .err()
            .and_then(|e| e.downcast::<String>().ok())
            .map(|s| *s);
        assert!(
            message.as_deref().is_some_and(|m| m.contains("boom")),
            "{message:?}"
        );
    }
}
