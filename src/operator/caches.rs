//! One watch per kind the operator reads, each feeding a cache and waking the
//! controllers an object concerns. Objects the operator creates are watched by
//! label; those it only needs to know exist (PVCs, namespaces, storage
//! classes) are watched metadata-only. Of what tenancies are made of, the
//! caches keep an index ([`super::index`]): by namespace and name, the
//! object's UID, version, spec hash, readiness and a fingerprint of what the
//! operator governs of it as it is (see `provisioning::governed`), so that a
//! change by anyone else is seen without keeping the objects.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::index::{self, Index, Known, Started, Usage, Word};
use super::packed::{Pack, Packed};
use super::wake::{self, Senders, Wakes};
use crate::api::{
    ChangeRequest, CloudResourceRequest, ServiceCatalog, Tenancy, WorkCalendar, keys,
};
use crate::provisioning::{self, MANAGER};

pub type Guarded<K> = DeserializeGuard<K>;
pub type RequestRef = ObjectRef<Packed<CloudResourceRequest>>;
pub type TenancyRef = ObjectRef<Packed<Tenancy>>;
pub type ChangeRef = ObjectRef<Guarded<ChangeRequest>>;
pub type UnitRef = ObjectRef<PartialObjectMeta<Namespace>>;

pub fn virtual_machines() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    )
}

pub fn virtual_machine_instances() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance"),
        "virtualmachineinstances",
    )
}

/// Everything the controllers read, kept current by watches.
#[derive(Clone)]
pub struct Caches {
    /// Requests and tenancies, packed ([`Packed`]): a reconcile unpacks
    /// the one it acts on.
    pub requests: Store<Packed<CloudResourceRequest>>,
    pub tenancies: Store<Packed<Tenancy>>,
    pub changes: Store<Guarded<ChangeRequest>>,
    pub calendars: Store<Guarded<WorkCalendar>>,
    /// The price lists (Art. 6): the one the configuration names prices the
    /// tenancies' months.
    pub catalogs: Store<Guarded<ServiceCatalog>>,
    /// Unit namespaces (labelled `govcloud.dev/unit`).
    pub units: Store<PartialObjectMeta<Namespace>>,
    /// Every namespace, whoever made it: a tenancy's namespace is written
    /// into only once it is seen to be that tenancy's.
    pub namespaces: Index,
    /// Quotas: ready when in force, and what they count of storage.
    pub quotas: Index,
    pub limit_ranges: Index,
    pub network_policies: Index,
    pub role_bindings: Index,
    /// The cluster's storage classes: those a tenancy is not allocated are
    /// held at zero in its quota.
    pub storage_classes: Store<PartialObjectMeta<StorageClass>>,
    /// Every volume, not only those labelled the operator's.
    pub pvcs: Index,
    /// VMs: ready once KubeVirt has created them.
    pub vms: Index,
    /// VM instances: when they ran and their agents connected.
    pub vmis: Index,
    pub jobs: Store<Job>,
}

/// How the watches take their first list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lists {
    /// Streamed over the watch (Kubernetes' WatchList): the objects come one
    /// by one, and no page of them is held while the cache takes them in.
    Streamed,
    /// Listed in pages of 500, then watched: what every apiserver serves.
    Paged,
}

/// What the apiserver sets on the bookmark that ends a streamed first list.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// How long the probe of [`Lists::of`] may take.
const PROBE: std::time::Duration = std::time::Duration::from_secs(10);

impl Lists {
    /// Asks the apiserver once, with a watch of namespaces that selects
    /// none, whether it streams a watch's first list. It does when the
    /// WatchList feature is on (by default since Kubernetes 1.34; off by
    /// default in 1.30, 1.31 and 1.33, where such a watch is refused as
    /// invalid). Anything but the bookmark that ends the streamed list
    /// (a refusal, an error, no answer within 10 s) means pages, which
    /// every apiserver serves: a watch that insists on streaming where it is
    /// refused would retry for ever and the operator never be ready.
    pub async fn of(client: &Client) -> Self {
        let api = Api::<Namespace>::all(client.clone());
        let params = kube::api::WatchParams::streaming_lists()
            .labels("govcloud.dev/lists-probe=none")
            .timeout(5);
        let probe = async {
            let events = api.watch_metadata(&params, "0").await?;
            futures::pin_mut!(events);
            while let Some(event) = events.next().await {
                match event? {
                    kube::api::WatchEvent::Bookmark(b)
                        if b.metadata.annotations.contains_key(INITIAL_EVENTS_END) =>
                    {
                        return Ok(None);
                    }
                    kube::api::WatchEvent::Error(e) => return Ok(Some(e.message)),
                    _ => {}
                }
            }
            Ok::<_, kube::Error>(Some("the watch ended without a bookmark".into()))
        };
        let why = match tokio::time::timeout(PROBE, probe).await {
            Ok(Ok(None)) => {
                tracing::info!("watches stream their first lists (WatchList)");
                return Lists::Streamed;
            }
            Ok(Ok(Some(why))) => why,
            Ok(Err(kube::Error::Api(s))) => s.message,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {}s", PROBE.as_secs()),
        };
        tracing::info!(reason = %why, "the apiserver does not stream lists (WatchList); watches list in pages");
        Lists::Paged
    }

