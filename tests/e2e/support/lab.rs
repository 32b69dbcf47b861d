//! A private cluster for one lifecycle test: its own control plane, the
//! operator running in-process on a development clock the test moves, and
//! helpers that play KubeVirt's and the Job controller's parts.

use std::collections::BTreeMap;
use std::time::Duration;

use govcloud::api::{CloudResourceRequest, RequestPhase, Tenancy, TenancyPhase, keys};
use govcloud::clock::Clock;
use govcloud::config::Config;
use govcloud::operator::metrics::ControllerName;
use govcloud_testenv::helm::Release;
use govcloud_testenv::manifests;
use govcloud_testenv::node::Node;
use govcloud_testenv::{ControlPlane, Options, standins};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{
    ApiResource, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::{Error, Unit, eventually, read};

pub const WAIT: Duration = Duration::from_secs(30);
pub const REVIEWER: &str = "wang.reviewer";

pub use govcloud_testenv::standins::vms;

pub struct Lab {
    /// A real node, in the labs that have one (dropped before the plane).
    pub node: Option<Node>,
    pub plane: ControlPlane,
    pub admin: Client,
    /// Who `decide` acts as, naming `REVIEWER` in `decided-by`: the admin,
    /// unless a test installs the admission policies and sets a reviewer.
    pub reviewer: Client,
    pub clock: Clock,
    /// The in-process operator's metrics.
    pub metrics: std::sync::Arc<govcloud::operator::Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    operator: Option<tokio::task::JoinHandle<()>>,
    units: u32,
    /// Held while the lab has a node: one node per machine.
    _node_lock: Option<tokio::sync::MutexGuard<'static, ()>>,
}

static NODE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Lab {
    /// A cluster whose clock starts at `start`, with the operator running.
    pub async fn start(start: &str) -> Self {
        Self::start_with(start, Config::default()).await
    }

    pub async fn start_with(start: &str, config: Config) -> Self {
        let mut lab = Self::cluster(start).await;
        lab.run_operator(config);
        lab
    }

    /// A cluster without an operator.
    pub async fn cluster(start: &str) -> Self {
        Self::cluster_with(start, false, &[]).await
    }

    /// A cluster whose kube-apiserver runs with `flags` too, without an
    /// operator.
    pub async fn cluster_flagged(start: &str, flags: &[&str]) -> Self {
        Self::cluster_with(start, false, flags).await
    }

    /// A cluster with a real node (kubelet, containerd, kube-proxy on this
    /// machine) and every controller, without an operator. Waits for any
    /// other lab's node to stop first.
    pub async fn with_node(start: &str) -> Self {
        Self::with_node_holding(start, Self::node_lock().await).await
    }

    /// The machine's one node, for a test that runs one of its own in
    /// another process first.
    pub async fn node_lock() -> tokio::sync::MutexGuard<'static, ()> {
        NODE.lock().await
    }

    /// A lab with a node, the machine's node already held.
    pub async fn with_node_holding(
        start: &str,
        lock: tokio::sync::MutexGuard<'static, ()>,
    ) -> Self {
        let mut lab = Self::cluster_with(start, true, &[]).await;
        let node = Node::start(&lab.plane)
            .await
            .unwrap_or_else(|e| panic!("the node did not start: {e}"));
        lab.node = Some(node);
        lab._node_lock = Some(lock);
        lab
    }

    async fn cluster_with(start: &str, node: bool, flags: &[&str]) -> Self {
        let plane = ControlPlane::start(Options {
            keep_dir: std::env::var_os("GOVCLOUD_KEEP_CONTROL_PLANE").is_some(),
            node,
            apiserver_args: flags.iter().map(|f| f.to_string()).collect(),
        })
        .await
        .unwrap_or_else(|e| panic!("private control plane: {e}"));
        let admin = plane.admin().await.unwrap_or_else(|e| panic!("{e}"));
        govcloud_testenv::install_basics(&admin, super::FIELD_MANAGER)
            .await
            .unwrap_or_else(|e| panic!("installing CRDs: {e}"));
        let clock = Clock::manual(
            start
                .parse()
                .unwrap_or_else(|e| panic!("start {start}: {e}")),
        );
        Self {
            node: None,
            _node_lock: None,
            plane,
            reviewer: admin.clone(),
            admin,
            clock,
            metrics: Default::default(),
            stop: None,
            operator: None,
            units: 0,
        }
    }

    pub fn run_operator(&mut self, config: Config) {
        self.run_operator_as(self.admin.clone(), config);
    }

    /// Runs the operator in-process with `client`'s identity.
    pub fn run_operator_as(&mut self, client: Client, config: Config) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.stop = Some(tx);
        let operator = govcloud::operator::Operator::new(client, config)
            .with_clock(self.clock.clone())
            .publish_clock_in(crate::admission::NAMESPACE);
        self.metrics = operator.metrics();
        self.operator = Some(tokio::spawn(async move {
            operator
                .run(async {
                    let _ = rx.await;
                })
                .await;
        }));
    }

    /// Stops the in-process operator (as a crash or an upgrade would) and
    /// waits until it has stopped; `run_operator` starts it again.
    pub async fn stop_operator(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(op) = self.operator.take() {
            op.abort();
            let _ = op.await;
        }
    }

    /// Installs what `helm template` renders for `release` (CRDs included),
    /// in its namespace, as `helm install` would; returns the objects.
    pub async fn install_chart(&self, release: &Release) -> Vec<DynamicObject> {
        let yaml = release
            .template()
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let objs = manifests::parse("helm template", &yaml).unwrap_or_else(|e| panic!("{e}"));
        self.install(&release.namespace, &objs).await;
        objs
    }

    /// Creates a namespace unless it exists.
    async fn create_namespace(&self, ns: &Namespace) {
        match Api::<Namespace>::all(self.admin.clone())
            .create(&PostParams::default(), ns)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => panic!("namespace {:?}: {e}", ns.metadata.name),
        }
    }

    async fn install(&self, namespace: &str, objs: &[DynamicObject]) {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        self.create_namespace(&ns).await;
        manifests::Applier::new(self.admin.clone(), "helm")
            .apply_all(objs, Some(namespace))
            .await
            .unwrap_or_else(|e| panic!("installing the chart: {e}"));
    }

    /// The operator's user as the chart's ServiceAccount in `namespace`.
    pub fn operator_user(namespace: &str) -> govcloud_testenv::User {
        govcloud_testenv::User::new(
            format!("system:serviceaccount:{namespace}:govcloud-operator"),
            Some("system:serviceaccounts"),
        )
    }

    /// A kubeconfig for the operator's ServiceAccount in `namespace`, bound
    /// to nothing but what the chart renders for it: its ClusterRole and, in
    /// `namespace`, its leader-election Role.
    pub async fn operator_kubeconfig(&self, namespace: &str) -> std::path::PathBuf {
        let release = Release::new("govcloud", namespace)
            .set("admission.enabled", "false")
            .set("bindGroups", "false")
            .set("defaults.workCalendars", "false")
            .set("defaults.serviceCatalog", "false");
        let yaml = release
            .template()
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let rbac: Vec<DynamicObject> = manifests::parse("helm template", &yaml)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .filter(|o| {
                o.types.as_ref().is_some_and(|t| {
                    t.api_version.starts_with("rbac.authorization.k8s.io/")
                        || t.kind == "ServiceAccount"
                })
            })
            .collect();
        assert!(rbac.len() >= 5, "the chart renders the operator's RBAC");
        self.install(namespace, &rbac).await;
        let path = self.plane.dir().join("operator.kubeconfig");
        self.plane
            .write_kubeconfig(&path, &Self::operator_user(namespace))
            .unwrap_or_else(|e| panic!("{e}"));
        path
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn advance_days(&self, days: i64) {
        self.clock.advance(SignedDuration::from_hours(24 * days));
    }

    pub fn set_clock(&self, to: &str) {
        self.clock
            .set(to.parse().unwrap_or_else(|e| panic!("{to}: {e}")));
    }

    /// A unit namespace as the platform team creates it.
    pub async fn unit(&mut self, id: &str) -> Unit {
        self.units += 1;
        let namespace = format!("unit-{id}");
        let group = format!("govcloud:unit:{id}");
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some(BTreeMap::from([(keys::UNIT.into(), id.into())])),
                annotations: Some(BTreeMap::from([
                    (keys::UNIT_GROUP.into(), group.clone()),
                    (keys::UNIT_NAME.into(), format!("单位{id}")),
                ])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        self.create_namespace(&ns).await;
        Unit {
            id: id.into(),
            namespace,
            group,
        }
    }

    pub fn requests(&self, ns: &str) -> Api<CloudResourceRequest> {
        Api::namespaced(self.admin.clone(), ns)
    }

    pub fn tenancies(&self, ns: &str) -> Api<Tenancy> {
        Api::namespaced(self.admin.clone(), ns)
    }

    pub fn dynamic(&self, ns: &str, ar: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.admin.clone(), ns, ar)
    }

    /// Files a sample request in `unit`'s namespace, edited by `edit`.
    pub async fn file(
        &self,
        unit: &Unit,
        sample: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> CloudResourceRequest {
        let objs = manifests::parse(sample, &read(sample)).unwrap_or_else(|e| panic!("{e}"));
        let mut v = serde_json::to_value(&objs[0]).unwrap_or_default();
        v["metadata"] = json!({ "name": name, "namespace": unit.namespace });
        edit(&mut v);
        let obj: CloudResourceRequest = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        self.requests(&unit.namespace)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("filing {name}: {e}"))
    }

    /// Sets the decision annotations as the plugin does.
    pub async fn decide(
        &self,
        ns: &str,
        name: &str,
        decision: &str,
        generation: i64,
        opinion: Option<&str>,
    ) {
        let mut annotations = json!({
            keys::DECISION: decision,
            keys::DECIDED_GENERATION: generation.to_string(),
            keys::DECIDED_BY: REVIEWER,
        });
        if let Some(o) = opinion {
            annotations[keys::OPINION] = json!(o);
        }
        Api::<CloudResourceRequest>::namespaced(self.reviewer.clone(), ns)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "annotations": annotations } })),
            )
            .await
            .unwrap_or_else(|e| panic!("deciding {name}: {e}"));
    }

    pub async fn annotate<K>(&self, api: &Api<K>, name: &str, key: &str, value: Option<&str>)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { key: value } } })),
        )
        .await
        .unwrap_or_else(|e| panic!("annotating {name}: {e}"));
    }

    pub async fn request_where(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        check: impl Fn(&CloudResourceRequest) -> bool,
    ) -> CloudResourceRequest {
        let api = self.requests(ns);
        eventually(what, WAIT, || {
            let api = api.clone();
            let check = &check;
            async move { api.get(name).await.ok().filter(|r| check(r)) }
        })
        .await
    }

    pub async fn tenancy_where(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        check: impl Fn(&Tenancy) -> bool,
    ) -> Tenancy {
        let api = self.tenancies(ns);
        eventually(what, WAIT, || {
            let api = api.clone();
            let check = &check;
            async move { api.get(name).await.ok().filter(|t| check(t)) }
        })
        .await
    }

    pub async fn tenancy_in(&self, ns: &str, name: &str, phase: TenancyPhase) -> Tenancy {
        self.tenancy_where(ns, name, &format!("tenancy {name} {phase:?}"), |t| {
            t.status.as_ref().and_then(|s| s.phase) == Some(phase)
        })
        .await
    }

    /// Plays KubeVirt: every VM in `ns` is created.
    pub async fn kubevirt_creates_vms(&self, ns: &str) -> Result<usize, Error> {
        if self.node.is_some() {
            // The controller-manager's volume binder binds the disks.
            Ok(standins::vms_created(&self.admin, ns).await?)
        } else {
            Ok(standins::create_vms(&self.admin, ns).await?)
        }
    }

    /// Plays KubeVirt: the VM's instance runs now; with `agent`, its guest
    /// agent (the monitoring probe) reports.
    pub async fn kubevirt_runs(&self, ns: &str, vm: &str, agent: bool) -> Result<(), Error> {
        Ok(standins::run_vm(&self.admin, ns, vm, agent, self.now()).await?)
    }

    /// Plays KubeVirt: instances of VMs set to Halted go away.
    pub async fn kubevirt_stops_halted(&self, ns: &str) -> Result<usize, Error> {
        Ok(standins::stop_halted(&self.admin, ns).await?)
    }

    /// Plays the Job controller: every wipe Job in `ns` completes (or fails).
    pub async fn jobs_finish(&self, ns: &str, succeed: bool) -> Result<usize, Error> {
        Ok(standins::finish_jobs(&self.admin, ns, succeed, self.now()).await?)
    }

    /// Approves the current generation of a request, and waits for it.
    pub async fn approve(&self, ns: &str, name: &str) {
        let requests = self.requests(ns);
        let filed = eventually("the request to be under review", WAIT, || async {
            let r = requests.get(name).await.ok()?;
            (r.status.as_ref()?.phase? == RequestPhase::UnderReview).then_some(r)
        })
        .await;
        self.decide(
            ns,
            name,
            "approve",
            filed.metadata.generation.unwrap_or(1),
            None,
        )
        .await;
        self.request_where(ns, name, "Approved", |r| {
            r.status.as_ref().and_then(|s| s.phase) == Some(RequestPhase::Approved)
        })
        .await;
    }

    /// Plays KubeVirt until the tenancy is delivered (in its trial).
    pub async fn deliver(&self, ns: &str, name: &str, unit_id: &str) -> Tenancy {
        let tns = govcloud::provisioning::namespace_name(&format!("unit-{unit_id}"), unit_id, name);
        let tenancies = self.tenancies(ns);
        eventually("delivery", WAIT, || async {
            self.kubevirt_creates_vms(&tns).await.ok();
            let t = tenancies.get(name).await.ok()?;
            (t.status.as_ref()?.phase? == TenancyPhase::Trial).then_some(t)
        })
        .await
    }

    /// A tenancy in formal operation: the sample filed as `name`, approved,
    /// delivered, used (VM app-1 with its probe), and 31 days on.
    pub async fn active(&mut self, unit_id: &str, name: &str) -> (Unit, String) {
        let unit = self.unit(unit_id).await;
        self.file(
            &unit,
            "config/samples/20-cloudresourcerequest-oa.yaml",
            name,
            |_| {},
        )
        .await;
        self.approve(&unit.namespace, name).await;
        self.deliver(&unit.namespace, name, unit_id).await;
        let tns = govcloud::provisioning::namespace_name(&format!("unit-{unit_id}"), unit_id, name);
        self.kubevirt_runs(&tns, "app-1", true)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.tenancy_where(&unit.namespace, name, "usage", |t| {
            t.status.as_ref().is_some_and(|s| s.usage.is_some())
        })
        .await;
        self.advance_days(31);
        self.tenancy_in(&unit.namespace, name, TenancyPhase::Active)
            .await;
        (unit, tns)
    }

    /// One round of KubeVirt's and the Job controller's parts in a release:
    /// halted VMs stop, wipe Jobs complete.
    pub async fn play_release(&self, tns: &str) {
        self.kubevirt_stops_halted(tns).await.ok();
        self.jobs_finish(tns, true).await.ok();
    }

    /// The reasons of the events recorded about an object, oldest first,
    /// once one of them is `reason` (or after 30 s without it): an event is
    /// recorded after the status it explains.
    pub async fn reasons_with(&self, ns: &str, name: &str, reason: &str) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let reasons: Vec<String> = self
                .events(ns, name)
                .await
                .into_iter()
                .map(|(r, _)| r)
                .collect();
            if reasons.iter().any(|r| r == reason) || tokio::time::Instant::now() > deadline {
                return reasons;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// How many reconciles `controller` has run so far (see
    /// [`Lab::looked_at_all`]).
    pub fn reconciles(&self, controller: ControllerName) -> u64 {
        self.metrics.reconciles(controller)
    }

    /// Waits until `controller` has reconciled at least as many times since
    /// `before` (a count from [`Lab::reconciles`]) as it has objects: a clock
    /// move wakes them all, so what they would do at that time is done (or
    /// is not going to be). The operator tells when it has looked; nothing
    /// sleeps.
    pub async fn looked_at_all(&self, controller: ControllerName, before: u64) {
        let objects = match controller {
            ControllerName::Tenancies => self.count::<Tenancy>().await,
            ControllerName::Requests => self.count::<CloudResourceRequest>().await,
            ControllerName::Changes => self.count::<govcloud::api::ChangeRequest>().await,
            ControllerName::Units => 1,
        };
        let what = format!("{controller:?} to look at its {objects} objects again");
        eventually(&what, Duration::from_secs(30), || async {
            (self.metrics.reconciles(controller) >= before + objects).then_some(())
        })
        .await;
    }

    async fn count<K>(&self) -> u64
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Api::<K>::all(self.admin.clone())
            .list_metadata(&ListParams::default())
            .await
            .map_or(0, |l| l.items.len() as u64)
    }

    /// The events recorded about an object once it has one of each of
    /// `reasons`, oldest first. The operator records an event after the
    /// status it tells of, so a status seen does not mean its event is.
    pub async fn events_with(
        &self,
        ns: &str,
        name: &str,
        reasons: &[&str],
    ) -> Vec<(String, String)> {
        let what = format!("events {reasons:?} about {ns}/{name}");
        eventually(&what, Duration::from_secs(30), || async {
            let events = self.events(ns, name).await;
            reasons
                .iter()
                .all(|r| events.iter().any(|(e, _)| e == r))
                .then_some(events)
        })
        .await
    }

    /// The events recorded about an object, oldest first: (reason, message).
    pub async fn events(&self, ns: &str, name: &str) -> Vec<(String, String)> {
        let api: Api<Event> = Api::namespaced(self.admin.clone(), ns);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect();
        events.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        events
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(op) = self.operator.take() {
            op.abort();
        }
    }
}
