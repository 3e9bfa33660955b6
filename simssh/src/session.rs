//! One SSH connection to a simulated node: public-key authentication as root against the keys the
//! node's running system holds (`/root/.ssh/authorized_keys`, written by the deployment's `-k`) and the
//! configured ones; then session channels, each served by its own task: `exec` (a command of the
//! simulated shell, or `scp -t`/`scp -f`) and interactive shells, with or without a pty. Channels per
//! connection, command and line lengths and buffered input are bounded.

use crate::keys::{accepts, parse_authorized_keys};
use crate::scp::{self, ScpMode};
use crate::shared::Shared;
use crate::shell::{Run, Shell, ShellState, reads_stdin};
use crate::vfs::{Held, MAX_FILE_BYTES};
use russh::keys::PublicKey;
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelMsg, ChannelOpenFailure};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Session channels one connection may open.
pub const MAX_CHANNELS: usize = 8;
/// Longest `exec` command, in bytes.
pub const MAX_COMMAND: usize = 64 << 10;
/// Longest line of an interactive shell, in bytes.
pub const MAX_LINE: usize = 64 << 10;

/// The russh handler of one connection to node `index`.
pub(crate) struct NodeHandler {
    shared: Arc<Shared>,
    index: usize,
    channels: usize,
    authenticated: Arc<AtomicBool>,
}

