//! The operator process: caches of what it watches, three controllers
//! (requests, tenancies, units) that hand plain data and `now` to the pure
//! planners, and the executor of their plans.
//!
//! Nothing is written unless the plan differs from what the caches show, so
//! a settled cluster receives no writes, at steady state or after a restart
//! (the controllers start only once every cache has listed).

mod caches;
mod changes;
pub mod events;
mod gate;
mod index;
pub mod leader;
pub mod metrics;
pub mod packed;
mod requests;
mod serve;
mod tenancies;
mod units;
pub mod utilisation;
mod wake;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Client, Resource};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{UnboundedReceiverStream, WatchStream};
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::record::Note;

pub use caches::{Caches, Lists};
pub use metrics::Metrics;

/// The name under which the operator writes and reports.
pub const MANAGER: &str = crate::provisioning::MANAGER;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object changed since it was read (the apiserver's 409, or a plan
    /// that finds its base moved): plan again at once.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write that took longer than [`WRITE_TIMEOUT`].
    #[error("{verb} of {kind} took longer than {}s", WRITE_TIMEOUT.as_secs())]
    Timeout { kind: String, verb: &'static str },
    #[error("Kubernetes API: {0}")]
    Kube(kube::Error),
    #[error("serialization: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) if s.code == 409 => Error::Conflict(s.message),
            e => Error::Kube(e),
        }
    }
}

impl Error {
    /// A stable class, for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Conflict(_) => "conflict",
            Error::Timeout { .. } => "timeout",
            Error::Kube(kube::Error::Api(s)) if s.code == 422 => "rejected",
            Error::Kube(kube::Error::Api(s)) if s.code == 403 => "forbidden",
            Error::Kube(kube::Error::Api(s)) if s.code == 404 => "not-found",
            Error::Kube(_) => "api",
            Error::Json(_) => "serialization",
            Error::Invalid(_) => "invalid",
        }
    }

    /// The object is not there (404).
    fn is_gone(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(s)) if s.code == 404)
    }

    /// Conflicts retry at once; invalid input waits for a change; the rest
    /// backs off.
    fn action(&self) -> Action {
        match self {
            Error::Conflict(_) => Action::requeue(Duration::from_millis(500)),
            Error::Invalid(_) => Action::await_change(),
            _ => Action::requeue(Duration::from_secs(5)),
        }
    }
}

/// How long one write may take before the reconcile gives up on it (and is
/// retried): a stuck connection must not hold a controller slot for ever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub clock: Clock,
    pub caches: Caches,
    pub metrics: Arc<Metrics>,
    events: events::Events,
    /// Reconciles each controller runs at once.
    concurrency: u16,
    /// How often a settled object is looked at again.
    resync: Duration,
    /// Per tenancy namespace, the usage its quota showed when a recount
    /// was last asked for (see `provisioning::recount`).
    recounts: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Per tenancy (`namespace/name`), reconciles in a row that had an
    /// object refused: the retry backs off with it.
    refusals: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// Tenancies created from requests, as the apiserver answered, until
    /// the cache shows them: a request reconciled again before then does
    /// not create its tenancy again.
    provisioned:
        std::sync::Mutex<std::collections::HashMap<(String, String), Arc<crate::api::Tenancy>>>,
}

impl Context {
    /// Sends one write to the apiserver: given [`WRITE_TIMEOUT`] at most,
    /// counted by kind and verb, and its failure by category.
    async fn write<T>(
        &self,
        kind: &str,
        verb: &'static str,
        call: impl Future<Output = kube::Result<T>>,
    ) -> Result<T, Error> {
        let result = match tokio::time::timeout(WRITE_TIMEOUT, call).await {
            Ok(done) => done.map_err(Error::from),
            Err(_) => Err(Error::Timeout {
                kind: kind.to_owned(),
                verb,
            }),
        };
        match &result {
            Ok(_) => self.metrics.wrote(kind, verb),
            Err(e) => self.metrics.write_failed(kind, verb, e.category()),
        }
        result
    }

