//! What the configured authentication trusts, said at start-up: an ACL that lists an address of this host
//! lets every local user send `<prefix>User: root`, and an ACL or ident whitelist that covers the nodes lets
//! whoever deployed a node (root there) act as anybody. Either makes every such user almighty.

use super::settings::{Net, Settings};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `addr` belongs to this host (loopback, or an address a socket can bind).
fn local(addr: IpAddr) -> bool {
    addr.is_loopback() || std::net::UdpSocket::bind((addr, 0)).is_ok()
}

/// The entries of `list` that cover an address of this host.
fn local_entries(list: &[Net]) -> Vec<IpAddr> {
    let loopback = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    let mut out: Vec<IpAddr> = Vec::new();
    for net in list {
        let hit = loopback
            .into_iter()
            .find(|a| net.contains(*a))
            .or_else(|| Some(net.addr()).filter(|a| local(*a)));
        if let Some(a) = hit
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

/// Warnings about `s` for a site whose nodes have the addresses `nodes`.
pub fn warnings(s: &Settings, nodes: &[IpAddr]) -> Vec<String> {
    let mut out = Vec::new();
    let almighty = if s.almighty.is_empty() {
        String::new()
    } else {
        format!(", the almighty {} included", s.almighty.join(", "))
    };
    let user = format!("{}User", s.headers_prefix);
    if let Some(acl) = &s.acl {
        let here = local_entries(acl);
        if !here.is_empty() {
            let list: Vec<String> = here.iter().map(IpAddr::to_string).collect();
            out.push(format!(
                "authentication/acl/whitelist trusts the {user} header from {} (this host): every local \
                 user can act as any user{almighty}",
                list.join(", ")
            ));
        }
    }
    let methods = [
        ("acl", s.acl.as_deref()),
        ("ident", s.ident.as_ref().map(|i| i.whitelist.as_slice())),
    ];
    for (method, list) in methods {
        let Some(list) = list else { continue };
        let covered: Vec<&IpAddr> = nodes
            .iter()
            .filter(|n| list.iter().any(|net| net.contains(**n)))
            .collect();
        if let Some(first) = covered.first() {
            out.push(format!(
                "authentication/{method}/whitelist covers {} node address(es) ({first}...): whoever deploys \
                 those nodes is root there and can act as any user{almighty}",
                covered.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn settings(auth: &str) -> Settings {
        let text = format!("authentication:\n{auth}rights:\n  almighty_users: root\n");
        Settings::parse(&text, Path::new("/nonexistent")).unwrap()
    }

    #[test]
    fn local_acls_and_node_networks_are_reported() {
        let nodes: Vec<IpAddr> = vec!["10.16.0.1".parse().unwrap()];
        let s = settings("  acl:\n    whitelist: [127.0.0.1]\n");
        let w = warnings(&s, &nodes);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("every local user can act as any user, the almighty root included"));
        let s = settings("  ident:\n    whitelist: [127.0.0.1, 10.16.0.0/16]\n");
        let w = warnings(&s, &nodes);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("authentication/ident/whitelist covers 1 node"));
        let s =
            settings("  acl:\n    whitelist: [192.0.2.7]\n  ident:\n    whitelist: [127.0.0.1]\n");
        assert!(warnings(&s, &nodes).is_empty());
    }

    /// Before, the shipped sample let every local user act as root (ACL on 127.0.0.1) and trusted the identd
    /// of the deployable nodes (10.16.0.0/16).
    #[test]
    fn the_shipped_sample_trusts_no_local_user_nor_node() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../simulator/config/sim300");
        let loaded = kadeploy::config::load_dir(&dir).unwrap();
        let s = Settings::from_loaded(&loaded).unwrap();
        let nodes: Vec<IpAddr> = loaded
            .config
            .clusters
            .iter()
            .flat_map(|c| c.nodes.iter().map(|n| n.address))
            .collect();
        assert_eq!(nodes.len(), 300);
        assert_eq!(warnings(&s, &nodes), Vec::<String>::new());
    }
}
