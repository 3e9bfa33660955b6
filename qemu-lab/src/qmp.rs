//! The lab's QMP client (QEMU Machine Protocol over a unix socket), used by the lab and by the BMC:
//! greeting, `qmp_capabilities`, then commands matched to replies by `id`; events are kept aside.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// Connecting, reading or writing the socket failed (also a read timeout).
    #[error("QMP socket: {0}")]
    Io(#[from] std::io::Error),
    /// A line was not JSON.
    #[error("QMP: bad JSON {line:?}: {source}")]
    Json {
        /// The line received.
        line: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// QEMU closed the connection.
    #[error("QMP: connection closed")]
    Closed,
    /// The first message was not a QMP greeting.
    #[error("QMP: unexpected greeting {0}")]
    Greeting(Value),
    /// QEMU answered with an error.
    #[error("QMP {command}: {class}: {desc}")]
    Command {
        /// The command sent.
        command: String,
        /// The error class (`GenericError`, `CommandNotFound`..).
        class: String,
        /// QEMU's description.
        desc: String,
    },
}

/// A negotiated QMP connection.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    events: Vec<Value>,
    version: Value,
}

impl Qmp {
    /// Connects to `socket`, reads the greeting and enters command mode; every read waits at
    /// most `timeout`.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 0,
            events: Vec::new(),
            version: Value::Null,
        };
        let greeting = qmp.read_message()?;
        match greeting.get("QMP") {
            Some(q) => qmp.version = q.get("version").cloned().unwrap_or(Value::Null),
            None => return Err(QmpError::Greeting(greeting)),
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// The `version` object of the greeting (`{"qemu": {"major": 7, ..}, "package": ..}`).
    pub fn version(&self) -> &Value {
        &self.version
    }

    fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(QmpError::Closed);
        }
        serde_json::from_str(&line).map_err(|source| QmpError::Json {
            line: line.trim_end().to_string(),
            source,
        })
    }

    /// Sends `command` with optional `arguments` and returns the `return` value; events that
    /// arrive meanwhile are kept for [`Qmp::take_events`].
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"execute": command, "id": id});
        if let Some(arguments) = arguments {
            message["arguments"] = arguments;
        }
        let mut line = message.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        loop {
            let reply = self.read_message()?;
            if reply.get("event").is_some() {
                tracing::debug!(event = %reply, "QMP event");
                self.events.push(reply);
                continue;
            }
            // Commands go one at a time: a reply without an id (a minimal QMP server) is this one's.
            if reply.get("id").is_some_and(|got| got.as_u64() != Some(id)) {
                tracing::debug!(%reply, "QMP reply for another id");
                continue;
            }
            if let Some(error) = reply.get("error") {
                let field = |k: &str| {
                    error
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                return Err(QmpError::Command {
                    command: command.to_string(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            return Ok(reply.get("return").cloned().unwrap_or(Value::Null));
        }
    }

    /// The events received so far (`{"event": "RESET", ..}`), emptying the list.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }

    /// `query-status`: the run state (`running`, `paused`, `shutdown`, `prelaunch`..).
    pub fn query_status(&mut self) -> Result<String, QmpError> {
        let status = self.execute("query-status", None)?;
        Ok(status
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// `system_reset`: a hard reset (the VM PXE-boots again).
    pub fn system_reset(&mut self) -> Result<(), QmpError> {
        self.execute("system_reset", None).map(drop)
    }

    /// `system_powerdown`: an ACPI power-button press (the guest decides).
    pub fn system_powerdown(&mut self) -> Result<(), QmpError> {
        self.execute("system_powerdown", None).map(drop)
    }

    /// `stop`: pauses the VCPUs.
    pub fn stop(&mut self) -> Result<(), QmpError> {
        self.execute("stop", None).map(drop)
    }

    /// `cont`: resumes the VCPUs.
    pub fn cont(&mut self) -> Result<(), QmpError> {
        self.execute("cont", None).map(drop)
    }

    /// `human-monitor-command`: runs an HMP command line and returns its output.
    pub fn human_monitor(&mut self, command_line: &str) -> Result<String, QmpError> {
        let out = self.execute(
            "human-monitor-command",
            Some(json!({"command-line": command_line})),
        )?;
        Ok(out.as_str().unwrap_or_default().to_string())
    }

    /// `quit`: QEMU exits at once (power off without the guest's consent). A connection closed
    /// before the reply also counts as success.
    pub fn quit(mut self) -> Result<(), QmpError> {
        match self.execute("quit", None) {
            Ok(_) | Err(QmpError::Closed) => Ok(()),
            Err(QmpError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake QEMU: answers each command line with the scripted replies, given the request's id unless
    /// they have one (`"id": null` sends none).
    fn fake(path: &Path, replies: Vec<Vec<Value>>) -> std::thread::JoinHandle<Vec<Value>> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let greeting = json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}});
            writeln!(writer, "{greeting}").unwrap();
            let mut received = Vec::new();
            for batch in replies {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let request: Value = serde_json::from_str(&line).unwrap();
                for mut reply in batch {
                    match reply.get("id") {
                        _ if reply.get("event").is_some() => {}
                        None => reply["id"] = request["id"].clone(),
                        Some(Value::Null) => {
                            reply.as_object_mut().map(|o| o.remove("id"));
                        }
                        Some(_) => {}
                    }
                    writeln!(writer, "{reply}").unwrap();
                }
                received.push(request);
            }
            received
        })
    }

    #[test]
    fn commands_skip_events_and_report_errors() {
        let dir = std::env::temp_dir().join(format!("kalab-qmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qmp.sock");
        let server = fake(
            &path,
            vec![
                vec![json!({"return": {}})],
                vec![
                    json!({"event": "RESET", "data": {"guest": false}}),
                    json!({"return": {"status": "running", "running": true}}),
                ],
                vec![json!({"error": {"class": "CommandNotFound", "desc": "no such command"}})],
            ],
        );
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(qmp.version()["qemu"]["major"], 7);
        assert_eq!(qmp.query_status().unwrap(), "running");
        assert_eq!(qmp.take_events()[0]["event"], "RESET");
        let err = qmp.execute("bogus", Some(json!({"x": 1}))).unwrap_err();
        assert!(
            matches!(&err, QmpError::Command { class, .. } if class == "CommandNotFound"),
            "{err}"
        );
        let received = server.join().unwrap();
        assert_eq!(received[0]["execute"], "qmp_capabilities");
        assert_eq!(received[2]["arguments"]["x"], 1);
        assert_ne!(received[1]["id"], received[2]["id"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn replies_without_an_id_answer_the_pending_command_and_stale_ones_are_skipped() {
        let dir = std::env::temp_dir().join(format!("kalab-qmp-noid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qmp.sock");
        let server = fake(
            &path,
            vec![
                vec![json!({"return": {}, "id": null})],
                vec![
                    json!({"return": {"status": "paused"}, "id": 999}),
                    json!({"return": {"status": "running"}}),
                ],
                vec![json!({"return": {}, "id": null})],
            ],
        );
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(
            qmp.query_status().unwrap(),
            "running",
            "the stale reply is skipped"
        );
        qmp.system_reset().unwrap();
        assert_eq!(server.join().unwrap().len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