    /// Counts a reconcile of the tenancy `key` that had an object refused
    /// (or forgets the count when none was): how many in a row, this one
    /// included.
    fn refusals_in_a_row(&self, key: &str, refused: bool) -> u32 {
        let mut counts = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        if !refused {
            counts.remove(key);
            return 0;
        }
        let n = counts.entry(key.to_owned()).or_default();
        *n = n.saturating_add(1);
        *n
    }

    /// Every storage class on offer: the cluster's, those the price list
    /// prices, and the classes of VM disks and backup.
    fn storage_classes(&self) -> std::collections::BTreeSet<String> {
        use kube::ResourceExt;
        let mut classes: std::collections::BTreeSet<String> = self
            .caches
            .storage_classes
            .state()
            .iter()
            .map(|c| c.name_any())
            .collect();
        let catalog = self
            .caches
            .catalogs
            .get(&kube::runtime::reflector::ObjectRef::new(
                &self.config.catalog,
            ));
        if let Some(Ok(catalog)) = catalog.as_ref().map(|c| c.0.as_ref()) {
            for period in &catalog.spec.periods {
                classes.extend(period.storage.iter().map(|s| s.class.to_string()));
            }
        }
        classes.insert(self.config.provisioning.vm_disk_storage_class.clone());
        classes.insert(self.config.provisioning.backup_storage_class.clone());
        classes
    }

    /// Merges `patch` into a namespace, as the operator's field manager.
    async fn patch_namespace(&self, name: &str, patch: serde_json::Value) -> Result<(), Error> {
        let api = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(self.client.clone());
        let params = kube::api::PatchParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        let merge = kube::api::Patch::Merge(&patch);
        self.write("Namespace", "patch", api.patch(name, &params, &merge))
            .await?;
        Ok(())
    }

    /// Replaces a tenancy as read (its resourceVersion guards against
    /// concurrent changes), as the operator's own field manager.
    async fn replace_tenancy(&self, tenancy: &crate::api::Tenancy) -> Result<(), Error> {
        use kube::ResourceExt;
        let api: kube::Api<crate::api::Tenancy> = kube::Api::namespaced(
            self.client.clone(),
            &tenancy.namespace().unwrap_or_default(),
        );
        let params = kube::api::PostParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        let name = tenancy.name_any();
        self.write("Tenancy", "replace", api.replace(&name, &params, tenancy))
            .await?;
        Ok(())
    }

    /// Writes `status` into an object's status by server-side apply as
    /// `manager` (which owns exactly the fields it writes). With `read_as`,
    /// only over that resourceVersion: never over a newer object.
    async fn apply_status<K, S>(
        &self,
        object: &K,
        manager: &str,
        status: &S,
        read_as: Option<String>,
    ) -> Result<(), Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        S: serde::Serialize,
    {
        let meta = object.meta();
        let api: kube::Api<K> = kube::Api::namespaced(
            self.client.clone(),
            meta.namespace.as_deref().unwrap_or_default(),
        );
        let mut patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        if let Some(version) = read_as {
            patch["metadata"] = serde_json::json!({ "resourceVersion": version });
        }
        let name = meta.name.clone().unwrap_or_default();
        let params = kube::api::PatchParams::apply(manager).force();
        let apply = kube::api::Patch::Apply(&patch);
        self.write(
            &K::kind(&()),
            "status",
            api.patch_status(&name, &params, &apply),
        )
        .await?;
        Ok(())
    }

    /// The groups never bound as a unit's: the reviewers', vendors' and
    /// auditors'.
    fn role_groups(&self) -> [&str; 3] {
        [
            self.config.reviewer_group.as_str(),
            self.config.vendor_group.as_str(),
            self.config.auditor_group.as_str(),
        ]
    }

    /// Merges `spec` into a tenancy's spec, as the operator's own field
    /// manager (a retirement, a regularised emergency).
    /// The tenancy's resourceVersion after it.
    async fn patch_tenancy_spec(
        &self,
        ns: &str,
        name: &str,
        spec: serde_json::Value,
    ) -> Result<Option<String>, Error> {
        let api: kube::Api<crate::api::Tenancy> = kube::Api::namespaced(self.client.clone(), ns);
        let params = kube::api::PatchParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        let merge = kube::api::Patch::Merge(serde_json::json!({ "spec": spec }));
        let patched = self
            .write("Tenancy", "patch", api.patch(name, &params, &merge))
            .await?;
        Ok(kube::Resource::meta(&patched).resource_version.clone())
    }

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
                secondary: note.related.as_ref().map(|r| {
                    k8s_openapi::api::core::v1::ObjectReference {
                        api_version: Some(r.api_version.to_owned()),
                        kind: Some(r.kind.to_owned()),
                        namespace: Some(r.namespace.clone()),
                        name: Some(r.name.clone()),
                        ..Default::default()
                    }
                }),
            };
            if let Err(e) = self.events.publish(&event, &reference).await {
                warn!(error = %e, reason = note.reason, "cannot publish an event");
            }
        }
    }
}

