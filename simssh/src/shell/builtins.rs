//! The commands of the simulated shell, each working on the node's simulated files and state.

use super::{Res, Shell};
use crate::vfs::{Entry, FsError, base_name, normalize};
use simulator::cluster::Env;

/// Runs `argv` (non-empty); unknown programs fail with 127 as in `sh`.
pub(super) fn run(sh: &mut Shell<'_>, argv: &[String], input: &[u8]) -> Res {
    let Some((program, args)) = argv.split_first() else {
        return Res::default();
    };
    let name = base_name(program).to_string();
    match name.as_str() {
        "true" | ":" | "sync" => Res::ok(""),
        "false" => Res {
            status: 1,
            ..Res::default()
        },
        "hostname" => hostname(sh, args),
        "uname" => uname(sh, args),
        "echo" => echo(args),
        "printf" => printf(args),
        "cat" => cat(sh, args, input),
        "ls" => ls(sh, args),
        "test" => test(sh, args),
        "[" => match args.split_last() {
            Some((last, rest)) if last == "]" => test(sh, rest),
            _ => Res::fail(2, "[: missing ]"),
        },
        "exit" => {
            let status = args
                .first()
                .map_or(Some(sh.last_status()), |a| a.parse::<u32>().ok());
            match status {
                Some(s) => {
                    sh.exit(s & 255);
                    Res {
                        status: s & 255,
                        ..Res::default()
                    }
                }
                None => Res::fail(
                    2,
                    format!(
                        "sh: 1: exit: Illegal number: {}",
                        args.first().map_or("", String::as_str)
                    ),
                ),
            }
        }
        "sh" | "bash" | "dash" => shell(sh, args, input),
        "pwd" => Res::ok(format!("/{}\n", sh.cwd)),
        "cd" => cd(sh, args),
        "id" => Res::ok("uid=0(root) gid=0(root) groups=0(root)\n"),
        "whoami" => Res::ok("root\n"),
        "sleep" => match args.first().map(|a| a.parse::<f64>()) {
            Some(Ok(_)) => Res::ok(""),
            _ => Res::fail(1, "sleep: invalid time interval"),
        },
        "export" => {
            for a in args {
                if let Some((k, v)) = a.split_once('=') {
                    sh.vars.insert(k.to_string(), v.to_string());
                }
            }
            Res::ok("")
        }
        "env" | "printenv" => Res::ok(
            sh.vars
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect::<String>(),
        ),
        "mkdir" => each_path(sh, args, "mkdir", |sh, p, parents| {
            let (id, rel) = sh.fs.locate(&sh.cwd, p)?;
            sh.fs.tree_mut(&id).mkdir(&rel, parents)
        }),
        "touch" => each_path(sh, args, "touch", |sh, p, _| match sh.fs.stat(&sh.cwd, p) {
            Ok(_) => Ok(()),
            Err(_) => sh.write_file(p, b"", true),
        }),
        "rm" => each_path(sh, args, "rm", |sh, p, recursive| {
            let (id, rel) = sh.fs.locate(&sh.cwd, p)?;
            if sh.fs.tree(&id).is_dir(&rel) && !recursive {
                return Err(FsError::IsDir);
            }
            sh.fs.tree_mut(&id).remove(&rel, recursive)
        }),
        "chmod" | "chown" => each_path(sh, &args[args.len().min(1)..], &name, |sh, p, _| {
            sh.fs.stat(&sh.cwd, p).map(|_| ())
        }),
        "cp" | "mv" => copy(sh, args, name == "mv"),
        "tee" => tee(sh, args, input),
        "wc" => wc(sh, args, input),
        "head" | "tail" => head_tail(sh, args, input, name == "head"),
        "grep" => grep(sh, args, input),
        "basename" => Res::ok(format!(
            "{}\n",
            args.first()
                .map_or("", |a| base_name(a.trim_end_matches('/')))
        )),
        "dirname" => Res::ok(format!(
            "/{}\n",
            args.first().map_or(String::new(), |a| crate::vfs::parent(
                &normalize("", a).unwrap_or_default()
            )
            .to_string())
        )),
        "if" | "then" | "else" | "fi" | "for" | "while" | "do" | "done" | "case" | "esac" | "{"
        | "}" => Res::fail(2, format!("sh: 1: syntax error: `{name}' is not simulated")),
        _ => Res::fail(127, format!("sh: 1: {name}: not found")),
    }
}

