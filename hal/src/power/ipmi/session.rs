//! An RMCP+ client session over UDP: pre-session discovery, the RAKP handshake, then authenticated and
//! encrypted IPMI commands with per-message timeouts and retransmissions.

use super::commands::*;
use super::crypto::{CipherSuite, SessionKeys, random_bytes};
use super::rakp::*;
use super::wire::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Why an IPMI exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpmiError {
    /// The BMC did not answer.
    #[error("no answer from the BMC at {addr} ({step}) after {tries} tries of {timeout:?}")]
    Unreachable {
        /// The BMC's address.
        addr: String,
        /// The step that got no answer.
        step: &'static str,
        /// Number of transmissions.
        tries: u32,
        /// Wait after each transmission.
        timeout: Duration,
    },
    /// The address does not resolve or no socket could be opened.
    #[error("cannot reach the BMC at {addr}: {reason}")]
    Address {
        /// The BMC's address.
        addr: String,
        /// The system's reason.
        reason: String,
    },
    /// The BMC refused the user or the password.
    #[error("IPMI authentication failed for user '{user}' at {addr}: {reason}")]
    Auth {
        /// The BMC's address.
        addr: String,
        /// The user name.
        user: String,
        /// What was wrong.
        reason: String,
    },
    /// The BMC answered something this client cannot use.
    #[error("IPMI protocol error with {addr}: {reason}")]
    Protocol {
        /// The BMC's address.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// A command completed with an error code.
    #[error("{command} failed at {addr}: {text} (completion code 0x{code:02x})")]
    Completion {
        /// The BMC's address.
        addr: String,
        /// The command's name.
        command: &'static str,
        /// The completion code.
        code: u8,
        /// Its meaning.
        text: &'static str,
    },
}

/// Where and as whom to open a session.
#[derive(Debug, Clone)]
pub struct SessionParams<'a> {
    /// BMC host name or address.
    pub host: &'a str,
    /// UDP port (623 on real BMCs).
    pub port: u16,
    /// User name (at most 16 bytes).
    pub user: &'a str,
    /// Password (at most 20 bytes).
    pub password: &'a str,
    /// Wait for an answer after each transmission.
    pub timeout: Duration,
    /// Retransmissions after the first try.
    pub retries: u32,
}

/// An established RMCP+ session.
#[derive(Debug)]
pub struct Session {
    sock: UdpSocket,
    addr: String,
    timeout: Duration,
    tries: u32,
    keys: SessionKeys,
    console_id: u32,
    bmc_id: u32,
    seq: u32,
    rq_seq: u8,
}

/// A UDP socket connected to the BMC, with the exchange logic shared by the handshake and the session.
#[derive(Clone, Copy)]
struct Link<'a> {
    sock: &'a UdpSocket,
    addr: &'a str,
    timeout: Duration,
    tries: u32,
}

impl Link<'_> {
    /// Sends `packet` up to `tries` times until `accept` takes a received packet.
    async fn exchange<T>(
        &self,
        step: &'static str,
        packet: &[u8],
        mut accept: impl FnMut(Packet) -> Option<T>,
    ) -> Result<T, IpmiError> {
        let mut buf = vec![0u8; 2048];
        for _ in 0..self.tries {
            // A send error (e.g. a refused port reported by ICMP) is like a lost datagram.
            let _ = self.sock.send(packet).await;
            let deadline = Instant::now() + self.timeout;
            loop {
                match tokio::time::timeout_at(deadline, self.sock.recv(&mut buf)).await {
                    Err(_) => break,
                    Ok(Err(_)) => {
                        tokio::time::sleep_until(
                            deadline.min(Instant::now() + Duration::from_millis(50)),
                        )
                        .await;
                    }
                    Ok(Ok(n)) => {
                        if let Ok(p) = decode(&buf[..n])
                            && let Some(t) = accept(p)
                        {
                            return Ok(t);
                        }
                    }
                }
            }
        }
        Err(IpmiError::Unreachable {
            addr: self.addr.to_string(),
            step,
            tries: self.tries,
            timeout: self.timeout,
        })
    }

    fn protocol(&self, reason: impl Into<String>) -> IpmiError {
        IpmiError::Protocol {
            addr: self.addr.to_string(),
            reason: reason.into(),
        }
    }

    /// A pre-session IPMI command, in IPMI 1.5 (`v15`) or 2.0 unauthenticated format.
    async fn presession(
        &self,
        v15: bool,
        req: &Request,
        step: &'static str,
    ) -> Result<Response, IpmiError> {
        let packet = if v15 {
            encode_v15(0, 0, &req.encode())
        } else {
            encode_v2(PAYLOAD_IPMI, 0, 0, &req.encode(), None)
        };
        self.exchange(step, &packet, |p| {
            let msg = match p {
                Packet::V15(v) => v.message,
                Packet::V2(v) if v.payload_type == PAYLOAD_IPMI && v.session_id == 0 => {
                    v.open(None).ok()?
                }
                _ => return None,
            };
            Response::decode(&msg)
                .ok()
                .filter(|r| r.cmd == req.cmd && r.rq_seq == req.rq_seq)
        })
        .await
    }
}

