//! Node consoles (spec §3.8): an open console, as the API lists it and as its listener ([`relay`])
//! admits clients.
//!
//! Unlike Kadeploy, whose listener relays whoever connects first, a console accepts only the client that
//! opened it: the connection must come from the requester's address and first send the console's one-time
//! secret (the `secret` key of the `POST` reply, never shown again) and a newline; anything else gets
//! [`REFUSED`] and is closed. A console no client is attached to closes after `limits/console_timeout`,
//! and at most `limits/max_consoles` are open.

pub mod relay;

use crate::reply::{Key, Ruby};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a second client reads while a console is attached.
pub const ALREADY_ATTACHED: &str = "[Kaconsole] console already attached\n";
/// What a client reads when it is not the one that opened the console (wrong address or secret).
pub const REFUSED: &str =
    "[Kaconsole] refused: this console accepts only the client that opened it (and its secret)\n";

/// One open console.
pub struct Console {
    /// `C-<uuid>`.
    pub id: String,
    /// Owner.
    pub user: String,
    /// Node name.
    pub node: String,
    /// `tcp://host:port`.
    pub uri: String,
    started: Instant,
    /// Closes the listener and the relay.
    pub cancel: CancellationToken,
    attached: AtomicBool,
    error: AtomicBool,
    /// The requester's address: the only one allowed to connect.
    peer: IpAddr,
    /// The one-time secret, until a client presents it.
    secret: Mutex<Option<String>>,
    /// Since when no client is attached.
    idle_since: Mutex<Instant>,
    /// Signalled when the attached client leaves.
    detached: Notify,
}

fn sym(name: &str) -> Key {
    Key::Sym(name.to_string())
}

/// A fresh console secret: 64 hex digits (244 bits from the system's random source).
fn new_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Console {
    /// A console of `user` on `node`, listening at `uri`, for clients from `peer`; and its secret.
    pub fn open(user: &str, node: &str, uri: String, peer: IpAddr) -> (Arc<Console>, String) {
        let secret = new_secret();
        let console = Arc::new(Console {
            id: format!("C-{}", uuid::Uuid::new_v4()),
            user: user.to_string(),
            node: node.to_string(),
            uri,
            started: Instant::now(),
            cancel: CancellationToken::new(),
            attached: AtomicBool::new(false),
            error: AtomicBool::new(false),
            peer: peer.to_canonical(),
            secret: Mutex::new(Some(secret.clone())),
            idle_since: Mutex::new(Instant::now()),
            detached: Notify::new(),
        });
        (console, secret)
    }

    /// The console object (`console_get`, Symbol keys in Kadeploy's order); `attached` and
    /// `console_uri` only for the owner or an almighty user.
    pub fn view(&self, full: bool) -> Ruby {
        let time = (self.started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
        let mut v = Ruby::symbols([
            ("id", Ruby::from(&self.id)),
            ("user", Ruby::from(&self.user)),
            ("node", Ruby::from(&self.node)),
            ("error", self.failed().into()),
        ]);
        if full {
            v.set(sym("attached"), self.attached.load(Ordering::SeqCst));
            v.set(sym("console_uri"), &self.uri);
        }
        v.set(sym("time"), time);
        v
    }

    /// Its listener died.
    pub fn failed(&self) -> bool {
        self.error.load(Ordering::SeqCst)
    }

    /// Records that its listener died.
    pub fn fail(&self) {
        self.error.store(true, Ordering::SeqCst);
    }

    /// A connection from `ip` may present the secret: it comes from the requester's address.
    pub fn accepts_from(&self, ip: IpAddr) -> bool {
        ip.to_canonical() == self.peer
    }

    /// Consumes the secret when `presented` is it (compared in constant time).
    pub fn take_secret(&self, presented: &[u8]) -> bool {
        let mut secret = self.secret.lock().unwrap_or_else(|e| e.into_inner());
        let matches = secret.as_ref().is_some_and(|s| {
            s.len() == presented.len()
                && s.bytes()
                    .zip(presented)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if matches {
            *secret = None;
        }
        matches
    }

    /// Attaches a client: `None` when one already is.
    pub fn attach(self: &Arc<Self>) -> Option<Attached> {
        if self.attached.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(Attached(self.clone()))
    }

    /// When the console expires if nobody attaches; `None` while a client is attached.
    pub fn expiry(&self, timeout: Duration) -> Option<Instant> {
        if self.attached.load(Ordering::SeqCst) {
            return None;
        }
        Some(*self.idle_since.lock().unwrap_or_else(|e| e.into_inner()) + timeout)
    }

    /// Waits until the attached client leaves.
    pub async fn detached(&self) {
        self.detached.notified().await;
    }
}

/// An attached client; dropping it releases the "attached" flag, however the relay ends.
pub struct Attached(Arc<Console>);

impl Attached {
    /// The console.
    pub fn console(&self) -> &Console {
        &self.0
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.attached.store(false, Ordering::SeqCst);
        self.0.detached.notify_one();
    }
}