    fn config(self) -> watcher::Config {
        match self {
            Lists::Streamed => watcher::Config::default().streaming_lists(),
            Lists::Paged => watcher::Config::default(),
        }
    }

    /// The objects the operator labels as its own.
    fn managed(self) -> watcher::Config {
        self.config()
            .labels(&format!("{}={MANAGER}", keys::MANAGED_BY))
    }
}

/// Drives a watch into a cache, calling `wake` with every object touched.
/// A metadata-only watch is an `Api<PartialObjectMeta<K>>`. What the operator
/// never reads is not kept: `managedFields` and kubectl's copy of the last
/// applied manifest (ChangeRequests keep `managedFields`: they date the
/// approvals, see `changes::approval`).
fn full<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    wake: impl Fn(&K) + Send + 'static,
) -> impl Future<Output = ()> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    trimmed(api, config, writer, wake, true)
}

/// The fingerprint of what the operator governs of `object` as the
/// apiserver holds it (see `provisioning::fingerprint`).
pub fn live(object: &impl serde::Serialize, kind: &str) -> Option<String> {
    serde_json::to_value(object)
        .ok()
        .and_then(|v| provisioning::fingerprint(kind, &v))
}

/// What the controllers read of one of the objects tenancies are made of:
/// the [`Known`] of it, with the fingerprint of what the operator governs of
/// it as it is, and `ready` as the kind has it.
fn known<K: Resource + serde::Serialize>(
    kind: &'static str,
    ready: impl Fn(&K) -> bool,
) -> impl Fn(&K) -> Known {
    move |o| {
        let meta = o.meta();
        let word = |v: Option<&String>| v.map(|v| Word::from(v.as_str()));
        let annotation = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k));
        Known {
            uid: word(meta.uid.as_ref()).unwrap_or_default(),
            version: word(meta.resource_version.as_ref()).unwrap_or_default(),
            hash: word(annotation(provisioning::SPEC_HASH)),
            live: live(o, kind).map(|l| Word::from(l.as_str())),
            tenancy: annotation(provisioning::TENANCY_REF).map(|t| Box::from(t.as_str())),
            ready: ready(o),
            deleting: meta.deletion_timestamp.is_some(),
            usage: None,
            instance: None,
        }
    }
}

/// Present, and not being deleted.
fn standing<K: Resource>(o: &K) -> bool {
    o.meta().deletion_timestamp.is_none()
}

/// Of a quota: in force when the quota controller has taken it up (status
/// mirrors spec), and what it counts of storage (see `provisioning::recount`).
fn quota_known(q: &ResourceQuota) -> Known {
    let in_force = |q: &ResourceQuota| {
        q.spec.as_ref().and_then(|s| s.hard.as_ref())
            == q.status.as_ref().and_then(|s| s.hard.as_ref())
    };
    let used = q.status.as_ref().and_then(|s| s.used.as_ref());
    let usage = Usage {
        storage: used
            .and_then(|u| u.get("requests.storage"))
            .map(|v| Box::from(v.0.as_str())),
        counted: provisioning::hash(&serde_json::to_vec(&used).unwrap_or_default())
            .as_str()
            .into(),
    };
    Known {
        usage: Some(Box::new(usage)),
        ..known("ResourceQuota", in_force)(q)
    }
}

/// Of a VirtualMachine: ready once KubeVirt has created it.
fn vm_known(vm: &DynamicObject) -> Known {
    known("VirtualMachine", |vm: &DynamicObject| {
        vm.data.pointer("/status/created") == Some(&serde_json::Value::Bool(true))
    })(vm)
}

/// Of a request, all but the texts the operator never reads: the basis,
/// functions, significance and requirements, the other services, the
/// big-data platform access, the information-resource catalogue and the
/// notes on high-end resources and security. Reviewers read them from the
/// API (`kubectl govcloud show`, the letters); they can run to tens of
/// kilobytes a request.
fn request_fields(r: &mut Guarded<CloudResourceRequest>) {
    if let Ok(r) = r.0.as_mut() {
        let spec = &mut r.spec;
        for text in [
            &mut spec.basis,
            &mut spec.functions,
            &mut spec.significance,
            &mut spec.requirements,
        ] {
            *text = String::new();
        }
        spec.other_services = None;
        spec.data_platform_access = Vec::new();
        spec.information_resources = Vec::new();
        spec.high_end_note = None;
        spec.security_needs = None;
    }
}