impl Session {
    /// Opens a session: Get Channel Authentication Capabilities, Get Channel Cipher Suites (the best of 17
    /// and 3 wins), Open Session, RAKP 1-4, Set Session Privilege Level (administrator).
    pub async fn open(p: &SessionParams<'_>) -> Result<Session, IpmiError> {
        let addr = format!("{}:{}", p.host, p.port);
        let address_error = |reason: String| IpmiError::Address {
            addr: addr.clone(),
            reason,
        };
        let target: SocketAddr = tokio::net::lookup_host((p.host, p.port))
            .await
            .map_err(|e| address_error(e.to_string()))?
            .next()
            .ok_or_else(|| address_error("no address".into()))?;
        let bind: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .unwrap_or_else(|_| unreachable!());
        let sock = UdpSocket::bind(bind)
            .await
            .map_err(|e| address_error(e.to_string()))?;
        sock.connect(target)
            .await
            .map_err(|e| address_error(e.to_string()))?;
        if p.user.len() > 16 || p.password.len() > 20 {
            return Err(IpmiError::Auth {
                addr,
                user: p.user.into(),
                reason: "user names have at most 16 bytes and passwords at most 20".into(),
            });
        }
        let link = Link {
            sock: &sock,
            addr: &addr,
            timeout: p.timeout,
            tries: p.retries + 1,
        };
        let suite = Self::discover(&link).await?;
        let (keys, console_id, bmc_id) = Self::handshake(&link, p, suite).await?;
        let mut s = Session {
            addr: addr.clone(),
            timeout: p.timeout,
            tries: p.retries + 1,
            keys,
            console_id,
            bmc_id,
            seq: 0,
            rq_seq: 0,
            sock,
        };
        s.command(
            NETFN_APP,
            CMD_SET_SESSION_PRIVILEGE,
            &[PRIV_ADMIN],
            "Set Session Privilege Level",
        )
        .await?;
        Ok(s)
    }

    async fn discover(link: &Link<'_>) -> Result<CipherSuite, IpmiError> {
        let caps = Request {
            netfn: NETFN_APP,
            cmd: CMD_GET_CHANNEL_AUTH_CAPS,
            rq_seq: 0,
            data: vec![CHANNEL_CURRENT | 0x80, PRIV_ADMIN],
        };
        let r = link
            .presession(true, &caps, "Get Channel Authentication Capabilities")
            .await?;
        if r.completion != CC_OK || !parse_auth_caps_v2(&r.data).unwrap_or(false) {
            return Err(link.protocol("the BMC does not support IPMI v2.0 / RMCP+"));
        }
        let suites = Request {
            netfn: NETFN_APP,
            cmd: CMD_GET_CHANNEL_CIPHER_SUITES,
            rq_seq: 0,
            data: vec![CHANNEL_CURRENT, 0x00, 0x80],
        };
        // Some BMCs (OpenIPMI's ipmi_sim) ignore this pre-session query: one try, then suite 3, which
        // every RMCP+ BMC must offer.
        let once = Link { tries: 1, ..*link };
        let mut ids = Vec::new();
        for index in 0..8u8 {
            let mut req = suites.clone();
            req.data[2] = 0x80 | index;
            let Ok(r) = once
                .presession(false, &req, "Get Channel Cipher Suites")
                .await
            else {
                break;
            };
            if r.completion != CC_OK || r.data.is_empty() {
                break;
            }
            ids.extend_from_slice(&r.data[1..]);
            if r.data.len() < 17 {
                break;
            }
        }
        let listed = parse_cipher_suite_records(&ids).unwrap_or_default();
        Ok(CipherSuite::PREFERRED
            .into_iter()
            .find(|s| listed.contains(&s.id()))
            .unwrap_or(CipherSuite::Suite3))
    }

