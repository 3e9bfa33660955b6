//! The server's life: configuration, listeners, optional detaching and PID file, then serving until
//! SIGTERM or SIGINT (drain, then exit 0), reloading the configuration and reopening log files on SIGHUP.

use crate::args::Args;
use crate::backends::backends;
use crate::boot;
use crate::configure::Configuration;
use crate::detach::{Detached, detach};
use crate::logging::Redirect;
use crate::pidfile::{self, PidFile};
use anyhow::Context as _;
use kadeploy::metrics::RELOADS;
use kadeploy_server::metrics_http::serve_metrics;
use kadeploy_server::{App, Live, serve_live, shutdown};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How long cancelled workflows get to record their end at shutdown.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// Everything prepared before the runtime starts (and before detaching).
struct Prepared {
    conf: Configuration,
    boot: Option<hal::netboot::services::ServicesConfig>,
    api: TcpListener,
    metrics: Option<TcpListener>,
    redirect: Option<Redirect>,
    detached: Option<Detached>,
}

/// Runs the server until it is stopped.
pub fn run(args: Args) -> anyhow::Result<()> {
    crate::logging::init(args.daemon);
    let conf = Configuration::load(&args)?;
    conf.log_warnings();
    let boot = boot::services(&args.config, &conf.loaded.config.clusters)?;
    let bind = args.bind.unwrap_or_else(|| {
        let ip = if conf.settings.local_only {
            [127, 0, 0, 1]
        } else {
            [0, 0, 0, 0]
        };
        (ip, conf.settings.port).into()
    });
    let api = TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    let metrics = conf
        .settings
        .metrics
        .map(|a| TcpListener::bind(a).with_context(|| format!("metrics/listen: binding {a}")))
        .transpose()?;
    if let Some(p) = &args.pidfile {
        pidfile::check(p)?;
    }
    let (redirect, detached) = if args.daemon {
        let redirect = Redirect::new(&args.log_dir)?;
        let detached = detach(&redirect)?;
        (Some(redirect), Some(detached))
    } else {
        (None, None)
    };
    let _pidfile = args.pidfile.as_deref().map(PidFile::create).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let prepared = Prepared {
        conf,
        boot,
        api,
        metrics,
        redirect,
        detached,
    };
    let result = runtime.block_on(serve(args, prepared));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn serve(args: Args, p: Prepared) -> anyhow::Result<()> {
    let table = backends();
    let app = App::with_config(p.conf.settings, p.conf.loaded, &table)?;
    let live = Live::new(app);
    let api = serve_live(live.clone(), p.api).await?;
    let metrics = p
        .metrics
        .map(|l| serve_metrics(live.clone(), boot::running(p.boot.as_ref()), l))
        .transpose()?;
    let mut boot_task = tokio::spawn(async move {
        match p.boot {
            Some(config) => hal::netboot::services::run(config)
                .await
                .context("network boot services"),
            None => std::future::pending().await,
        }
    });
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let scheme = if api.secure { "https" } else { "http" };
    println!("kadeploy3d listening on {scheme}://{}", api.addr);
    if let Some(m) = &metrics {
        println!("kadeploy3d metrics on http://{}/metrics", m.addr);
    }
    if let Some(d) = p.detached {
        d.ready();
    }
    tracing::info!(
        pid = std::process::id(),
        "kadeploy3d serves on {}",
        api.addr
    );
    let mut api_task = api.task;
    let reload = Reload {
        netboot: boot::text(&args.config),
        args: args.clone(),
        backends: Arc::new(table),
        redirect: p.redirect.map(Arc::new),
    };
    loop {
        tokio::select! {
            _ = hup.recv() => reload.run(&live).await,
            _ = term.recv() => break,
            _ = int.recv() => break,
            r = &mut api_task => {
                r.context("the API server task")??;
                anyhow::bail!("the API server stopped");
            }
            r = &mut boot_task => {
                r.context("the boot services task")??;
                anyhow::bail!("the network boot services stopped");
            }
        }
    }
    let grace = Duration::from_secs_f64(args.shutdown_grace.clamp(0.0, 86_400.0));
    tracing::info!("stopping: new workflows are refused, running ones get {grace:?} to end");
    let stopped = tokio::select! {
        r = shutdown::drain(&live, grace, CANCEL_WAIT) => r?,
        _ = term.recv() => stop_now(&live).await?,
        _ = int.recv() => stop_now(&live).await?,
    };
    tracing::info!(
        cancelled = stopped.cancelled.len(),
        aborted = stopped.aborted.len(),
        "kadeploy3d stopped"
    );
    Ok(())
}

/// A second SIGTERM or SIGINT while draining: cancel everything now.
async fn stop_now(live: &Live) -> anyhow::Result<shutdown::Stopped> {
    tracing::warn!("second stop signal: cancelling the running workflows now");
    shutdown::drain(live, Duration::ZERO, Duration::from_secs(2)).await
}

/// What SIGHUP needs.
struct Reload {
    args: Args,
    backends: Arc<kadeploy_server::Backends>,
    redirect: Option<Arc<Redirect>>,
    /// `netboot.conf` as the boot services started with it.
    netboot: Option<String>,
}

impl Reload {
    /// Reloads the configuration (keeping the running one when the new one is bad), then reopens the
    /// log files.
    async fn run(&self, live: &Arc<Live>) {
        tracing::info!("SIGHUP: reloading the configuration and reopening the log files");
        if let Some(r) = &self.redirect
            && let Err(e) = r.apply()
        {
            tracing::error!("reopening output.log and error.log: {e}");
        }
        let (args, backends, live2) = (self.args.clone(), self.backends.clone(), live.clone());
        let result = tokio::task::spawn_blocking(move || {
            let conf = Configuration::load(&args)?;
            conf.log_warnings();
            live2.app().reload(conf.settings, conf.loaded, &backends)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        match result {
            Ok((app, restart)) => {
                for r in restart {
                    tracing::warn!("{r}");
                }
                live.replace(app);
                RELOADS.inc(&["ok"]);
                tracing::info!("configuration reloaded");
            }
            Err(e) => {
                RELOADS.inc(&["error"]);
                tracing::error!(
                    "configuration reload failed, the running configuration stays: {e:#}"
                );
            }
        }
        for e in live.app().logs.reopen() {
            tracing::warn!("{e}");
        }
        if boot::text(&self.args.config) != self.netboot {
            tracing::warn!(
                "{} changed: the embedded boot services take it at the next restart",
                boot::NETBOOT_FILE
            );
        }
    }
}
