//! Panics in request handlers: answered as a 500 with one log line, never a dropped connection, lost
//! pipelined requests or a backtrace per request; and the database work of handlers, run on tokio's
//! blocking pool under the same guard.

use crate::App;
use crate::reply::{self, HttpError};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt as _;
use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Once};

/// Longest panic message kept in the log line (characters).
const MAX_MESSAGE: usize = 300;

thread_local! {
    /// How many request handlers this thread is running right now.
    static IN_HANDLER: Cell<u32> = const { Cell::new(0) };
}

/// Marks the current thread as running a request handler until dropped.
pub struct HandlerScope(());

impl HandlerScope {
    /// Enters a handler on this thread.
    pub fn enter() -> HandlerScope {
        let _ = IN_HANDLER.try_with(|n| n.set(n.get().saturating_add(1)));
        HandlerScope(())
    }
}

impl Drop for HandlerScope {
    fn drop(&mut self) {
        let _ = IN_HANDLER.try_with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// The current thread runs a handler (never panics: the hook calls it while a thread may be exiting).
fn in_handler() -> bool {
    IN_HANDLER.try_with(Cell::get).unwrap_or(0) > 0
}

/// Runs a handler's future: a panic while polling it becomes a 500 answer (the connection and the
/// requests pipelined after it stay served) and one `error` log line instead of the default hook's
/// message and backtrace.
pub async fn guarded(fut: impl Future<Output = Response>) -> Response {
    install_hook();
    let mut fut = std::pin::pin!(fut);
    let scoped = std::future::poll_fn(move |cx| {
        let _scope = HandlerScope::enter();
        fut.as_mut().poll(cx)
    });
    match AssertUnwindSafe(scoped).catch_unwind().await {
        Ok(response) => response,
        Err(_) => internal_error(),
    }
}

/// The outermost layer of the API: runs the rest of the request under [`guarded`].
pub async fn layer(req: Request, next: Next) -> Response {
    guarded(next.run(req)).await
}

/// Runs `f`, which uses the database, on tokio's blocking pool, so SQLite (one connection behind a
/// mutex) never stalls the runtime's workers: reads of running workflows stay fast while submissions
/// queue on the database. A panic in `f` is a 500, logged as one line.
pub async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Arc<App>) -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let _scope = HandlerScope::enter();
        f(&app)
    })
    .await
    .unwrap_or_else(|_| Err(failed()))
}

/// The error of a request whose handler panicked.
fn failed() -> HttpError {
    HttpError::Status(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request handler failed".into(),
    )
}

/// The answer to a request whose handler panicked.
pub fn internal_error() -> Response {
    reply::render_error(failed(), None)
}

/// Installs, once per process, a panic hook that logs panics of request handlers as one line and hands
/// every other panic to the hook that was there before.
pub fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !in_handler() {
                return previous(info);
            }
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let message = info.payload_as_str().unwrap_or("(no message)");
            tracing::error!("{}", one_line(&location, message));
        }));
    });
}

/// The log line of a handler panic: location and message, control characters (newlines included)
/// replaced by spaces and the message cut to [`MAX_MESSAGE`] characters, since it may quote a request.
pub fn one_line(location: &str, message: &str) -> String {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .take(max)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let cut = if message.chars().count() > MAX_MESSAGE {
        "…"
    } else {
        ""
    };
    format!(
        "request handler panicked at {}: {}{cut}",
        clean(location, MAX_MESSAGE),
        clean(message, MAX_MESSAGE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use std::io::{Read as _, Write as _};

    #[test]
    fn the_log_line_is_one_bounded_line() {
        let long = "x\n".repeat(10_000);
        let line = one_line("src/a.rs:1", &long);
        assert!(!line.contains('\n') && !line.contains('\r'));
        assert!(line.chars().count() < 2 * MAX_MESSAGE, "{}", line.len());
        assert!(line.ends_with('…'));
        assert_eq!(
            one_line("src/a.rs:1", "boom"),
            "request handler panicked at src/a.rs:1: boom"
        );
    }

    /// A handler that panics (injected: no real route panics any more) is answered 500 on a real
    /// socket, and the request pipelined behind it on the same connection is still answered. Before the
    /// guard (commit f72496d) the panic dropped the connection: no status line at all, and the second
    /// request was lost.
    #[test]
    fn an_injected_handler_panic_is_a_500_and_the_connection_survives() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let handler = |req: axum::extract::Request| {
            guarded(async move {
                if req.uri().path() == "/panic" {
                    panic!("injected panic for the test");
                }
                Response::new(Body::from("fine"))
            })
        };
        let router = axum::Router::new().fallback(handler);
        let _server = rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, router).await
        });
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        s.write_all(
            b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .expect("write");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 500 "),
            "the panic is a 500: {text:?}"
        );
        assert_eq!(
            text.matches("HTTP/1.1 ").count(),
            2,
            "both pipelined requests are answered: {text:?}"
        );
        assert!(text.ends_with("fine"), "{text:?}");
        assert!(
            !in_handler(),
            "the test thread never ran a handler, so its panics keep the default hook"
        );
        rt.shutdown_background();
    }
}