    /// Opens an RMCP+ session with `suite` and authenticates (RAKP 1-4); the session keys and the
    /// console's and the BMC's session ids.
    async fn handshake(
        link: &Link<'_>,
        p: &SessionParams<'_>,
        suite: CipherSuite,
    ) -> Result<(SessionKeys, u32, u32), IpmiError> {
        let console_id = u32::from_le_bytes(random_bytes::<4>()) | 1;
        let bmc_id = Self::open_session(link, suite, console_id).await?;
        let keys = Self::rakp(link, p, suite, console_id, bmc_id).await?;
        Ok((keys, console_id, bmc_id))
    }

    /// Open Session: proposes `suite`'s algorithms for the session `console_id`; the BMC's session id.
    async fn open_session(
        link: &Link<'_>,
        suite: CipherSuite,
        console_id: u32,
    ) -> Result<u32, IpmiError> {
        let open = OpenSessionRequest {
            tag: 0,
            max_privilege: 0,
            console_id,
            algorithms: suite.algorithms(),
        };
        let packet = encode_v2(PAYLOAD_OPEN_SESSION_REQUEST, 0, 0, &open.encode(), None);
        let resp = link
            .exchange("Open Session", &packet, |p| match p {
                Packet::V2(v) if v.payload_type == PAYLOAD_OPEN_SESSION_RESPONSE => {
                    OpenSessionResponse::decode(&v.open(None).ok()?)
                        .ok()
                        .filter(|r| r.console_id == console_id)
                }
                _ => None,
            })
            .await?;
        if resp.status != STATUS_OK {
            return Err(link.protocol(format!(
                "Open Session refused: {}",
                status_text(resp.status)
            )));
        }
        if resp.algorithms != suite.algorithms() {
            return Err(link.protocol(format!(
                "BMC chose other algorithms than cipher suite {}",
                suite.id()
            )));
        }
        Ok(resp.bmc_id)
    }

    /// RAKP 1-4: proves both sides know the password and derives the session keys.
    async fn rakp(
        link: &Link<'_>,
        p: &SessionParams<'_>,
        suite: CipherSuite,
        console_id: u32,
        bmc_id: u32,
    ) -> Result<SessionKeys, IpmiError> {
        let auth_error = |reason: String| IpmiError::Auth {
            addr: link.addr.to_string(),
            user: p.user.to_string(),
            reason,
        };
        let console_rand = random_bytes::<16>();
        let role = PRIV_ADMIN | 0x10;
        let user = p.user.as_bytes().to_vec();
        let m1 = Rakp1 {
            tag: 1,
            bmc_id,
            console_rand,
            role,
            user: user.clone(),
        };
        let packet = encode_v2(PAYLOAD_RAKP1, 0, 0, &m1.encode(), None);
        let m2 = link
            .exchange("RAKP 1", &packet, |p| match p {
                Packet::V2(v) if v.payload_type == PAYLOAD_RAKP2 => {
                    Rakp2::decode(&v.open(None).ok()?)
                        .ok()
                        .filter(|r| r.console_id == console_id)
                }
                _ => None,
            })
            .await?;
        if m2.status != STATUS_OK {
            return Err(auth_error(format!(
                "the BMC answered RAKP 2 with '{}'",
                status_text(m2.status)
            )));
        }
        let hs = Handshake {
            suite,
            console_id,
            bmc_id,
            console_rand,
            bmc_rand: m2.bmc_rand,
            bmc_guid: m2.bmc_guid,
            role,
            user,
        };
        let password = p.password.as_bytes();
        if !codes_match(&hs.rakp2_code(password), &m2.auth_code) {
            // Tell the BMC, as ipmitool does, then give up.
            let m3 = Rakp3 {
                tag: 2,
                status: STATUS_INVALID_ICV,
                bmc_id,
                auth_code: Vec::new(),
            };
            let _ = link
                .sock
                .send(&encode_v2(PAYLOAD_RAKP3, 0, 0, &m3.encode(), None))
                .await;
            return Err(auth_error(
                "wrong password (the RAKP 2 HMAC does not match)".into(),
            ));
        }
        let keys = hs.keys(password);
        let m3 = Rakp3 {
            tag: 2,
            status: STATUS_OK,
            bmc_id,
            auth_code: hs.rakp3_code(password),
        };
        let packet = encode_v2(PAYLOAD_RAKP3, 0, 0, &m3.encode(), None);
        let m4 = link
            .exchange("RAKP 3", &packet, |p| match p {
                Packet::V2(v) if v.payload_type == PAYLOAD_RAKP4 => {
                    Rakp4::decode(&v.open(None).ok()?)
                        .ok()
                        .filter(|r| r.console_id == console_id)
                }
                _ => None,
            })
            .await?;
        if m4.status != STATUS_OK {
            return Err(auth_error(format!(
                "the BMC answered RAKP 4 with '{}'",
                status_text(m4.status)
            )));
        }
        if !codes_match(&hs.rakp4_icv(&keys.sik), &m4.icv) {
            return Err(link.protocol("the RAKP 4 integrity check value does not match"));
        }
        Ok(keys)
    }

