//! The POSIX shell command lines (busybox-compatible) that carry out each [`Operation`] on a node.

use crate::broadcast::{ImageKind, WriteTarget};
use crate::nodeops::{FsaPart, Operation, ScriptEnv};

/// Quotes `s` for a POSIX shell (single quotes, `'` as `'\''`).
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `export K='v' ...; ` for `env` (empty when `env` is), skipping names that are not shell identifiers.
pub(crate) fn exports(env: &ScriptEnv) -> String {
    let vars: Vec<String> = env
        .iter()
        .filter(|(k, _)| {
            let ok = is_identifier(k);
            if !ok {
                tracing::warn!(name = %k, "skipping an environment variable with an invalid name");
            }
            ok
        })
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    if vars.is_empty() {
        String::new()
    } else {
        format!("export {}; ", vars.join(" "))
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `mkdir -p <parent> && ` for the directory of `path`, or nothing when it has none.
fn mkdir_parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((parent, _)) if !parent.is_empty() => format!("mkdir -p {} && ", quote(parent)),
        _ => String::new(),
    }
}

/// Runs `command` in the background, detached from the SSH session, after one second (so the SSH
/// command returns before the node goes down).
pub(crate) fn detached(command: &str) -> String {
    format!("(trap '' HUP; sleep 1; {command}) </dev/null >/dev/null 2>&1 &")
}

/// `dir` and `path` joined with exactly one `/`.
fn join(dir: &str, path: &str) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Shell function `kres PATH`: follows symbolic links of PATH. Absolute targets are taken inside `$r`
/// when set (an extracted environment), else inside the deepest ancestor of the link where they exist.
const RESOLVE: &str = r#"kres() { f=$1; n=0; while [ -L "$f" ] && [ $n -lt 40 ]; do t=$(readlink "$f"); case "$t" in /*) if [ -n "$r" ]; then f="$r$t"; else a="${f%/*}"; while [ -n "$a" ] && [ ! -e "$a$t" ]; do a="${a%/*}"; done; f="$a$t"; fi;; *) f="${f%/*}/$t";; esac; n=$((n+1)); done; printf '%s\n' "$f"; }; "#;

/// Shell snippet that sets `$d` to the decompression command of the file `$s`, from its magic bytes.
const DETECT: &str = r#"m=$(od -A n -t x1 -N 6 "$s" | tr -d ' \n'); case "$m" in 1f8b*) d='gzip -dc';; 425a68*) d='bzip2 -dc';; fd377a585a00*) d='xz -dc';; 28b52ffd*) d='zstd -dc';; *) d=cat;; esac; "#;

/// Streams `$s` through `$d` into `sink`, failing when either side fails.
fn decompress_into(sink: &str) -> String {
    format!(
        r#"e=$(mktemp) || exit 1; {{ $d < "$s" || echo "cannot decompress $s" > "$e"; }} | {sink}; rc=$?; if [ -s "$e" ]; then cat "$e" >&2; rc=1; fi; rm -f "$e"; exit $rc"#
    )
}

/// Checks that `path` inside `dir` (resolved by `kres`) is a file; `what` and `path` name it in the error.
fn check_file(var: &str, what: &str, dir: &str, path: &str) -> String {
    format!(
        r#"{var}=$(kres {p}); [ -f "${var}" ] || {{ echo {msg} "(${var})" >&2; exit 1; }}; "#,
        p = quote(&join(dir, path)),
        msg = quote(&format!(
            "Environment {what} file {path} not found in tarball"
        )),
    )
}

