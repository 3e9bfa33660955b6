//! The engine's debug logs in tests: one global `tracing` subscriber at debug level (span closings included) for
//! the whole test binary, installed before any workflow runs, which writes each line to the capture of the thread
//! that logged it, if any. Every scenario thus runs the engine's spans enabled, and a test reads its own logs only.
//! (Per-test scoped subscribers are unreliable here: callsites first reached by other test threads while no
//! subscriber exists may keep a cached "never" interest.)

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

type Buffer = Arc<Mutex<Vec<u8>>>;

thread_local! {
    static CAPTURE: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// Installs the global subscriber once; every scenario calls it before running the engine.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(ThreadWriter)
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(FmtSpan::CLOSE)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the engine tests");
    });
}

/// The logs of the current thread from now until the capture is dropped.
pub struct Capture(Buffer);

impl Capture {
    /// Starts capturing the current thread's log lines.
    pub fn start() -> Self {
        install();
        let buffer = Buffer::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(buffer.clone()));
        Capture(buffer)
    }

    /// The lines captured so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8(bytes).expect("UTF-8 logs")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

/// Makes writers to the capture of the logging thread.
struct ThreadWriter;

/// A writer to one capture, or nowhere.
struct LineWriter(Option<Buffer>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(buffer) = &self.0 {
            buffer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThreadWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(CAPTURE.with(|c| c.borrow().clone()))
    }
}
