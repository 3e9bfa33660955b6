//! The test harness: the real `kadeploy3d` started on loopback (killed by PID on drop, also when a test
//! fails), configuration copies, and a raw HTTP/1.1 client shaped like the Ruby clients' `Net::HTTP`.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sample configuration: 300 simulated nodes.
pub const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../simulator/config/sim300");

/// A running `kadeploy3d`; SIGKILLed and reaped on drop.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Server {
    /// Starts `kadeploy3d -c config --bind 127.0.0.1:0 --database db extra...` and waits for its
    /// "listening" line.
    pub fn start(config: &Path, db: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kadeploy3d"))
            .arg("-c")
            .arg(config)
            .args(["--bind", "127.0.0.1:0", "--database"])
            .arg(db)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("kadeploy3d starts");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
        match (read, port) {
            (Ok(_), Some(port)) => Server { child, port },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kadeploy3d did not print its listening line: {line:?}");
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL by PID, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh temporary directory for test `name`.
pub fn setup(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kadeploy-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A copy of the sample configuration in `dir/conf`, served over plain HTTP unless `secure`, with the
/// sample's commented-out loopback ACL turned on (the tests speak for several users from 127.0.0.1).
pub fn config_copy(dir: &Path, secure: bool) -> PathBuf {
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    for entry in std::fs::read_dir(SAMPLE).expect("sample dir").flatten() {
        std::fs::copy(entry.path(), conf.join(entry.file_name())).expect("copy");
    }
    let server = conf.join("server.conf");
    let text = std::fs::read_to_string(&server).expect("server.conf");
    let text = text
        .replace("secure_server: true", &format!("secure_server: {secure}"))
        .replace("\n  # acl: {", "\n  acl: {")
        .replace(
            "server_file_directories:\n    - /envs",
            &format!("server_file_directories:\n    - {}", image_dir().display()),
        );
    assert!(
        text.contains("\n  acl: {"),
        "the sample's loopback ACL line"
    );
    assert!(text.contains(&image_dir().display().to_string()));
    std::fs::write(&server, text).expect("server.conf");
    write_image();
    conf
}

/// The directory of the sample image, which the test configurations allow `server://` references to name.
pub fn image_dir() -> PathBuf {
    std::env::temp_dir().join("kadeploy-e2e-envs")
}

/// The `server://` reference of the sample image (the server reads it for its checksum).
pub fn image_ref() -> String {
    format!("server://{}/debian12.tgz", image_dir().display())
}

/// The content of the sample image.
pub const IMAGE: &[u8] = b"the sample image of the end-to-end tests\n";

/// Writes the sample image (through a temporary file: tests run concurrently).
fn write_image() {
    let dir = image_dir();
    std::fs::create_dir_all(&dir).expect("image dir");
    let thread = format!("{:?}", std::thread::current().id());
    let tmp = dir.join(format!(".debian12.tgz.{}.{}", std::process::id(), thread));
    std::fs::write(&tmp, IMAGE).expect("image");
    std::fs::rename(&tmp, dir.join("debian12.tgz")).expect("image");
}

/// A raw HTTP answer.
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body as sent (still gzipped when `Content-Encoding: gzip`).
    pub raw: Vec<u8>,
}

impl Resp {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body, gunzipped when needed.
    pub fn text(&self) -> String {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&self.raw[..])
                .read_to_string(&mut out)
                .expect("gzip body");
            out
        } else {
            String::from_utf8_lossy(&self.raw).into_owned()
        }
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// Kadeploy's error number, when any.
    pub fn code(&self) -> Option<u32> {
        self.header("x-application-error-code")
            .and_then(|c| c.parse().ok())
    }
}

/// Sends `request` as is on a fresh connection and reads the answer until the server closes.
pub fn raw(port: u16, request: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // A server may answer (413) before reading the whole body: write errors are not fatal.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse(&buf)
}

fn parse(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        raw: body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// The Ruby clients' requests (`common/http.rb`): the user header, `Accept: application/json`, Net::HTTP's
/// default `Accept-Encoding`, JSON bodies with an explicit `Content-Length`.
pub struct Http {
    /// Server port.
    pub port: u16,
    /// `X-Kadeploy-User`.
    pub user: String,
}

impl Http {
    /// A client for `user`.
    pub fn new(port: u16, user: &str) -> Http {
        Http {
            port,
            user: user.into(),
        }
    }

    /// A request with extra header lines and a body sent with `ctype`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Resp {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: Ruby\r\nConnection: close\r\n\
             X-Kadeploy-User: {}\r\n",
            self.port, self.user
        );
        let mut accept = "application/json";
        let mut encoding = "gzip;q=1.0,deflate;q=0.6,identity;q=0.3";
        for (k, v) in headers {
            match k.to_ascii_lowercase().as_str() {
                "accept" => accept = v,
                "accept-encoding" => encoding = v,
                _ => req.push_str(&format!("{k}: {v}\r\n")),
            }
        }
        req.push_str(&format!("Accept: {accept}\r\n"));
        if !encoding.is_empty() {
            req.push_str(&format!("Accept-Encoding: {encoding}\r\n"));
        }
        let mut bytes = Vec::new();
        if let Some((ctype, body)) = body {
            req.push_str(&format!(
                "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
                body.len()
            ));
            req.push_str("\r\n");
            bytes.extend_from_slice(req.as_bytes());
            bytes.extend_from_slice(body);
        } else {
            req.push_str("\r\n");
            bytes.extend_from_slice(req.as_bytes());
        }
        raw(self.port, &bytes)
    }

    /// `GET path` (parameters already in the query string).
    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    /// `method path` with a JSON body.
    pub fn send(&self, method: &str, path: &str, body: &Value) -> Resp {
        let text = serde_json::to_vec(body).expect("json");
        self.request(method, path, &[], Some(("application/json", &text)))
    }

    /// Polls the workflow `resource` (the client loop, at 50 ms) until `done`, at most `limit`.
    pub fn wait_done(&self, resource: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let r = self.get(resource);
            assert_eq!(r.status, 200, "{}", r.text());
            let w = r.json();
            if w["done"] == true {
                return w;
            }
            assert!(
                start.elapsed() < limit,
                "{resource} not done after {limit:?}: {w}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The sample's node names, `node-1.sim.kadeploy`...
pub fn nodes(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("node-{i}.sim.kadeploy")).collect()
}

/// Grants `root` every node and adds `root`'s `debian12` version 1 (what `karights3 -a` and `kaenv3 -a` send).
pub fn seed_catalog(h: &Http) {
    let r = h.send(
        "POST",
        "/rights",
        &serde_json::json!({"nodes": ["*"], "partitions": ["*"], "username": "root"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h.send(
        "POST",
        "/environments",
        &serde_json::json!({"environment": debian12()}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The description `kaenv3 -a` sends for the sample environment.
pub fn debian12() -> Value {
    serde_json::json!({
        "name": "debian12", "version": 1, "visibility": "shared", "os": "linux", "filesystem": "ext4",
        "image": {"file": image_ref(), "kind": "tar", "compression": "gzip"},
        "boot": {"kernel": "/vmlinuz"}
    })
}
