//! Serial-over-LAN of the lab BMC with Debian's `ipmitool -I lanplus ... sol activate`, against a fake
//! serial port (a unix socket the test serves like QEMU's). At `f72496d`, `sol activate` answered
//! "Invalid command".

#[path = "support/bmc.rs"]
mod support;

use hal::testing::process::require;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Bmc, Options, PASSWORD, signal};

/// A serial port standing in for the VM's: greets each connection with `boot <n>`, echoes what it
/// receives as `echo:<bytes>`; the test can hang the connection up (a VM restart) or flood it.
struct FakeSerial {
    current: Arc<Mutex<Option<UnixStream>>>,
}

impl FakeSerial {
    fn serve(bmc: &Bmc) -> FakeSerial {
        let listener = UnixListener::bind(bmc.dir.join("serial.sock")).unwrap();
        let current: Arc<Mutex<Option<UnixStream>>> = Arc::default();
        let shared = current.clone();
        // The thread ends with the test process; the socket goes with the directory.
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { return };
                let _ = conn.write_all(format!("boot {n}\r\nlogin: ").as_bytes());
                *shared.lock().unwrap() = conn.try_clone().ok();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 512];
                    while let Ok(k) = conn.read(&mut buf) {
                        if k == 0 {
                            return;
                        }
                        let mut echo = b"echo:".to_vec();
                        echo.extend_from_slice(&buf[..k]);
                        let _ = conn.write_all(&echo);
                    }
                });
            }
        });
        FakeSerial { current }
    }

    /// Closes the current connection, as QEMU does when the VM stops.
    fn hang_up(&self) {
        if let Some(conn) = self.current.lock().unwrap().take() {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Writes `bytes` to the console (the VM printing); false if nobody is connected.
    fn print(&self, bytes: &[u8]) -> bool {
        let conn = self
            .current
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|c| c.try_clone().ok());
        conn.is_some_and(|mut c| c.write_all(bytes).is_ok())
    }
}

/// A running `ipmitool ... sol activate` whose output is collected.
struct Console {
    child: Child,
    stdin: Option<ChildStdin>,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Console {
    fn start(bmc: &Bmc, shell: Option<&str>) -> Console {
        let mut cmd = match shell {
            // A site's console command: take the payload over, then attach.
            Some(script) => {
                let mut c = std::process::Command::new("sh");
                c.arg("-c").arg(script);
                c
            }
            None => bmc.ipmitool_command(PASSWORD, &["sol", "activate"]),
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let seen: Arc<Mutex<Vec<u8>>> = Arc::default();
        for mut out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    seen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Console {
            stdin: child.stdin.take(),
            child,
            seen,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until the output contains `what`.
    fn wait_for(&self, what: &str, bmc: &Bmc) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "{what:?} never came; console:\n{}\nBMC log:\n{}",
                self.text(),
                bmc.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_in(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the process to end on its own.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the console did not end:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sol_bmc(name: &str) -> (Bmc, FakeSerial) {
    require("ipmitool", "ipmitool");
    let bmc = Bmc::launch(
        name,
        Options {
            serial: true,
            ..Options::default()
        },
    );
    let serial = FakeSerial::serve(&bmc);
    (bmc, serial)
}

#[test]
fn sol_activate_relays_both_ways_follows_restarts_and_ends_cleanly() {
    let (bmc, serial) = sol_bmc("sol-relay");
    let mut console = Console::start(&bmc, None);
    console.wait_for("[SOL Session operational", &bmc);
    console.wait_for("boot 0\r\nlogin: ", &bmc);
    console.type_in(b"root\n");
    console.wait_for("echo:root", &bmc);
    // The VM restarts: its serial socket closes and comes back; the BMC connects again.
    serial.hang_up();
    console.wait_for("boot 1\r\n", &bmc);
    console.type_in(b"uname\n");
    console.wait_for("echo:uname", &bmc);
    // Output larger than one SOL packet arrives whole and in order.
    let long: String = (0..300).map(|i| format!("line-{i:03};")).collect();
    assert!(serial.print(long.as_bytes()));
    console.wait_for(&long, &bmc);
    // ipmitool's escape sequence: deactivate, close the session, exit.
    console.type_in(b"\n~.");
    let status = console.wait_exit();
    assert!(status.success(), "{status}: {}", console.text());
    let log = bmc.log();
    assert!(log.contains("SOL deactivated"), "{log}");
    // The payload is free again.
    let again = Console::start(&bmc, None);
    again.wait_for("[SOL Session operational", &bmc);
    again.wait_for("boot 2\r\n", &bmc);
}

/// A console killed with SIGKILL (as the console relay kills its command) keeps the payload active;
/// a site's console command (`sol deactivate; sol activate`) takes it over.
#[test]
fn a_killed_console_is_taken_over_by_the_sites_console_command() {
    let (bmc, _serial) = sol_bmc("sol-takeover");
    let first = Console::start(&bmc, None);
    first.wait_for("[SOL Session operational", &bmc);
    signal(first.child.id(), "KILL");
    let mut refused = Console::start(&bmc, None);
    let status = refused.wait_exit();
    assert!(!status.success());
    assert!(
        refused
            .text()
            .contains("SOL payload already active on another session"),
        "{}",
        refused.text()
    );
    let base = format!(
        "ipmitool -I lanplus -H 127.0.0.1 -p {} -U ADMIN -P {PASSWORD}",
        bmc.port
    );
    let mut site = Console::start(
        &bmc,
        Some(&format!(
            "{base} sol deactivate >/dev/null 2>&1; exec {base} sol activate"
        )),
    );
    site.wait_for("[SOL Session operational", &bmc);
    site.type_in(b"hostname\n");
    site.wait_for("echo:hostname", &bmc);
}

/// A console that stops reading (SIGSTOP) neither stalls the VM's output nor the BMC: output it
/// does not take is dropped beyond the BMC's bounded buffer.
#[test]
fn a_stuck_console_stalls_neither_the_vm_nor_the_bmc() {
    let (bmc, serial) = sol_bmc("sol-stuck");
    let console = Console::start(&bmc, None);
    console.wait_for("login: ", &bmc);
    signal(console.child.id(), "STOP");
    let chunk = vec![b'z'; 64 * 1024];
    let start = Instant::now();
    for _ in 0..16 {
        assert!(
            serial.print(&chunk),
            "the BMC stopped reading the serial port"
        );
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "1 MiB took {took:?}");
    let status = bmc.ipmitool_ok(&["chassis", "power", "status"]);
    assert!(status.contains("Chassis Power is"), "{status}");
    bmc.ipmitool_ok(&["sol", "deactivate"]);
    signal(console.child.id(), "CONT");
    let log = without_colours(&bmc.log());
    let dropped: u64 = log
        .lines()
        .filter(|l| l.contains("SOL deactivated"))
        .filter_map(|l| l.split("dropped=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .next()
        .unwrap_or_else(|| panic!("no deactivation logged:\n{log}"));
    assert!(dropped > 900 * 1024, "only {dropped} bytes dropped:\n{log}");
}

/// `text` without ANSI colour sequences (the BMC's log is coloured).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
