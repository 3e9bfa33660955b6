//! Control messages of the broadcast engine: JSON in length-delimited frames (a 4-byte big-endian
//! length, then the payload: the wire format of tokio-util's default `LengthDelimitedCodec`), read and
//! written with blocking sockets by the agent and the server. Every read names its bound, checked
//! on the announced length before anything is allocated; what a peer sends to an agent is sealed
//! (see [`super::handshake`]).

use crate::broadcast::ImageKind;
use crate::outcome::NodeError;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4};

/// Largest JSON control frame (hello, reply, report): read before anything is authenticated.
pub const MAX_CONTROL_FRAME: u32 = 64 << 10;
/// Largest plan frame (a fault-tolerant chain lists every later node); read after authentication.
pub const MAX_PLAN_FRAME: u32 = 16 << 20;
/// Largest manifest frame (a manifest of a million chunks is 32 MiB); read after authentication.
pub const MAX_MANIFEST_FRAME: u32 = 40 << 20;

/// The first frame on every connection to an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Hello {
    /// Server → agent: a job for this node; its [`NodePlan`] (JSON) and the binary manifest follow,
    /// sealed; the connection then carries this node's reports.
    Job {
        /// Job id.
        job: String,
    },
    /// Upstream → agent: the data connection of `job` (replied to with [`Reply::Data`]).
    Data {
        /// Job id.
        job: String,
        /// Who connects (for logs).
        from: String,
    },
    /// A peer (agent or the server's seed) → agent: a swarm connection of `job` (replied to with
    /// [`Reply::Data`]; then [`super::swarm_wire`] messages both ways).
    Peer {
        /// Job id.
        job: String,
        /// Who connects (for logs).
        from: String,
    },
}

/// One link a node feeds: its successor, then (fault-tolerant chain) the nodes after it to fail over to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardPlan {
    /// Agents to try, in order; only the first unless `failover`.
    pub candidates: Vec<SocketAddr>,
    /// On a dead or stalled successor, reconnect to the next candidate and resume.
    pub failover: bool,
}

/// Timeouts, buffers and test hooks shared by every node of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuning {
    /// A successor that acknowledges nothing for this long, with data outstanding, is dead (ms).
    pub stall_timeout_ms: u64,
    /// Connecting to a successor and its handshake (ms).
    pub connect_timeout_ms: u64,
    /// How long a node waits for (another) upstream before failing (ms).
    pub upstream_timeout_ms: u64,
    /// Chunks a node keeps in memory (its replay window).
    pub window: u32,
    /// Socket send and receive buffer size (bytes; 0 = system default).
    pub socket_buffer: u32,
    /// Test hook: flip one byte of the first transmission of this chunk to each successor.
    pub corrupt_chunk: Option<u64>,
    /// Test hook: cap the send rate of each link of this node (bytes/s).
    pub pace: Option<u64>,
    /// Forward each chunk's bytes as they arrive (in pieces of [`CUT_THROUGH_MIN_PIECE`] to
    /// [`CUT_THROUGH_PIECE`] bytes: what the socket holds once it holds the least), before the chunk
    /// is verified (each receiver verifies it before writing or keeping it); `false`: store whole
    /// verified chunks, then forward them.
    #[serde(default = "cut_through_by_default")]
    pub cut_through: bool,
    /// Test hook: a multicast receiver ignores one data datagram in this many (a lossy link).
    #[serde(default)]
    pub drop_one_in: Option<u32>,
}

/// The largest unit of cut-through forwarding: a node forwards a chunk's bytes at most this many at
/// a time (what arrived while it was busy).
pub const CUT_THROUGH_PIECE: usize = 64 << 10;

/// The least a cut-through piece holds (unless the chunk's rest is shorter): a node forwards what
/// arrived as soon as it holds this much, so that each hop delays the stream by about this many
/// bytes' time on its link (0.33 ms at 200 Mbit/s; a whole [`CUT_THROUGH_PIECE`] was 2.6 ms), as
/// little as a plain `socat` hop's 8 KiB buffer.
pub const CUT_THROUGH_MIN_PIECE: usize = 8 << 10;

fn cut_through_by_default() -> bool {
    true
}

/// What one node does in a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// Job id (unique per broadcast).
    pub job: String,
    /// The node's name (for logs).
    pub node: String,
    /// Layout of the decompressed image.
    pub kind: ImageKind,
    /// Compression name.
    pub compression: String,
    /// Device or file receiving a dd image.
    pub device: String,
    /// Directory receiving a tar image.
    pub extraction_dir: String,
    /// Links this node feeds.
    pub forwards: Vec<ForwardPlan>,
    /// Wait for a new upstream when the current one is lost (fault-tolerant chain).
    pub fault_tolerant: bool,
    /// Timeouts, buffers, hooks.
    pub tuning: Tuning,
    /// Receive the image by IP multicast instead of from an upstream link.
    #[serde(default)]
    pub multicast: Option<MulticastPlan>,
    /// Exchange the image with peers instead of receiving it from an upstream link.
    #[serde(default)]
    pub swarm: Option<SwarmPlan>,
}

