//! One transfer on its own thread: an ephemeral blocking socket connected to the client, the file
//! opened under the root, failures reported to the client as TFTP errors.

use super::TftpConfig;
use super::packet::{self, ErrorCode};
use super::transfer::{self, End};
use crate::netboot::fsroot::{FsRoot, ResolveError};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use tracing::{debug, warn};

/// A blocking UDP socket on an ephemeral port of `local`'s address (and `device`), connected to `peer`.
pub fn connect(local: SocketAddr, device: Option<&str>, peer: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(dev) = device.filter(|d| !d.is_empty()) {
        socket.bind_device(Some(dev.as_bytes()))?;
    }
    // A window of large blocks is sent in one burst.
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&SocketAddr::new(local.ip(), 0).into())?;
    socket.connect(&peer.into())?;
    Ok(socket.into())
}

/// Serves `filename` to `peer` until done, the client gives up, or `stop` is set (blocking).
pub fn serve(
    root: &FsRoot,
    config: &TftpConfig,
    local: SocketAddr,
    peer: SocketAddr,
    filename: &str,
    options: &[(String, String)],
    stop: &AtomicBool,
) {
    let sock = match connect(local, config.interface.as_deref(), peer) {
        Ok(s) => s,
        Err(e) => return warn!(%peer, error = %e, "cannot open transfer socket"),
    };
    let (file, size) = match root.open(filename) {
        Ok(x) => x,
        Err(e) => {
            let code = match e {
                ResolveError::Forbidden(_) => ErrorCode::AccessViolation,
                ResolveError::NotFound(_) => ErrorCode::FileNotFound,
                _ => ErrorCode::Undefined,
            };
            crate::netboot::stats::TFTP.error();
            debug!(%peer, file = %filename, error = %e, "tftp request refused");
            let _ = sock.send(&packet::error(code, &e.to_string()));
            return;
        }
    };
    let opts: Vec<(String, &str)> = options
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str()))
        .collect();
    match transfer::send_file(&sock, config, &file, size, &opts, stop) {
        Ok(End::Done) => debug!(%peer, file = %filename, "tftp transfer finished"),
        Ok(end) => debug!(%peer, file = %filename, ?end, "tftp transfer ended"),
        Err(e) => {
            let _ = sock.send(&packet::error(ErrorCode::Undefined, "read error"));
            crate::netboot::stats::TFTP.error();
            warn!(%peer, file = %filename, error = %e, "tftp transfer failed");
        }
    }
}
