//! The BMC's UDP loop: RMCP presence pings, pre-session commands, the RMCP+ handshake and the
//! authenticated chassis commands that drive the VM.

use super::sessions::{Sessions, Stage};
use super::vm::Vm;
use hal::power::ipmi::commands::*;
use hal::power::ipmi::crypto::CipherSuite;
use hal::power::ipmi::rakp::*;
use hal::power::ipmi::wire::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

/// How long a chassis control waits for its action before answering (the action goes on afterwards).
const ACTION_WAIT: Duration = Duration::from_millis(1500);

/// A BMC serving one VM.
pub struct Server {
    sock: UdpSocket,
    sessions: Sessions,
    vm: Arc<Vm>,
    actions: Arc<tokio::sync::Mutex<()>>,
}

impl Server {
    /// A server on a bound socket.
    pub fn new(sock: UdpSocket, user: &str, password: &str, vm: Vm) -> Self {
        Server {
            sock,
            sessions: Sessions::new(user, password),
            vm: Arc::new(vm),
            actions: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Serves datagrams until the socket fails.
    pub async fn serve(mut self) -> std::io::Result<()> {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, peer) = self.sock.recv_from(&mut buf).await?;
            let packet = match decode(&buf[..n]) {
                Ok(p) => p,
                Err(e) => {
                    debug!(%peer, "dropped packet: {e}");
                    continue;
                }
            };
            if let Some(reply) = self.handle(packet).await
                && let Err(e) = self.sock.send_to(&reply, peer).await
            {
                warn!(%peer, "send failed: {e}");
            }
        }
    }

    async fn handle(&mut self, packet: Packet) -> Option<Vec<u8>> {
        match packet {
            Packet::Ping(tag) => Some(encode_pong(tag)),
            Packet::Pong(..) => None,
            Packet::V15(v) => {
                let req = Request::decode(&v.message).ok()?;
                let resp = self.presession(&req);
                Some(encode_v15(0, 0, &resp.encode()))
            }
            Packet::V2(v) => match v.payload_type {
                PAYLOAD_IPMI if v.session_id == 0 => {
                    let req = Request::decode(&v.open(None).ok()?).ok()?;
                    let resp = self.presession(&req);
                    Some(encode_v2(PAYLOAD_IPMI, 0, 0, &resp.encode(), None))
                }
                PAYLOAD_IPMI => self.in_session(&v).await,
                PAYLOAD_OPEN_SESSION_REQUEST => {
                    let req = OpenSessionRequest::decode(&v.open(None).ok()?).ok()?;
                    let resp = self.sessions.open(&req);
                    Some(encode_v2(
                        PAYLOAD_OPEN_SESSION_RESPONSE,
                        0,
                        0,
                        &resp.encode(),
                        None,
                    ))
                }
                PAYLOAD_RAKP1 => {
                    let m1 = Rakp1::decode(&v.open(None).ok()?).ok()?;
                    let m2 = self.sessions.rakp1(&m1);
                    Some(encode_v2(PAYLOAD_RAKP2, 0, 0, &m2.encode(), None))
                }
                PAYLOAD_RAKP3 => {
                    let m3 = Rakp3::decode(&v.open(None).ok()?).ok()?;
                    let m4 = self.sessions.rakp3(&m3)?;
                    Some(encode_v2(PAYLOAD_RAKP4, 0, 0, &m4.encode(), None))
                }
                _ => None,
            },
        }
    }

    /// Commands answered outside a session.
    fn presession(&self, req: &Request) -> Response {
        match (req.netfn, req.cmd) {
            (NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS) => {
                let v2 = req.data.first().is_some_and(|c| c & 0x80 != 0);
                req.respond(CC_OK, auth_caps_data(1, v2))
            }
            (NETFN_APP, CMD_GET_CHANNEL_CIPHER_SUITES) => {
                let index = req.data.get(2).map_or(0, |b| b & 0x3f) as usize;
                let records = cipher_suite_records(&CipherSuite::PREFERRED);
                let mut data = vec![1];
                data.extend(records.iter().skip(index * 16).take(16));
                req.respond(CC_OK, data)
            }
            _ => req.respond(CC_INVALID_SESSION, Vec::new()),
        }
    }