/// A node's part in a swarm broadcast (see [`super::swarm`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmPlan {
    /// The peers this node connects to (others connect to it, and so does the server's seed).
    pub peers: Vec<SocketAddr>,
    /// The node's index in the job.
    pub node: u32,
    /// Nodes in the job: the node asks the seed for its stripe of chunks (`index % nodes ==
    /// node`) only (see [`super::swarm`]); 0 (a server before stop 18): for any chunk.
    #[serde(default)]
    pub nodes: u32,
}

/// A receiver's part in a multicast broadcast (see [`super::mcast_wire`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MulticastPlan {
    /// The group and port the image is sent to.
    pub group: SocketAddrV4,
    /// Where the receiver sends its status and repair requests (the sender's unicast address).
    pub sender: SocketAddr,
    /// The receiver's index in the job (in its status datagrams).
    pub node: u32,
    /// Interval between two status datagrams of a receiver (ms).
    pub status_ms: u64,
    /// Forward error correction: `m` repair pieces after each block of `k` (see
    /// [`super::mcast_fec`]); checked by the receiver before use.
    #[serde(default)]
    pub fec: Option<super::mcast_fec::Fec>,
}

/// The agent's answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// The job is set up; reports follow.
    Ready,
    /// Data connection accepted: send from chunk `have` on.
    Data {
        /// Chunks this node already holds, in order.
        have: u64,
    },
    /// Refused (unknown job, bad manifest, ...).
    Refused {
        /// Why.
        reason: String,
    },
}

/// A node's own timeline of one job, in microseconds since the job was set up on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTimes {
    /// When the node sent this report.
    pub report_us: u64,
    /// The first chunk received and verified.
    pub first_byte_us: Option<u64>,
    /// The last chunk received and verified.
    pub last_byte_us: Option<u64>,
    /// The whole image checked against the manifest.
    pub verified_us: Option<u64>,
}

/// How often an agent sends [`Report::Progress`] while its job is quiet: the server's sign that the
/// node is alive (see `deployer::Options::heartbeat_timeout`).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_millis(500);

/// Reports of a node to the server on its job connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Report {
    /// Heartbeat with progress, every [`HEARTBEAT`] while nothing else is reported.
    Progress {
        /// Chunks received and verified.
        have: u64,
    },
    /// The node finished writing (and verifying) its image, or failed to.
    Written {
        /// Decompressed bytes written, or the error.
        result: Result<u64, NodeError>,
        /// Milliseconds since the job was set up.
        elapsed_ms: u64,
        /// When the node kept its first and last chunks and verified the image (absent from older
        /// agents).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        times: Option<AgentTimes>,
    },
    /// The node finished forwarding; the successors it lost on the way.
    Done {
        /// `(successor, why)` for each successor dropped.
        lost: Vec<(String, String)>,
        /// Corrupted chunks this node detected and fetched again.
        refetched: u64,
    },
}

/// Writes one frame holding `payload`.
pub fn write_raw(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame of at most `max` bytes: a longer one is refused from its header, before any
/// allocation.
pub fn read_raw(r: &mut impl Read, max: u32) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes announced, at most {max} accepted"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Writes `msg` as a JSON control frame (at most [`MAX_CONTROL_FRAME`] bytes).
pub fn send<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let json = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if json.len() > MAX_CONTROL_FRAME as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("control message of {} bytes", json.len()),
        ));
    }
    write_raw(w, &json)
}

/// Reads a JSON control frame (at most [`MAX_CONTROL_FRAME`] bytes) as `T`.
pub fn recv<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<T> {
    let buf = read_raw(r, MAX_CONTROL_FRAME)?;
    serde_json::from_slice(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorKind;

    #[test]
    fn messages_round_trip() {
        let mut buf = Vec::new();
        send(
            &mut buf,
            &Hello::Data {
                job: "j".into(),
                from: "x".into(),
            },
        )
        .unwrap();
        let r = Report::Written {
            result: Err(NodeError::new(ErrorKind::Disk, "full")),
            elapsed_ms: 3,
            times: None,
        };
        send(&mut buf, &r).unwrap();
        let mut rd = &buf[..];
        assert_eq!(
            recv::<Hello>(&mut rd).unwrap(),
            Hello::Data {
                job: "j".into(),
                from: "x".into()
            }
        );
        assert_eq!(recv::<Report>(&mut rd).unwrap(), r);
    }

    #[test]
    fn rejects_huge_and_bad_frames() {
        let mut rd = &(MAX_CONTROL_FRAME + 1).to_be_bytes()[..];
        assert!(recv::<Hello>(&mut rd).is_err());
        let mut rd = &(40u32 << 20).to_be_bytes()[..];
        assert!(read_raw(&mut rd, MAX_PLAN_FRAME).is_err());
        let mut buf = Vec::new();
        write_raw(&mut buf, b"{not json").unwrap();
        assert!(recv::<Hello>(&mut &buf[..]).is_err());
    }
}