/// Of a VirtualMachineInstance, what the trial reads: when it entered
/// phase Running (while it is running) and when its guest agent connected
/// (while it is), each falling back to when the instance was created.
fn vmi_known(vmi: &DynamicObject) -> Known {
    let time = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok());
    let status = &vmi.data["status"];
    let created = vmi.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let running = (status["phase"] == "Running").then(|| {
        status["phaseTransitionTimestamps"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["phase"] == "Running"))
            .and_then(|t| time(&t["phaseTransitionTimestamp"]))
            .or(created)
    });
    let agent = status["conditions"].as_array().and_then(|cs| {
        cs.iter()
            .find(|c| c["type"] == "AgentConnected" && c["status"] == "True")
            .map(|c| {
                time(&c["lastTransitionTime"])
                    .or(time(&c["lastProbeTime"]))
                    .or(created)
            })
    });
    Known {
        instance: Some(Box::new(Started {
            running: running.flatten(),
            agent: agent.flatten(),
        })),
        ..known("VirtualMachineInstance", standing)(vmi)
    }
}

fn trimmed<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    wake: impl Fn(&K) + Send + 'static,
    drop_managed_fields: bool,
) -> impl Future<Output = ()> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let kind = std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or_default()
        .to_owned();
    drive(
        kind,
        watcher(api, config)
            .default_backoff()
            .modify(move |o| strip(o.meta_mut(), drop_managed_fields)),
        writer,
        wake,
    )
}

/// Drives a watch of one of the packed kinds into its cache: what
/// [`trimmed`] keeps of each object, packed.
fn packed<K>(
    api: Api<Guarded<K>>,
    config: watcher::Config,
    writer: reflector::store::Writer<Packed<K>>,
    wake: impl Fn(&Packed<K>) + Send + 'static,
    fields: impl Fn(&mut Guarded<K>) + Send + 'static,
) -> impl Future<Output = ()> + Send
where
    K: Pack + Clone + Debug + Send + Sync + 'static,
{
    let events = watcher(api, config)
        .default_backoff()
        .modify(move |o| {
            strip(o.meta_mut(), true);
            fields(o);
        })
        .map_ok(|event| match event {
            watcher::Event::Apply(o) => watcher::Event::Apply(Packed::pack(&o)),
            watcher::Event::Delete(o) => watcher::Event::Delete(Packed::pack(&o)),
            watcher::Event::InitApply(o) => watcher::Event::InitApply(Packed::pack(&o)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitDone => watcher::Event::InitDone,
        });
    drive(K::kind(&()).into_owned(), events, writer, wake)
}

/// What no controller reads of an object's metadata: `managedFields`
/// (unless `managed_fields` is false) and kubectl's copy of the last
/// applied manifest.
fn strip(meta: &mut kube::api::ObjectMeta, managed_fields: bool) {
    if managed_fields {
        meta.managed_fields = None;
    }
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn meta<K>(
    client: Client,
    config: watcher::Config,
    writer: reflector::store::Writer<PartialObjectMeta<K>>,
    wake: impl Fn(&PartialObjectMeta<K>) + Send + 'static,
) -> impl Future<Output = ()> + Send
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    full(
        Api::<PartialObjectMeta<K>>::all(client),
        config,
        writer,
        wake,
    )
}

/// Where an object is: its namespace and name.
type Key = (Option<String>, String);

fn key<K: Resource>(o: &K) -> Key {
    (
        o.meta().namespace.clone(),
        o.meta().name.clone().unwrap_or_default(),
    )
}

/// What a relist changed: of the objects the cache holds after it, those it
/// did not hold before at that version, and those it held that the list no
/// longer has (deleted while the watch was down).
fn relisted<K: Resource>(mut before: HashMap<Key, Arc<K>>, after: Vec<Arc<K>>) -> Vec<Arc<K>> {
    let mut changed = Vec::new();
    for o in after {
        let held = before.remove(&key(&*o));
        if held.is_none_or(|h| h.meta().resource_version != o.meta().resource_version) {
            changed.push(o);
        }
    }
    changed.extend(before.into_values());
    changed
}

/// Applies a watch's events to its cache, and only then wakes what each
/// object concerns, so that a reconcile woken reads the cache as the event
/// left it. A relist shows in the cache all at once when it is done (until
/// then the cache keeps what it held), so what it changed wakes only then.
///
/// Waking on a relisted object as it arrives (as `touched_objects` does)
/// loses the wake: the reconcile it starts reads the cache from before the
/// relist and nothing wakes it again.
async fn drive<K>(
    kind: String,
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    mut writer: reflector::store::Writer<K>,
    wake: impl Fn(&K),
) where
    K: Resource + Clone,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let cache = writer.as_reader();
    futures::pin_mut!(events);
    while let Some(item) = events.next().await {
        let event = match item {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(kind = %kind, error = %e, "watch error; retrying");
                continue;
            }
        };
        match &event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                writer.apply_watcher_event(&event);
                wake(o);
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {
                writer.apply_watcher_event(&event);
            }
            watcher::Event::InitDone => {
                let before = cache.state().into_iter().map(|o| (key(&*o), o)).collect();
                writer.apply_watcher_event(&event);
                for o in relisted(before, cache.state()) {
                    wake(&o);
                }
            }
        }
    }
}

