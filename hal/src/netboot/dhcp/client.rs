//! What kind of network-boot client sent a request: legacy PXE, UEFI PXE, UEFI HTTP boot or iPXE
//! (options 60, 77, 93, 175), and which boot file it gets.

use super::config::{BootFiles, Host};
use dhcproto::v4::{DhcpOption, Message, OptionCode};

/// The boot-relevant kind of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// Not a network-boot client (an OS's DHCP client).
    Plain,
    /// Legacy BIOS PXE ROM.
    Bios,
    /// UEFI PXE.
    Uefi,
    /// UEFI HTTP boot.
    UefiHttp,
    /// iPXE (user class `iPXE` or its option 175).
    Ipxe,
}

/// Classifies a request.
pub fn classify(msg: &Message) -> ClientKind {
    let opts = msg.opts();
    let user_class_ipxe = match opts.get(OptionCode::UserClass) {
        Some(DhcpOption::UserClass(bytes)) => bytes.windows(4).any(|w| w == b"iPXE"),
        _ => false,
    };
    if user_class_ipxe || opts.get(OptionCode::Unknown(175)).is_some() {
        return ClientKind::Ipxe;
    }
    let vendor = match opts.get(OptionCode::ClassIdentifier) {
        Some(DhcpOption::ClassIdentifier(v)) => v.as_slice(),
        _ => &[],
    };
    match architecture(msg) {
        Some(0x0F | 0x10 | 0x13) => ClientKind::UefiHttp,
        Some(6 | 7 | 9 | 0x0B) => ClientKind::Uefi,
        Some(_) => ClientKind::Bios,
        None if vendor.starts_with(b"PXEClient") => ClientKind::Bios,
        None if vendor.starts_with(b"HTTPClient") => ClientKind::UefiHttp,
        None => ClientKind::Plain,
    }
}

/// The client's architecture: option 93's code, when it sent one.
pub fn architecture(msg: &Message) -> Option<u16> {
    match msg.opts().get(OptionCode::ClientSystemArchitecture) {
        Some(DhcpOption::ClientSystemArchitecture(a)) => Some(a.0),
        _ => None,
    }
}

/// The boot file for a client of `kind` and architecture `arch`: the host's own file first, then the
/// file of its architecture (not for iPXE), then the file of its kind.
pub fn boot_file<'a>(
    kind: ClientKind,
    arch: Option<u16>,
    files: &'a BootFiles,
    host: Option<&'a Host>,
) -> Option<&'a str> {
    let own = |f: fn(&Host) -> Option<&String>| host.and_then(f).map(String::as_str);
    let by_arch = arch.and_then(|a| files.arch.get(&a)).map(String::as_str);
    match kind {
        ClientKind::Ipxe => own(|h| h.ipxe.as_ref()).or(files.ipxe.as_deref()),
        ClientKind::Bios | ClientKind::Plain => own(|h| h.boot.as_ref())
            .or(by_arch)
            .or(files.bios.as_deref()),
        ClientKind::Uefi => own(|h| h.boot.as_ref())
            .or(by_arch)
            .or(files.uefi.as_deref()),
        ClientKind::UefiHttp => by_arch.or(files.uefi_http.as_deref()),
    }
}
