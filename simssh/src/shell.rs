//! The simulated shell: an interpreter over a node's simulated files (no host command ever runs). It
//! runs what deploy-then-check scripts use: `hostname`, `uname`, `cat`, `ls`, `test`/`[`, `echo`,
//! `printf`, `true`/`false`, `exit`, `sh -c`, file commands, pipes, `;`, `&&`, `||` and redirections.
//! Output, nesting and the number of commands are bounded.

mod builtins;
pub mod lex;

use crate::node_fs::NodeFs;
use lex::{Command, Connector, Part, Pipeline, Redirect, Script, Word};
use std::collections::BTreeMap;

/// Bytes of stdout (and of stderr) one run keeps.
pub const MAX_OUTPUT: usize = 16 << 20;
/// Nested shells (`sh -c 'sh -c ...'`).
pub const MAX_DEPTH: u32 = 8;
/// Commands one run may execute.
pub const MAX_STEPS: u32 = 100_000;

/// What a run printed and its exit status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Exit status (0 to 255).
    pub status: u32,
}

/// What one command printed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Res {
    pub out: Vec<u8>,
    pub err: Vec<u8>,
    pub status: u32,
}

impl Res {
    /// Success with `out`.
    pub fn ok(out: impl Into<Vec<u8>>) -> Res {
        Res {
            out: out.into(),
            err: Vec::new(),
            status: 0,
        }
    }

    /// Failure `status` with message `err` (a newline is added).
    pub fn fail(status: u32, err: impl AsRef<str>) -> Res {
        Res {
            out: Vec::new(),
            err: format!("{}\n", err.as_ref()).into_bytes(),
            status,
        }
    }
}

/// Appends `more` to `buf` up to [`MAX_OUTPUT`].
fn append(buf: &mut Vec<u8>, more: &[u8]) {
    let room = MAX_OUTPUT.saturating_sub(buf.len());
    buf.extend_from_slice(&more[..more.len().min(room)]);
}

/// What an interactive shell keeps between lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellState {
    /// Variables.
    pub vars: BTreeMap<String, String>,
    /// Working directory (tree path).
    pub cwd: String,
    /// Last exit status.
    pub status: u32,
    /// `exit` ran.
    pub exited: bool,
}

impl Default for ShellState {
    fn default() -> Self {
        ShellState {
            vars: default_vars(),
            cwd: "root".into(),
            status: 0,
            exited: false,
        }
    }
}