/// The writing ends of the caches of the API's kinds (and of what wakes
/// them), each handed to its watch.
struct ApiWriters {
    requests: Writer<Packed<CloudResourceRequest>>,
    tenancies: Writer<Packed<Tenancy>>,
    changes: Writer<Guarded<ChangeRequest>>,
    calendars: Writer<Guarded<WorkCalendar>>,
    catalogs: Writer<Guarded<ServiceCatalog>>,
    units: Writer<PartialObjectMeta<Namespace>>,
    storage_classes: Writer<PartialObjectMeta<StorageClass>>,
}

/// The writing ends of the caches of what tenancies are made of.
struct OwnedWriters {
    namespaces: index::Writer,
    quotas: index::Writer,
    limit_ranges: index::Writer,
    network_policies: index::Writer,
    role_bindings: index::Writer,
    pvcs: index::Writer,
    vms: index::Writer,
    vmis: index::Writer,
    jobs: Writer<Job>,
}

type Task = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Wakes the tenancy an object belongs to.
#[derive(Clone)]
struct Owner {
    senders: Senders,
    namespaces: Index,
}

impl Owner {
    /// Wakes the tenancy `reference` names, or else the one the object's
    /// namespace names.
    fn route(&self, namespace: Option<&str>, reference: Option<&str>) {
        let ns = namespace.and_then(|n| self.namespaces.get(None, n));
        if let Some(t) = wake::owner(reference, ns.as_ref()) {
            self.senders.send(Wakes {
                tenancies: vec![t],
                ..Wakes::default()
            });
        }
    }

    /// Of an object cached whole.
    fn of<K: Resource>(&self) -> impl Fn(&K) + Send + 'static {
        let me = self.clone();
        move |o: &K| {
            let meta = o.meta();
            let reference = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(provisioning::TENANCY_REF));
            me.route(meta.namespace.as_deref(), reference.map(String::as_str));
        }
    }

    /// Of an object indexed.
    fn known(&self) -> impl Fn(&str, &Known) + Send + 'static {
        let me = self.clone();
        move |key: &str, k: &Known| me.route(index::namespace_of(key), k.tenancy.as_deref())
    }
}

impl Caches {
    /// Starts every watch, waking through `senders` what each change
    /// concerns (see the `wake` module). The returned future drives them; the
    /// caches fill as it runs.
    /// The first lists are streamed where the apiserver can ([`Lists::of`]);
    /// `chosen` is told which.
    pub fn start(
        client: Client,
        senders: Senders,
        chosen: impl FnOnce(Lists) + Send + 'static,
    ) -> (Self, impl Future<Output = ()> + Send) {
        let (caches, api, owned) = Self::empty();
        let me = caches.clone();
        let all = async move {
            let lists = Lists::of(&client).await;
            chosen(lists);
            let mut tasks = me.api_watches(&client, &senders, api, lists);
            tasks.extend(me.owned_watches(&client, &senders, owned, lists));
            futures::future::join_all(tasks).await;
        };
        (caches, all)
    }

    fn empty() -> (Self, ApiWriters, OwnedWriters) {
        let api = ApiWriters {
            requests: Writer::default(),
            tenancies: Writer::default(),
            changes: Writer::default(),
            calendars: Writer::default(),
            catalogs: Writer::default(),
            units: Writer::default(),
            storage_classes: Writer::default(),
        };
        let owned = OwnedWriters {
            namespaces: index::Writer::new(),
            quotas: index::Writer::new(),
            limit_ranges: index::Writer::new(),
            network_policies: index::Writer::new(),
            role_bindings: index::Writer::new(),
            pvcs: index::Writer::new(),
            vms: index::Writer::new(),
            vmis: index::Writer::new(),
            jobs: Writer::default(),
        };
        let caches = Self {
            requests: api.requests.as_reader(),
            tenancies: api.tenancies.as_reader(),
            changes: api.changes.as_reader(),
            calendars: api.calendars.as_reader(),
            catalogs: api.catalogs.as_reader(),
            units: api.units.as_reader(),
            storage_classes: api.storage_classes.as_reader(),
            namespaces: owned.namespaces.as_reader(),
            quotas: owned.quotas.as_reader(),
            limit_ranges: owned.limit_ranges.as_reader(),
            network_policies: owned.network_policies.as_reader(),
            role_bindings: owned.role_bindings.as_reader(),
            pvcs: owned.pvcs.as_reader(),
            vms: owned.vms.as_reader(),
            vmis: owned.vmis.as_reader(),
            jobs: owned.jobs.as_reader(),
        };
        (caches, api, owned)
    }

