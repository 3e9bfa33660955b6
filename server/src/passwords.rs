//! HTTP Basic passwords (spec §3.2): the htpasswd hashes (bcrypt `$2a$`/`$2b$`/`$2y$`, `{SHA}`, or plain)
//! checked off the request path. bcrypt runs on tokio's blocking pool, at most [`MAX_RUNNING`] at once with at
//! most [`MAX_QUEUED`] more waiting (beyond that the request is answered at once, "busy"), and a successful
//! check is remembered for [`CACHE_TTL`] (keyed by a SHA-256 of user, password and stored hash; at most
//! [`CACHE_SIZE`] entries), so a flood of wrong passwords cannot stall the server's other requests. Empty
//! passwords and empty hashes never match.

use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// bcrypt checks running at once.
pub const MAX_RUNNING: usize = 2;

/// bcrypt checks waiting for a slot; more are refused at once.
pub const MAX_QUEUED: usize = 16;

/// How long a successful check is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Remembered successful checks.
pub const CACHE_SIZE: usize = 1024;

/// Why a password could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too many bcrypt checks are running or waiting.
    #[error("too many password checks in progress, retry later")]
    Busy,
    /// The htpasswd file cannot be read (the detail is logged, not answered).
    #[error("the password file cannot be read")]
    Database,
}

/// The password checker of one server: limits and cache.
#[derive(Debug)]
pub struct Passwords {
    running: Arc<Semaphore>,
    max_running: usize,
    max_queued: usize,
    /// Checks running or waiting.
    pending: AtomicUsize,
    /// Expiry of each remembered success.
    cache: Mutex<BTreeMap<[u8; 32], Instant>>,
    bcrypt_runs: AtomicU64,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords::with_limits(MAX_RUNNING, MAX_QUEUED)
    }
}

/// Decrements the pending count when a check ends (also when its request is dropped).
struct Pending<'a>(&'a AtomicUsize);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

/// Equality whose time does not depend on where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `password` against one htpasswd hash (synchronously, bcrypt included). Empty passwords, empty
/// hashes and unsupported `$…$` schemes never match.
pub fn check_hash(hash: &str, password: &str) -> bool {
    if password.is_empty() || hash.is_empty() {
        false
    } else if is_bcrypt(hash) {
        bcrypt::verify(password, hash).unwrap_or(false)
    } else if let Some(b64) = hash.strip_prefix("{SHA}") {
        let digest = Sha1::digest(password.as_bytes());
        let mine = base64::engine::general_purpose::STANDARD.encode(digest);
        same(mine.as_bytes(), b64.as_bytes())
    } else if hash.starts_with('$') {
        false
    } else {
        same(hash.as_bytes(), password.as_bytes())
    }
}

impl Passwords {
    /// A checker running at most `running` bcrypt checks with at most `queued` more waiting.
    pub fn with_limits(running: usize, queued: usize) -> Passwords {
        Passwords {
            running: Arc::new(Semaphore::new(running.max(1))),
            max_running: running.max(1),
            max_queued: queued,
            pending: AtomicUsize::new(0),
            cache: Mutex::new(BTreeMap::new()),
            bcrypt_runs: AtomicU64::new(0),
        }
    }

