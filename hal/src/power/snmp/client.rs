//! An SNMP manager over UDP: GET and SET of INTEGER variables through v2c or v3 (USM with engine
//! discovery), each request retransmitted on silence and matched to its reply by id.

use super::ber::Oid;
use super::pdu::{self, CommunityMessage, Pdu, PduKind, Value};
use super::usm::{AuthProtocol, LocalKeys, PrivProtocol};
use super::v3::{self, FLAG_AUTH, FLAG_PRIV, FLAG_REPORTABLE, ScopedPdu, UsmParams, V3Message};
use std::fmt;
use std::time::Duration;
use tokio::net::UdpSocket;

/// A v3 user.
#[derive(Clone, PartialEq, Eq)]
pub struct V3User {
    /// The user name.
    pub user: String,
    /// Authentication protocol and password.
    pub auth: AuthProtocol,
    /// The authentication password.
    pub auth_password: String,
    /// Privacy protocol and password, for authPriv.
    pub privacy: Option<(PrivProtocol, String)>,
    /// The contextName of the requests (empty on PDUs; agents serving several devices use it).
    pub context: String,
}

impl fmt::Debug for V3User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3User")
            .field("user", &self.user)
            .field("auth", &self.auth)
            .field("privacy", &self.privacy.as_ref().map(|(p, _)| p))
            .finish_non_exhaustive()
    }
}

/// How requests are secured.
#[derive(Clone, PartialEq, Eq)]
pub enum Security {
    /// SNMPv2c with a community.
    V2c {
        /// The community (the write community for SETs).
        community: String,
    },
    /// SNMPv3 authNoPriv or authPriv.
    V3(V3User),
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Security::V2c { .. } => f.write_str("V2c { community: <redacted> }"),
            Security::V3(u) => write!(f, "V3({u:?})"),
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    /// The address does not resolve or the socket failed.
    #[error("{target}: {source}")]
    Io {
        /// host:port.
        target: String,
        /// The error.
        source: std::io::Error,
    },
    /// No (valid) answer after every retransmission.
    #[error("{0}: no answer")]
    Timeout(String),
    /// The agent answered an error-status.
    #[error("{target}: {status} (error-status {code}) on binding {index}")]
    Agent {
        /// host:port.
        target: String,
        /// The error-status name.
        status: &'static str,
        /// The error-status.
        code: i64,
        /// The error-index.
        index: i64,
    },
    /// The agent refused the credentials (an authenticated Report, or a wrong digest in the answer).
    #[error("{0}: authentication refused ({1})")]
    Auth(String, String),
    /// The answer is not what was asked (a missing variable, an exception, a non-integer).
    #[error("{0}: {1}")]
    Unexpected(String, String),
}

/// Keeps answers to the last request only: the largest datagram read.
const RECV_BUFFER: usize = 65_536;

/// One agent.
#[derive(Clone, Debug)]
pub struct SnmpClient {
    /// host:port of the agent.
    pub target: String,
    /// Security.
    pub security: Security,
    /// Wait for each answer.
    pub timeout: Duration,
    /// Retransmissions after the first send.
    pub retries: u32,
}

impl SnmpClient {
    /// Reads INTEGER `oid`.
    pub async fn get_integer(&self, oid: &Oid) -> Result<i64, SnmpError> {
        let pdu = self
            .exchange(PduKind::Get, vec![(oid.clone(), Value::Null)])
            .await?;
        self.integer_of(&pdu, oid)
    }

    /// Writes INTEGER `value` to `oid`.
    pub async fn set_integer(&self, oid: &Oid, value: i64) -> Result<(), SnmpError> {
        let pdu = self
            .exchange(PduKind::Set, vec![(oid.clone(), Value::Integer(value))])
            .await?;
        self.integer_of(&pdu, oid).map(|_| ())
    }

    fn integer_of(&self, pdu: &Pdu, oid: &Oid) -> Result<i64, SnmpError> {
        if pdu.error_status != 0 {
            return Err(SnmpError::Agent {
                target: self.target.clone(),
                status: pdu::error_name(pdu.error_status),
                code: pdu.error_status,
                index: pdu.error_index,
            });
        }
        match pdu.bindings.iter().find(|(o, _)| o == oid) {
            Some((_, Value::Integer(v))) => Ok(*v),
            Some((_, other)) => Err(SnmpError::Unexpected(
                self.target.clone(),
                format!("{oid} is {other:?}, not an INTEGER"),
            )),
            None => Err(SnmpError::Unexpected(
                self.target.clone(),
                format!("the answer has no {oid}"),
            )),
        }
    }

    async fn socket(&self) -> Result<UdpSocket, SnmpError> {
        let io = |source| SnmpError::Io {
            target: self.target.clone(),
            source,
        };
        let addr = tokio::net::lookup_host(&self.target)
            .await
            .map_err(io)?
            .next()
            .ok_or_else(|| io(std::io::Error::other("no address")))?;
        let local = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = UdpSocket::bind(local).await.map_err(io)?;
        sock.connect(addr).await.map_err(io)?;
        Ok(sock)
    }

    /// Sends one request and returns the response PDU.
    async fn exchange(&self, kind: PduKind, bindings: Vec<(Oid, Value)>) -> Result<Pdu, SnmpError> {
        let sock = self.socket().await?;
        let request_id = random_id();
        let pdu = Pdu::request(kind, request_id, bindings);
        match &self.security {
            Security::V2c { community } => {
                let bytes = CommunityMessage {
                    version: 1,
                    community: community.as_bytes().to_vec(),
                    pdu,
                }
                .encode();
                self.round_trip(&sock, &bytes, |data| {
                    let m = CommunityMessage::decode(data).ok()?;
                    (m.pdu.request_id == request_id && m.pdu.kind == PduKind::Response)
                        .then_some(Ok(m.pdu))
                })
                .await
            }
            Security::V3(user) => self.exchange_v3(&sock, user, pdu).await,
        }
    }

