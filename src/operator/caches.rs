//! One watch per kind the operator reads, each feeding a cache and waking the
//! controllers an object concerns. Objects the operator creates are watched by
//! label; those it only needs to know exist (PVCs, namespaces, storage
//! classes) are watched metadata-only. Of the others, the cache keeps the
//! metadata and a fingerprint of what the operator governs of them as they
//! are (see `provisioning::governed`), so that a change by anyone else is
//! seen without keeping the objects whole.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::{FutureExt, Stream, StreamExt};
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

use super::wake::{self, Senders, Wakes};
use crate::api::{
    ChangeRequest, CloudResourceRequest, ServiceCatalog, Tenancy, WorkCalendar, keys,
};
use crate::provisioning::{self, MANAGER};

/// On the cached copy of an object only (never written): the fingerprint of
/// what the operator governs of it as the apiserver holds it.
pub const LIVE: &str = "govcloud.dev/live-fingerprint";

pub type Guarded<K> = DeserializeGuard<K>;
pub type RequestRef = ObjectRef<Guarded<CloudResourceRequest>>;
pub type TenancyRef = ObjectRef<Guarded<Tenancy>>;
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
    pub requests: Store<Guarded<CloudResourceRequest>>,
    pub tenancies: Store<Guarded<Tenancy>>,
    pub changes: Store<Guarded<ChangeRequest>>,
    pub calendars: Store<Guarded<WorkCalendar>>,
    /// The price lists (Art. 6): the one the configuration names prices the
    /// tenancies' months.
    pub catalogs: Store<Guarded<ServiceCatalog>>,
    /// Unit namespaces (labelled `govcloud.dev/unit`).
    pub units: Store<PartialObjectMeta<Namespace>>,
    /// Every namespace, whoever made it: a tenancy's namespace is written
    /// into only once it is seen to be that tenancy's.
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    pub quotas: Store<ResourceQuota>,
    /// Limit ranges, network policies and role bindings: metadata and
    /// [`LIVE`].
    pub limit_ranges: Store<LimitRange>,
    pub network_policies: Store<NetworkPolicy>,
    pub role_bindings: Store<RoleBinding>,
    /// The cluster's storage classes: those a tenancy is not allocated are
    /// held at zero in its quota.
    pub storage_classes: Store<PartialObjectMeta<StorageClass>>,
    pub pvcs: Store<PartialObjectMeta<PersistentVolumeClaim>>,
    pub vms: Store<DynamicObject>,
    pub vmis: Store<DynamicObject>,
    pub jobs: Store<Job>,
}

fn managed() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={MANAGER}", keys::MANAGED_BY))
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
    trimmed(api, config, writer, wake, true, |_| {})
}

/// The fingerprint of what the operator governs of `object` as the
/// apiserver holds it (see `provisioning::fingerprint`).
pub fn live(object: &impl serde::Serialize, kind: &str) -> Option<String> {
    serde_json::to_value(object)
        .ok()
        .and_then(|v| provisioning::fingerprint(kind, &v))
}

/// Records in the cached copy the fingerprint of what the operator governs
/// of `object` (see [`LIVE`]).
fn mark_live<K: Resource + serde::Serialize>(object: &mut K, kind: &str) {
    let live = live(&*object, kind);
    let annotations = object
        .meta_mut()
        .annotations
        .get_or_insert_with(Default::default);
    match live {
        Some(f) => annotations.insert(LIVE.to_owned(), f),
        None => annotations.remove(LIVE),
    };
}

/// Of a policy, quota default or binding, its metadata and [`LIVE`].
fn fingerprinted<K: Resource + serde::Serialize>(
    kind: &'static str,
    clear: fn(&mut K),
) -> impl Fn(&mut K) {
    move |o| {
        mark_live(o, kind);
        clear(o);
    }
}

/// The annotations the controllers read of what tenancies are made of.
const OWNED_ANNOTATIONS: [&str; 3] = [provisioning::SPEC_HASH, LIVE, provisioning::TENANCY_REF];

/// Of what tenancies are made of, once [`LIVE`] is marked, only the
/// metadata the controllers read: name, namespace, UID, version, times and
/// [`OWNED_ANNOTATIONS`]. Labels, owner references and finalizers are
/// governed through [`LIVE`] and routed by the namespace's reference.
fn owned<K: Resource>(fields: impl Fn(&mut K)) -> impl Fn(&mut K) {
    move |o| {
        fields(o);
        let meta = o.meta_mut();
        meta.labels = None;
        meta.owner_references = None;
        meta.finalizers = None;
        meta.generate_name = None;
        if let Some(a) = meta.annotations.as_mut() {
            a.retain(|k, _| OWNED_ANNOTATIONS.contains(&k.as_str()));
            if a.is_empty() {
                meta.annotations = None;
            }
        }
    }
}

