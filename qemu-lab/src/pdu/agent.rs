//! The SNMP agent of the lab PDU: v1/v2c communities and one v3 user (USM, engine discovery, time
//! window), answering from the [`Mib`]. Malformed or unauthenticated datagrams get no answer, or the
//! Report RFC 3414 asks for; a retransmitted request gets the cached answer, not a second switch.

use super::mib::Mib;
use hal::power::snmp::client::V3User;
use hal::power::snmp::pdu::{self, CommunityMessage, Pdu, PduKind, Value};
use hal::power::snmp::usm::LocalKeys;
use hal::power::snmp::v3::{self, FLAG_AUTH, FLAG_PRIV, ScopedPdu, UsmParams, V3Error, V3Message};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Answers kept for retransmissions.
const CACHED_ANSWERS: usize = 64;
/// RFC 3414's time window (seconds).
const TIME_WINDOW: u32 = 150;

/// A request (its sender and bytes) and the answer sent.
type Cached = (SocketAddr, Vec<u8>, Vec<u8>);

/// Who may do what.
pub struct Access {
    /// The read-only community.
    pub read_community: String,
    /// The read-write community.
    pub write_community: String,
    /// The v3 user (read-write), if any.
    pub user: Option<V3User>,
}

/// The agent's state.
pub struct Agent {
    mib: Mib,
    access: Access,
    engine_id: Vec<u8>,
    boots: u32,
    started: Instant,
    keys: Option<LocalKeys>,
    counters: [AtomicU32; 7],
    recent: Mutex<VecDeque<Cached>>,
}

