//! Kadeploy's server log files (`logs/logfile`, `logs/debugfile` of `server.conf`), in Kadeploy 3.3's
//! formats (`Debug::Logger#dump_to_file`, `Debug::FileOutput`):
//!
//! - the log file gets one CSV record per node per ended workflow, the `log` table's fields in the
//!   logger's order: `wid,hostname,user,step1,step2,step3,timeout_step1,timeout_step2,timeout_step3,
//!   retry_step1,retry_step2,retry_step3,start,step1_duration,step2_duration,step3_duration,env,
//!   anonymous_env,md5,success,error` (line breaks inside `error` become spaces, so a record stays a line);
//! - the debug file gets every output line of every workflow up to `verbosity/logs`, prefixed
//!   `<wid>|<user> -> ` (and `[<cluster prefix>] ` when the workflow spans clusters).
//!
//! Both are opened in append mode and reopened by [`LogFiles::reopen`] (SIGHUP), so a file moved away by
//! logrotate is created anew.

use super::Settings;
use crate::store::LogRow;
use kadeploy::output::LogLine;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One file written by the server.
struct Target {
    key: &'static str,
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl Target {
    /// Opens `path` for appending; the error is a message naming `key`.
    fn open(key: &'static str, path: &Path) -> (Target, Option<String>) {
        let (file, error) = match append(path) {
            Ok(f) => (Some(f), None),
            Err(e) => (
                None,
                Some(format!("{key}: cannot open {}: {e}", path.display())),
            ),
        };
        let target = Target {
            key,
            path: path.to_path_buf(),
            file: Mutex::new(file),
        };
        (target, error)
    }

    fn reopen(&self) -> Option<String> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        match append(&self.path) {
            Ok(f) => {
                *file = Some(f);
                None
            }
            Err(e) => {
                *file = None;
                Some(format!(
                    "{}: cannot reopen {}: {e}",
                    self.key,
                    self.path.display()
                ))
            }
        }
    }

    /// Appends `text` in one write (so concurrent workflows never interleave inside a line).
    fn write(&self, text: &str) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = file.as_mut()
            && let Err(e) = f.write_all(text.as_bytes())
        {
            tracing::warn!(
                "{}: writing {} failed: {e}; not written until the next reopen (SIGHUP)",
                self.key,
                self.path.display()
            );
            *file = None;
        }
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The log file and the debug file of a server.
pub struct LogFiles {
    logfile: Option<Target>,
    debugfile: Option<Target>,
    level: u8,
}

impl LogFiles {
    /// Opens the files `settings` name; files that cannot be opened are reported and skipped.
    pub fn open(settings: &Settings) -> (LogFiles, Vec<String>) {
        let mut errors = Vec::new();
        let mut open = |key, path: &Option<PathBuf>| {
            path.as_ref().map(|p| {
                let (target, error) = Target::open(key, p);
                errors.extend(error);
                target
            })
        };
        let logs = LogFiles {
            logfile: open("logs/logfile", &settings.logfile),
            debugfile: open("logs/debugfile", &settings.debugfile),
            level: settings.debugfile_level,
        };
        (logs, errors)
    }

    /// No file at all (tests, tools).
    pub fn none() -> LogFiles {
        LogFiles {
            logfile: None,
            debugfile: None,
            level: 0,
        }
    }

    /// The same files and level as `settings` names.
    pub fn same_as(&self, settings: &Settings) -> bool {
        let path = |t: &Option<Target>| t.as_ref().map(|t| t.path.clone());
        path(&self.logfile) == settings.logfile
            && path(&self.debugfile) == settings.debugfile
            && self.level == settings.debugfile_level
    }

    /// Reopens both files (after logrotate moved them); returns the failures.
    pub fn reopen(&self) -> Vec<String> {
        [&self.logfile, &self.debugfile]
            .into_iter()
            .flatten()
            .filter_map(Target::reopen)
            .collect()
    }

    /// Appends the records of an ended workflow to the log file.
    pub fn records(&self, rows: &[LogRow]) {
        if let Some(t) = &self.logfile
            && !rows.is_empty()
        {
            let text: String = rows.iter().map(|r| record(r) + "\n").collect();
            t.write(&text);
        }
    }

    /// Appends an output line of workflow `wid` of `user` to the debug file when its level is kept.
    pub fn line(&self, wid: &str, user: &str, prefix: Option<&str>, line: &LogLine) {
        if let Some(t) = &self.debugfile
            && line.level <= self.level
        {
            t.write(&debug_line(wid, user, prefix, &line.text));
        }
    }
}

/// A log file record (`Debug::Logger#dump_to_file`), without its line feed.
pub fn record(r: &LogRow) -> String {
    let flat = |s: &str| s.replace(['\r', '\n'], " ");
    [
        flat(&r.wid),
        flat(&r.hostname),
        flat(&r.user),
        flat(&r.steps[0]),
        flat(&r.steps[1]),
        flat(&r.steps[2]),
        r.timeouts[0].to_string(),
        r.timeouts[1].to_string(),
        r.timeouts[2].to_string(),
        r.retries[0].to_string(),
        r.retries[1].to_string(),
        r.retries[2].to_string(),
        r.start.to_string(),
        r.durations[0].to_string(),
        r.durations[1].to_string(),
        r.durations[2].to_string(),
        flat(&r.env),
        r.anonymous_env.to_string(),
        flat(&r.md5),
        r.success.to_string(),
        flat(&r.error),
    ]
    .join(",")
}

/// A debug file line (`Debug::FileOutput#write` with the `<wid>|<user> -> ` prefix), with its line feed.
pub fn debug_line(wid: &str, user: &str, prefix: Option<&str>, text: &str) -> String {
    match prefix {
        Some(p) => format!("{wid}|{user} -> [{p}] {text}\n"),
        None => format!("{wid}|{user} -> {text}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_logger_field_order() {
        let mut r = LogRow::new("D-1", "node-1.dom", "alice", 1389347228);
        r.steps = [
            "SetDeploymentEnvUntrusted".into(),
            "BroadcastEnvKascade".into(),
            "BootNewEnvKexec".into(),
        ];
        r.timeouts = [200, 200, 200];
        r.retries = [0, 1, 0];
        r.durations = [165, 68, 46];
        r.env = "debian-base:1".into();
        r.error = "BootNewEnvKexec-wait_reboot: Unreachable\nafter the reboot".into();
        assert_eq!(
            record(&r),
            "D-1,node-1.dom,alice,SetDeploymentEnvUntrusted,BroadcastEnvKascade,BootNewEnvKexec,\
             200,200,200,0,1,0,1389347228,165,68,46,debian-base:1,false,,false,\
             BootNewEnvKexec-wait_reboot: Unreachable after the reboot"
        );
        assert_eq!(
            debug_line("D-1", "bob", Some("c1"), "  reboot"),
            "D-1|bob -> [c1]   reboot\n"
        );
    }

    #[test]
    fn reopen_creates_a_file_moved_away() {
        let dir = std::env::temp_dir().join(format!("kadeploy-logfiles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kadeploy.log");
        let (t, error) = Target::open("logs/logfile", &path);
        assert!(error.is_none());
        t.write("a\n");
        std::fs::rename(&path, dir.join("kadeploy.log.1")).unwrap();
        t.write("b\n");
        assert!(t.reopen().is_none());
        t.write("c\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "c\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("kadeploy.log.1")).unwrap(),
            "a\nb\n"
        );
        let (_, error) = Target::open("logs/logfile", &dir.join("no/such/dir/x"));
        assert!(error.is_some_and(|e| e.starts_with("logs/logfile: cannot open")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
