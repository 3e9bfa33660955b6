//! The network boot services embedded in `kadeploy3d`: with a `netboot.conf` in its configuration
//! directory, the server also serves the boot tree over HTTP (and TFTP) next to its REST API.

use crate::harness::{Server, config_copy, raw, setup};

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    probe.local_addr().expect("address").port()
}

#[test]
fn kadeploy3d_serves_the_boot_tree_when_netboot_conf_exists() {
    let dir = setup("netboot");
    let conf = config_copy(&dir, false);
    let tree = conf.join("tftpboot");
    std::fs::create_dir_all(tree.join("pxelinux.cfg")).expect("boot tree");
    std::fs::write(tree.join("pxelinux.cfg/0A100001"), "DEFAULT local\n").expect("profile");
    let (http, tftp) = (free_port(), free_port());
    std::fs::write(
        conf.join("netboot.conf"),
        format!(
            "http: {{listen: '127.0.0.1:{http}', root: tftpboot}}\n\
             tftp: {{listen: '127.0.0.1:{tftp}', root: tftpboot}}\n"
        ),
    )
    .expect("netboot.conf");
    let server = Server::start(&conf, &dir.join("db.sqlite"), &[]);

    let api = raw(
        server.port,
        b"GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(api.status, 200, "the REST API still answers");
    // The HTTP boot server binds right after the API: retry briefly.
    let mut answer = None;
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", http)).is_ok() {
            answer = Some(raw(
                http,
                b"GET /pxelinux.cfg/0A100001 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            ));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let answer = answer.expect("the embedded HTTP boot server listens");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.raw, b"DEFAULT local\n");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
