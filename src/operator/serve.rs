//! `/metrics`, `/healthz` and `/readyz` over plain HTTP/1.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::caches::Caches;
use super::metrics::{Metrics, PhaseLabels};

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Counts requests and tenancies by phase from the caches, at scrape time
/// (from what they keep unpacked: see [`super::packed`]).
fn count_phases(metrics: &Metrics, caches: &Caches) {
    metrics.phases.clear();
    let count = |kind: &'static str, phase: Option<&str>| {
        metrics
            .phases
            .get_or_create(&PhaseLabels {
                kind,
                phase: phase.unwrap_or("New").to_owned(),
            })
            .inc();
    };
    for r in caches.requests.state().iter().filter(|r| r.is_valid()) {
        count("CloudResourceRequest", r.phase());
    }
    for t in caches.tenancies.state().iter().filter(|t| t.is_valid()) {
        count("Tenancy", t.phase());
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, caches: Caches) {
    tracing::info!(address = ?listener.local_addr().ok(), "serving /metrics, /healthz and /readyz");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let caches = caches.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let metrics = metrics.clone();
            let caches = caches.clone();
            async move {
                Ok::<_, Infallible>(match req.uri().path() {
                    "/metrics" => {
                        if metrics.is_ready() {
                            count_phases(&metrics, &caches);
                        }
                        respond(
                            StatusCode::OK,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            metrics.render(),
                        )
                    }
                    "/healthz" | "/livez" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
                    "/readyz" if metrics.is_ready() => {
                        respond(StatusCode::OK, "text/plain", "ok\n".into())
                    }
                    "/readyz" => respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "caches not yet listed\n".into(),
                    ),
                    _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
                })
            }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