/// The node's host name: `/etc/hostname` of the running system, else its configured name.
fn host_name(sh: &Shell<'_>) -> String {
    sh.read_file("/etc/hostname")
        .ok()
        .and_then(|d| {
            String::from_utf8_lossy(&d)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| sh.fs().name().to_string())
}

fn hostname(sh: &Shell<'_>, args: &[String]) -> Res {
    let name = host_name(sh);
    match args.first().map(String::as_str) {
        None | Some("-f" | "--fqdn") => Res::ok(format!("{name}\n")),
        Some("-s" | "--short") => Res::ok(format!("{}\n", name.split('.').next().unwrap_or(&name))),
        Some(other) => Res::fail(
            1,
            format!("hostname: you must be root to change the host name ({other})"),
        ),
    }
}

fn uname(sh: &Shell<'_>, args: &[String]) -> Res {
    let name = host_name(sh);
    let release = match sh.fs().env() {
        Some(Env::Deploy) => "6.1.0-kadeploy-amd64",
        _ => "6.1.0-28-amd64",
    };
    let fields = [
        ('s', "Linux".to_string()),
        ('n', name.split('.').next().unwrap_or(&name).to_string()),
        ('r', release.to_string()),
        (
            'v',
            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)".to_string(),
        ),
        ('m', "x86_64".to_string()),
        ('o', "GNU/Linux".to_string()),
    ];
    let mut wanted = String::new();
    for a in args {
        match a.strip_prefix('-') {
            Some("a" | "-all") => wanted.push_str("snrvmo"),
            Some(flags) if flags.chars().all(|c| "snrvmo".contains(c)) => wanted.push_str(flags),
            _ => return Res::fail(1, format!("uname: invalid option -- '{a}'")),
        }
    }
    if wanted.is_empty() {
        wanted.push('s');
    }
    let line: Vec<&str> = fields
        .iter()
        .filter(|(c, _)| wanted.contains(*c))
        .map(|(_, v)| v.as_str())
        .collect();
    Res::ok(format!("{}\n", line.join(" ")))
}

/// Backslash escapes of `echo -e` and `printf`.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn echo(args: &[String]) -> Res {
    let (mut newline, mut escapes, mut rest) = (true, false, args);
    while let Some((first, tail)) = rest.split_first() {
        match first.as_str() {
            "-n" => newline = false,
            "-e" => escapes = true,
            "-ne" | "-en" => (newline, escapes) = (false, true),
            _ => break,
        }
        rest = tail;
    }
    let mut text = rest.join(" ");
    if escapes {
        text = unescape(&text);
    }
    if newline {
        text.push('\n');
    }
    Res::ok(text)
}

fn printf(args: &[String]) -> Res {
    let Some((format, mut rest)) = args.split_first() else {
        return Res::fail(2, "printf: usage: printf format [arguments]");
    };
    let format = unescape(format);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s' | 'd') => {
                if let Some((a, tail)) = rest.split_first() {
                    out.push_str(a);
                    rest = tail;
                }
            }
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    Res::ok(out)
}

fn cat(sh: &Shell<'_>, args: &[String], input: &[u8]) -> Res {
    let files: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') || a.as_str() == "-")
        .collect();
    if files.is_empty() {
        return Res::ok(input.to_vec());
    }
    let mut res = Res::default();
    for f in files {
        let data = if f == "-" {
            Ok(input.to_vec())
        } else {
            sh.read_file(f)
        };
        match data {
            Ok(d) => super::append(&mut res.out, &d),
            Err(e) => {
                res.err
                    .extend_from_slice(format!("cat: {f}: {e}\n").as_bytes());
                res.status = 1;
            }
        }
    }
    res
}

/// One `ls -l` line.
fn long_line(name: &str, e: &Entry) -> String {
    let (mode, links) = match e {
        Entry::Dir => ("drwxr-xr-x", 2),
        _ => ("-rw-r--r--", 1),
    };
    format!(
        "{mode} {links} root root {:>8} Jan  1 00:00 {name}\n",
        e.size()
    )
}

fn ls(sh: &Shell<'_>, args: &[String]) -> Res {
    let flags: String = args
        .iter()
        .filter(|a| a.starts_with('-') && a.len() > 1)
        .flat_map(|a| a.chars().skip(1))
        .collect();
    let (long, all, dir_only) = (
        flags.contains('l'),
        flags.contains('a') || flags.contains('A'),
        flags.contains('d'),
    );
    let mut paths: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-') || a.len() == 1)
        .map(String::as_str)
        .collect();
    if paths.is_empty() {
        paths.push(".");
    }
    let many = paths.len() > 1;
    let mut res = Res::default();
    for p in paths {
        let line = |name: &str, e: &Entry| {
            if long {
                long_line(name, e)
            } else {
                format!("{name}\n")
            }
        };
        let entry = match sh.fs().stat(&sh.cwd, p) {
            Ok(e) => e,
            Err(e) => {
                res.err
                    .extend_from_slice(format!("ls: cannot access '{p}': {e}\n").as_bytes());
                res.status = 2;
                continue;
            }
        };
        if entry != Entry::Dir || dir_only {
            super::append(&mut res.out, line(p, &entry).as_bytes());
            continue;
        }
        let listing = sh
            .fs()
            .locate(&sh.cwd, p)
            .and_then(|(id, rel)| sh.fs().tree(&id).list(&rel));
        if many {
            super::append(&mut res.out, format!("{p}:\n").as_bytes());
        }
        for (name, e) in listing.unwrap_or_default() {
            if all || !name.starts_with('.') {
                super::append(&mut res.out, line(&name, &e).as_bytes());
            }
        }
    }
    res
}

