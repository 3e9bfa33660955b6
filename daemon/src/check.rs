//! `--check-config`: reads everything the server reads at start (configuration files, backends of every
//! cluster, `netboot.conf`, TLS files, log files) without binding a port or opening the database; prints
//! every warning and error on stderr and a summary on stdout; exit status 1 on errors.

use crate::args::Args;
use crate::backends::backends;
use crate::boot;
use crate::configure::Configuration;
use kadeploy_server::Executor;
use std::path::Path;

/// Runs the check; returns the exit status.
pub fn run(args: &Args) -> i32 {
    let (warnings, errors, summary) = check(args);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    if errors.is_empty() {
        println!(
            "{}: configuration OK ({summary}, {} warning(s))",
            args.config.display(),
            warnings.len()
        );
        0
    } else {
        println!(
            "{}: configuration has {} error(s)",
            args.config.display(),
            errors.len()
        );
        1
    }
}

/// Warnings, errors, and what the configuration holds.
fn check(args: &Args) -> (Vec<String>, Vec<String>, String) {
    let mut errors = Vec::new();
    let conf = match Configuration::load(args) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), vec![format!("{e:#}")], String::new()),
    };
    let mut warnings = conf.warnings();
    let Configuration {
        settings: s,
        loaded,
    } = conf;
    let loaded = std::sync::Arc::new(loaded);
    let clusters = &loaded.config.clusters;
    let table = backends();
    match table.get(&s.backend) {
        None => errors.push(format!(
            "server.conf: backend/kind '{}' is unknown (known: {})",
            s.backend,
            table.names().join(", ")
        )),
        Some((paused, factory)) => {
            for cluster in clusters {
                let (f, c, l) = (factory.clone(), cluster.clone(), loaded.clone());
                if let Err(e) = Executor::start(&cluster.name, *paused, 0.0, move || f(&c, &l)) {
                    errors.push(format!("cluster {}: {e:#}", cluster.name));
                }
            }
        }
    }
    if let Err(e) = boot::services(&args.config, clusters) {
        errors.push(format!("{e:#}"));
    }
    if s.secure
        && let Some((cert, key)) = &s.certificate
    {
        for f in [cert, key] {
            if let Err(e) = std::fs::read(f) {
                errors.push(format!(
                    "security/certificate: cannot read {}: {e}",
                    f.display()
                ));
            }
        }
    }
    for (key, path) in [
        ("logs/logfile", &s.logfile),
        ("logs/debugfile", &s.debugfile),
    ] {
        if let Some(p) = path
            && let Err(e) = writable(p)
        {
            warnings.push(format!(
                "{key}: {} is not writable ({e}): the server will run without it",
                p.display()
            ));
        }
    }
    let nodes: usize = clusters.iter().map(|c| c.nodes.len()).sum();
    let summary = format!(
        "{} cluster(s), {nodes} node(s), backend {}",
        clusters.len(),
        s.backend
    );
    (warnings, errors, summary)
}

/// `path` can be appended to (or created), without creating it.
fn writable(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(|_| ());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no directory {}", dir.display()),
        ));
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
