//! The BMC's UDP loop: RMCP presence pings, pre-session commands, the RMCP+ handshake, the authenticated
//! commands that drive the VM and answer `ipmitool`'s queries, and serial-over-LAN packets (handled in
//! [`super::payload`]).

use super::boot::BootOptions;
use super::info::{self, Identity, NETFN_TRANSPORT};
use super::payload::{self, SolPort, Wire};
use super::sdr::{self, NETFN_SENSOR, NETFN_STORAGE};
use super::sessions::Sessions;
use super::sol::PAYLOAD_SOL;
use super::vm::{Vm, VmError};
use hal::power::ipmi::bootdev::{
    BootDevice, CMD_GET_SYSTEM_BOOT_OPTIONS, CMD_SET_SYSTEM_BOOT_OPTIONS,
};
use hal::power::ipmi::commands::*;
use hal::power::ipmi::crypto::CipherSuite;
use hal::power::ipmi::rakp::*;
use hal::power::ipmi::wire::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

/// How long a chassis control waits for its action before answering (the action goes on afterwards).
const ACTION_WAIT: Duration = Duration::from_millis(1500);
/// Period of the housekeeping tick (SOL retransmissions, idle consoles).
const TICK: Duration = Duration::from_millis(100);

/// A BMC serving one VM.
pub struct Server {
    sock: UdpSocket,
    sessions: Sessions,
    vm: Arc<Vm>,
    actions: Arc<tokio::sync::Mutex<()>>,
    boot: Arc<Mutex<BootOptions>>,
    identity: Identity,
    /// Serial-over-LAN on the VM's serial socket.
    sol: SolPort,
    reservation: u16,
}

