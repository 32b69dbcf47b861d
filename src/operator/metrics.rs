//! The operator's metrics, labelled by controller, error category, kind and
//! phase only, so their number stays small whatever the number of tenancies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::caches::Lists;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum ControllerName {
    Requests,
    Tenancies,
    Changes,
    Units,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: ControllerName,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: ControllerName,
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
    pub verb: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteErrorLabels {
    pub kind: String,
    pub verb: &'static str,
    pub category: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListsLabels {
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub kind: &'static str,
    pub phase: String,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
    writes: Family<WriteLabels, Counter>,
    write_errors: Family<WriteErrorLabels, Counter>,
    pub(super) phases: Family<PhaseLabels, Gauge>,
    calendar_fallbacks: Counter,
    drift_repairs: Family<KindLabels, Counter>,
    volumes_lost: Counter,
    quota_recounts: Counter,
    prometheus_queries: Counter,
    evaluations: Counter,
    evaluation_seconds: Histogram,
    unmatched: Gauge,
    leader: Gauge,
    first_lists: Family<ListsLabels, Gauge>,
    writes_total: AtomicU64,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("govcloud");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        let writes = Family::<WriteLabels, Counter>::default();
        let phases = Family::<PhaseLabels, Gauge>::default();
        let calendar_fallbacks = Counter::default();
        let drift_repairs = Family::<KindLabels, Counter>::default();
        let volumes_lost = Counter::default();
        let quota_recounts = Counter::default();
        registry.register(
            "quota_recounts",
            "Quotas the quota controller was asked to count again after refusing a create",
            quota_recounts.clone(),
        );
        registry.register(
            "drift_repairs",
            "Objects of the operator's that someone else changed, put back, by kind",
            drift_repairs.clone(),
        );
        registry.register(
            "volumes_lost",
            "Volumes of tenancies found deleted without a wipe",
            volumes_lost.clone(),
        );
        let prometheus_queries = Counter::default();
        let evaluations = Counter::default();
        let unmatched = Gauge::default();
        registry.register(
            "utilisation_unmatched_namespaces",
            "Namespaces Prometheus answered for at the last evaluation that hold no tenancy in service (their series are ignored)",
            unmatched.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the lease and runs the controllers",
            leader.clone(),
        );
        let first_lists = Family::<ListsLabels, Gauge>::default();
        registry.register(
            "watch_first_lists",
            "How the watches took their first lists: 1 for the mode in use (streamed, where the apiserver serves WatchList; paged otherwise), 0 for the other",
            first_lists.clone(),
        );
        let evaluation_seconds = Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
        registry.register(
            "utilisation_evaluations",
            "Evaluations of every tenancy's utilisation (Art. 18)",
            evaluations.clone(),
        );
        registry.register(
            "utilisation_evaluation_duration_seconds",
            "Time per evaluation, queries and status writes included",
            evaluation_seconds.clone(),
        );
        registry.register(
            "prometheus_queries",
            "Range queries sent to Prometheus by the utilisation evaluator",
            prometheus_queries.clone(),
        );
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by error category",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time per reconcile",
            duration.clone(),
        );
        registry.register(
            "writes",
            "Writes sent to the apiserver, by kind and verb",
            writes.clone(),
        );
        let write_errors = Family::<WriteErrorLabels, Counter>::default();
        registry.register(
            "write_errors",
            "Writes the apiserver refused or that timed out, by kind, verb and error category",
            write_errors.clone(),
        );
        registry.register(
            "objects",
            "Requests, tenancies and change requests by phase",
            phases.clone(),
        );
        registry.register(
            "calendar_fallbacks",
            "Deadlines counted Monday to Friday for want of a WorkCalendar",
            calendar_fallbacks.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            duration,
            writes,
            write_errors,
            phases,
            calendar_fallbacks,
            drift_repairs,
            volumes_lost,
            quota_recounts,
            prometheus_queries,
            evaluations,
            evaluation_seconds,
            unmatched,
            leader,
            first_lists,
            writes_total: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// An object someone else changed was put back (`Kind/name`).
    pub fn drift_repaired(&self, object: &str) {
        let kind = object.split('/').next().unwrap_or_default().to_owned();
        self.drift_repairs.get_or_create(&KindLabels { kind }).inc();
    }

    /// Volumes found deleted without a wipe.
    pub fn volumes_lost(&self, n: usize) {
        self.volumes_lost.inc_by(n as u64);
    }

    /// A quota's usage to be counted again.
    pub fn quota_recounted(&self) {
        self.quota_recounts.inc();
    }

    pub fn reconciled(&self, controller: ControllerName, seconds: f64) {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(seconds);
    }

    pub fn failed(&self, controller: ControllerName, category: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels {
                controller,
                category,
            })
            .inc();
    }

    /// A write that failed (or took too long), by its error's category.
    pub fn write_failed(&self, kind: &str, verb: &'static str, category: &'static str) {
        self.write_errors
            .get_or_create(&WriteErrorLabels {
                kind: kind.to_owned(),
                verb,
                category,
            })
            .inc();
    }

    pub fn wrote(&self, kind: &str, verb: &'static str) {
        self.writes_total.fetch_add(1, Ordering::Relaxed);
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_owned(),
                verb,
            })
            .inc();
    }

    /// One evaluation's queries, counted with the evaluation itself so that
    /// the two counters never disagree.
    pub fn evaluation_queried(&self, queries: u64) {
        self.prometheus_queries.inc_by(queries);
        self.evaluations.inc();
    }

    /// Namespaces answered for that hold no tenancy in service.
    pub fn unmatched_namespaces(&self, n: usize) {
        self.unmatched.set(n as i64);
    }

    pub fn unmatched_namespaces_now(&self) -> i64 {
        self.unmatched.get()
    }

    pub fn evaluation_took(&self, seconds: f64) {
        self.evaluation_seconds.observe(seconds);
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// How the watches took their first lists.
    pub fn set_first_lists(&self, lists: Lists) {
        for (mode, of) in [("streamed", Lists::Streamed), ("paged", Lists::Paged)] {
            self.first_lists
                .get_or_create(&ListsLabels { mode })
                .set(i64::from(lists == of));
        }
    }

    /// How the watches took their first lists, once they have.
    pub fn first_lists(&self) -> Option<Lists> {
        [("streamed", Lists::Streamed), ("paged", Lists::Paged)]
            .into_iter()
            .find(|(mode, _)| self.first_lists.get_or_create(&ListsLabels { mode }).get() == 1)
            .map(|(_, lists)| lists)
    }

    /// Evaluations that reached Prometheus so far.
    pub fn evaluations(&self) -> u64 {
        self.evaluations.get()
    }

    /// Volumes found deleted without a wipe so far.
    pub fn volumes_lost_total(&self) -> u64 {
        self.volumes_lost.get()
    }

    /// Range queries sent to Prometheus so far.
    pub fn prometheus_queries_sent(&self) -> u64 {
        self.prometheus_queries.get()
    }

    pub fn calendar_fallback(&self) {
        self.calendar_fallbacks.inc();
    }

    /// Reconciles run so far by one controller.
    pub fn reconciles(&self, controller: ControllerName) -> u64 {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .get()
    }

    /// Writes sent so far, all kinds.
    pub fn writes(&self) -> u64 {
        self.writes_total.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
