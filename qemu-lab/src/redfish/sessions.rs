//! The Redfish service's sessions and authentication: HTTP Basic or an `X-Auth-Token` of a live session;
//! at most [`MAX_SESSIONS`] sessions (the oldest goes first), each ending after [`SESSION_TIMEOUT`] idle.

use std::time::{Duration, Instant};

/// Most sessions kept.
pub const MAX_SESSIONS: usize = 16;
/// Idle time after which a session ends.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(1800);

/// One session.
#[derive(Debug, Clone)]
struct Session {
    id: u64,
    token: String,
    last_used: Instant,
}

/// The credentials and the sessions.
#[derive(Debug)]
pub struct Sessions {
    user: String,
    password: String,
    sessions: Vec<Session>,
    next_id: u64,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// No session yet.
    pub fn new(user: &str, password: &str) -> Sessions {
        Sessions {
            user: user.into(),
            password: password.into(),
            sessions: Vec::new(),
            next_id: 1,
        }
    }

    /// True when `user` and `password` are the service's.
    pub fn credentials_match(&self, user: &str, password: &str) -> bool {
        // Both compared in full: no early exit on the user name.
        let u = constant_time_eq(user.as_bytes(), self.user.as_bytes());
        let p = constant_time_eq(password.as_bytes(), self.password.as_bytes());
        u & p
    }

    /// True when the `Authorization: Basic` value carries the service's credentials.
    pub fn basic_matches(&self, header: &str) -> bool {
        use base64::Engine as _;
        let Some(encoded) = header.strip_prefix("Basic ") else {
            return false;
        };
        if encoded.len() > 1024 {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        text.split_once(':')
            .is_some_and(|(u, p)| self.credentials_match(u, p))
    }

    /// Opens a session; its id and token.
    pub fn open(&mut self) -> (u64, String) {
        self.expire();
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.remove(0);
        }
        let mut raw = [0u8; 24];
        let _ = getrandom::fill(&mut raw);
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let id = self.next_id;
        self.next_id += 1;
        self.sessions.push(Session {
            id,
            token: token.clone(),
            last_used: Instant::now(),
        });
        (id, token)
    }

    /// True when `token` is a live session's (which it keeps alive).
    pub fn token_valid(&mut self, token: &str) -> bool {
        self.expire();
        match self
            .sessions
            .iter_mut()
            .find(|s| constant_time_eq(s.token.as_bytes(), token.as_bytes()))
        {
            Some(s) => {
                s.last_used = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Closes session `id`; false when there is none.
    pub fn close(&mut self, id: u64) -> bool {
        let before = self.sessions.len();
        self.sessions.retain(|s| s.id != id);
        self.sessions.len() != before
    }

    /// The ids of the live sessions.
    pub fn ids(&mut self) -> Vec<u64> {
        self.expire();
        self.sessions.iter().map(|s| s.id).collect()
    }

    fn expire(&mut self) {
        self.sessions
            .retain(|s| s.last_used.elapsed() < SESSION_TIMEOUT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_closed() {
        let mut s = Sessions::new("admin", "pw");
        let tokens: Vec<(u64, String)> = (0..MAX_SESSIONS + 3).map(|_| s.open()).collect();
        assert_eq!(s.ids().len(), MAX_SESSIONS);
        assert!(!s.token_valid(&tokens[0].1), "the oldest went first");
        let (id, token) = tokens.last().unwrap().clone();
        assert!(s.token_valid(&token));
        assert!(s.close(id));
        assert!(!s.token_valid(&token));
        assert!(!s.close(id));
    }

    #[test]
    fn basic_authentication() {
        let s = Sessions::new("admin", "pw");
        assert!(s.basic_matches("Basic YWRtaW46cHc=")); // admin:pw
        assert!(!s.basic_matches("Basic YWRtaW46cHg=")); // admin:px
        assert!(!s.basic_matches("Bearer YWRtaW46cHc="));
        assert!(!s.basic_matches("Basic !!!"));
        assert!(!s.basic_matches(&format!("Basic {}", "A".repeat(5000))));
    }
}