/// Locks a mutex that a panicked holder cannot have left inconsistent (plain data).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    /// A server on a bound socket; `serial` is the VM's serial socket for SOL (none: SOL disabled).
    pub fn new(
        sock: UdpSocket,
        user: &str,
        password: &str,
        vm: Vm,
        serial: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        let sessions = Sessions::new(user, password);
        let identity = Identity {
            user: user.to_string(),
            addr: sock.local_addr()?,
            guid: sessions.guid(),
        };
        let sol = SolPort::new(serial, identity.addr.port());
        Ok(Server {
            sock,
            sessions,
            vm: Arc::new(vm),
            actions: Arc::new(tokio::sync::Mutex::new(())),
            boot: Arc::new(Mutex::new(BootOptions::default())),
            identity,
            sol,
            reservation: 0,
        })
    }

    /// Serves datagrams (and SOL output) until the socket fails.
    pub async fn serve(mut self) -> std::io::Result<()> {
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = self.sock.recv_from(&mut buf) => {
                    let (n, peer) = received?;
                    self.datagram(&buf[..n], peer).await;
                }
                Some(bytes) = self.sol.vm_output() => {
                    let mut wire = Wire { sock: &self.sock, sessions: &mut self.sessions };
                    self.sol.output(&bytes, &mut wire).await;
                }
                _ = tick.tick() => {
                    let mut wire = Wire { sock: &self.sock, sessions: &mut self.sessions };
                    self.sol.tick(&mut wire).await;
                }
            }
        }
    }

    async fn datagram(&mut self, bytes: &[u8], peer: SocketAddr) {
        let packet = match decode(bytes) {
            Ok(p) => p,
            Err(e) => {
                debug!(%peer, "dropped packet: {e}");
                return;
            }
        };
        if let Some(reply) = self.handle(packet, peer).await {
            self.send(&reply, peer).await;
        }
    }

    async fn send(&self, datagram: &[u8], peer: SocketAddr) {
        if let Err(e) = self.sock.send_to(datagram, peer).await {
            warn!(%peer, "send failed: {e}");
        }
    }

    async fn handle(&mut self, packet: Packet, peer: SocketAddr) -> Option<Vec<u8>> {
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
                PAYLOAD_IPMI => self.in_session(&v, peer).await,
                PAYLOAD_SOL => {
                    let mut wire = Wire {
                        sock: &self.sock,
                        sessions: &mut self.sessions,
                    };
                    self.sol.packet(&v, peer, &mut wire).await;
                    None
                }
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

    async fn in_session(&mut self, v: &V2Packet, peer: SocketAddr) -> Option<Vec<u8>> {
        let keys = self.sessions.keys(v.session_id)?;
        let plain = match v.open(Some(&keys)) {
            Ok(p) => p,
            Err(e) => {
                warn!(session = v.session_id, "dropped session packet: {e}");
                return None;
            }
        };
        self.sol.heard_from(v.session_id, peer);
        // A retransmission (same request message: same rqSeq, command and data) gets the same reply,
        // so a chassis command never runs twice.
        if let Some((last, reply)) = &self.sessions.table.get(&v.session_id)?.last
            && *last == plain
        {
            info!(session = v.session_id, "retransmission answered from cache");
            return Some(reply.clone());
        }
        let req = Request::decode(&plain).ok()?;
        let (resp, close) = self.command(&req, v.session_id, peer).await;
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
            self.sol.session_gone(v.session_id);
        }
        Some(reply)
    }

    /// Runs one in-session command; the flag asks to drop the session after replying.
    async fn command(&mut self, req: &Request, session: u32, peer: SocketAddr) -> (Response, bool) {
        let answer = |(cc, data): (u8, Vec<u8>)| (req.respond(cc, data), false);
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
            (NETFN_APP, info::CMD_GET_SYSTEM_GUID | info::CMD_GET_DEVICE_GUID) => {
                answer((CC_OK, self.identity.guid.to_vec()))
            }
            (NETFN_APP, info::CMD_GET_CHANNEL_INFO) => {
                answer(info::channel_info(&req.data, self.sessions.table.len()))
            }
            (NETFN_APP, info::CMD_GET_USER_ACCESS) => answer(info::user_access(&req.data)),
            (NETFN_APP, info::CMD_GET_USER_NAME) => {
                answer(info::user_name(&req.data, &self.identity))
            }
            (NETFN_APP, payload::CMD_ACTIVATE_PAYLOAD) => {
                answer(self.sol.activate(&req.data, session, peer))
            }
            (NETFN_APP, payload::CMD_DEACTIVATE_PAYLOAD) => {
                let mut wire = Wire {
                    sock: &self.sock,
                    sessions: &mut self.sessions,
                };
                answer(self.sol.deactivate(&req.data, session, &mut wire).await)
            }
            (NETFN_APP, payload::CMD_GET_PAYLOAD_STATUS) => answer(self.sol.status(&req.data)),
            (NETFN_TRANSPORT, info::CMD_GET_LAN_CONFIG) => {
                answer(info::lan_param(&req.data, &self.identity))
            }
            (NETFN_TRANSPORT, info::CMD_GET_SOL_CONFIG) => answer(info::sol_param(
                &req.data,
                &self.identity,
                self.sol.enabled(),
            )),
            (NETFN_STORAGE, sdr::CMD_GET_SDR_REPO_INFO) => answer((CC_OK, sdr::repository_info())),
            (NETFN_STORAGE, sdr::CMD_RESERVE_SDR_REPO) => {
                self.reservation = self.reservation.wrapping_add(1).max(1);
                answer((CC_OK, self.reservation.to_le_bytes().to_vec()))
            }
            (NETFN_STORAGE, sdr::CMD_GET_SDR) => answer(sdr::get_sdr(&req.data)),
            (NETFN_SENSOR, sdr::CMD_GET_SENSOR_READING) => {
                answer(sdr::sensor_reading(&req.data, self.vm.is_on()))
            }
            (NETFN_CHASSIS, info::CMD_CHASSIS_IDENTIFY) => {
                info!(data = ?req.data, "chassis identify");
                answer((info::chassis_identify(&req.data), Vec::new()))
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
            (NETFN_CHASSIS, CMD_SET_SYSTEM_BOOT_OPTIONS) => {
                answer((self.set_boot_options(&req.data), Vec::new()))
            }
            (NETFN_CHASSIS, CMD_GET_SYSTEM_BOOT_OPTIONS) => answer(lock(&self.boot).get(&req.data)),
            _ => {
                debug!(netfn = req.netfn, cmd = req.cmd, "unsupported command");
                (req.respond(CC_INVALID_COMMAND, Vec::new()), false)
            }
        }
    }

    /// Set System Boot Options; new boot flags reach the running VM at once (a reboot the guest starts
    /// itself obeys them too), and one-time flags expire after [`super::boot::VALID_FOR`].
    fn set_boot_options(&mut self, data: &[u8]) -> u8 {
        let (cc, changed) = lock(&self.boot).set(data);
        if !changed {
            return cc;
        }
        let (flags, generation) = {
            let b = lock(&self.boot);
            (b.flags, b.generation)
        };
        info!(%flags, "boot flags set");
        let (vm, actions, boot) = (self.vm.clone(), self.actions.clone(), self.boot.clone());
        tokio::spawn(async move {
            {
                let _guard = actions.lock().await;
                if let Err(e) = vm.set_boot_device(flags.effective()).await {
                    warn!("boot order: {e}");
                }
            }
            if flags.valid && !flags.persistent {
                expire_later(vm, actions, boot, generation).await;
            }
        });
        cc
    }

    /// Starts a chassis action (serialised with the others) and waits a little for it.
    async fn control(&self, op: ChassisControl) -> u8 {
        info!(?op, "chassis control");
        let (vm, actions, boot) = (self.vm.clone(), self.actions.clone(), self.boot.clone());
        let task = tokio::spawn(async move {
            let guard = actions.clone().lock_owned().await;
            let result = run_action(&vm, op, &boot).await;
            if let Err(e) = &result {
                warn!(?op, "chassis control failed: {e}");
            }
            drop(guard);
            let used = {
                let b = lock(&boot);
                b.restore_pending.then_some(b.generation)
            };
            if let Some(generation) = used {
                tokio::spawn(expire_later(vm, actions, boot, generation));
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

/// After [`super::boot::VALID_FOR`]: one-time flags of `generation` that are still valid or were used
/// give the VM its own boot order back.
async fn expire_later(
    vm: Arc<Vm>,
    actions: Arc<tokio::sync::Mutex<()>>,
    boot: Arc<Mutex<BootOptions>>,
    generation: u64,
) {
    tokio::time::sleep(super::boot::VALID_FOR).await;
    let _guard = actions.lock().await;
    if lock(&boot).expire(generation, std::time::Instant::now()) {
        info!("one-time boot flags over: the VM's own boot order is back");
        if let Err(e) = vm.set_boot_device(BootDevice::None).await {
            warn!("boot order: {e}");
        }
    }
}

/// Runs a chassis action; a boot it starts (power up, cycle, reset) boots the device of valid boot
/// flags, which a one-time override then no longer holds. A used one-time override's order goes first.
async fn run_action(vm: &Vm, op: ChassisControl, boot: &Mutex<BootOptions>) -> Result<(), VmError> {
    if lock(boot).take_restore() {
        vm.set_boot_device(BootDevice::None).await?;
    }
    let device = lock(boot).flags.effective();
    match op {
        ChassisControl::PowerDown | ChassisControl::SoftShutdown => return vm.power_off().await,
        ChassisControl::PowerUp if vm.is_on() => return Ok(()),
        _ if device == BootDevice::None => {
            return match op {
                ChassisControl::PowerCycle => vm.cycle().await,
                ChassisControl::HardReset => vm.reset().await,
                _ => vm.power_on().await,
            };
        }
        ChassisControl::PowerUp => vm.power_on_booting(device).await?,
        ChassisControl::PowerCycle => {
            vm.power_off().await?;
            vm.power_on_booting(device).await?;
        }
        ChassisControl::HardReset => vm.reset_booting(device).await?,
    }
    lock(boot).consumed();
    Ok(())
}