impl Context {
    /// Reports an object the operator cannot read (its schema allowed what
    /// the operator's types do not), without stopping the watch.
    async fn unreadable(
        &self,
        invalid: &kube::core::error_boundary::InvalidObject,
        api_version: &str,
        kind: &str,
    ) {
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
            name: invalid.metadata.name.clone(),
            namespace: invalid.metadata.namespace.clone(),
            uid: invalid.metadata.uid.clone(),
            resource_version: invalid.metadata.resource_version.clone(),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "Unreadable".into(),
            note: Some(truncate(
                &format!(
                    "the operator cannot read this object and leaves it alone until it changes: {}",
                    invalid.error
                ),
                1000,
            )),
            action: "Skip".into(),
            secondary: None,
        };
        warn!(kind, name = ?invalid.metadata.name, error = %invalid.error, "unreadable object skipped");
        if let Err(e) = self.events.publish(&event, &reference).await {
            warn!(error = %e, "cannot publish an event");
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

/// Runs a controller over a cache that the watches fill, woken by `triggers`
/// (objects that changed), by `clock_moves` (everything: a deadline may have
/// passed) and by its own requeues; it stops when `stop` resolves.
fn drive<K, Fut>(
    store: kube::runtime::reflector::Store<K>,
    triggers: impl futures::Stream<Item = kube::runtime::reflector::ObjectRef<K>> + Send + 'static,
    clock_moves: impl futures::Stream<Item = ()> + Send + 'static,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
    reconcile: impl Fn(Arc<K>, Arc<Context>) -> Fut + Clone + Send + Sync + 'static,
    ctx: Arc<Context>,
) -> impl Future<Output = ()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    // The controller starts every reconcile that is due; the gate lets
    // `concurrency` of them run at once, the oldest object first.
    let gate = gate::Gate::new(usize::from(ctx.concurrency));
    let cache = store.clone();
    let gated = move |obj: Arc<K>, ctx: Arc<Context>| {
        let (gate, cache, reconcile) = (gate.clone(), cache.clone(), reconcile.clone());
        async move {
            let meta = obj.meta();
            let created = meta
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_second());
            let key = format!(
                "{}/{}",
                meta.namespace.as_deref().unwrap_or(""),
                meta.name.as_deref().unwrap_or("")
            );
            let _slot = gate.enter((created, key)).await;
            // The object as the cache shows it now, not as it was when the
            // reconcile began to wait. The reconcile's future is boxed: held
            // inline, its size would be every waiting reconcile's (tens of
            // thousands wait at a cold start).
            match cache.get(&kube::runtime::reflector::ObjectRef::from_obj(&obj)) {
                Some(now) => Box::pin(reconcile(now, ctx)).await,
                None => Ok(Action::await_change()),
            }
        }
    };
    // Every object, when the clock moves.
    let all = store.clone();
    let everything = clock_moves.flat_map(move |()| {
        let refs: Vec<_> = all
            .state()
            .iter()
            .map(|o| lean(kube::runtime::reflector::ObjectRef::from_obj(&**o)))
            .collect();
        futures::stream::iter(refs)
    });
    kube::runtime::Controller::for_stream(futures::stream::pending(), store)
        .reconcile_on(triggers.map(lean))
        .reconcile_on(everything)
        .graceful_shutdown_on(stop)
        .run(gated, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(kind = %K::kind(&()), error = %e, "reconcile");
            }
        })
}