impl NodeHandler {
    /// A handler for a new connection.
    pub fn new(shared: Arc<Shared>, index: usize) -> Self {
        NodeHandler {
            shared,
            index,
            channels: 0,
            authenticated: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set once the client is authenticated.
    pub fn authenticated(&self) -> Arc<AtomicBool> {
        self.authenticated.clone()
    }

    /// True when `user` may log in with `key`: root, with a key of the running system or a configured one.
    fn allowed(&self, user: &str, key: &PublicKey) -> bool {
        if user != "root" {
            return false;
        }
        if accepts(&self.shared.extra_keys, key) {
            return true;
        }
        let text = match self.shared.node_fs(self.index) {
            Some(fs) => fs.authorized_keys(),
            None => return false,
        };
        accepts(&parse_authorized_keys(&text), key)
    }

    fn verdict(&self, user: &str, key: &PublicKey) -> Auth {
        if self.allowed(user, key) {
            Auth::Accept
        } else {
            Auth::reject()
        }
    }
}

impl Handler for NodeHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.verdict(user, offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let auth = self.verdict(user, key.public_key);
        if matches!(auth, Auth::Accept) {
            self.authenticated.store(true, Ordering::Release);
        }
        Ok(auth)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels >= MAX_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels += 1;
        reply.accept().await;
        tokio::spawn(serve_channel(channel, self.shared.clone(), self.index));
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _cols: u32,
        _rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}

/// What a channel is doing.
enum Mode {
    /// Waiting for a request.
    Idle,
    /// An exec'd command reading its standard input until EOF.
    Stdin(String, Vec<u8>, Held),
    /// An interactive shell and its pending line.
    Shell(ShellState, Vec<u8>),
    /// `scp -t`.
    Sink(scp::Sink),
    /// `scp -f`.
    Source(scp::Source),
    /// The sftp subsystem.
    Sftp(crate::sftp::Sftp),
}

/// A channel's task.
struct ChannelTask {
    channel: Channel<Msg>,
    shared: Arc<Shared>,
    index: usize,
    pty: bool,
}

/// Serves one session channel until it ends, then closes it.
async fn serve_channel(channel: Channel<Msg>, shared: Arc<Shared>, index: usize) {
    let idle = shared.idle;
    let mut task = ChannelTask {
        channel,
        shared,
        index,
        pty: false,
    };
    let mut mode = Mode::Idle;
    while let Ok(Some(msg)) = tokio::time::timeout(idle, task.channel.wait()).await {
        match task.step(&mut mode, msg).await {
            Some(status) => {
                let _ = task.channel.exit_status(status).await;
                break;
            }
            None => continue,
        }
    }
    let _ = task.channel.eof().await;
    let _ = task.channel.close().await;
}

impl ChannelTask {
    /// Sends `data` on stdout (or stderr), converting newlines for a pty.
    async fn send(&self, data: &[u8], stderr: bool) {
        if data.is_empty() {
            return;
        }
        let data = if self.pty { crlf(data) } else { data.to_vec() };
        let _ = if stderr {
            self.channel.extended_data(1, &data[..]).await
        } else {
            self.channel.data(&data[..]).await
        };
    }

    /// Sends a run's output.
    async fn send_run(&self, run: &Run) {
        self.send(&run.stdout, false).await;
        self.send(&run.stderr, true).await;
    }

    /// Runs `text` on the node; `state` carries an interactive session's variables.
    fn run(&self, text: &str, stdin: &[u8], state: Option<&mut ShellState>) -> Run {
        let Some(mut fs) = self.shared.node_fs(self.index) else {
            return Run {
                status: 255,
                ..Run::default()
            };
        };
        match state {
            Some(st) => {
                let mut shell = Shell::resume(&mut fs, st.clone());
                let run = shell.run_text(text, stdin);
                *st = shell.state();
                run
            }
            None => Shell::new(&mut fs, &[]).run_text(text, stdin),
        }
    }

    /// The shell prompt (with a pty only).
    fn prompt(&self, st: &ShellState) -> Vec<u8> {
        if !self.pty {
            return Vec::new();
        }
        let name = self
            .shared
            .nodes
            .get(self.index)
            .map_or("node", |n| n.name.split('.').next().unwrap_or(&n.name));
        format!("root@{name}:/{}# ", st.cwd).into_bytes()
    }

    /// Handles one message; `Some(status)` ends the channel with that exit status.
    async fn step(&mut self, mode: &mut Mode, msg: ChannelMsg) -> Option<u32> {
        let idle = matches!(mode, Mode::Idle);
        match msg {
            ChannelMsg::RequestPty { .. } => {
                self.pty = true;
                None
            }
            ChannelMsg::Exec { command, .. } if idle => self.exec(mode, &command).await,
            ChannelMsg::RequestShell { .. } if idle => {
                let st = ShellState::default();
                self.send(&self.prompt(&st), false).await;
                *mode = Mode::Shell(st, Vec::new());
                None
            }
            ChannelMsg::RequestSubsystem { name, .. } if idle => {
                if name != "sftp" {
                    return Some(1);
                }
                *mode = Mode::Sftp(crate::sftp::Sftp::default());
                None
            }
            ChannelMsg::Data { data } => self.data(mode, &data).await,
            ChannelMsg::Eof => self.eof(mode).await,
            _ => None,
        }
    }

    /// The client's end of input.
    async fn eof(&mut self, mode: &mut Mode) -> Option<u32> {
        match mode {
            Mode::Stdin(text, input, _) => {
                let run = self.run(text, input, None);
                self.send_run(&run).await;
                Some(run.status)
            }
            Mode::Shell(st, line) => {
                let text = String::from_utf8_lossy(line).into_owned();
                let run = self.run(&text, b"", Some(st));
                self.send_run(&run).await;
                Some(st.status)
            }
            _ => Some(0),
        }
    }

    /// An `exec` request.
    async fn exec(&mut self, mode: &mut Mode, command: &[u8]) -> Option<u32> {
        if command.len() > MAX_COMMAND {
            self.send(b"sh: command too long\n", true).await;
            return Some(126);
        }
        let text = String::from_utf8_lossy(command).into_owned();
        match scp::parse_command(&text) {
            Some(ScpMode::Sink(path)) => {
                self.send(&scp::Sink::hello(), false).await;
                *mode = Mode::Sink(scp::Sink::new(path));
                None
            }
            Some(ScpMode::Source(path)) => {
                let source = match self.shared.node_fs(self.index) {
                    Some(fs) => scp::Source::new(&fs, &path),
                    None => Err(Vec::new()),
                };
                match source {
                    Ok(s) => {
                        *mode = Mode::Source(s);
                        None
                    }
                    Err(reply) => {
                        self.send(&reply, false).await;
                        Some(1)
                    }
                }
            }
            None if reads_stdin(&text) => {
                *mode = Mode::Stdin(text, Vec::new(), Held::default());
                None
            }
            None => {
                let run = self.run(&text, b"", None);
                self.send_run(&run).await;
                Some(run.status)
            }
        }
    }

    /// Data from the client.
    async fn data(&mut self, mode: &mut Mode, data: &[u8]) -> Option<u32> {
        match mode {
            Mode::Stdin(_, input, held) => {
                if input.len() + data.len() > MAX_FILE_BYTES || held.grow(data.len()).is_err() {
                    self.send(b"sh: standard input too large\n", true).await;
                    return Some(1);
                }
                input.extend_from_slice(data);
                None
            }
            Mode::Shell(st, line) => self.shell_input(st, line, data).await,
            Mode::Sink(sink) => {
                let reply = match self.shared.node_fs(self.index) {
                    Some(mut fs) => sink.feed(&mut fs, data),
                    None => return Some(1),
                };
                match reply {
                    Ok(r) => {
                        self.send(&r, false).await;
                        None
                    }
                    Err(e) => {
                        self.send(format!("\x02{e}\n").as_bytes(), false).await;
                        Some(1)
                    }
                }
            }
            Mode::Source(source) => match source.feed(data) {
                Ok((out, done)) => {
                    self.send(&out, false).await;
                    done.then_some(0)
                }
                Err(_) => Some(1),
            },
            Mode::Sftp(sftp) => {
                let out = match self.shared.node_fs(self.index) {
                    Some(mut fs) => sftp.feed(&mut fs, data),
                    None => return Some(1),
                };
                match out {
                    Ok(out) => {
                        self.send(&out, false).await;
                        None
                    }
                    Err(_) => Some(1),
                }
            }
            Mode::Idle => None,
        }
    }

    /// Bytes typed into an interactive shell: each complete line runs.
    async fn shell_input(
        &mut self,
        st: &mut ShellState,
        line: &mut Vec<u8>,
        data: &[u8],
    ) -> Option<u32> {
        for &b in data {
            let b = if self.pty && b == b'\r' { b'\n' } else { b };
            if self.pty {
                match b {
                    3 => {
                        line.clear();
                        self.send(b"^C\n", false).await;
                        self.send(&self.prompt(st), false).await;
                        continue;
                    }
                    4 if line.is_empty() => return Some(st.status),
                    0x7f | 8 => {
                        if line.pop().is_some() {
                            self.send(b"\x08 \x08", false).await;
                        }
                        continue;
                    }
                    _ => self.send(&[b], false).await,
                }
            }
            if b != b'\n' {
                if line.len() >= MAX_LINE {
                    self.send(b"sh: line too long\n", true).await;
                    return Some(2);
                }
                line.push(b);
                continue;
            }
            let text = String::from_utf8_lossy(line).into_owned();
            line.clear();
            let run = self.run(&text, b"", Some(st));
            self.send_run(&run).await;
            if st.exited {
                return Some(st.status);
            }
            self.send(&self.prompt(st), false).await;
        }
        None
    }
}

/// `\n` → `\r\n`, for a terminal.
fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    for &b in data {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}
