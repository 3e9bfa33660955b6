//! Checks of the other clients against a deployed lab node: `kapower3 --status/--off/--on`, `kareboot3`
//! and `kaconsole3`. Each check answers `ok: ...` or `failed: ...`; none aborts the others.

use crate::lab::Lab;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs every check on node `i`; the map goes into the end-to-end report.
pub fn check(lab: &Lab, i: usize) -> anyhow::Result<BTreeMap<String, String>> {
    let node = lab.nodes[i].name.clone();
    let mut out = BTreeMap::new();
    let status = |lab: &Lab| client(lab.client("kapower3").args(["-m", &node, "--status"]));
    let state_line = |word: &str| format!("{node}: {word}");
    out.insert(
        "kapower3 --status".into(),
        expect(status(lab), &state_line("on")),
    );
    out.insert(
        "kapower3 --off -l hard".into(),
        expect(
            client(
                lab.client("kapower3")
                    .args(["-m", &node, "--off", "-l", "hard"]),
            ),
            "",
        ),
    );
    out.insert(
        "kapower3 --status (off)".into(),
        poll(
            || expect(status(lab), &state_line("off")),
            Duration::from_secs(20),
        ),
    );
    out.insert(
        "kapower3 --on -l hard".into(),
        expect(
            client(
                lab.client("kapower3")
                    .args(["-m", &node, "--on", "-l", "hard"]),
            ),
            "",
        ),
    );
    out.insert(
        "kapower3 --status (on)".into(),
        poll(
            || expect(status(lab), &state_line("on")),
            Duration::from_secs(20),
        ),
    );
    // Powered on again, the node boots its deployed system from its disk: the PXE profile says so.
    let before = match wait_ssh(
        lab,
        i,
        "cat /proc/sys/kernel/random/boot_id",
        Duration::from_secs(300),
    ) {
        Ok(id) => {
            out.insert("boot from disk after --on".into(), "ok: SSH answers".into());
            id
        }
        Err(e) => {
            out.insert("boot from disk after --on".into(), format!("failed: {e:#}"));
            String::new()
        }
    };
    out.insert(
        "kareboot3 -r simple".into(),
        expect(
            client(lab.client("kareboot3").args(["-m", &node, "-r", "simple"])),
            "successful",
        ),
    );
    let after = wait_ssh(
        lab,
        i,
        "cat /proc/sys/kernel/random/boot_id",
        Duration::from_secs(300),
    );
    out.insert(
        "reboot happened".into(),
        match after {
            Ok(id) if !before.is_empty() && id != before => "ok: new boot id".into(),
            Ok(_) => "failed: same boot id after kareboot3".into(),
            Err(e) => format!("failed: {e:#}"),
        },
    );
    out.insert("kaconsole3".into(), console(lab, &node));
    if lab.power() == crate::site_config::PowerDriver::Native {
        out.insert(
            "kaconsole3 through sol activate".into(),
            through_sol(lab, i),
        );
        out.insert(
            "next boot device set by the BMC".into(),
            next_boot_set(lab, i),
        );
    }
    Ok(out)
}

/// Repeats `check` until it answers `ok` or `timeout` passes; its last answer.
fn poll(mut check: impl FnMut() -> String, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = check();
        if answer.starts_with("ok") || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs a client; its exit status and stdout.
fn client(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        anyhow::bail!(
            "{}: {}{}",
            out.status,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

/// `ok: <output>` when the client succeeded and printed `word` (any output when empty).
fn expect(result: anyhow::Result<String>, word: &str) -> String {
    match result {
        Ok(text) if word.is_empty() || text.to_lowercase().contains(word) => {
            format!("ok: {}", text.trim().replace('\n', " | "))
        }
        Ok(text) => format!("failed: expected {word:?} in {:?}", text.trim()),
        Err(e) => format!("failed: {e:#}"),
    }
}

/// Waits for the node to answer SSH; gives the output of `command`.
fn wait_ssh(lab: &Lab, i: usize, command: &str, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        match lab.ssh(i, command) {
            Ok(h) => return Ok(h.trim().to_string()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// `kaconsole3 -m node`: types `hostname` on the serial console and looks for the answer.
fn console(lab: &Lab, node: &str) -> String {
    let short = node.split('.').next().unwrap_or(node).to_string();
    let child = lab
        .client("kaconsole3")
        .args(["-m", node])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return format!("failed: {e}"),
    };
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(out) = stdout.as_mut() {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&seen).contains(&format!("console-check {short}"))
                || Instant::now() > deadline
            {
                break;
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    for _ in 0..5 {
        if let Some(input) = stdin.as_mut() {
            let _ = input.write_all(b"\necho console-check $(hostname -s)\n");
            let _ = input.flush();
        }
        std::thread::sleep(Duration::from_secs(2));
        if reader.is_finished() {
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let seen = reader.join().unwrap_or_default();
    if seen.contains("console-check node-") {
        "ok: the node's shell answered on its serial console".into()
    } else {
        format!(
            "failed: no answer on the console ({} bytes seen)",
            seen.len()
        )
    }
}

/// With native power the console command is `ipmitool ... sol activate`: node `i`'s BMC attached its
/// serial port for it.
fn through_sol(lab: &Lab, i: usize) -> String {
    let log = lab.vms[i].spec().vm_dir().join("bmc.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let activated = text.matches("SOL activated").count();
    let connected = text.matches("serial port connected").count();
    if activated > 0 && connected > 0 {
        format!("ok: the BMC activated SOL {activated} time(s) and attached the serial port")
    } else {
        format!(
            "failed: {} shows {activated} SOL activation(s), {connected} serial connection(s)",
            log.display()
        )
    }
}

/// With native power the cluster asks for PXE before each reboot: node `i`'s BMC received the flags.
fn next_boot_set(lab: &Lab, i: usize) -> String {
    let log = lab.vms[i].spec().vm_dir().join("bmc.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    match text.matches("boot flags set").count() {
        0 => format!("failed: no boot flags set in {}", log.display()),
        n => format!("ok: the boot flags were set {n} time(s) before reboots"),
    }
}