/// Of a VirtualMachine, what the planner reads: its metadata, [`LIVE`] and
/// whether KubeVirt has created it. The rest (the template above all) is
/// not kept.
fn vm_fields(vm: &mut DynamicObject) {
    mark_live(vm, "VirtualMachine");
    let created = vm.data.pointer("/status/created").cloned();
    vm.data = serde_json::json!({ "status": { "created": created } });
}

/// Of a VirtualMachineInstance, what the trial reads: its phase, when it
/// entered each, and the guest agent's condition.
fn vmi_fields(vmi: &mut DynamicObject) {
    let at = |p: &str| vmi.data.pointer(p).cloned();
    let agent: Vec<&serde_json::Value> = vmi
        .data
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .map(|cs| {
            cs.iter()
                .filter(|c| c["type"] == "AgentConnected")
                .collect()
        })
        .unwrap_or_default();
    let kept = serde_json::json!({ "status": {
        "phase": at("/status/phase"),
        "phaseTransitionTimestamps": at("/status/phaseTransitionTimestamps"),
        "conditions": agent,
    } });
    vmi.data = kept;
}

/// Of a ResourceQuota, [`LIVE`], its hard limits as asked and as in force,
/// and what it counts as used (see `provisioning::recount`).
fn quota_fields(q: &mut ResourceQuota) {
    mark_live(q, "ResourceQuota");
    if let Some(spec) = q.spec.as_mut() {
        spec.scopes = None;
        spec.scope_selector = None;
    }
}

fn trimmed<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    wake: impl Fn(&K) + Send + 'static,
    drop_managed_fields: bool,
    fields: impl Fn(&mut K) + Send + 'static,
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
        watcher(api, config).default_backoff().modify(move |o| {
            let meta = o.meta_mut();
            if drop_managed_fields {
                meta.managed_fields = None;
            }
            if let Some(a) = meta.annotations.as_mut() {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
            fields(o);
        }),
        writer,
        wake,
    )
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
    requests: Writer<Guarded<CloudResourceRequest>>,
    tenancies: Writer<Guarded<Tenancy>>,
    changes: Writer<Guarded<ChangeRequest>>,
    calendars: Writer<Guarded<WorkCalendar>>,
    catalogs: Writer<Guarded<ServiceCatalog>>,
    units: Writer<PartialObjectMeta<Namespace>>,
    storage_classes: Writer<PartialObjectMeta<StorageClass>>,
}

/// The writing ends of the caches of what tenancies are made of.
struct OwnedWriters {
    namespaces: Writer<PartialObjectMeta<Namespace>>,
    quotas: Writer<ResourceQuota>,
    limit_ranges: Writer<LimitRange>,
    network_policies: Writer<NetworkPolicy>,
    role_bindings: Writer<RoleBinding>,
    pvcs: Writer<PartialObjectMeta<PersistentVolumeClaim>>,
    vms: Writer<DynamicObject>,
    vmis: Writer<DynamicObject>,
    jobs: Writer<Job>,
}

type Task = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Wakes the tenancy an object belongs to.
#[derive(Clone)]
struct Owner {
    senders: Senders,
    namespaces: Store<PartialObjectMeta<Namespace>>,
}

impl Owner {
    fn of<K: Resource>(&self) -> impl Fn(&K) + Send + 'static {
        let me = self.clone();
        move |o: &K| {
            let meta = o.meta();
            let ns = meta
                .namespace
                .as_deref()
                .and_then(|n| me.namespaces.get(&ObjectRef::new(n)));
            if let Some(t) = wake::owner(meta, ns.as_deref()) {
                me.senders.send(Wakes {
                    tenancies: vec![t],
                    ..Wakes::default()
                });
            }
        }
    }
}