impl Agent {
    /// An agent with `engine_id` (its keys localized now).
    pub fn new(mib: Mib, access: Access, engine_id: Vec<u8>) -> Agent {
        let keys = access.user.as_ref().map(|u| {
            LocalKeys::derive(
                u.auth,
                u.auth_password.as_bytes(),
                u.privacy.as_ref().map(|(_, p)| p.as_bytes()),
                &engine_id,
            )
        });
        Agent {
            mib,
            access,
            engine_id,
            boots: 1,
            started: Instant::now(),
            keys,
            counters: Default::default(),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    fn engine_time(&self) -> u32 {
        u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// The answer to one datagram from `peer`, if any.
    pub fn handle(&self, data: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        if let Ok(recent) = self.recent.lock()
            && let Some((_, _, answer)) = recent
                .iter()
                .find(|(p, request, _)| *p == peer && request == data)
        {
            return Some(answer.clone());
        }
        let answer = match pdu::message_version(data) {
            Ok(0 | 1) => self.community(data),
            Ok(3) => self.v3(data),
            _ => None,
        }?;
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == CACHED_ANSWERS {
                recent.pop_front();
            }
            recent.push_back((peer, data.to_vec(), answer.clone()));
        }
        Some(answer)
    }

    /// v1/v2c: the community decides; a wrong one gets no answer.
    fn community(&self, data: &[u8]) -> Option<Vec<u8>> {
        let m = CommunityMessage::decode(data).ok()?;
        let community = m.community.as_slice();
        let can_write = community == self.access.write_community.as_bytes();
        if !can_write && community != self.access.read_community.as_bytes() {
            tracing::debug!("bad community");
            return None;
        }
        let mut answer = self.mib.answer(&m.pdu, can_write)?;
        if m.version == 0 {
            v1_errors(&mut answer);
        }
        Some(
            CommunityMessage {
                version: m.version,
                community: m.community,
                pdu: answer,
            }
            .encode(),
        )
    }

    fn count(&self, counter: u32) -> u32 {
        self.counters
            .get(counter as usize)
            .map_or(0, |c| c.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// A Report of `counter` for a request with `msg_id` and `request_id`, authenticated with `keys`.
    fn report(
        &self,
        msg_id: i32,
        request_id: i32,
        user: &[u8],
        counter: u32,
        keys: Option<&LocalKeys>,
    ) -> Vec<u8> {
        let value = self.count(counter);
        let message = V3Message {
            msg_id,
            max_size: 65_507,
            flags: if keys.is_some() { FLAG_AUTH } else { 0 },
            usm: UsmParams {
                engine_id: self.engine_id.clone(),
                boots: self.boots,
                time: self.engine_time(),
                user: user.to_vec(),
            },
            scoped: ScopedPdu {
                context_engine_id: self.engine_id.clone(),
                context_name: Vec::new(),
                pdu: Pdu {
                    kind: PduKind::Report,
                    request_id,
                    error_status: 0,
                    error_index: 0,
                    bindings: vec![(
                        v3::usm_stats_oid(counter),
                        Value::Unsigned(pdu::COUNTER32, u64::from(value)),
                    )],
                },
            },
        };
        v3::seal(&message, keys, [0; 8])
    }

    /// v3: discovery, user, security level, digest, time window, then the request.
    fn v3(&self, data: &[u8]) -> Option<Vec<u8>> {
        let r = v3::parse(data).ok()?;
        // The request id is readable only in plaintext requests.
        let plain_id = || r.open(None).map(|m| m.scoped.pdu.request_id).unwrap_or(0);
        if r.usm.engine_id != self.engine_id {
            let id = if r.flags & FLAG_AUTH == 0 {
                plain_id()
            } else {
                0
            };
            return Some(self.report(
                r.msg_id,
                id,
                &r.usm.user,
                v3::USM_STATS_UNKNOWN_ENGINE_IDS,
                None,
            ));
        }
        let (user, keys) = match (&self.access.user, &self.keys) {
            (Some(u), Some(k)) if u.user.as_bytes() == r.usm.user.as_slice() => (u, k),
            _ => {
                let c = v3::USM_STATS_UNKNOWN_USER_NAMES;
                return Some(self.report(r.msg_id, 0, &r.usm.user, c, None));
            }
        };
        let wants_priv = r.flags & FLAG_PRIV != 0;
        if r.flags & FLAG_AUTH == 0 || (wants_priv && user.privacy.is_none()) {
            let c = v3::USM_STATS_UNSUPPORTED_SEC_LEVELS;
            return Some(self.report(r.msg_id, 0, &r.usm.user, c, None));
        }
        let opened = match r.open(Some(keys)) {
            Ok(m) => m,
            Err(V3Error::WrongDigest) => {
                let c = v3::USM_STATS_WRONG_DIGESTS;
                return Some(self.report(r.msg_id, 0, &r.usm.user, c, None));
            }
            Err(V3Error::Decryption) => {
                let c = v3::USM_STATS_DECRYPTION_ERRORS;
                return Some(self.report(r.msg_id, 0, &r.usm.user, c, None));
            }
            Err(_) => return None,
        };
        let now = self.engine_time();
        if opened.usm.boots != self.boots || opened.usm.time.abs_diff(now) > TIME_WINDOW {
            let c = v3::USM_STATS_NOT_IN_TIME_WINDOWS;
            let id = opened.scoped.pdu.request_id;
            return Some(self.report(r.msg_id, id, &r.usm.user, c, Some(keys)));
        }
        let answer = self.mib.answer(&opened.scoped.pdu, true)?;
        let message = V3Message {
            msg_id: opened.msg_id,
            max_size: 65_507,
            flags: opened.flags & (FLAG_AUTH | FLAG_PRIV),
            usm: UsmParams {
                engine_id: self.engine_id.clone(),
                boots: self.boots,
                time: now,
                user: opened.usm.user,
            },
            scoped: ScopedPdu {
                context_engine_id: self.engine_id.clone(),
                context_name: opened.scoped.context_name,
                pdu: answer,
            },
        };
        let mut salt = [0u8; 8];
        let _ = getrandom::fill(&mut salt);
        Some(v3::seal(&message, Some(keys), salt))
    }
}

/// SNMPv1 has no exceptions: the first one becomes noSuchName.
fn v1_errors(answer: &mut Pdu) {
    if let Some(index) = answer
        .bindings
        .iter()
        .position(|(_, v)| matches!(v, Value::Exception(_)))
    {
        answer.error_status = pdu::ERR_NO_SUCH_NAME;
        answer.error_index = index as i64 + 1;
    }
}