fn test(sh: &Shell<'_>, args: &[String]) -> Res {
    let status = |b: bool| Res {
        status: u32::from(!b),
        ..Res::default()
    };
    let stat = |p: &str| sh.fs().stat(&sh.cwd, p);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        [] => status(false),
        ["!", rest @ ..] => {
            let inner = test(sh, &rest.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            Res {
                status: u32::from(inner.status == 0),
                ..inner
            }
        }
        [s] => status(!s.is_empty()),
        ["-n", s] => status(!s.is_empty()),
        ["-z", s] => status(s.is_empty()),
        ["-e" | "-r" | "-w", p] => status(stat(p).is_ok()),
        ["-f", p] => status(matches!(stat(p), Ok(Entry::File(_) | Entry::Opaque(_)))),
        ["-d", p] => status(matches!(stat(p), Ok(Entry::Dir))),
        ["-s", p] => status(stat(p).is_ok_and(|e| e != Entry::Dir && e.size() > 0)),
        ["-x", p] => status(matches!(stat(p), Ok(Entry::Dir))),
        [x, "=" | "==", y] => status(x == y),
        [x, "!=", y] => status(x != y),
        [x, op @ ("-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge"), y] => {
            match (x.parse::<i64>(), y.parse::<i64>()) {
                (Ok(x), Ok(y)) => status(match *op {
                    "-eq" => x == y,
                    "-ne" => x != y,
                    "-lt" => x < y,
                    "-le" => x <= y,
                    "-gt" => x > y,
                    _ => x >= y,
                }),
                _ => Res::fail(2, "test: integer expression expected"),
            }
        }
        _ => Res::fail(2, "test: unsupported expression"),
    }
}

fn shell(sh: &mut Shell<'_>, args: &[String], input: &[u8]) -> Res {
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        if first.starts_with('-') && first != "-c" {
            rest = tail;
        } else {
            break;
        }
    }
    match rest {
        [c, text, more @ ..] if c == "-c" => {
            let mut positional: Vec<String> = more.to_vec();
            if positional.is_empty() {
                positional.push("sh".into());
            }
            sh.nested(text, positional, b"")
        }
        [c] if c == "-c" => Res::fail(2, "sh: 0: -c requires an argument"),
        [file, more @ ..] => match sh.read_file(file) {
            Ok(script) => {
                let mut positional = vec![file.clone()];
                positional.extend(more.iter().cloned());
                sh.nested(&String::from_utf8_lossy(&script), positional, input)
            }
            Err(e) => Res::fail(2, format!("sh: 0: cannot open {file}: {e}")),
        },
        [] => sh.nested(&String::from_utf8_lossy(input), vec!["sh".into()], b""),
    }
}

fn cd(sh: &mut Shell<'_>, args: &[String]) -> Res {
    let target = args.first().map_or("/root", String::as_str);
    match sh.fs().stat(&sh.cwd, target) {
        Ok(Entry::Dir) => {
            sh.cwd = normalize(&sh.cwd, target).unwrap_or_default();
            Res::ok("")
        }
        Ok(_) => Res::fail(2, format!("sh: 1: cd: can't cd to {target}")),
        Err(_) => Res::fail(2, format!("sh: 1: cd: can't cd to {target}")),
    }
}