    /// Sends `bytes` until `accept` takes an answer (it ignores what is not the answer with `None`).
    async fn round_trip<T>(
        &self,
        sock: &UdpSocket,
        bytes: &[u8],
        mut accept: impl FnMut(&[u8]) -> Option<Result<T, SnmpError>>,
    ) -> Result<T, SnmpError> {
        let mut buf = vec![0u8; RECV_BUFFER];
        for _ in 0..=self.retries {
            sock.send(bytes).await.map_err(|source| SnmpError::Io {
                target: self.target.clone(),
                source,
            })?;
            let deadline = tokio::time::Instant::now() + self.timeout;
            loop {
                let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                    Err(_) => break,
                    // ICMP port unreachable and the like: wait for the retransmission.
                    Ok(Err(_)) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    Ok(Ok(n)) => n,
                };
                if let Some(result) = accept(&buf[..n]) {
                    return result;
                }
            }
        }
        Err(SnmpError::Timeout(self.target.clone()))
    }

    /// v3: discovers the engine, then sends `pdu` authenticated (and encrypted); a not-in-time-window
    /// Report resynchronises once.
    async fn exchange_v3(
        &self,
        sock: &UdpSocket,
        user: &V3User,
        pdu: Pdu,
    ) -> Result<Pdu, SnmpError> {
        let mut engine = self.discover(sock).await?;
        let keys = LocalKeys::derive(
            user.auth,
            user.auth_password.as_bytes(),
            user.privacy.as_ref().map(|(_, p)| p.as_bytes()),
            &engine.engine_id,
        );
        let mut flags = FLAG_AUTH | FLAG_REPORTABLE;
        if user.privacy.is_some() {
            flags |= FLAG_PRIV;
        }
        for _attempt in 0..2 {
            let msg_id = random_id();
            let message = V3Message {
                msg_id,
                max_size: 65_507,
                flags,
                usm: UsmParams {
                    user: user.user.as_bytes().to_vec(),
                    ..engine.clone()
                },
                scoped: ScopedPdu {
                    context_engine_id: engine.engine_id.clone(),
                    context_name: user.context.as_bytes().to_vec(),
                    pdu: pdu.clone(),
                },
            };
            let bytes = v3::seal(&message, Some(&keys), random_salt());
            let answer = self
                .round_trip(sock, &bytes, |data| {
                    let received = v3::parse(data).ok()?;
                    if received.msg_id != msg_id {
                        return None;
                    }
                    Some(match received.open(Some(&keys)) {
                        Ok(m) => Ok(m),
                        Err(e) => Err(SnmpError::Auth(self.target.clone(), e.to_string())),
                    })
                })
                .await?;
            let scoped = answer.scoped.pdu;
            if scoped.kind == PduKind::Response {
                return Ok(scoped);
            }
            let counter = scoped
                .bindings
                .first()
                .and_then(|(oid, _)| v3::usm_stats_counter(oid));
            if counter == Some(v3::USM_STATS_NOT_IN_TIME_WINDOWS) {
                engine.boots = answer.usm.boots;
                engine.time = answer.usm.time;
                continue;
            }
            return Err(SnmpError::Auth(self.target.clone(), report_name(counter)));
        }
        Err(SnmpError::Auth(
            self.target.clone(),
            "not in time window twice".into(),
        ))
    }

    /// RFC 3414 4: an unauthenticated, reportable GET with no engine ID; the Report carries the agent's
    /// engine ID, boots and time.
    async fn discover(&self, sock: &UdpSocket) -> Result<UsmParams, SnmpError> {
        let msg_id = random_id();
        let probe = V3Message {
            msg_id,
            max_size: 65_507,
            flags: FLAG_REPORTABLE,
            usm: UsmParams::default(),
            scoped: ScopedPdu {
                context_engine_id: Vec::new(),
                context_name: Vec::new(),
                pdu: Pdu::request(PduKind::Get, random_id(), Vec::new()),
            },
        };
        let bytes = v3::seal(&probe, None, [0; 8]);
        self.round_trip(sock, &bytes, |data| {
            let received = v3::parse(data).ok()?;
            if received.msg_id != msg_id || received.usm.engine_id.is_empty() {
                return None;
            }
            Some(Ok(UsmParams {
                user: Vec::new(),
                ..received.usm
            }))
        })
        .await
    }
}

fn report_name(counter: Option<u32>) -> String {
    match counter {
        Some(v3::USM_STATS_UNKNOWN_USER_NAMES) => "unknown user name".into(),
        Some(v3::USM_STATS_WRONG_DIGESTS) => "wrong digest (authentication password)".into(),
        Some(v3::USM_STATS_DECRYPTION_ERRORS) => "decryption error (privacy password)".into(),
        Some(v3::USM_STATS_UNSUPPORTED_SEC_LEVELS) => "unsupported security level".into(),
        Some(v3::USM_STATS_UNKNOWN_ENGINE_IDS) => "unknown engine ID".into(),
        Some(n) => format!("report usmStats.{n}"),
        None => "unexpected report".into(),
    }
}

/// A positive random request or message id.
fn random_id() -> i32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    (u32::from_be_bytes(b) & 0x7fff_ffff) as i32
}

fn random_salt() -> [u8; 8] {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b
}
