//! UDP sockets for the boot services, prepared with socket2: address reuse, broadcast, and an optional
//! binding to one interface (`SO_BINDTODEVICE`) so a server answers on the boot network only.

use std::io;
use std::net::SocketAddr;

/// A non-blocking tokio UDP socket bound to `addr`, optionally to `device`.
pub fn bind_udp(
    addr: SocketAddr,
    device: Option<&str>,
    broadcast: bool,
) -> io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    if broadcast {
        socket.set_broadcast(true)?;
    }
    if let Some(dev) = device.filter(|d| !d.is_empty()) {
        socket.bind_device(Some(dev.as_bytes()))?;
    }
    // Bursts of DISCOVERs or ACKs must not be dropped by a small default buffer.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}
