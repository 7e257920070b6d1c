//! `tributary run --metrics-listen ADDR`: a Prometheus scrape endpoint.
//!
//! - `GET /metrics`: every [`Metrics`] value in the Prometheus text format.
//! - `GET /health`: `200` with a small JSON status while the pipeline runs.
//! - `/ui/`: the web console of this one pipeline ([`crate::console`]):
//!   its charts, commits and dead letters; no actions (the process is the
//!   pipeline: stop it with a signal).
//!
//! It runs on its own thread with a one-thread tokio runtime, so a slow
//! scraper never touches the pipeline's threads; the pipeline only bumps
//! atomics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use tributary_runtime::metrics::Metrics;

use crate::console;
use crate::error::ApiError;
use crate::history::History;

/// What the console shows of the pipeline besides its metrics.
#[derive(Clone, Debug)]
pub struct RunConsole {
    /// The pipeline file as written (`${…}` unresolved).
    pub config: Value,
    pub dead_letter_dir: Option<PathBuf>,
}

/// Binds `addr` now (so a port in use is an error at start-up, not later) and
/// serves the endpoint in the background until the process exits. Returns the
/// bound address (useful with port 0).
pub fn spawn(
    addr: SocketAddr,
    pipeline: String,
    metrics: Arc<Metrics>,
    view: RunConsole,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("tributary-metrics".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("metrics endpoint: cannot start its runtime: {e}");
                    return;
                }
            };
            rt.block_on(serve(listener, pipeline, metrics, view));
        })?;
    Ok(local)
}

async fn serve(
    listener: std::net::TcpListener,
    pipeline: String,
    metrics: Arc<Metrics>,
    view: RunConsole,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("metrics endpoint: {e}");
            return;
        }
    };
    // The input-rate gauge is a moving window sampled once a second, and
    // so is the console's history.
    let history = Arc::new(Mutex::new(History::default()));
    let (sampler, h) = (metrics.clone(), history.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            sampler.sample_rate();
            h.lock().unwrap_or_else(|e| e.into_inner()).sample(&sampler);
        }
    });
    let view = Arc::new(view);
    // The console's view of the pipeline: a row, or its whole page.
    let page = {
        let (metrics, pipeline) = (metrics.clone(), pipeline.clone());
        move |whole: bool| -> Value {
            let status = console::Status {
                state: "RUNNING",
                trace: None,
                restarts: 0,
                config: &view.config,
            };
            let mut h = history.lock().unwrap_or_else(|e| e.into_inner());
            h.absorb_commits(&metrics);
            if whole {
                console::detail(
                    &pipeline,
                    &status,
                    &metrics,
                    &h,
                    view.dead_letter_dir.as_deref(),
                )
            } else {
                console::summary(&pipeline, &status, &metrics, &h)
            }
        }
    };
    let (page1, page2, p2) = (page.clone(), page, pipeline.clone());
    let console_api = Router::new()
        .route(
            "/ui/api/connectors",
            get(move || {
                let row = page1(false);
                async move {
                    axum::Json(json!({"mode": "run", "actions": false,
                                      "version": env!("CARGO_PKG_VERSION"),
                                      "connectors": [row]}))
                }
            }),
        )
        .route(
            "/ui/api/connectors/{name}",
            get(move |UrlPath(name): UrlPath<String>| {
                let found = (name == p2).then(|| page2(true));
                async move {
                    match found {
                        Some(page) => axum::Json(page).into_response(),
                        None => ApiError::NotFound(name).into_response(),
                    }
                }
            }),
        );
    let (m1, p1) = (metrics.clone(), pipeline.clone());
    let router = Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    m1.render_prometheus(&p1),
                )
                    .into_response()
            }),
        )
        .route(
            "/health",
            get(move || async move {
                let snap = metrics.snapshot();
                axum::Json(serde_json::json!({
                    "status": "running",
                    "pipeline": pipeline,
                    "last_committed_epoch": (snap.epochs_committed > 0).then_some(snap.last_epoch),
                    "records_in": snap.records_in,
                    "records_out": snap.records_out,
                }))
            }),
        )
        .merge(console_api)
        .merge(console::asset_routes());
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!("metrics endpoint stopped: {e}");
    }
}