/// A login shell's variables.
fn default_vars() -> BTreeMap<String, String> {
    [
        ("HOME", "/root"),
        ("USER", "root"),
        ("LOGNAME", "root"),
        ("SHELL", "/bin/sh"),
        ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// True when `text` reads its standard input (`cat`, `tee`, `sh` without arguments, a filter without
/// a file at the start of a pipeline): an exec'd command then waits for the client's EOF.
pub fn reads_stdin(text: &str) -> bool {
    let Ok(script) = lex::parse(text) else {
        return false;
    };
    script
        .iter()
        .filter_map(|(_, p)| p.commands.first())
        .any(|c| {
            if c.redirects.iter().any(|r| matches!(r, Redirect::In(_))) {
                return false;
            }
            let words: Vec<String> = c
                .words
                .iter()
                .map(|w| {
                    w.0.iter()
                        .map(|p| match p {
                            Part::Lit(l) => l.as_str(),
                            Part::Var(_) => "$",
                        })
                        .collect()
                })
                .collect();
            let Some(program) = words.first() else {
                return false;
            };
            let files = words[1..].iter().filter(|w| !w.starts_with('-')).count();
            match crate::vfs::base_name(program) {
                "cat" | "sh" | "bash" | "dash" => files == 0 && !words.iter().any(|w| w == "-c"),
                "tee" => true,
                "wc" | "head" | "tail" => files == 0,
                "grep" => files <= 1,
                _ => false,
            }
        })
}

/// A shell session on one node.
pub struct Shell<'a> {
    pub(crate) fs: &'a mut NodeFs,
    /// Variables (the environment and assignments).
    pub vars: BTreeMap<String, String>,
    /// The working directory, as a tree path.
    pub cwd: String,
    args: Vec<String>,
    depth: u32,
    steps: u32,
    status: u32,
    exited: bool,
}

impl<'a> Shell<'a> {
    /// A root shell in `/root` with `env` set.
    pub fn new(fs: &'a mut NodeFs, env: &[(String, String)]) -> Self {
        let mut vars = default_vars();
        vars.extend(env.iter().cloned());
        Shell {
            fs,
            vars,
            cwd: "root".into(),
            args: vec!["sh".into()],
            depth: 0,
            steps: 0,
            status: 0,
            exited: false,
        }
    }

    /// An interactive shell going on from `state`.
    pub fn resume(fs: &'a mut NodeFs, state: ShellState) -> Self {
        Shell {
            fs,
            vars: state.vars,
            cwd: state.cwd,
            args: vec!["sh".into()],
            depth: 0,
            steps: 0,
            status: state.status,
            exited: state.exited,
        }
    }

    /// What an interactive session keeps for its next line.
    pub fn state(&self) -> ShellState {
        ShellState {
            vars: self.vars.clone(),
            cwd: self.cwd.clone(),
            status: self.status,
            exited: self.exited,
        }
    }

    /// The node's files.
    pub fn fs(&self) -> &NodeFs {
        self.fs
    }

    /// True once `exit` ran.
    pub fn exited(&self) -> bool {
        self.exited
    }

    /// Parses and runs `text` with `stdin`.
    pub fn run_text(&mut self, text: &str, stdin: &[u8]) -> Run {
        match lex::parse(text) {
            Ok(script) => self.run_script(&script, stdin),
            Err(e) => {
                self.status = 2;
                Run {
                    stdout: Vec::new(),
                    stderr: format!("sh: 1: {e}\n").into_bytes(),
                    status: 2,
                }
            }
        }
    }

    /// Runs a parsed script.
    fn run_script(&mut self, script: &Script, stdin: &[u8]) -> Run {
        let mut run = Run::default();
        for (connector, pipeline) in script {
            if self.exited {
                break;
            }
            match connector {
                Connector::And if self.status != 0 => continue,
                Connector::Or if self.status == 0 => continue,
                _ => {}
            }
            let res = self.run_pipeline(pipeline, stdin);
            append(&mut run.stdout, &res.out);
            append(&mut run.stderr, &res.err);
            self.status = res.status;
        }
        run.status = self.status;
        run
    }

    fn run_pipeline(&mut self, pipeline: &Pipeline, stdin: &[u8]) -> Res {
        let mut input = stdin.to_vec();
        let mut err = Vec::new();
        let mut last = Res::default();
        for (k, command) in pipeline.commands.iter().enumerate() {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Res::fail(2, "sh: too many commands");
            }
            last = self.run_command(command, &input);
            append(&mut err, &last.err);
            if k + 1 < pipeline.commands.len() {
                input = std::mem::take(&mut last.out);
            }
            if self.exited {
                break;
            }
        }
        let status = match (pipeline.negate, last.status) {
            (true, 0) => 1,
            (true, _) => 0,
            (false, s) => s,
        };
        Res {
            out: last.out,
            err,
            status,
        }
    }

    /// A word with its parameters expanded.
    fn expand(&self, word: &Word) -> String {
        let mut s = String::new();
        for part in &word.0 {
            match part {
                Part::Lit(l) => s.push_str(l),
                Part::Var(v) => s.push_str(&self.param(v)),
            }
        }
        s
    }

    /// The value of parameter `name`.
    fn param(&self, name: &str) -> String {
        match name {
            "?" => self.status.to_string(),
            "#" => self.args.len().saturating_sub(1).to_string(),
            "@" | "*" => self.args.get(1..).unwrap_or_default().join(" "),
            "$" => "1".into(),
            "!" => String::new(),
            n if n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse::<usize>()
                .ok()
                .and_then(|i| self.args.get(i))
                .cloned()
                .unwrap_or_default(),
            n => self.vars.get(n).cloned().unwrap_or_default(),
        }
    }

    fn run_command(&mut self, command: &Command, input: &[u8]) -> Res {
        let mut argv: Vec<String> = command.words.iter().map(|w| self.expand(w)).collect();
        let assignments = argv.iter().take_while(|w| assignment(w).is_some()).count();
        for a in argv.drain(..assignments) {
            if let Some((k, v)) = assignment(&a) {
                self.vars.insert(k.to_string(), v.to_string());
            }
        }
        let mut input = input.to_vec();
        for r in &command.redirects {
            if let Redirect::In(w) = r {
                let path = self.expand(w);
                match self.read_file(&path) {
                    Ok(data) => input = data,
                    Err(e) => return Res::fail(2, format!("sh: 1: cannot open {path}: {e}")),
                }
            }
        }
        let mut res = match argv.first() {
            None => Res::default(),
            Some(_) => builtins::run(self, &argv, &input),
        };
        self.redirect_output(&command.redirects, &mut res);
        res
    }

    /// Sends the output of a command where its redirections say.
    fn redirect_output(&mut self, redirects: &[Redirect], res: &mut Res) {
        for r in redirects {
            match r {
                Redirect::ErrToOut => {
                    let err = std::mem::take(&mut res.err);
                    append(&mut res.out, &err);
                }
                Redirect::OutToErr => {
                    let out = std::mem::take(&mut res.out);
                    append(&mut res.err, &out);
                }
                _ => {}
            }
        }
        for r in redirects {
            if let Redirect::Out { fd, append, target } = r {
                let path = self.expand(target);
                let data = if *fd == 2 {
                    std::mem::take(&mut res.err)
                } else {
                    std::mem::take(&mut res.out)
                };
                if path == "/dev/null" {
                    continue;
                }
                if let Err(e) = self.write_file(&path, &data, *append) {
                    res.err.extend_from_slice(
                        format!("sh: 1: cannot create {path}: {e}\n").as_bytes(),
                    );
                    res.status = 2;
                }
            }
        }
    }

    /// The content of a file (`/dev/null` is empty).
    pub(crate) fn read_file(&self, path: &str) -> Result<Vec<u8>, crate::vfs::FsError> {
        if path == "/dev/null" {
            return Ok(Vec::new());
        }
        let cwd = self.cwd.clone();
        self.fs.read(&cwd, path).map(|d| d.as_ref().clone())
    }

    /// Writes a file in the working directory's terms.
    pub(crate) fn write_file(
        &mut self,
        path: &str,
        data: &[u8],
        append: bool,
    ) -> Result<(), crate::vfs::FsError> {
        let cwd = self.cwd.clone();
        self.fs.write(&cwd, path, data, append, false)
    }

    /// Runs `text` in a nested shell with positional arguments `args` (`$0` first).
    pub(crate) fn nested(&mut self, text: &str, args: Vec<String>, input: &[u8]) -> Res {
        if self.depth + 1 >= MAX_DEPTH {
            return Res::fail(2, "sh: nested too deeply");
        }
        let vars = self.vars.clone();
        let mut sub = Shell {
            fs: &mut *self.fs,
            vars,
            cwd: self.cwd.clone(),
            args,
            depth: self.depth + 1,
            steps: self.steps,
            status: 0,
            exited: false,
        };
        let run = sub.run_text(text, input);
        self.steps = sub.steps;
        Res {
            out: run.stdout,
            err: run.stderr,
            status: run.status,
        }
    }

    /// Ends the session with `status`.
    pub(crate) fn exit(&mut self, status: u32) {
        self.exited = true;
        self.status = status;
    }

    /// The last command's status.
    pub(crate) fn last_status(&self) -> u32 {
        self.status
    }
}

