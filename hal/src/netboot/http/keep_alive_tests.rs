//! `keep_alive: false`: GRUB's request (HTTP/1.1, no `Connection: close`) is answered and the
//! connection closed at once; with the default, the connection stays open for a next request.

use super::{HttpConfig, HttpServer};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What GRUB 2.06 sends (captured from Debian's `grub-efi-amd64-bin` in the QEMU lab).
const GRUB_REQUEST: &[u8] =
    b"GET /profile HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: GRUB 2.06-13+deb12u2\r\n\r\n";

/// Serves a root holding `profile`, sends GRUB's request, and reads for at most 3 s: the response and
/// whether the server closed the connection within that time.
async fn fetch(keep_alive: bool) -> (String, bool) {
    let root = std::env::temp_dir().join(format!(
        "hal-http-keepalive-{keep_alive}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("profile"), "timeout=0\n").unwrap();
    let server = HttpServer::bind(HttpConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        root: root.clone(),
        keep_alive,
        ..HttpConfig::default()
    })
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let task = tokio::spawn(server.run());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(GRUB_REQUEST).await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut closed = false;
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    task.abort();
    std::fs::remove_dir_all(&root).unwrap();
    (String::from_utf8_lossy(&seen).to_lowercase(), closed)
}

/// Before, the boot server always kept GRUB's connection open, and GRUB, waiting for the close,
/// spent over 30 s on every file of a boot (seen in the lab with OVMF and `grub-mkimage`'s image).
#[tokio::test]
async fn without_keep_alive_grubs_request_is_answered_and_closed_at_once() {
    let (response, closed) = fetch(false).await;
    assert!(response.starts_with("http/1.1 200 ok"), "{response}");
    assert!(response.contains("connection: close"), "{response}");
    assert!(response.ends_with("timeout=0\n"), "{response}");
    assert!(closed, "the server did not close the connection");

    let (response, closed) = fetch(true).await;
    assert!(response.ends_with("timeout=0\n"), "{response}");
    assert!(
        !closed,
        "keep-alive connections stay open for the next request"
    );
}
