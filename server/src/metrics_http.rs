//! The `/metrics` listener (`metrics/listen` in `server.conf`, off by default): plain HTTP, Prometheus'
//! text format, the process-wide families of [`kadeploy::metrics`] plus values read at scrape time (running
//! workflows, and the request counters of the boot services embedded in this process).

use super::Live;
use super::observe::kind_name;
use super::workflow::Kind;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hal::netboot::stats::{self, ServiceStats};
use kadeploy::metrics::{self, Text};
use std::net::SocketAddr;
use std::sync::Arc;

/// The boot services running in this process, whose counters `/metrics` shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootServices {
    /// DHCP.
    pub dhcp: bool,
    /// TFTP.
    pub tftp: bool,
    /// HTTP boot.
    pub http: bool,
}

/// A running metrics listener.
pub struct MetricsListener {
    /// The bound address.
    pub addr: SocketAddr,
    /// The server task.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `GET /metrics` on `listener` for the application `live` holds.
pub fn serve_metrics(
    live: Arc<Live>,
    boot: BootServices,
    listener: std::net::TcpListener,
) -> anyhow::Result<MetricsListener> {
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let live = live.clone();
            async move { exposition(&live, boot) }
        }),
    );
    let task = tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(MetricsListener { addr, task })
}

fn exposition(live: &Live, boot: BootServices) -> Response {
    let text = render(live, boot);
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    r
}

/// The document `/metrics` answers.
pub fn render(live: &Live, boot: BootServices) -> String {
    let app = live.app();
    let mut running = [0u64; 3];
    let kinds = [Kind::Deploy, Kind::Reboot, Kind::Power];
    for wf in app
        .workflows
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
    {
        if !wf.done()
            && let Some(i) = kinds.iter().position(|k| *k == wf.kind)
        {
            running[i] += 1;
        }
    }
    let parts = app.running_parts();
    metrics::render(|t| {
        t.family(
            "kadeploy_workflows_running",
            "Workflows running now, by kind.",
            metrics::Kind::Gauge,
        );
        for (k, n) in kinds.iter().zip(running) {
            t.sample(
                "kadeploy_workflows_running",
                &[("kind", kind_name(*k))],
                n as f64,
            );
        }
        t.family(
            "kadeploy_workflow_parts_running",
            "Per-cluster parts of workflows queued or running on the executors, cancelled ones included.",
            metrics::Kind::Gauge,
        );
        t.sample("kadeploy_workflow_parts_running", &[], parts as f64);
        t.family(
            "kadeploy_draining",
            "1 while the server shuts down and refuses new workflows.",
            metrics::Kind::Gauge,
        );
        t.sample(
            "kadeploy_draining",
            &[],
            if live.draining() { 1.0 } else { 0.0 },
        );
        boot_families(t, boot);
    })
}

fn boot_families(t: &mut Text, boot: BootServices) {
    let services: Vec<(&str, &ServiceStats)> = [
        (boot.dhcp, "dhcp", &stats::DHCP),
        (boot.tftp, "tftp", &stats::TFTP),
        (boot.http, "http", &stats::HTTP),
    ]
    .into_iter()
    .filter(|(on, _, _)| *on)
    .map(|(_, name, s)| (name, s))
    .collect();
    if services.is_empty() {
        return;
    }
    t.family(
        "kadeploy_boot_requests_total",
        "Requests received by the boot services embedded in kadeploy3d (DHCP datagrams, TFTP read \
         requests, HTTP requests).",
        metrics::Kind::Counter,
    );
    for (name, s) in &services {
        t.sample(
            "kadeploy_boot_requests_total",
            &[("service", name)],
            s.requests() as f64,
        );
    }
    t.family(
        "kadeploy_boot_errors_total",
        "Requests of the embedded boot services that failed or were refused (malformed, not found, \
         busy, transfer errors, HTTP 4xx/5xx).",
        metrics::Kind::Counter,
    );
    for (name, s) in &services {
        t.sample(
            "kadeploy_boot_errors_total",
            &[("service", name)],
            s.errors() as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_embedded_boot_services_are_shown() {
        let mut t = Text::new();
        boot_families(&mut t, BootServices::default());
        assert_eq!(t.finish(), "");
        let mut t = Text::new();
        let on = BootServices {
            dhcp: false,
            tftp: true,
            http: true,
        };
        boot_families(&mut t, on);
        let text = t.finish();
        assert!(text.contains("kadeploy_boot_requests_total{service=\"tftp\"} "));
        assert!(text.contains("kadeploy_boot_errors_total{service=\"http\"} "));
        assert!(!text.contains("dhcp\""), "{text}");
    }
}