impl Caches {
    /// Starts every watch, waking through `senders` what each change
    /// concerns (see [`super::wake`]). The returned future drives them; the
    /// caches fill as it runs.
    pub fn start(client: Client, senders: Senders) -> (Self, impl Future<Output = ()> + Send) {
        let (caches, api, owned) = Self::empty();
        let mut tasks = caches.api_watches(&client, &senders, api);
        tasks.extend(caches.owned_watches(&client, &senders, owned));
        let all = futures::future::join_all(tasks).map(|_| ());
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
            namespaces: Writer::default(),
            quotas: Writer::default(),
            limit_ranges: Writer::default(),
            network_policies: Writer::default(),
            role_bindings: Writer::default(),
            pvcs: Writer::default(),
            vms: Writer::new(virtual_machines()),
            vmis: Writer::new(virtual_machine_instances()),
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
    fn api_watches(&self, c: &Client, senders: &Senders, w: ApiWriters) -> Vec<Task> {
        let all = watcher::Config::default;
        let (tx, tenancies, changes) = (
            senders.clone(),
            self.tenancies.clone(),
            self.changes.clone(),
        );
        let on_tenancy = move |t: &Guarded<Tenancy>| tx.send(wake::of_tenancy(t, &changes.state()));
        let tx = senders.clone();
        let on_request = move |r: &Guarded<CloudResourceRequest>| {
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
            full(Api::all(c.clone()), all(), w.requests, on_request).boxed(),
            full(Api::all(c.clone()), all(), w.tenancies, on_tenancy).boxed(),
            // ChangeRequests keep `managedFields`: they date the approvals.
            trimmed(
                Api::all(c.clone()),
                all(),
                w.changes,
                on_change,
                false,
                |_| {},
            )
            .boxed(),
            full(Api::all(c.clone()), all(), w.calendars, |_| {}).boxed(),
            full(Api::all(c.clone()), all(), w.catalogs, on_prices).boxed(),
            meta::<Namespace>(c.clone(), units, w.units, on_unit).boxed(),
            meta::<StorageClass>(c.clone(), all(), w.storage_classes, on_class).boxed(),
        ]
    }

    /// What tenancies are made of: each change wakes the tenancy it belongs
    /// to (see [`wake::owner`]).
    fn owned_watches(&self, c: &Client, senders: &Senders, w: OwnedWriters) -> Vec<Task> {
        let owner = Owner {
            senders: senders.clone(),
            namespaces: self.namespaces.clone(),
        };
        let all = watcher::Config::default;
        // Instances carry the template's labels, the tenancy's among them.
        let instances = all().labels(keys::TENANCY);
        let dynamic = |ar: ApiResource| Api::<DynamicObject>::all_with(c.clone(), &ar);
        let limits = owned(fingerprinted("LimitRange", |o: &mut LimitRange| {
            o.spec = None
        }));
        let policies = owned(fingerprinted("NetworkPolicy", |o: &mut NetworkPolicy| {
            o.spec = None
        }));
        let bindings = owned(fingerprinted("RoleBinding", |o: &mut RoleBinding| {
            o.subjects = None
        }));
        vec![
            trimmed(
                Api::all(c.clone()),
                all(),
                w.namespaces,
                owner.of(),
                true,
                owned(|n| mark_live(n, "Namespace")),
            )
            .boxed(),
            trimmed(
                Api::all(c.clone()),
                managed(),
                w.quotas,
                owner.of(),
                true,
                owned(quota_fields),
            )
            .boxed(),
            trimmed(
                Api::all(c.clone()),
                managed(),
                w.limit_ranges,
                owner.of(),
                true,
                limits,
            )
            .boxed(),
            trimmed(
                Api::all(c.clone()),
                managed(),
                w.network_policies,
                owner.of(),
                true,
                policies,
            )
            .boxed(),
            trimmed(
                Api::all(c.clone()),
                managed(),
                w.role_bindings,
                owner.of(),
                true,
                bindings,
            )
            .boxed(),
            // Every volume, not only those labelled the operator's: one whose
            // label someone removed is still there, not lost.
            trimmed(
                Api::all(c.clone()),
                all(),
                w.pvcs,
                owner.of(),
                true,
                owned(|v| mark_live(v, "PersistentVolumeClaim")),
            )
            .boxed(),
            trimmed(
                dynamic(virtual_machines()),
                managed(),
                w.vms,
                owner.of(),
                true,
                owned(vm_fields),
            )
            .boxed(),
            trimmed(
                dynamic(virtual_machine_instances()),
                instances,
                w.vmis,
                owner.of(),
                true,
                owned(vmi_fields),
            )
            .boxed(),
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
    use kube::ResourceExt;
    use serde_json::json;

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

    fn vm_cache() -> (
        reflector::store::Writer<DynamicObject>,
        Store<DynamicObject>,
    ) {
        let writer = reflector::store::Writer::new(virtual_machines());
        let reader = writer.as_reader();
        (writer, reader)
    }

    type Events<K> = Vec<Result<watcher::Event<K>, watcher::Error>>;

    /// Runs `events` through the watch pipeline; each wake records what
    /// `look` reads from the caches at that moment.
    async fn run<K, T: Send + 'static>(
        events: Events<K>,
        writer: reflector::store::Writer<K>,
        look: impl Fn(&K) -> T + Send + 'static,
    ) -> Vec<T>
    where
        K: Resource + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        drive(
            "test".into(),
            futures::stream::iter(events),
            writer,
            move |o: &K| record.lock().unwrap().push(look(o)),
        )
        .await;
        Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap()
    }

    fn created(cache: &Store<DynamicObject>, name: &str) -> Option<bool> {
        let r = ObjectRef::new_with(name, virtual_machines()).within("unit-a-web-0123456789");
        cache
            .get(&r)
            .map(|o| o.data["status"]["created"] == json!(true))
    }

    #[tokio::test]
    async fn a_change_seen_in_a_relist_wakes_once_the_cache_shows_it() {
        use watcher::Event::*;
        let (writer, cache) = vm_cache();
        // The watch listed app-1 before KubeVirt created it, and app-2.
        let first = vec![
            Ok(Init),
            Ok(InitApply(vm("app-1", "1", false))),
            Ok(InitApply(vm("app-2", "2", true))),
            Ok(InitApply(vm("app-3", "3", true))),
            Ok(InitDone),
        ];
        let looked = cache.clone();
        let woken = run(first, writer, move |o: &DynamicObject| {
            (o.name_any(), created(&looked, &o.name_any()))
        })
        .await;
        assert_eq!(woken.len(), 3, "a first list wakes every object: {woken:?}");

        // The apiserver restarted: the watch expired and listed again. KubeVirt
        // created app-1 meanwhile, app-2 was deleted, app-3 did not change.
        let (mut writer, cache) = vm_cache();
        for o in [
            vm("app-1", "1", false),
            vm("app-2", "2", true),
            vm("app-3", "3", true),
        ] {
            writer.apply_watcher_event(&Apply(o));
        }
        let relist = vec![
            Ok(Init),
            Ok(InitApply(vm("app-1", "7", true))),
            Ok(InitApply(vm("app-3", "3", true))),
            Ok(InitDone),
        ];
        let looked = cache.clone();
        let mut woken = run(relist, writer, move |o: &DynamicObject| {
            (o.name_any(), created(&looked, &o.name_any()))
        })
        .await;
        woken.sort();
        assert_eq!(
            woken,
            vec![
                // Woken when a reconcile reads it created, not before.
                ("app-1".to_owned(), Some(true)),
                // Woken as gone, when the cache no longer has it.
                ("app-2".to_owned(), None),
            ],
            "app-3, unchanged, wakes nothing"
        );
    }

    #[tokio::test]
    async fn a_change_routed_while_the_namespace_is_unknown_wakes_its_tenancy_when_it_is_known() {
        use watcher::Event::*;
        let ns_name = "unit-a-web-0123456789";
        let (namespaces, ns_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
        let (mut vm_writer, vms) = vm_cache();
        vm_writer.apply_watcher_event(&Init);
        vm_writer.apply_watcher_event(&InitDone);
        let woken = Arc::new(Mutex::new(Vec::new()));
        let wake = {
            let (woken, namespaces, vms) = (woken.clone(), namespaces.clone(), vms.clone());
            move |meta: &kube::api::ObjectMeta| {
                let seen = namespaces.get(&ObjectRef::new(meta.namespace.as_deref().unwrap_or("")));
                if let Some(t) = wake::owner(meta, seen.as_deref()) {
                    let known = namespaces.get(&ObjectRef::new(ns_name)).is_some();
                    woken
                        .lock()
                        .unwrap()
                        .push((t, known, created(&vms, "app-1")));
                }
            }
        };
        // The namespace watch is relisting (the namespace was made while it
        // was down) when KubeVirt's change to the VM arrives.
        let w = wake.clone();
        drive(
            "vms".into(),
            futures::stream::iter(vec![Ok(Apply(vm("app-1", "9", true)))]),
            vm_writer,
            move |o: &DynamicObject| w(&o.metadata),
        )
        .await;
        assert!(
            woken.lock().unwrap().is_empty(),
            "no tenancy to route to yet"
        );

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
        drive(
            "namespaces".into(),
            futures::stream::iter(relist),
            ns_writer,
            move |o| wake(&o.metadata),
        )
        .await;
        assert_eq!(
            *woken.lock().unwrap(),
            vec![(ObjectRef::new("web").within("unit-a"), true, Some(true))],
            "the tenancy wakes when a reconcile sees its namespace and its VM created"
        );
    }

    #[test]
    fn a_cached_vm_keeps_whether_kubevirt_created_it_and_not_its_template() {
        let mut vm = object(json!({
            "spec": { "runStrategy": "Always", "template": { "spec": { "domain": { "cpu": { "cores": 2 } } } } },
            "status": { "created": true, "printableStatus": "Running", "conditions": [{ "type": "Ready" }] }
        }));
        vm_fields(&mut vm);
        assert_eq!(vm.data, json!({ "status": { "created": true } }));
        assert_eq!(vm.metadata.name.as_deref(), Some("app-1"));

        let mut fresh = object(json!({ "spec": {} }));
        vm_fields(&mut fresh);
        assert_ne!(
            fresh.data["status"]["created"],
            json!(true),
            "not created yet"
        );
    }

    #[test]
    fn a_cached_instance_keeps_its_phase_transitions_and_the_agent_condition() {
        let transitions = json!([
            { "phase": "Scheduling", "phaseTransitionTimestamp": "2026-11-02T01:00:00Z" },
            { "phase": "Running", "phaseTransitionTimestamp": "2026-11-02T01:01:00Z" }
        ]);
        let agent = json!({ "type": "AgentConnected", "status": "True",
                            "lastTransitionTime": "2026-11-02T01:02:00Z" });
        let mut vmi = object(json!({
            "spec": { "domain": { "devices": { "disks": [{ "name": "root" }] } } },
            "status": {
                "phase": "Running",
                "phaseTransitionTimestamps": transitions,
                "conditions": [{ "type": "Ready", "status": "True" }, agent],
                "interfaces": [{ "ipAddress": "10.0.0.7" }],
                "guestOSInfo": { "name": "Kylin" }
            }
        }));
        vmi_fields(&mut vmi);
        assert_eq!(
            vmi.data,
            json!({ "status": {
                "phase": "Running",
                "phaseTransitionTimestamps": transitions,
                "conditions": [agent]
            } })
        );
        // A status that is not an object is kept as nothing, not a panic.
        let mut odd = object(json!({ "status": "pending" }));
        vmi_fields(&mut odd);
        assert_eq!(odd.data["status"]["phase"], serde_json::Value::Null);
    }

    #[test]
    fn a_cached_quota_keeps_its_hard_limits_asked_and_in_force_and_its_usage() {
        let mut q: ResourceQuota = serde_json::from_value(json!({
            "metadata": { "name": "allocation", "namespace": "t" },
            "spec": { "hard": { "requests.cpu": "4" }, "scopes": ["NotTerminating"] },
            "status": { "hard": { "requests.cpu": "4" }, "used": { "requests.cpu": "2" } }
        }))
        .unwrap();
        quota_fields(&mut q);
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(v["spec"], json!({ "hard": { "requests.cpu": "4" } }));
        assert_eq!(
            v["status"],
            json!({ "hard": { "requests.cpu": "4" }, "used": { "requests.cpu": "2" } })
        );
    }

    #[test]
    fn art8_a_cached_volume_keeps_the_fingerprint_of_its_marks_not_the_marks() {
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
        let cached = |mut v: PartialObjectMeta<PersistentVolumeClaim>| {
            owned(|v| mark_live(v, "PersistentVolumeClaim"))(&mut v);
            v
        };
        let (ours, relabelled) = (cached(pvc("oa")), cached(pvc("other")));
        let live =
            |v: &PartialObjectMeta<PersistentVolumeClaim>| v.annotations().get(LIVE).cloned();
        assert!(live(&ours).is_some());
        assert_ne!(live(&ours), live(&relabelled), "a label changed shows");
        let meta = &ours.metadata;
        assert_eq!(meta.labels, None);
        assert_eq!(meta.owner_references, None);
        assert_eq!(meta.finalizers, None);
        let kept: Vec<&str> = ours.annotations().keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            [LIVE, provisioning::SPEC_HASH, provisioning::TENANCY_REF]
        );
        assert_eq!(
            (meta.uid.as_deref(), meta.resource_version.as_deref()),
            (Some("u-1"), Some("7"))
        );
    }
}