    /// The BMC's address (`host:port`), for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs one IPMI command in the session and returns its response data (completion code checked).
    pub async fn command(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
        name: &'static str,
    ) -> Result<Vec<u8>, IpmiError> {
        self.rq_seq = (self.rq_seq + 1) & 0x3f;
        self.seq = self.seq.wrapping_add(1).max(1);
        let req = Request {
            netfn,
            cmd,
            rq_seq: self.rq_seq,
            data: data.to_vec(),
        };
        let packet = encode_v2(
            PAYLOAD_IPMI,
            self.bmc_id,
            self.seq,
            &req.encode(),
            Some(&self.keys),
        );
        let link = Link {
            sock: &self.sock,
            addr: &self.addr,
            timeout: self.timeout,
            tries: self.tries,
        };
        let (console_id, keys) = (self.console_id, &self.keys);
        let resp = link
            .exchange(name, &packet, |p| match p {
                Packet::V2(v) if v.payload_type == PAYLOAD_IPMI && v.session_id == console_id => {
                    let r = Response::decode(&v.open(Some(keys)).ok()?).ok()?;
                    (r.cmd == req.cmd && r.rq_seq == req.rq_seq).then_some(r)
                }
                _ => None,
            })
            .await?;
        if resp.completion != CC_OK {
            return Err(IpmiError::Completion {
                addr: self.addr.clone(),
                command: name,
                code: resp.completion,
                text: completion_text(resp.completion),
            });
        }
        Ok(resp.data)
    }

    /// Reads whether the chassis power is on.
    pub async fn chassis_power_on(&mut self) -> Result<bool, IpmiError> {
        let data = self
            .command(
                NETFN_CHASSIS,
                CMD_GET_CHASSIS_STATUS,
                &[],
                "Get Chassis Status",
            )
            .await?;
        parse_chassis_status(&data).map_err(|e| IpmiError::Protocol {
            addr: self.addr.clone(),
            reason: e.to_string(),
        })
    }

    /// Sends a Chassis Control operation.
    pub async fn chassis_control(&mut self, op: ChassisControl) -> Result<(), IpmiError> {
        self.command(
            NETFN_CHASSIS,
            CMD_CHASSIS_CONTROL,
            &[op.code()],
            "Chassis Control",
        )
        .await
        .map(|_| ())
    }

    /// Closes the session (one try: the BMC expires forgotten sessions anyway).
    pub async fn close(mut self) {
        self.tries = 1;
        self.timeout = self.timeout.min(Duration::from_millis(500));
        let id = self.bmc_id.to_le_bytes();
        let _ = self
            .command(NETFN_APP, CMD_CLOSE_SESSION, &id, "Close Session")
            .await;
    }
}