/// The command line that carries out `op` (its standard input is chosen by the caller).
pub(crate) fn command(op: &Operation) -> String {
    match op {
        Operation::SendKey { destination, .. } => {
            let f = quote(destination);
            format!(
                r#"{}{{ if [ -s {f} ] && [ -n "$(tail -c 1 {f})" ]; then echo; fi; cat; }} >> {f}"#,
                mkdir_parent(destination)
            )
        }
        Operation::RunScript { script, env, .. } => {
            if script.starts_with("#!") {
                format!(
                    r#"{}tmp=$(mktemp) && cat > "$tmp" && chmod 755 "$tmp" && {{ "$tmp"; rc=$?; rm -f "$tmp"; exit $rc; }}"#,
                    exports(env)
                )
            } else {
                format!("{}sh -s", exports(env))
            }
        }
        Operation::Format { device, fs, args } => {
            let dev = quote(device);
            let fs_q = quote(fs);
            format!(
                "umount {dev} 2>/dev/null; if command -v mkfs >/dev/null 2>&1; then mkfs -t {fs_q} {args} {dev}; else mkfs.{fs} {args} {dev}; fi"
            )
        }
        Operation::MakeSwap { device } => format!("mkswap {}", quote(device)),
        Operation::Mount { device, dir } => {
            format!(
                "mkdir -p {d} && mount {} {d}",
                quote(device),
                d = quote(dir)
            )
        }
        Operation::Umount { target } => format!("umount -l {}", quote(target)),
        Operation::SendFile { destination, .. } => {
            format!("{}cat > {}", mkdir_parent(destination), quote(destination))
        }
        Operation::InstallArchive {
            dir, script, env, ..
        } => {
            let d = quote(dir);
            let extract = format!("mkdir -p {d} && tar -x -f - -C {d}");
            match script.as_deref().map(str::trim) {
                None | Some("") | Some("none") => extract,
                Some(s) => format!(
                    "{extract} && {{ {}{}/{s}; }}",
                    exports(env),
                    quote(dir.trim_end_matches('/'))
                ),
            }
        }
        Operation::WriteImage {
            source,
            kind,
            target,
            fsa_parts,
        } => write_image(source, *kind, target, fsa_parts),
        Operation::CheckKernelFiles {
            dir,
            kernel,
            initrd,
        } => {
            let mut cmd = format!("r={}; {RESOLVE}", quote(dir.trim_end_matches('/')));
            cmd.push_str(&check_file("k", "kernel", dir, kernel));
            if !initrd.is_empty() {
                cmd.push_str(&check_file("i", "initrd", dir, initrd));
            }
            cmd.push_str("true");
            cmd
        }
        Operation::Kexec {
            kernel,
            initrd,
            params,
        } => kexec(kernel, initrd, params),
        Operation::RebootFromDeployEnv => detached("reboot -f"),
        Operation::Sync => "sync".into(),
        Operation::CheckRootDevice { device } => format!(
            r#"r=$(mount | grep ' on / ' | cut -f 1 -d ' ' | tail -n 1); [ "$r" = {} ] || {{ echo "Bad root partition: / is mounted from $r" >&2; exit 1; }}"#,
            quote(device)
        ),
        Operation::Exec { command, env } => format!("{}{command}", exports(env)),
        Operation::Dummy => "true".into(),
    }
}

/// Decompresses the image file `source` and writes it the way `kind` says into `target` (an fsarchiver
/// image: each of `fsa_parts`, or id 0 to the target device when there is none).
fn write_image(
    source: &str,
    kind: ImageKind,
    target: &WriteTarget,
    fsa_parts: &[FsaPart],
) -> String {
    let head = format!("s={}; ", quote(source));
    match kind {
        ImageKind::Tar => {
            let x = quote(&target.extraction_dir);
            format!(
                "{head}{DETECT}mkdir -p {x} || exit 1; {}",
                decompress_into(&format!("tar -x -f - -C {x}"))
            )
        }
        ImageKind::Dd => format!(
            "{head}{DETECT}{}",
            decompress_into(&format!(
                "dd of={} bs=1048576 conv=fsync 2>/dev/null",
                quote(&target.device)
            ))
        ),
        ImageKind::Fsa => {
            let parts: Vec<String> = if fsa_parts.is_empty() {
                vec![format!("id=0,dest={}", quote(&target.device))]
            } else {
                fsa_parts
                    .iter()
                    .map(|p| format!("id={},dest={}", p.id, quote(&p.device)))
                    .collect()
            };
            format!(
                r#"{head}fsarchiver -j $(grep -c '^processor' /proc/cpuinfo) restfs "$s" {}"#,
                parts.join(" ")
            )
        }
    }
}