    async fn in_session(&mut self, v: &V2Packet) -> Option<Vec<u8>> {
        let s = self.sessions.table.get(&v.session_id)?;
        let Stage::Active(keys) = &s.stage else {
            return None;
        };
        let keys = keys.clone();
        let plain = match v.open(Some(&keys)) {
            Ok(p) => p,
            Err(e) => {
                warn!(session = v.session_id, "dropped session packet: {e}");
                return None;
            }
        };
        // A retransmission (same request message: same rqSeq, command and data) gets the same reply,
        // so a chassis command never runs twice.
        if let Some((last, reply)) = &s.last
            && *last == plain
        {
            info!(session = v.session_id, "retransmission answered from cache");
            return Some(reply.clone());
        }
        let req = Request::decode(&plain).ok()?;
        let (resp, close) = self.command(&req).await;
        let s = self.sessions.table.get_mut(&v.session_id)?;
        s.out_seq = s.out_seq.wrapping_add(1).max(1);
        let reply = encode_v2(
            PAYLOAD_IPMI,
            s.console_id,
            s.out_seq,
            &resp.encode(),
            Some(&keys),
        );
        s.last = Some((plain, reply.clone()));
        if close {
            info!(session = v.session_id, "session closed");
            self.sessions.table.remove(&v.session_id);
        }
        Some(reply)
    }

    /// Runs one in-session command; the flag asks to drop the session after replying.
    async fn command(&mut self, req: &Request) -> (Response, bool) {
        match (req.netfn, req.cmd) {
            (NETFN_APP, CMD_SET_SESSION_PRIVILEGE) => {
                let level = req
                    .data
                    .first()
                    .copied()
                    .filter(|&l| l != 0)
                    .unwrap_or(PRIV_ADMIN);
                (req.respond(CC_OK, vec![level.min(PRIV_ADMIN)]), false)
            }
            (NETFN_APP, CMD_CLOSE_SESSION) => (req.respond(CC_OK, Vec::new()), true),
            (NETFN_APP, CMD_GET_DEVICE_ID) => (req.respond(CC_OK, device_id_data()), false),
            (NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS | CMD_GET_CHANNEL_CIPHER_SUITES) => {
                (self.presession(req), false)
            }
            (NETFN_CHASSIS, CMD_GET_CHASSIS_STATUS) => {
                let on = self.vm.is_on();
                info!("chassis status: power {}", if on { "on" } else { "off" });
                (req.respond(CC_OK, chassis_status_data(on)), false)
            }
            (NETFN_CHASSIS, CMD_CHASSIS_CONTROL) => {
                let Some(op) = req.data.first().and_then(|&c| ChassisControl::from_code(c)) else {
                    return (req.respond(CC_INVALID_DATA, Vec::new()), false);
                };
                (req.respond(self.control(op).await, Vec::new()), false)
            }
            _ => {
                debug!(netfn = req.netfn, cmd = req.cmd, "unsupported command");
                (req.respond(CC_INVALID_COMMAND, Vec::new()), false)
            }
        }
    }

    /// Starts a chassis action (serialised with the others) and waits a little for it.
    async fn control(&self, op: ChassisControl) -> u8 {
        info!(?op, "chassis control");
        let (vm, lock) = (self.vm.clone(), self.actions.clone());
        let task = tokio::spawn(async move {
            let _guard = lock.lock().await;
            let result = match op {
                ChassisControl::PowerUp => vm.power_on().await,
                ChassisControl::PowerDown | ChassisControl::SoftShutdown => vm.power_off().await,
                ChassisControl::PowerCycle => vm.cycle().await,
                ChassisControl::HardReset => vm.reset().await,
            };
            if let Err(e) = &result {
                warn!(?op, "chassis control failed: {e}");
            }
            result.is_ok()
        });
        match tokio::time::timeout(ACTION_WAIT, task).await {
            Ok(Ok(true)) => CC_OK,
            Ok(_) => CC_UNSPECIFIED,
            // Still running: accepted, as a real BMC would.
            Err(_) => CC_OK,
        }
    }
}
