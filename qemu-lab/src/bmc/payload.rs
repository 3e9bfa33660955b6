//! Serial-over-LAN in the BMC's loop: Activate/Deactivate Payload and Get Payload Activation Status,
//! SOL packets from the console (input for the VM, acknowledgements), the VM's output sent as SOL
//! packets, retransmissions, and the end of a payload whose console went silent or whose session closed.

use super::serial::SerialLink;
use super::sessions::Sessions;
use super::sol::{Inbound, MAX_PAYLOAD, PAYLOAD_SOL, Sol, SolPacket};
use hal::power::ipmi::commands::{CC_BAD_LENGTH, CC_INVALID_DATA, CC_OK};
use hal::power::ipmi::wire::{V2Packet, encode_v2};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

/// App: Activate Payload.
pub const CMD_ACTIVATE_PAYLOAD: u8 = 0x48;
/// App: Deactivate Payload.
pub const CMD_DEACTIVATE_PAYLOAD: u8 = 0x49;
/// App: Get Payload Activation Status.
pub const CMD_GET_PAYLOAD_STATUS: u8 = 0x4a;
/// Completion code of Activate Payload: already active (of Deactivate Payload: already inactive).
const CC_PAYLOAD_ACTIVE: u8 = 0x80;
/// Completion code of Activate Payload: the payload type is disabled.
const CC_PAYLOAD_DISABLED: u8 = 0x81;
/// A payload whose session sent nothing for this long is deactivated and its session closed
/// (`ipmitool` sends a keepalive every 15 s; a killed one sends nothing).
pub const SOL_IDLE: Duration = Duration::from_secs(45);

/// What SOL packets go through: the BMC's socket and its sessions (keys, sequence numbers).
pub struct Wire<'a> {
    /// The BMC's socket.
    pub sock: &'a UdpSocket,
    /// The BMC's sessions.
    pub sessions: &'a mut Sessions,
}

impl Wire<'_> {
    /// Seals `packet` in `session` and sends it to the console at `peer`.
    async fn send(&mut self, session: u32, peer: SocketAddr, packet: &SolPacket) {
        let Some(keys) = self.sessions.keys(session) else {
            return;
        };
        let Some(s) = self.sessions.table.get_mut(&session) else {
            return;
        };
        s.out_seq = s.out_seq.wrapping_add(1).max(1);
        let datagram = encode_v2(
            PAYLOAD_SOL,
            s.console_id,
            s.out_seq,
            &packet.encode(),
            Some(&keys),
        );
        if let Err(e) = self.sock.send_to(&datagram, peer).await {
            warn!(%peer, "SOL send failed: {e}");
        }
    }
}

/// The active payload: its state, the serial link and the console's address.
#[derive(Debug)]
struct Active {
    state: Sol,
    link: SerialLink,
    peer: SocketAddr,
    heard: Instant,
}

/// The BMC's one SOL instance.
#[derive(Debug)]
pub struct SolPort {
    /// The VM's serial socket (none: SOL disabled).
    serial: Option<PathBuf>,
    /// The UDP port SOL runs on (the BMC's).
    port: u16,
    active: Option<Active>,
}

/// Checks the payload type and instance of Activate/Deactivate Payload (`[type, instance, aux × 4]`).
fn sol_request(data: &[u8]) -> Result<(), u8> {
    let [kind, instance, _, _, _, _] = data else {
        return Err(CC_BAD_LENGTH);
    };
    if kind & 0x3f != PAYLOAD_SOL || instance & 0x0f != 1 {
        return Err(CC_INVALID_DATA);
    }
    Ok(())
}

impl SolPort {
    /// SOL on the serial socket `serial` (none: disabled), served on UDP port `port`.
    pub fn new(serial: Option<PathBuf>, port: u16) -> SolPort {
        SolPort {
            serial,
            port,
            active: None,
        }
    }

    /// True when a serial port is attached for SOL.
    pub fn enabled(&self) -> bool {
        self.serial.is_some()
    }

    /// The next chunk the VM printed while SOL is active (never ready otherwise).
    pub async fn vm_output(&mut self) -> Option<Vec<u8>> {
        match self.active.as_mut() {
            Some(active) => active.link.from_vm.recv().await,
            None => std::future::pending().await,
        }
    }

    /// Activate Payload (SOL instance 1) for `session`, whose console is at `peer`.
    pub fn activate(&mut self, data: &[u8], session: u32, peer: SocketAddr) -> (u8, Vec<u8>) {
        if let Err(cc) = sol_request(data) {
            return (cc, Vec::new());
        }
        let Some(path) = self.serial.clone() else {
            return (CC_PAYLOAD_DISABLED, Vec::new());
        };
        if let Some(active) = &self.active {
            info!(
                session,
                owner = active.state.session,
                "SOL activation refused: already active"
            );
            return (CC_PAYLOAD_ACTIVE, Vec::new());
        }
        info!(session, %peer, serial = %path.display(), "SOL activated");
        self.active = Some(Active {
            state: Sol::new(session),
            link: SerialLink::open(path),
            peer,
            heard: Instant::now(),
        });
        let size = MAX_PAYLOAD.to_le_bytes();
        let port = self.port.to_le_bytes();
        let data = vec![
            0, 0, 0, 0, size[0], size[1], size[0], size[1], port[0], port[1], 0xff, 0xff,
        ];
        (CC_OK, data)
    }

