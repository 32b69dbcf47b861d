//! The operator process: caches of what it watches, three controllers
//! (requests, tenancies, units) that hand plain data and `now` to the pure
//! planners, and the executor of their plans.
//!
//! Nothing is written unless the plan differs from what the caches show, so
//! a settled cluster receives no writes, at steady state or after a restart
//! (the controllers start only once every cache has listed).

mod caches;
mod requests;
mod tenancies;
mod units;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{UnboundedReceiverStream, WatchStream};
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::review::Note;

pub use caches::Caches;

/// The name under which the operator writes and reports.
pub const MANAGER: &str = crate::provisioning::MANAGER;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("serialization: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// A stable class, for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(s)) if s.code == 422 => "rejected",
            Error::Kube(kube::Error::Api(s)) if s.code == 403 => "forbidden",
            Error::Kube(_) => "api",
            Error::Json(_) => "serialization",
            Error::Invalid(_) => "invalid",
        }
    }

    /// Conflicts retry at once; invalid input waits for a change; the rest
    /// backs off.
    fn action(&self) -> Action {
        match self.category() {
            "conflict" => Action::requeue(Duration::from_millis(500)),
            "invalid" => Action::await_change(),
            _ => Action::requeue(Duration::from_secs(5)),
        }
    }
}

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub clock: Clock,
    pub caches: Caches,
    recorder: Recorder,
}

impl Context {
    async fn publish<K>(&self, obj: &K, notes: &[Note])
    where
        K: Resource<DynamicType = ()>,
    {
        let reference = obj.object_ref(&());
        for note in notes {
            let event = Event {
                type_: if note.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: note.reason.into(),
                note: Some(truncate(&note.message, 1000)),
                action: note.reason.into(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &reference).await {
                warn!(error = %e, reason = note.reason, "cannot publish an event");
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// How long until `at`, as a requeue.
fn requeue_at(clock: &Clock, at: Option<jiff::Timestamp>) -> Action {
    match at {
        Some(at) => {
            let wait = at.duration_since(clock.now());
            let secs = wait.as_secs().max(0) as u64;
            Action::requeue(Duration::from_secs(secs.clamp(1, 24 * 3600)))
        }
        None => Action::await_change(),
    }
}

/// Runs the operator until `shutdown` completes.
pub async fn run(
    client: Client,
    config: Config,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    info!(
        clock = %clock.describe(),
        reviewers = %config.reviewer_group,
        wipe = ?config.wipe.mode,
        "govcloud-operator starting"
    );
    if clock.is_development() {
        warn!(
            "DEVELOPMENT CLOCK IN USE ({}): deadlines follow it, not real time",
            clock.describe()
        );
    }
    let (requests_tx, requests_rx) = mpsc::unbounded_channel();
    let (tenancies_tx, tenancies_rx) = mpsc::unbounded_channel();
    let (units_tx, units_rx) = mpsc::unbounded_channel();
    let (caches, watchers) = Caches::start(client.clone(), requests_tx, tenancies_tx, units_tx);
    let _watchers = AbortOnDrop(tokio::spawn(watchers));
    caches.wait_until_ready().await;
    info!("caches listed; controllers starting");

    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        config,
        clock: clock.clone(),
        caches,
    });
    let clock_moves = || WatchStream::from_changes(clock.subscribe()).map(|_| ());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let requests = requests::controller(
        ctx.clone(),
        UnboundedReceiverStream::new(requests_rx),
        clock_moves(),
        stopped(),
    );
    let tenancies = tenancies::controller(
        ctx.clone(),
        UnboundedReceiverStream::new(tenancies_rx),
        clock_moves(),
        stopped(),
    );
    let units = units::controller(
        ctx.clone(),
        UnboundedReceiverStream::new(units_rx),
        stopped(),
    );
    let _file_clock = AbortOnDrop(tokio::spawn(clock.clone().follow_file()));
    let controllers = futures::future::join3(requests, tenancies, units);
    tokio::pin!(controllers);
    tokio::select! {
        _ = &mut controllers => warn!("controllers ended"),
        () = shutdown => {
            info!("shutting down");
            let _ = stop_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(10), controllers).await;
        }
    }
}

/// Background tasks end with the operator, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
