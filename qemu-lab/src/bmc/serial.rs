//! The BMC's link to the VM's serial port while serial-over-LAN is active: a client of QEMU's serial
//! socket (one client at a time, so the link exists only while SOL is active), connected again when the
//! VM restarts. Bytes go both ways through bounded channels; dropping the link closes the connection.

use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tracing::{debug, info};

/// Chunks waiting in each direction; a full queue towards the VM refuses input (the console is told).
pub const QUEUE: usize = 32;
/// The largest chunk read from the VM at once.
const READ_CHUNK: usize = 1024;
/// Wait between connection attempts while the VM is off or restarting.
const RETRY: Duration = Duration::from_millis(250);
/// Longest wait for one write to the VM (a VM that does not read loses the input).
const WRITE_LIMIT: Duration = Duration::from_secs(2);

/// Both ends of an active link; the connection task ends when this is dropped.
#[derive(Debug)]
pub struct SerialLink {
    /// Bytes for the VM's serial input.
    pub to_vm: mpsc::Sender<Vec<u8>>,
    /// Bytes the VM's serial port printed.
    pub from_vm: mpsc::Receiver<Vec<u8>>,
    task: tokio::task::JoinHandle<()>,
}

impl SerialLink {
    /// Connects to the serial socket at `path` (now and after every disconnection) until dropped.
    pub fn open(path: PathBuf) -> SerialLink {
        let (to_vm, input) = mpsc::channel(QUEUE);
        let (output, from_vm) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(path, input, output));
        SerialLink {
            to_vm,
            from_vm,
            task,
        }
    }
}

impl Drop for SerialLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(path: PathBuf, mut input: mpsc::Receiver<Vec<u8>>, output: mpsc::Sender<Vec<u8>>) {
    let mut announced = false;
    loop {
        let stream = match UnixStream::connect(&path).await {
            Ok(s) => s,
            Err(e) => {
                if !announced {
                    debug!(path = %path.display(), "serial port not there yet: {e}");
                    announced = true;
                }
                // Input typed while the VM is off is lost, as on a real serial line.
                while input.try_recv().is_ok() {}
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        info!(path = %path.display(), "serial port connected");
        announced = false;
        if !relay(stream, &mut input, &output).await {
            return;
        }
        info!(path = %path.display(), "serial port closed (VM stopped?)");
    }
}

/// Relays until the VM side closes (true: connect again) or the BMC side is gone (false).
async fn relay(
    stream: UnixStream,
    input: &mut mpsc::Receiver<Vec<u8>>,
    output: &mpsc::Sender<Vec<u8>>,
) -> bool {
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => return true,
                Ok(n) => {
                    if output.send(buf[..n].to_vec()).await.is_err() {
                        return false;
                    }
                }
            },
            bytes = input.recv() => {
                let Some(bytes) = bytes else { return false };
                match tokio::time::timeout(WRITE_LIMIT, writer.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return true,
                    Err(_) => debug!("the VM does not read its serial input: {} bytes lost", bytes.len()),
                }
            }
        }
    }
}