    /// Deactivate Payload: any administrator session may end SOL; the console of another session is
    /// told that SOL is deactivating.
    pub async fn deactivate(
        &mut self,
        data: &[u8],
        session: u32,
        wire: &mut Wire<'_>,
    ) -> (u8, Vec<u8>) {
        if let Err(cc) = sol_request(data) {
            return (cc, Vec::new());
        }
        let Some(mut active) = self.active.take() else {
            return (CC_PAYLOAD_ACTIVE, Vec::new());
        };
        if active.state.session != session {
            let farewell = active.state.farewell();
            wire.send(active.state.session, active.peer, &farewell)
                .await;
        }
        info!(
            session,
            owner = active.state.session,
            dropped = active.state.dropped,
            "SOL deactivated"
        );
        (CC_OK, Vec::new())
    }

    /// Get Payload Activation Status: one SOL instance, active or not.
    pub fn status(&self, data: &[u8]) -> (u8, Vec<u8>) {
        match data {
            [kind] if kind & 0x3f == PAYLOAD_SOL => {
                (CC_OK, vec![1, u8::from(self.active.is_some()), 0])
            }
            [_] => (CC_INVALID_DATA, Vec::new()),
            _ => (CC_BAD_LENGTH, Vec::new()),
        }
    }

    /// Notes that `session` spoke (from `peer`): an active console stays alive.
    pub fn heard_from(&mut self, session: u32, peer: SocketAddr) {
        if let Some(active) = self.active.as_mut()
            && active.state.session == session
        {
            active.heard = Instant::now();
            active.peer = peer;
        }
    }

    /// `session` was closed: its payload ends with it.
    pub fn session_gone(&mut self, session: u32) {
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.state.session == session)
        {
            info!(session, "SOL deactivated with its session");
            self.active = None;
        }
    }

    /// A SOL packet from a console: only the session that activated the payload is heard.
    pub async fn packet(&mut self, v: &V2Packet, peer: SocketAddr, wire: &mut Wire<'_>) {
        let Some(keys) = wire.sessions.keys(v.session_id) else {
            return;
        };
        let plain = match v.open(Some(&keys)) {
            Ok(p) => p,
            Err(e) => {
                warn!(session = v.session_id, "dropped SOL packet: {e}");
                return;
            }
        };
        let Some(packet) = SolPacket::decode(&plain) else {
            return;
        };
        let Some(active) = self
            .active
            .as_mut()
            .filter(|a| a.state.session == v.session_id)
        else {
            debug!(
                session = v.session_id,
                "SOL packet for a session without the payload: dropped"
            );
            return;
        };
        active.heard = Instant::now();
        active.peer = peer;
        let accept = active.link.to_vm.capacity() > 0;
        let Inbound { to_vm, reply } = active.state.inbound(&packet, accept);
        if !to_vm.is_empty() && active.link.to_vm.try_send(to_vm).is_err() {
            warn!("serial input queue full: input lost");
        }
        if let Some(reply) = reply {
            wire.send(active.state.session, active.peer, &reply).await;
        }
        self.flush(wire).await;
    }

    /// Output of the VM: queued (bounded) and sent when the console is ready.
    pub async fn output(&mut self, bytes: &[u8], wire: &mut Wire<'_>) {
        if let Some(active) = self.active.as_mut() {
            active.state.push_output(bytes);
        }
        self.flush(wire).await;
    }

    /// The tick: ends a payload whose session is gone or silent, and retransmits.
    pub async fn tick(&mut self, wire: &mut Wire<'_>) {
        let Some(active) = &self.active else {
            return;
        };
        let session = active.state.session;
        if !wire.sessions.table.contains_key(&session) {
            info!(session, "SOL deactivated: its session is gone");
            self.active = None;
            return;
        }
        if active.heard.elapsed() > SOL_IDLE {
            info!(
                session,
                "SOL deactivated and session closed: the console is silent"
            );
            self.active = None;
            wire.sessions.table.remove(&session);
            return;
        }
        self.flush(wire).await;
    }

    /// Sends the next data packet (new or retransmitted) if one is due.
    async fn flush(&mut self, wire: &mut Wire<'_>) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        if let Some(packet) = active.state.poll(Instant::now()) {
            wire.send(active.state.session, active.peer, &packet).await;
        }
    }
}
