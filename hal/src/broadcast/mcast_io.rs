//! Batched datagram I/O of the multicast broadcast, to cut the processor's cost per datagram: the
//! sender hands the kernel a run of equal-sized datagrams in one call (UDP generic segmentation
//! offload, `UDP_SEGMENT`: one trip through the stack, the bridge and the links' queues for the
//! whole run, cut into datagrams by the NIC or at the last moment), and receivers take coalesced
//! runs in one call (`UDP_GRO`: the segment size comes with them). Where the kernel has neither,
//! one datagram per call as before; the datagrams on the wire are the same either way.

use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Datagrams in one segmentation-offload send at most: 44 × 1,472 = 64,768 bytes, within the
/// largest UDP payload over IPv4 (65,507) and the kernel's 64 segments.
pub const GSO_SEGMENTS: usize = 44;
/// Bytes one receive call takes at most (a coalesced run, or one datagram).
pub const RECEIVE_BATCH: usize = 1 << 16;

/// Sets an `int` option at `level` on `socket`.
fn set_int_option(
    socket: &UdpSocket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends runs of datagrams to one destination, with segmentation offload while the kernel takes it.
#[derive(Debug)]
pub struct BatchSender {
    gso: AtomicBool,
}

impl Default for BatchSender {
    fn default() -> Self {
        BatchSender {
            gso: AtomicBool::new(true),
        }
    }
}

impl BatchSender {
    /// A sender that never uses segmentation offload (one datagram per call).
    pub fn without_offload() -> Self {
        BatchSender {
            gso: AtomicBool::new(false),
        }
    }

    /// Whether segmentation offload is still in use (it is dropped at its first refusal).
    pub fn offloads(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
    }

    /// Sends `run`, datagrams of `segment` bytes one after the other (the last may be shorter), to
    /// `to`; the first error of a datagram-by-datagram send is returned, others are not tried again.
    pub fn send(
        &self,
        socket: &UdpSocket,
        to: SocketAddrV4,
        run: &[u8],
        segment: usize,
    ) -> io::Result<()> {
        let segment = segment.max(1);
        if run.len() > segment && self.offloads() {
            match send_segmented(socket, to, run, segment) {
                Ok(()) => return Ok(()),
                Err(e) if refused_offload(&e) => {
                    tracing::debug!(error = %e, "UDP segmentation offload refused: one datagram per call");
                    self.gso.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let mut first_error = None;
        for d in run.chunks(segment) {
            if let Err(e) = socket.send_to(d, to) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Errors meaning the kernel or the route does not do UDP segmentation offload.
fn refused_offload(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP | libc::EMSGSIZE)
    )
}

/// One `sendmsg` of `run` with a `UDP_SEGMENT` control message of `segment`.
fn send_segmented(
    socket: &UdpSocket,
    to: SocketAddrV4,
    run: &[u8],
    segment: usize,
) -> io::Result<()> {
    let segment = u16::try_from(segment).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut addr = sockaddr(to);
    let mut iov = libc::iovec {
        iov_base: run.as_ptr() as *mut libc::c_void,
        iov_len: run.len(),
    };
    // Room for one cmsg of a u16, aligned as cmsghdr.
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; every pointer set below refers to a live local of the given size.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_in).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
    if space > std::mem::size_of_val(&control) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer holds `space` bytes, room for this one header and its u16.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
    }
    // SAFETY: msg and everything it points to live through the call.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data.
    let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr = libc::in_addr {
        s_addr: u32::from(*a.ip()).to_be(),
    };
    s
}

/// Asks the kernel to hand `socket`'s datagrams over in coalesced runs; whether it will.
pub fn enable_receive_offload(socket: &UdpSocket) -> bool {
    set_int_option(socket, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok()
}

/// Receives runs of datagrams (or single ones) into one buffer allocated once.
pub struct BatchReceiver {
    buf: Vec<u8>,
    len: usize,
    segment: usize,
}

impl Default for BatchReceiver {
    fn default() -> Self {
        BatchReceiver {
            buf: vec![0; RECEIVE_BATCH],
            len: 0,
            segment: RECEIVE_BATCH,
        }
    }
}

impl BatchReceiver {
    /// Waits (up to the socket's read timeout) for the next datagram or coalesced run.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<()> {
        self.len = 0;
        let mut iov = libc::iovec {
            iov_base: self.buf.as_mut_ptr().cast(),
            iov_len: self.buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; every pointer set below refers to a live buffer of the given size.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg and everything it points to live through the call.
        let got = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = (got as usize).min(self.buf.len());
        let mut segment = got;
        if msg.msg_flags & libc::MSG_CTRUNC == 0 {
            // SAFETY: the kernel filled `msg_controllen` bytes of the control buffer; the CMSG
            // macros stay within it, and the data is read unaligned.
            unsafe {
                let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
                while !cmsg.is_null() {
                    let data_len =
                        ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                    if (*cmsg).cmsg_level == libc::SOL_UDP
                        && (*cmsg).cmsg_type == libc::UDP_GRO
                        && data_len >= std::mem::size_of::<libc::c_int>()
                    {
                        let size =
                            std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                        if size > 0 {
                            segment = size as usize;
                        }
                    }
                    cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
                }
            }
        }
        self.len = got;
        self.segment = segment.max(1);
        Ok(())
    }

    /// The datagrams of the last run received, in order.
    pub fn datagrams(&self) -> std::slice::Chunks<'_, u8> {
        self.buf
            .get(..self.len)
            .unwrap_or_default()
            .chunks(self.segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn pair() -> (UdpSocket, UdpSocket, SocketAddrV4) {
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let to = match rx.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("{other}"),
        };
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        (tx, rx, to)
    }

    /// A run of datagrams, segment `i` filled with byte `i`, the last `last` bytes long.
    fn run(count: usize, segment: usize, last: usize) -> Vec<u8> {
        let mut r = Vec::new();
        for i in 0..count {
            let len = if i + 1 == count { last } else { segment };
            r.extend(std::iter::repeat_n(i as u8, len));
        }
        r
    }

    /// The datagrams received until `want` came, and the receive calls it took.
    fn receive_all(rx: &UdpSocket, want: usize) -> (Vec<Vec<u8>>, usize) {
        let mut r = BatchReceiver::default();
        let (mut got, mut calls) = (Vec::new(), 0);
        while got.len() < want {
            r.recv(rx).unwrap();
            calls += 1;
            got.extend(r.datagrams().map(<[u8]>::to_vec));
        }
        (got, calls)
    }

    #[test]
    fn runs_arrive_as_the_same_datagrams_with_or_without_offload() {
        for (offload, gro) in [(true, true), (true, false), (false, true), (false, false)] {
            let (tx, rx, to) = pair();
            if gro {
                enable_receive_offload(&rx);
            }
            let s = if offload {
                BatchSender::default()
            } else {
                BatchSender::without_offload()
            };
            let r = run(GSO_SEGMENTS, 1472, 300);
            s.send(&tx, to, &r, 1472).unwrap();
            let (got, calls) = receive_all(&rx, GSO_SEGMENTS);
            assert_eq!(got.len(), GSO_SEGMENTS, "offload {offload} gro {gro}");
            if s.offloads() && gro {
                assert_eq!(calls, 1, "a coalesced run comes in one call");
            }
            if !gro {
                assert_eq!(calls, GSO_SEGMENTS, "without coalescing, one call each");
            }
            for (i, d) in got.iter().enumerate() {
                let len = if i + 1 == GSO_SEGMENTS { 300 } else { 1472 };
                assert_eq!(d, &vec![i as u8; len], "datagram {i}");
            }
        }
    }

    #[test]
    fn a_single_datagram_goes_without_offload() {
        let (tx, rx, to) = pair();
        let s = BatchSender::default();
        s.send(&tx, to, b"hello", 1472).unwrap();
        assert_eq!(receive_all(&rx, 1), (vec![b"hello".to_vec()], 1));
    }
}