    /// The API's kinds, the unit namespaces and the storage classes.
    fn api_watches(&self, c: &Client, senders: &Senders, w: ApiWriters, lists: Lists) -> Vec<Task> {
        let all = || lists.config();
        let (tx, tenancies, changes) = (
            senders.clone(),
            self.tenancies.clone(),
            self.changes.clone(),
        );
        let on_tenancy = move |t: &Packed<Tenancy>| tx.send(wake::of_tenancy(t, &changes.state()));
        let tx = senders.clone();
        let on_request = move |r: &Packed<CloudResourceRequest>| {
            tx.send(Wakes {
                requests: vec![ObjectRef::from_obj(r)],
                ..Wakes::default()
            })
        };
        let tx = senders.clone();
        let on_change = move |c: &Guarded<ChangeRequest>| {
            tx.send(Wakes {
                changes: vec![ObjectRef::from_obj(c)],
                ..Wakes::default()
            })
        };
        let (tx, of) = (senders.clone(), tenancies.clone());
        let on_unit =
            move |ns: &PartialObjectMeta<Namespace>| tx.send(wake::of_unit(ns, &of.state()));
        let (tx, of) = (senders.clone(), tenancies.clone());
        let on_prices =
            move |_: &Guarded<ServiceCatalog>| tx.send(wake::every_tenancy(&of.state()));
        let (tx, of) = (senders.clone(), tenancies);
        let on_class =
            move |_: &PartialObjectMeta<StorageClass>| tx.send(wake::every_tenancy(&of.state()));
        let units = all().labels(keys::UNIT);
        vec![
            packed(
                Api::all(c.clone()),
                all(),
                w.requests,
                on_request,
                request_fields,
            )
            .boxed(),
            packed(Api::all(c.clone()), all(), w.tenancies, on_tenancy, |_| {}).boxed(),
            // ChangeRequests keep `managedFields`: they date the approvals.
            trimmed(Api::all(c.clone()), all(), w.changes, on_change, false).boxed(),
            full(Api::all(c.clone()), all(), w.calendars, |_| {}).boxed(),
            full(Api::all(c.clone()), all(), w.catalogs, on_prices).boxed(),
            meta::<Namespace>(c.clone(), units, w.units, on_unit).boxed(),
            meta::<StorageClass>(c.clone(), all(), w.storage_classes, on_class).boxed(),
        ]
    }

    /// What tenancies are made of: each change wakes the tenancy it belongs
    /// to (see [`wake::owner`]).
    fn owned_watches(
        &self,
        c: &Client,
        senders: &Senders,
        w: OwnedWriters,
        lists: Lists,
    ) -> Vec<Task> {
        let owner = Owner {
            senders: senders.clone(),
            namespaces: self.namespaces.clone(),
        };
        let all = || lists.config();
        let managed = || lists.managed();
        // Instances carry the template's labels, the tenancy's among them.
        let instances = all().labels(keys::TENANCY);
        let dynamic = |ar: ApiResource| Api::<DynamicObject>::all_with(c.clone(), &ar);
        /// An indexed kind's watch.
        fn indexed<K>(
            kind: &'static str,
            api: Api<K>,
            config: watcher::Config,
            writer: index::Writer,
            known: impl Fn(&K) -> Known + Send + 'static,
            wake: impl Fn(&str, &Known) + Send + 'static,
        ) -> Task
        where
            K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        {
            let events = watcher(api, config).default_backoff();
            index::drive(kind, events, writer, known, wake).boxed()
        }
        vec![
            indexed(
                "Namespace",
                Api::<PartialObjectMeta<Namespace>>::all(c.clone()),
                all(),
                w.namespaces,
                known("Namespace", standing),
                owner.known(),
            ),
            indexed(
                "ResourceQuota",
                Api::all(c.clone()),
                managed(),
                w.quotas,
                quota_known,
                owner.known(),
            ),
            indexed(
                "LimitRange",
                Api::<LimitRange>::all(c.clone()),
                managed(),
                w.limit_ranges,
                known("LimitRange", standing),
                owner.known(),
            ),
            indexed(
                "NetworkPolicy",
                Api::<NetworkPolicy>::all(c.clone()),
                managed(),
                w.network_policies,
                known("NetworkPolicy", standing),
                owner.known(),
            ),
            indexed(
                "RoleBinding",
                Api::<RoleBinding>::all(c.clone()),
                managed(),
                w.role_bindings,
                known("RoleBinding", standing),
                owner.known(),
            ),
            // Every volume, not only those labelled the operator's: one whose
            // label someone removed is still there, not lost.
            indexed(
                "PersistentVolumeClaim",
                Api::<PartialObjectMeta<PersistentVolumeClaim>>::all(c.clone()),
                all(),
                w.pvcs,
                known("PersistentVolumeClaim", standing),
                owner.known(),
            ),
            indexed(
                "VirtualMachine",
                dynamic(virtual_machines()),
                managed(),
                w.vms,
                vm_known,
                owner.known(),
            ),
            indexed(
                "VirtualMachineInstance",
                dynamic(virtual_machine_instances()),
                instances,
                w.vmis,
                vmi_known,
                owner.known(),
            ),
            full(Api::all(c.clone()), managed(), w.jobs, owner.of()).boxed(),
        ]
    }