    /// bcrypt checks run so far (cache hits and cheap hashes excluded).
    pub fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(Ordering::SeqCst)
    }

    /// Checks `user`'s `password` against the first line of `user` in the htpasswd file `dbfile`.
    pub async fn check(
        &self,
        dbfile: &Path,
        user: &str,
        password: &str,
    ) -> Result<bool, PasswordError> {
        if user.is_empty() || password.is_empty() {
            return Ok(false);
        }
        let db = tokio::fs::read_to_string(dbfile).await.map_err(|e| {
            tracing::error!("reading the htpasswd file {}: {e}", dbfile.display());
            PasswordError::Database
        })?;
        let Some(hash) = db
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(u, _)| *u == user)
            .map(|(_, h)| h.trim().to_string())
        else {
            return Ok(false);
        };
        if hash.is_empty() {
            return Ok(false);
        }
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        if self.remembered(&key) {
            return Ok(true);
        }
        let ok = if is_bcrypt(&hash) {
            self.bcrypt(hash, password.to_string()).await?
        } else {
            check_hash(&hash, password)
        };
        if ok {
            self.remember(key);
        }
        Ok(ok)
    }

    /// One bcrypt check on the blocking pool, within the limits.
    async fn bcrypt(&self, hash: String, password: String) -> Result<bool, PasswordError> {
        let before = self.pending.fetch_add(1, Ordering::SeqCst);
        let _pending = Pending(&self.pending);
        if before >= self.max_running + self.max_queued {
            return Err(PasswordError::Busy);
        }
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Busy)?;
        self.bcrypt_runs.fetch_add(1, Ordering::SeqCst);
        // The permit moves into the task: a dropped request still holds its slot until bcrypt ends.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check_hash(&hash, &password)
        })
        .await
        .map_err(|_| PasswordError::Busy)
    }

    fn remembered(&self, key: &[u8; 32]) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).is_some_and(|until| *until > Instant::now())
    }

    fn remember(&self, key: [u8; 32]) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_SIZE {
            cache.retain(|_, until| *until > now);
        }
        if cache.len() >= CACHE_SIZE
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| *k)
        {
            cache.remove(&oldest);
        }
        cache.insert(key, now + CACHE_TTL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(name: &str, text: &str) -> std::path::PathBuf {
        let p =
            std::env::temp_dir().join(format!("kadeploy-htpasswd-{name}-{}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn htpasswd_hashes() {
        let b = bcrypt::hash("secret", 4).unwrap();
        assert!(check_hash(&b, "secret"));
        assert!(!check_hash(&b, "wrong"));
        assert!(check_hash("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret"));
        assert!(!check_hash("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secreT"));
        assert!(check_hash("plain", "plain"));
        // Before: an empty hash matched the empty password, and an unknown scheme was compared as plain text.
        assert!(!check_hash("", ""));
        assert!(!check_hash("$apr1$x$y", "$apr1$x$y"));
    }

    #[tokio::test]
    async fn successes_are_remembered_and_empty_passwords_refused() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let file = db("cache", &format!("alice:{hash}\nbob:\n"));
        let p = Passwords::default();
        assert!(p.check(&file, "alice", "secret").await.unwrap());
        assert!(p.check(&file, "alice", "secret").await.unwrap());
        assert_eq!(p.bcrypt_runs(), 1, "the second success came from the cache");
        assert!(!p.check(&file, "alice", "wrong").await.unwrap());
        assert!(!p.check(&file, "alice", "wrong").await.unwrap());
        assert_eq!(p.bcrypt_runs(), 3, "failures are never remembered");
        assert!(!p.check(&file, "bob", "").await.unwrap());
        assert!(!p.check(&file, "bob", "x").await.unwrap());
        assert!(!p.check(&file, "carol", "secret").await.unwrap());
        let _ = std::fs::remove_file(&file);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_beyond_the_queue_are_refused_at_once() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let file = db("busy", &format!("alice:{hash}\n"));
        let p = Arc::new(Passwords::with_limits(1, 1));
        // The only slot is taken: the two checks below wait.
        let slot = p.running.clone().acquire_owned().await.unwrap();
        let (f1, f2) = (file.clone(), file.clone());
        let (p1, p2) = (p.clone(), p.clone());
        let a = tokio::spawn(async move { p1.check(&f1, "alice", "w1").await });
        let b = tokio::spawn(async move { p2.check(&f2, "alice", "w2").await });
        while p.pending.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            p.check(&file, "alice", "w3").await,
            Err(PasswordError::Busy)
        ));
        assert_eq!(p.bcrypt_runs(), 0);
        drop(slot);
        assert!(!a.await.unwrap().unwrap());
        assert!(!b.await.unwrap().unwrap());
        assert_eq!(p.bcrypt_runs(), 2);
        let _ = std::fs::remove_file(&file);
    }
}