/// Applies `f` to each path argument; a flag `-p`/`-r`/`-f` sets the boolean (parents, recursive).
fn each_path(
    sh: &mut Shell<'_>,
    args: &[String],
    name: &str,
    f: impl Fn(&mut Shell<'_>, &str, bool) -> Result<(), FsError>,
) -> Res {
    let flags: String = args
        .iter()
        .filter(|a| a.starts_with('-') && a.len() > 1)
        .flat_map(|a| a.chars().skip(1))
        .collect();
    let (flag, force) = (
        flags.contains('p') || flags.contains('r') || flags.contains('R'),
        flags.contains('f'),
    );
    let mut res = Res::default();
    for p in args.iter().filter(|a| !a.starts_with('-') || a.len() == 1) {
        if let Err(e) = f(sh, p, flag) {
            if force && e == FsError::NotFound {
                continue;
            }
            res.err
                .extend_from_slice(format!("{name}: cannot process '{p}': {e}\n").as_bytes());
            res.status = 1;
        }
    }
    res
}

fn copy(sh: &mut Shell<'_>, args: &[String], remove: bool) -> Res {
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let [src, dst] = paths.as_slice() else {
        return Res::fail(1, "cp: expects a source and a destination");
    };
    let data = match sh.read_file(src) {
        Ok(d) => d,
        Err(e) => return Res::fail(1, format!("cp: cannot stat '{src}': {e}")),
    };
    let target = match sh.fs().stat(&sh.cwd, dst) {
        Ok(Entry::Dir) => format!("{dst}/{}", base_name(src)),
        _ => dst.to_string(),
    };
    if let Err(e) = sh.write_file(&target, &data, false) {
        return Res::fail(1, format!("cp: cannot create regular file '{target}': {e}"));
    }
    if remove && let Ok((id, rel)) = sh.fs.locate(&sh.cwd, src) {
        let _ = sh.fs.tree_mut(&id).remove(&rel, false);
    }
    Res::ok("")
}

fn tee(sh: &mut Shell<'_>, args: &[String], input: &[u8]) -> Res {
    let append = args.iter().any(|a| a == "-a");
    let mut res = Res::ok(input.to_vec());
    for f in args.iter().filter(|a| !a.starts_with('-')) {
        if let Err(e) = sh.write_file(f, input, append) {
            res.err
                .extend_from_slice(format!("tee: {f}: {e}\n").as_bytes());
            res.status = 1;
        }
    }
    res
}

/// The input of a filter: its file argument, or stdin.
fn filter_input(
    sh: &Shell<'_>,
    file: Option<&String>,
    input: &[u8],
    name: &str,
) -> Result<Vec<u8>, Res> {
    match file {
        Some(f) => sh
            .read_file(f)
            .map_err(|e| Res::fail(1, format!("{name}: {f}: {e}"))),
        None => Ok(input.to_vec()),
    }
}

fn wc(sh: &Shell<'_>, args: &[String], input: &[u8]) -> Res {
    let data = match filter_input(sh, args.iter().find(|a| !a.starts_with('-')), input, "wc") {
        Ok(d) => d,
        Err(r) => return r,
    };
    let lines = data.iter().filter(|&&b| b == b'\n').count();
    let words = String::from_utf8_lossy(&data).split_whitespace().count();
    let flag = args.iter().find(|a| a.starts_with('-')).map(String::as_str);
    Res::ok(match flag {
        Some("-l") => format!("{lines}\n"),
        Some("-c") => format!("{}\n", data.len()),
        Some("-w") => format!("{words}\n"),
        _ => format!("{lines} {words} {}\n", data.len()),
    })
}

fn head_tail(sh: &Shell<'_>, args: &[String], input: &[u8], head: bool) -> Res {
    let mut count = 10usize;
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-n" => count = it.next().and_then(|n| n.parse().ok()).unwrap_or(count),
            s if s.starts_with('-') => count = s[1..].parse().unwrap_or(count),
            _ => file = Some(a),
        }
    }
    let data = match filter_input(sh, file, input, if head { "head" } else { "tail" }) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let text = String::from_utf8_lossy(&data);
    let lines: Vec<&str> = text.lines().collect();
    let picked = if head {
        &lines[..count.min(lines.len())]
    } else {
        &lines[lines.len().saturating_sub(count)..]
    };
    Res::ok(picked.iter().map(|l| format!("{l}\n")).collect::<String>())
}

fn grep(sh: &Shell<'_>, args: &[String], input: &[u8]) -> Res {
    let flags: String = args
        .iter()
        .filter(|a| a.starts_with('-') && a.len() > 1)
        .flat_map(|a| a.chars().skip(1))
        .collect();
    let mut rest = args.iter().filter(|a| !a.starts_with('-') || a.len() == 1);
    let Some(pattern) = rest.next() else {
        return Res::fail(2, "Usage: grep [OPTION]... PATTERNS [FILE]...");
    };
    let data = match filter_input(sh, rest.next(), input, "grep") {
        Ok(d) => d,
        Err(r) => return Res { status: 2, ..r },
    };
    let text = String::from_utf8_lossy(&data);
    let invert = flags.contains('v');
    let matched: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(pattern.as_str()) != invert)
        .collect();
    let status = u32::from(matched.is_empty());
    let out = if flags.contains('q') {
        String::new()
    } else if flags.contains('c') {
        format!("{}\n", matched.len())
    } else {
        matched.iter().map(|l| format!("{l}\n")).collect()
    };
    Res {
        out: out.into_bytes(),
        err: Vec::new(),
        status,
    }
}