    pub async fn wait_until_ready(&self) {
        let _ = futures::join!(
            self.requests.wait_until_ready(),
            self.tenancies.wait_until_ready(),
            self.changes.wait_until_ready(),
            self.calendars.wait_until_ready(),
            self.catalogs.wait_until_ready(),
            self.units.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.quotas.wait_until_ready(),
            self.limit_ranges.wait_until_ready(),
            self.network_policies.wait_until_ready(),
            self.role_bindings.wait_until_ready(),
            self.storage_classes.wait_until_ready(),
            self.pvcs.wait_until_ready(),
            self.vms.wait_until_ready(),
            self.vmis.wait_until_ready(),
            self.jobs.wait_until_ready(),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use serde_json::json;
    use tokio::sync::mpsc::unbounded_channel;

    fn object(data: serde_json::Value) -> DynamicObject {
        let mut o = DynamicObject::new("app-1", &virtual_machines());
        o.data = data;
        o
    }

    fn vm(name: &str, version: &str, created: bool) -> DynamicObject {
        let mut o = object(json!({ "status": { "created": created } }));
        o.metadata.name = Some(name.into());
        o.metadata.namespace = Some("unit-a-web-0123456789".into());
        o.metadata.resource_version = Some(version.into());
        o
    }

    type Events<K> = Vec<Result<watcher::Event<K>, watcher::Error>>;

    fn created(index: &Index, name: &str) -> Option<bool> {
        index
            .get(Some("unit-a-web-0123456789"), name)
            .map(|k| k.ready)
    }

    /// Runs VM events through an index; each wake records the VM's name and
    /// what a reconcile would read of it at that moment.
    async fn run_vms(
        events: Events<DynamicObject>,
        writer: index::Writer,
    ) -> Vec<(String, Option<bool>)> {
        let looked = writer.as_reader();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        index::drive(
            "test",
            futures::stream::iter(events),
            writer,
            vm_known,
            move |key: &str, _: &Known| {
                let name = key.rsplit('/').next().unwrap_or_default().to_owned();
                let now = created(&looked, &name);
                record.lock().unwrap().push((name, now));
            },
        )
        .await;
        let mut woken = seen.lock().unwrap().clone();
        woken.sort();
        woken
    }

    #[tokio::test]
    async fn a_change_seen_in_a_relist_wakes_once_the_cache_shows_it() {
        use watcher::Event::*;
        // The watch listed app-1 before KubeVirt created it, and app-2.
        let first = vec![
            Ok(Init),
            Ok(InitApply(vm("app-1", "1", false))),
            Ok(InitApply(vm("app-2", "2", true))),
            Ok(InitApply(vm("app-3", "3", true))),
            Ok(InitDone),
        ];
        let woken = run_vms(first, index::Writer::new()).await;
        assert_eq!(woken.len(), 3, "a first list wakes every object: {woken:?}");

        // The apiserver restarted: the watch expired and listed again. KubeVirt
        // created app-1 meanwhile, app-2 was deleted, app-3 did not change.
        let relist = vec![
            Ok(Apply(vm("app-1", "1", false))),
            Ok(Apply(vm("app-2", "2", true))),
            Ok(Apply(vm("app-3", "3", true))),
            Ok(Init),
            Ok(InitApply(vm("app-1", "7", true))),
            Ok(InitApply(vm("app-3", "3", true))),
            Ok(InitDone),
        ];
        let woken = run_vms(relist, index::Writer::new()).await;
        assert_eq!(
            woken,
            vec![
                // The first three applied one by one, as they came.
                ("app-1".to_owned(), Some(false)),
                // Woken when a reconcile reads it created, not before.
                ("app-1".to_owned(), Some(true)),
                // Woken as gone, when the cache no longer has it.
                ("app-2".to_owned(), None),
                ("app-2".to_owned(), Some(true)),
                ("app-3".to_owned(), Some(true)),
            ],
            "app-3, unchanged by the relist, wakes only for its first apply"
        );
    }

    #[tokio::test]
    async fn a_relist_shows_in_the_index_all_at_once_when_it_is_done() {
        use watcher::Event::*;
        let writer = index::Writer::new();
        let reader = writer.as_reader();
        let (events, stream) = futures::channel::mpsc::unbounded();
        let run = tokio::spawn(index::drive(
            "test",
            stream,
            writer,
            vm_known,
            |_: &str, _: &Known| {},
        ));
        let send = |e| events.unbounded_send(Ok(e)).unwrap();
        send(Apply(vm("app-1", "1", false)));
        send(Init);
        send(InitApply(vm("app-1", "7", true)));
        tokio::task::yield_now().await;
        for _ in 0..100 {
            if reader.get(Some("unit-a-web-0123456789"), "app-1").is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            created(&reader, "app-1"),
            Some(false),
            "the relist is not done"
        );
        let ready = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            reader.wait_until_ready(),
        );
        assert!(
            ready.await.is_err(),
            "not ready before the first list is done"
        );
        send(InitDone);
        drop(events);
        run.await.unwrap();
        assert_eq!(created(&reader, "app-1"), Some(true));
        reader.wait_until_ready().await;
        assert_eq!(reader.len(), 1);
    }

    #[tokio::test]
    async fn a_change_routed_while_the_namespace_is_unknown_wakes_its_tenancy_when_it_is_known() {
        use watcher::Event::*;
        let ns_name = "unit-a-web-0123456789";
        let (ns_writer, vm_writer) = (index::Writer::new(), index::Writer::new());
        let (namespaces, vms) = (ns_writer.as_reader(), vm_writer.as_reader());
        let (requests, _r) = unbounded_channel();
        let (tenancies, mut woken) = unbounded_channel();
        let (changes, _c) = unbounded_channel();
        let (units, _u) = unbounded_channel();
        let owner = Owner {
            senders: Senders {
                requests,
                tenancies,
                changes,
                units,
            },
            namespaces: namespaces.clone(),
        };
        // The namespace watch is relisting (the namespace was made while it
        // was down) when KubeVirt's change to the VM arrives.
        index::drive(
            "vms",
            futures::stream::iter(vec![Ok(Apply(vm("app-1", "9", true)))]),
            vm_writer,
            vm_known,
            owner.known(),
        )
        .await;
        assert!(woken.try_recv().is_err(), "no tenancy to route to yet");

        let mut ns = PartialObjectMeta::<Namespace>::default();
        ns.metadata.name = Some(ns_name.into());
        ns.metadata.resource_version = Some("5".into());
        ns.metadata.annotations = Some(
            [(
                crate::provisioning::TENANCY_REF.to_owned(),
                "unit-a/web".to_owned(),
            )]
            .into(),
        );
        let relist = vec![Ok(Init), Ok(InitApply(ns)), Ok(InitDone)];
        index::drive(
            "namespaces",
            futures::stream::iter(relist),
            ns_writer,
            known("Namespace", standing),
            owner.known(),
        )
        .await;
        assert_eq!(
            woken.try_recv().ok(),
            Some(ObjectRef::new("web").within("unit-a")),
            "the tenancy wakes when its namespace is known"
        );
        assert!(namespaces.get(None, ns_name).is_some());
        assert_eq!(
            created(&vms, "app-1"),
            Some(true),
            "and reads its VM created"
        );
    }

    #[test]
    fn a_known_vm_is_ready_once_kubevirt_created_it() {
        let made = object(json!({
            "spec": { "runStrategy": "Always", "template": { "spec": { "domain": { "cpu": { "cores": 2 } } } } },
            "status": { "created": true, "printableStatus": "Running", "conditions": [{ "type": "Ready" }] }
        }));
        assert!(vm_known(&made).ready);
        assert!(
            !vm_known(&object(json!({ "spec": {} }))).ready,
            "not created yet"
        );
        assert!(!vm_known(&object(json!({ "status": "odd" }))).ready);
    }

    #[test]
    fn a_known_instance_keeps_when_it_ran_and_its_agent_connected() {
        let at = |s: &str| Some(s.parse::<jiff::Timestamp>().unwrap());
        let transitions = json!([
            { "phase": "Scheduling", "phaseTransitionTimestamp": "2026-11-02T01:00:00Z" },
            { "phase": "Running", "phaseTransitionTimestamp": "2026-11-02T01:01:00Z" }
        ]);
        let agent = json!({ "type": "AgentConnected", "status": "True",
                            "lastTransitionTime": "2026-11-02T01:02:00Z" });
        let vmi = |phase: &str, conditions: serde_json::Value| {
            let mut o = object(json!({
                "spec": { "domain": { "devices": { "disks": [{ "name": "root" }] } } },
                "status": {
                    "phase": phase,
                    "phaseTransitionTimestamps": transitions,
                    "conditions": conditions,
                    "interfaces": [{ "ipAddress": "10.0.0.7" }],
                    "guestOSInfo": { "name": "Kylin" }
                }
            }));
            o.metadata.creation_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2026-11-02T00:59:00Z".parse().unwrap(),
                ));
            vmi_known(&o).instance.unwrap()
        };
        let running = vmi(
            "Running",
            json!([{ "type": "Ready", "status": "True" }, agent]),
        );
        assert_eq!(
            *running,
            Started {
                running: at("2026-11-02T01:01:00Z"),
                agent: at("2026-11-02T01:02:00Z")
            }
        );
        let stopped = vmi("Succeeded", json!([]));
        assert_eq!(*stopped, Started::default(), "not running, no agent");
        // An agent condition without times dates from the instance.
        let undated = vmi(
            "Running",
            json!([{ "type": "AgentConnected", "status": "True" }]),
        );
        assert_eq!(undated.agent, at("2026-11-02T00:59:00Z"));
        // A status that is not an object is kept as nothing, not a panic.
        let odd = vmi_known(&object(json!({ "status": "pending" })));
        assert_eq!(*odd.instance.unwrap(), Started::default());
    }

    #[test]
    fn a_known_quota_is_ready_in_force_and_keeps_what_it_counts() {
        let quota = |in_force: &str, storage: &str| -> ResourceQuota {
            serde_json::from_value(json!({
                "metadata": { "name": "allocation", "namespace": "t" },
                "spec": { "hard": { "requests.cpu": "4", "requests.storage": "100Gi" } },
                "status": {
                    "hard": { "requests.cpu": in_force, "requests.storage": "100Gi" },
                    "used": { "requests.cpu": "2", "requests.storage": storage }
                }
            }))
            .unwrap()
        };
        let taken_up = quota_known(&quota("4", "30Gi"));
        assert!(taken_up.ready);
        let usage = taken_up.usage.clone().unwrap();
        assert_eq!(usage.storage.as_deref(), Some("30Gi"));
        assert!(
            !quota_known(&quota("2", "30Gi")).ready,
            "an older limit in force"
        );
        let recounted = quota_known(&quota("4", "40Gi")).usage.unwrap();
        assert_ne!(
            usage.counted, recounted.counted,
            "another count is another digest"
        );
        let fresh: ResourceQuota = serde_json::from_value(json!({
            "metadata": { "name": "allocation", "namespace": "t" },
            "spec": { "hard": { "requests.cpu": "4" } }
        }))
        .unwrap();
        let fresh = quota_known(&fresh);
        assert!(!fresh.ready, "not taken up yet");
        assert_eq!(fresh.usage.unwrap().storage, None);
    }

    #[test]
    fn art8_a_known_volume_keeps_the_fingerprint_of_its_marks_not_the_marks() {
        let pvc = |tenancy: &str| -> PartialObjectMeta<PersistentVolumeClaim> {
            serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": "vol-files", "namespace": "t", "uid": "u-1", "resourceVersion": "7",
                    "labels": { keys::MANAGED_BY: MANAGER, keys::TENANCY: tenancy },
                    "annotations": {
                        provisioning::SPEC_HASH: "h",
                        provisioning::TENANCY_REF: "unit-a/oa",
                        "note": "anyone's",
                    },
                    "ownerReferences": [{ "apiVersion": "v1", "kind": "Namespace", "name": "t", "uid": "n" }],
                    "finalizers": ["kubernetes.io/pvc-protection"],
                }
            }))
            .unwrap()
        };
        let known = known("PersistentVolumeClaim", standing);
        let (ours, relabelled) = (known(&pvc("oa")), known(&pvc("other")));
        assert!(ours.live.is_some());
        assert_ne!(ours.live, relabelled.live, "a label changed shows");
        assert_eq!(
            ours,
            Known {
                uid: "u-1".into(),
                version: "7".into(),
                hash: Some("h".into()),
                live: ours.live.clone(),
                tenancy: Some("unit-a/oa".into()),
                ready: true,
                deleting: false,
                usage: None,
                instance: None,
            }
        );
        let mut going = pvc("oa");
        going.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let going = known(&going);
        assert!(going.deleting && !going.ready);
    }

    #[test]
    fn a_cached_request_keeps_what_the_operator_reads_and_not_the_texts() {
        let text = std::fs::read_to_string(format!(
            "{}/config/samples/20-cloudresourcerequest-oa.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut full: CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        // The texts as long as the schema lets them be.
        let spec = &mut full.spec;
        spec.basis = "依".repeat(4000);
        spec.functions = "功".repeat(4000);
        spec.significance = "意".repeat(4000);
        spec.requirements = "需".repeat(8000);
        spec.security_needs = Some("安".repeat(4000));
        let entry = spec.information_resources[0].clone();
        spec.information_resources = vec![
            crate::api::request::InformationResource {
                description: Some("述".repeat(1000)),
                ..entry
            };
            500
        ];
        let mut cached = DeserializeGuard(Ok(full.clone()));
        request_fields(&mut cached);
        let trimmed = cached.0.unwrap();
        let size = |r: &CloudResourceRequest| serde_json::to_vec(r).unwrap().len();
        assert!(
            size(&trimmed) * 100 < size(&full),
            "{} bytes kept of {}",
            size(&trimmed),
            size(&full)
        );

        // What the operator makes of a request is the same.
        let status = Default::default();
        let annotations = Default::default();
        let unit = Default::default();
        let storage_classes = Default::default();
        let calendar = crate::calendar::Calendar::new();
        let input = |r: &CloudResourceRequest| {
            crate::review::tenancy_spec(
                &crate::review::Input {
                    name: "oa",
                    generation: 1,
                    spec: &r.spec,
                    status: &status,
                    annotations: &annotations,
                    unit: &unit,
                    target: None,
                    own_tenancy: None,
                    storage_classes: &storage_classes,
                    calendar: &calendar,
                    now: jiff::Timestamp::UNIX_EPOCH,
                },
                "finance",
            )
        };
        let tenancy = input(&full);
        assert_eq!(input(&trimmed), tenancy);
        assert_eq!(
            crate::review::extend(&tenancy, "more", &trimmed.spec),
            crate::review::extend(&tenancy, "more", &full.spec)
        );
        let (a, b) = (&trimmed.spec, &full.spec);
        assert_eq!(a.documents.missing(), b.documents.missing());
        assert_eq!(
            (&a.resources, &a.emergency, &a.extends, a.planned_start),
            (&b.resources, &b.emergency, &b.extends, b.planned_start)
        );
        assert_eq!(trimmed.metadata, full.metadata);
    }
}
