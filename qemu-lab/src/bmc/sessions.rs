//! The BMC side of RMCP+ session establishment: Open Session and RAKP 1-4, and the table of sessions.

use hal::power::ipmi::crypto::{CipherSuite, SessionKeys, random_bytes};
use hal::power::ipmi::rakp::*;
use std::collections::BTreeMap;
use tokio::time::Instant;
use tracing::{info, warn};

/// At most this many sessions are kept; the oldest goes first.
const MAX_SESSIONS: usize = 32;

/// Where a session stands.
#[derive(Debug, Clone)]
pub enum Stage {
    /// Open Session answered.
    Opened,
    /// RAKP 2 sent.
    Challenged(Handshake),
    /// RAKP 4 sent: the session carries commands.
    Active(SessionKeys),
}

/// One session, keyed by the BMC's session ID.
#[derive(Debug, Clone)]
pub struct BmcSession {
    /// The remote console's session ID.
    pub console_id: u32,
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// Handshake progress.
    pub stage: Stage,
    /// Outbound sequence number.
    pub out_seq: u32,
    /// The last request message and the reply sent, to answer retransmissions.
    pub last: Option<(Vec<u8>, Vec<u8>)>,
    created: Instant,
}

/// The sessions of one BMC and its credentials.
#[derive(Debug)]
pub struct Sessions {
    user: Vec<u8>,
    password: Vec<u8>,
    guid: [u8; 16],
    /// Sessions by BMC session ID.
    pub table: BTreeMap<u32, BmcSession>,
}

impl Sessions {
    /// An empty table for one user.
    pub fn new(user: &str, password: &str) -> Self {
        Sessions {
            user: user.as_bytes().to_vec(),
            password: password.as_bytes().to_vec(),
            guid: random_bytes::<16>(),
            table: BTreeMap::new(),
        }
    }

    /// The system GUID the BMC shows in RAKP 2 and Get System GUID.
    pub fn guid(&self) -> [u8; 16] {
        self.guid
    }

    /// The keys of an established session.
    pub fn keys(&self, id: u32) -> Option<SessionKeys> {
        match &self.table.get(&id)?.stage {
            Stage::Active(keys) => Some(keys.clone()),
            _ => None,
        }
    }

    /// Answers an Open Session Request.
    pub fn open(&mut self, req: &OpenSessionRequest) -> OpenSessionResponse {
        let mut resp = OpenSessionResponse {
            tag: req.tag,
            status: STATUS_OK,
            max_privilege: 4,
            console_id: req.console_id,
            bmc_id: 0,
            algorithms: req.algorithms,
        };
        let (a, i, c) = req.algorithms;
        let Some(suite) = CipherSuite::from_algorithms(a, i, c) else {
            warn!(?req.algorithms, "open session: unsupported algorithms");
            resp.status = STATUS_NO_CIPHER_SUITE;
            return resp;
        };
        while self.table.len() >= MAX_SESSIONS {
            let oldest = self
                .table
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(&k, _)| k);
            if let Some(k) = oldest {
                self.table.remove(&k);
            }
        }
        let mut bmc_id = 0;
        while bmc_id == 0 || self.table.contains_key(&bmc_id) {
            bmc_id = u32::from_le_bytes(random_bytes::<4>());
        }
        self.table.insert(
            bmc_id,
            BmcSession {
                console_id: req.console_id,
                suite,
                stage: Stage::Opened,
                out_seq: 0,
                last: None,
                created: Instant::now(),
            },
        );
        resp.bmc_id = bmc_id;
        resp
    }

    /// Answers RAKP 1 with RAKP 2.
    pub fn rakp1(&mut self, m1: &Rakp1) -> Rakp2 {
        let mut m2 = Rakp2 {
            tag: m1.tag,
            status: STATUS_OK,
            console_id: 0,
            bmc_rand: random_bytes::<16>(),
            bmc_guid: self.guid,
            auth_code: Vec::new(),
        };
        let Some(s) = self.table.get_mut(&m1.bmc_id) else {
            m2.status = STATUS_INVALID_SESSION;
            return m2;
        };
        m2.console_id = s.console_id;
        if m1.user != self.user {
            warn!(user = %String::from_utf8_lossy(&m1.user), "RAKP 1: unknown user");
            m2.status = STATUS_UNAUTHORIZED_NAME;
            self.table.remove(&m1.bmc_id);
            return m2;
        }
        let hs = Handshake {
            suite: s.suite,
            console_id: s.console_id,
            bmc_id: m1.bmc_id,
            console_rand: m1.console_rand,
            bmc_rand: m2.bmc_rand,
            bmc_guid: self.guid,
            role: m1.role,
            user: m1.user.clone(),
        };
        m2.auth_code = hs.rakp2_code(&self.password);
        s.stage = Stage::Challenged(hs);
        m2
    }

    /// Answers RAKP 3 with RAKP 4 (or nothing when the console reported an error).
    pub fn rakp3(&mut self, m3: &Rakp3) -> Option<Rakp4> {
        let Some(s) = self.table.get_mut(&m3.bmc_id) else {
            return Some(Rakp4 {
                tag: m3.tag,
                status: STATUS_INVALID_SESSION,
                console_id: 0,
                icv: Vec::new(),
            });
        };
        let console_id = s.console_id;
        let Stage::Challenged(hs) = s.stage.clone() else {
            return Some(Rakp4 {
                tag: m3.tag,
                status: STATUS_INVALID_SESSION,
                console_id,
                icv: Vec::new(),
            });
        };
        if m3.status != STATUS_OK {
            warn!(
                status = status_text(m3.status),
                "RAKP 3: the console refused our RAKP 2 (wrong password?)"
            );
            self.table.remove(&m3.bmc_id);
            return None;
        }
        if !codes_match(&hs.rakp3_code(&self.password), &m3.auth_code) {
            warn!("RAKP 3: bad authentication code (wrong password)");
            self.table.remove(&m3.bmc_id);
            return Some(Rakp4 {
                tag: m3.tag,
                status: STATUS_INVALID_ICV,
                console_id,
                icv: Vec::new(),
            });
        }
        let keys = hs.keys(&self.password);
        let icv = hs.rakp4_icv(&keys.sik);
        s.stage = Stage::Active(keys);
        info!(
            bmc_id = m3.bmc_id,
            suite = hs.suite.id(),
            "session established"
        );
        Some(Rakp4 {
            tag: m3.tag,
            status: STATUS_OK,
            console_id,
            icv,
        })
    }
}