/// Where an object is, and nothing else: what the controllers' queues and
/// schedules hold of each object due (a reference made from an object also
/// carries its UID and version, held twice by each schedule).
fn lean<K: Resource<DynamicType = ()>>(
    mut r: kube::runtime::reflector::ObjectRef<K>,
) -> kube::runtime::reflector::ObjectRef<K> {
    r.extra = Default::default();
    r
}

fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    _: Arc<Context>,
) -> Action {
    let name = obj.meta().name.clone().unwrap_or_default();
    warn!(kind = %K::kind(&()), %name, category = error.category(), error = %error, "reconcile failed");
    error.action()
}

/// Runs one reconcile of `obj` in its own span (controller, namespace,
/// name: every log line of the reconcile carries them), counting it, its
/// duration and its failure.
async fn timed<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    controller: metrics::ControllerName,
    obj: &K,
    reconcile: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    use tracing::Instrument;
    let meta = obj.meta();
    let span = tracing::info_span!(
        "reconcile",
        controller = ?controller,
        kind = %K::kind(&()),
        namespace = meta.namespace.as_deref().unwrap_or(""),
        name = meta.name.as_deref().unwrap_or(""),
    );
    let started = std::time::Instant::now();
    let result = reconcile.instrument(span).await;
    ctx.metrics
        .reconciled(controller, started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        ctx.metrics.failed(controller, e.category());
    }
    result
}

/// How soon an object with something in progress is looked at again even if
/// no change to it or its objects is seen.
pub const UNSETTLED_RECHECK: Duration = Duration::from_secs(30);

/// How often a settled object is looked at again, unless told otherwise: a
/// look that finds nothing to do writes nothing.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(600);

/// When to look at an object again: at its next deadline `at`, and no later
/// than [`UNSETTLED_RECHECK`] while it is not `settled`, or the resync
/// period while it is. This is the safety net under the watches.
fn recheck(ctx: &Context, at: Option<jiff::Timestamp>, settled: bool) -> Action {
    Action::requeue(recheck_after(ctx.clock.now(), at, settled, ctx.resync))
}

fn recheck_after(
    now: jiff::Timestamp,
    at: Option<jiff::Timestamp>,
    settled: bool,
    resync: Duration,
) -> Duration {
    let bound = if settled { resync } else { UNSETTLED_RECHECK };
    match at {
        Some(at) => {
            let secs = at.duration_since(now).as_secs().max(0) as u64;
            Duration::from_secs(secs.max(1)).min(bound)
        }
        None => bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.into(),
            ..Default::default()
        }))
    }

    #[test]
    fn a_conflict_is_its_own_error_and_retried_at_once() {
        let conflict = Error::from(status(409, "the object has been modified"));
        assert!(matches!(&conflict, Error::Conflict(m) if m == "the object has been modified"));
        assert_eq!(conflict.category(), "conflict");
        assert_eq!(
            conflict.action(),
            Action::requeue(Duration::from_millis(500))
        );
        let categories: Vec<&str> = [422, 403, 404, 500]
            .map(|code| Error::from(status(code, "x")).category())
            .to_vec();
        assert_eq!(categories, ["rejected", "forbidden", "not-found", "api"]);
        assert!(Error::from(status(404, "gone")).is_gone());
        let slow = Error::Timeout {
            kind: "Tenancy".into(),
            verb: "status",
        };
        assert_eq!(slow.category(), "timeout");
        assert_eq!(slow.to_string(), "status of Tenancy took longer than 30s");
        assert_eq!(
            Error::Invalid("bad".into()).action(),
            Action::await_change()
        );
    }

    #[test]
    fn nothing_waits_for_a_change_alone() {
        let now: jiff::Timestamp = "2026-12-07T02:00:00Z".parse().unwrap();
        let resync = Duration::from_secs(600);
        let in_ = |secs: i64| Some(now + jiff::SignedDuration::from_secs(secs));
        // In progress: 30 s at most, sooner for a deadline.
        assert_eq!(recheck_after(now, None, false, resync), UNSETTLED_RECHECK);
        assert_eq!(
            recheck_after(now, in_(3600), false, resync),
            UNSETTLED_RECHECK
        );
        assert_eq!(
            recheck_after(now, in_(5), false, resync),
            Duration::from_secs(5)
        );
        // Settled: the resync period at most, the deadline when sooner.
        assert_eq!(recheck_after(now, None, true, resync), resync);
        assert_eq!(recheck_after(now, in_(86_400), true, resync), resync);
        assert_eq!(
            recheck_after(now, in_(90), true, resync),
            Duration::from_secs(90)
        );
        // A deadline passed: at once (a second on).
        assert_eq!(
            recheck_after(now, in_(-60), true, resync),
            Duration::from_secs(1)
        );
    }
}