/// `NAME=value` split, when `word` is an assignment.
fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: a script that runs itself forever (`sh ./loop.sh` inside `loop.sh`) or nests `sh -c`
    /// without end. Before: no simulated shell; unbounded, it would recurse until the stack overflows.
    #[test]
    fn nesting_and_output_are_bounded() {
        let mut fs = NodeFs::new("n1.lab");
        fs.write("", "/root/loop.sh", b"echo x\nsh ./loop.sh\n", false, true)
            .unwrap();
        let mut shell = Shell::new(&mut fs, &[]);
        let run = shell.run_text("sh ./loop.sh", b"");
        assert_eq!(run.stdout, b"x\n".repeat(MAX_DEPTH as usize - 1));
        assert_eq!(run.status, 2);
        let deep = (0..20).fold("true".to_string(), |inner, _| format!("sh -c {inner:?}"));
        assert_eq!(shell.run_text(&deep, b"").status, 2);
        let mut big = Vec::new();
        append(&mut big, &vec![b'x'; MAX_OUTPUT + 10]);
        assert_eq!(big.len(), MAX_OUTPUT);
    }

    #[test]
    fn variables_redirections_and_exit_codes() {
        let mut fs = NodeFs::new("n1.lab");
        let env = [("KADEPLOY_ENV".to_string(), "debian".to_string())];
        let mut shell = Shell::new(&mut fs, &env);
        let run = shell.run_text(
            "X=1; echo \"$KADEPLOY_ENV-$X\" > /tmp/a; cat /tmp/a /nope 2>/dev/null; echo $?; ! false && echo negated",
            b"",
        );
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            "debian-1\n1\nnegated\n"
        );
        let run = shell.run_text("cat /nope 2>&1 | wc -l; exit 4; echo never", b"");
        assert_eq!((run.stdout.as_slice(), run.status), (&b"1\n"[..], 4));
        assert!(
            reads_stdin("cat > /tmp/x")
                && !reads_stdin("cat /etc/hostname")
                && !reads_stdin("wc -l < f")
        );
    }
}