/// Loads `kernel` (and `initrd` unless empty) with `params` and executes it, detached.
fn kexec(kernel: &str, initrd: &str, params: &str) -> String {
    let mut cmd = format!("r=; {RESOLVE}");
    cmd.push_str(&format!(
        r#"k=$(kres {k}); [ -f "$k" ] || {{ echo {m} >&2; exit 1; }}; "#,
        k = quote(kernel),
        m = quote(&format!("kernel {kernel} not found"))
    ));
    let mut load = r#"kexec -l "$k""#.to_string();
    if !initrd.is_empty() {
        cmd.push_str(&format!(
            r#"i=$(kres {i}); [ -f "$i" ] || {{ echo {m} >&2; exit 1; }}; "#,
            i = quote(initrd),
            m = quote(&format!("initrd {initrd} not found"))
        ));
        load.push_str(r#" --initrd="$i""#);
    }
    load.push_str(&format!(" --append={}", quote(params)));
    format!("{cmd}{load} || exit 1; {}", detached("kexec -e"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn exports_skip_invalid_names() {
        let env = vec![
            ("A_1".to_string(), "x y".to_string()),
            ("1B".to_string(), "no".to_string()),
            ("C".to_string(), "it's".to_string()),
        ];
        assert_eq!(exports(&env), r"export A_1='x y' C='it'\''s'; ");
        assert_eq!(exports(&Vec::new()), "");
    }

    #[test]
    fn join_and_parent() {
        assert_eq!(join("/mnt/dest/", "/vmlinuz"), "/mnt/dest/vmlinuz");
        assert_eq!(join("/mnt/dest", "boot/x"), "/mnt/dest/boot/x");
        assert_eq!(mkdir_parent("/a/b"), "mkdir -p '/a' && ");
        assert_eq!(mkdir_parent("/a"), "");
        assert_eq!(mkdir_parent("a"), "");
    }

    #[test]
    fn kexec_loads_before_the_detached_jump() {
        let cmd = command(&Operation::Kexec {
            kernel: "/k".into(),
            initrd: String::new(),
            params: "root=/dev/sda3 quiet".into(),
        });
        assert!(cmd.contains(r#"kexec -l "$k" --append='root=/dev/sda3 quiet' || exit 1; ("#));
        assert!(!cmd.contains("--initrd"));
        assert!(cmd.ends_with("kexec -e) </dev/null >/dev/null 2>&1 &"));
    }

    /// A multipart fsarchiver image restores every file system of its map (before, only id 0 was restored,
    /// to the deploy partition, whatever the environment's `options/partitions` said).
    #[test]
    fn fsa_restores_every_mapped_file_system() {
        let target = WriteTarget {
            device: "/dev/sda3".into(),
            extraction_dir: String::new(),
        };
        let op = |fsa_parts| Operation::WriteImage {
            source: "/rambin/_KATMP_img.fsa".into(),
            kind: ImageKind::Fsa,
            target: target.clone(),
            fsa_parts,
        };
        assert!(command(&op(Vec::new())).ends_with(r#"restfs "$s" id=0,dest='/dev/sda3'"#));
        let parts = vec![
            FsaPart {
                id: 0,
                device: "/dev/sda1".into(),
            },
            FsaPart {
                id: 1,
                device: "/dev/sda2".into(),
            },
        ];
        assert!(
            command(&op(parts))
                .ends_with(r#"restfs "$s" id=0,dest='/dev/sda1' id=1,dest='/dev/sda2'"#)
        );
    }

    #[test]
    fn install_archive_runs_the_script_unless_none() {
        let op = |script: Option<&str>| Operation::InstallArchive {
            archive: "/a.tgz".into(),
            dir: "/rambin/".into(),
            script: script.map(String::from),
            env: vec![("K".into(), "v".into())],
        };
        assert_eq!(
            command(&op(None)),
            "mkdir -p '/rambin/' && tar -x -f - -C '/rambin/'"
        );
        assert_eq!(command(&op(Some("none"))), command(&op(None)));
        assert!(
            command(&op(Some("post --net x")))
                .ends_with("&& { export K='v'; '/rambin'/post --net x; }")
        );
    }
}