/// The operator, configured; [`Operator::run`] runs it.
pub struct Operator {
    client: Client,
    config: Config,
    clock: Clock,
    metrics: Arc<Metrics>,
    serve_on: Option<std::net::SocketAddr>,
    lease: Option<leader::LeaseConfig>,
    concurrency: u16,
    resync: Duration,
    clock_namespace: Option<String>,
}

/// Reconciles each controller runs at once, unless told otherwise. Unbounded,
/// a thousand approvals at once sent thousands of applies together and the
/// apiserver's quota admission timed them out (HTTP 500, "resource quota
/// evaluation timed out"); 32 at a time (each writing at most four objects
/// at once) keep it busy without queueing it: with 16, a burst of a
/// thousand took 82 s here, with 32, 74 s (docs/performance.md).
pub const DEFAULT_CONCURRENCY: u16 = 32;

/// Why [`Operator::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The shutdown future completed.
    Shutdown,
    /// Another replica took the lease: the controllers were stopped at once.
    LeaseLost,
    /// The controllers ended by themselves.
    ControllersEnded,
}

impl Operator {
    pub fn new(client: Client, config: Config) -> Self {
        Self {
            client,
            config,
            clock: Clock::system(),
            metrics: Arc::default(),
            serve_on: None,
            lease: None,
            concurrency: DEFAULT_CONCURRENCY,
            resync: DEFAULT_RESYNC,
            clock_namespace: None,
        }
    }

    /// Publishes a development clock in the ConfigMap
    /// [`crate::clock::Published::NAME`] of `namespace` (the operator's), so
    /// that the plugin reads the same time; with the system clock, removes
    /// one left by an earlier run.
    pub fn publish_clock_in(mut self, namespace: impl Into<String>) -> Self {
        self.clock_namespace = Some(namespace.into());
        self
    }

    /// How often a settled object is looked at again (at least a second).
    pub fn with_resync(mut self, every: Duration) -> Self {
        self.resync = every.max(Duration::from_secs(1));
        self
    }

    /// Reconciles each controller runs at once (at least one).
    pub fn with_concurrency(mut self, reconciles: u16) -> Self {
        self.concurrency = reconciles.max(1);
        self
    }

