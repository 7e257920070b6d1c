//! `tributary run --metrics-listen ADDR`: a Prometheus scrape endpoint.
//!
//! - `GET /metrics`: every [`Metrics`] value in the Prometheus text format.
//! - `GET /health`: `200` with a small JSON status while the pipeline runs.
//!
//! It runs on its own thread with a one-thread tokio runtime, so a slow
//! scraper never touches the pipeline's threads; the pipeline only bumps
//! atomics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use tributary_runtime::metrics::Metrics;

/// Binds `addr` now (so a port in use is an error at start-up, not later) and
/// serves the endpoint in the background until the process exits. Returns the
/// bound address (useful with port 0).
pub fn spawn(
    addr: SocketAddr,
    pipeline: String,
    metrics: Arc<Metrics>,
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
            rt.block_on(serve(listener, pipeline, metrics));
        })?;
    Ok(local)
}

async fn serve(listener: std::net::TcpListener, pipeline: String, metrics: Arc<Metrics>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("metrics endpoint: {e}");
            return;
        }
    };
    // The input-rate gauge is a moving window sampled once a second.
    let sampler = metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            sampler.sample_rate();
        }
    });
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
        );
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!("metrics endpoint stopped: {e}");
    }
}