    /// Runs the controllers only while this replica holds the Lease; until
    /// then it serves health and metrics and keeps its caches warm.
    pub fn with_leader_election(mut self, lease: leader::LeaseConfig) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Where `now` comes from (a development clock for demos and tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on this address.
    pub fn serve_on(mut self, addr: std::net::SocketAddr) -> Self {
        self.serve_on = Some(addr);
        self
    }

    /// The metrics, to read while it runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` completes or the lease is lost.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Ended {
        let Self {
            client,
            config,
            clock,
            metrics,
            serve_on,
            lease,
            concurrency,
            resync,
            clock_namespace,
        } = self;
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
        let _clock = clock_namespace.map(|ns| {
            AbortOnDrop(tokio::spawn(publish_clock(
                client.clone(),
                ns,
                clock.clone(),
            )))
        });
        let (requests_tx, requests_rx) = mpsc::unbounded_channel();
        let (tenancies_tx, tenancies_rx) = mpsc::unbounded_channel();
        let (units_tx, units_rx) = mpsc::unbounded_channel();
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let senders = wake::Senders {
            requests: requests_tx,
            tenancies: tenancies_tx,
            changes: changes_tx,
            units: units_tx,
        };
        let lists = metrics.clone();
        let (caches, watchers) =
            Caches::start(client.clone(), senders, move |l| lists.set_first_lists(l));
        let _watchers = AbortOnDrop(tokio::spawn(watchers));
        let _server = match serve_on {
            Some(addr) => match serve::bind(addr).await {
                Ok(listener) => Some(AbortOnDrop(tokio::spawn(serve::serve(
                    listener,
                    metrics.clone(),
                    caches.clone(),
                )))),
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot serve metrics and health");
                    None
                }
            },
            None => None,
        };
        caches.wait_until_ready().await;
        metrics.set_ready();
        tokio::pin!(shutdown);
        let mut leadership = match lease {
            Some(cfg) => tokio::select! {
                l = leader::acquire(client.clone(), cfg) => Some(l),
                () = &mut shutdown => return Ended::Shutdown,
            },
            None => None,
        };
        metrics.set_leader(true);
        info!("caches listed; controllers starting");

        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let ctx = Arc::new(Context {
            events: events::Events::new(client.clone(), reporter),
            client,
            config,
            clock: clock.clone(),
            caches,
            metrics: metrics.clone(),
            concurrency,
            resync,
            recounts: Default::default(),
            provisioned: Default::default(),
            refusals: Default::default(),
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
        let changes = changes::controller(
            ctx.clone(),
            UnboundedReceiverStream::new(changes_rx),
            clock_moves(),
            stopped(),
        );
        let _file_clock = AbortOnDrop(tokio::spawn(clock.clone().follow_file()));
        let _utilisation = AbortOnDrop(tokio::spawn(utilisation::run(ctx.clone())));
        let controllers = futures::future::join4(requests, tenancies, units, changes);
        tokio::pin!(controllers);
        let lost = async {
            match leadership.as_mut() {
                Some(l) => l.lost().await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            _ = &mut controllers => {
                warn!("controllers ended");
                Ended::ControllersEnded
            }
            () = lost => {
                // Dropping the controllers here cancels every write in flight.
                tracing::error!("lost the lease: controllers stopped at once");
                metrics.set_leader(false);
                return Ended::LeaseLost;
            }
            () = &mut shutdown => {
                info!("shutting down");
                let _ = stop_tx.send(true);
                let _ = tokio::time::timeout(Duration::from_secs(10), &mut controllers).await;
                Ended::Shutdown
            }
        };
        metrics.set_leader(false);
        if let Some(l) = leadership {
            l.release().await;
        }
        ended
    }
}

/// Background tasks end with the operator, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

/// Keeps the published clock true: written at start and at each move of a
/// development clock, and only when it says something new; removed when
/// the clock is the system's.
async fn publish_clock(client: Client, namespace: String, clock: Clock) {
    use crate::clock::Published;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, Patch, PatchParams};
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    if !clock.is_development() {
        let params = DeleteParams::default();
        let gone = tokio::time::timeout(WRITE_TIMEOUT, api.delete(Published::NAME, &params));
        match gone.await {
            Ok(Ok(_)) => {
                info!(%namespace, "removed the development clock an earlier run published")
            }
            Ok(Err(kube::Error::Api(e))) if e.code == 404 => {}
            Ok(Err(e)) => {
                warn!(%namespace, error = %e, "cannot remove a published development clock")
            }
            Err(_) => warn!(%namespace, "removing a published development clock timed out"),
        }
        return;
    }
    let mut published: Option<Published> = match api.get_opt(Published::NAME).await {
        Ok(cm) => cm
            .and_then(|cm| cm.data)
            .and_then(|d| d.get(Published::KEY).cloned())
            .and_then(|json| serde_json::from_str(&json).ok()),
        Err(_) => None,
    };
    let mut moves = clock.subscribe();
    loop {
        let real = jiff::Timestamp::now();
        if let Some(next) = Published::record(published.as_ref(), clock.runs(), real, clock.now()) {
            let cm = serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": Published::NAME,
                    "labels": { "app.kubernetes.io/managed-by": MANAGER },
                },
                "data": { Published::KEY: serde_json::to_string(&next).unwrap_or_default() },
            });
            let params = PatchParams::apply(MANAGER).force();
            let apply = Patch::Apply(cm);
            let written =
                tokio::time::timeout(WRITE_TIMEOUT, api.patch(Published::NAME, &params, &apply));
            match written.await {
                Ok(Ok(_)) => published = Some(next),
                Ok(Err(e)) => warn!(%namespace, error = %e, "cannot publish the development clock"),
                Err(_) => warn!(%namespace, "publishing the development clock timed out"),
            }
        }
        if moves.changed().await.is_err() {
            return;
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
