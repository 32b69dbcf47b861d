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
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedSender;

use crate::api::{
    ChangeRequest, CloudResourceRequest, ServiceCatalog, Tenancy, WorkCalendar, keys,
};
use crate::provisioning::{self, MANAGER, TENANCY_REF};

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

/// Where an object of a tenancy namespace points: its tenancy, by the
/// reference its namespace carries. While the namespace is not in its cache
/// (made while its watch was down, and not relisted yet), nothing is woken
/// here and nothing is lost: the namespace wakes its tenancy when its cache
/// shows it (see [`drive`]), and this object is in its own cache by then.
fn tenancy_of(
    meta: &kube::api::ObjectMeta,
    namespaces: &Store<PartialObjectMeta<Namespace>>,
) -> Option<TenancyRef> {
    let reference = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(TENANCY_REF))
        .cloned()
        .or_else(|| {
            let ns = namespaces.get(&ObjectRef::new(meta.namespace.as_deref()?))?;
            ns.annotations().get(TENANCY_REF).cloned()
        })?;
    let (ns, name) = reference.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
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

/// Records in the cached copy the fingerprint of what the operator governs
/// of `object` (see [`LIVE`]).
fn mark_live<K: Resource + serde::Serialize>(object: &mut K, kind: &str) {
    let live = serde_json::to_value(&*object)
        .ok()
        .and_then(|v| provisioning::fingerprint(kind, &v));
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

impl Caches {
    /// Starts every watch. The returned future drives them; the caches fill as
    /// it runs.
    pub fn start(
        client: Client,
        requests_tx: UnboundedSender<RequestRef>,
        tenancies_tx: UnboundedSender<TenancyRef>,
        changes_tx: UnboundedSender<ChangeRef>,
        units_tx: UnboundedSender<UnitRef>,
    ) -> (Self, impl Future<Output = ()> + Send) {
        let (requests, requests_w) = reflector::store();
        let (tenancies, tenancies_w) = reflector::store();
        let (changes, changes_w) = reflector::store();
        let (calendars, calendars_w) = reflector::store();
        let (catalogs, catalogs_w) = reflector::store();
        let (units, units_w) = reflector::store();
        let (namespaces, namespaces_w) = reflector::store();
        let (quotas, quotas_w) = reflector::store();
        let (limit_ranges, limit_ranges_w) = reflector::store();
        let (network_policies, network_policies_w) = reflector::store();
        let (role_bindings, role_bindings_w) = reflector::store();
        let (storage_classes, storage_classes_w) = reflector::store();
        let (pvcs, pvcs_w) = reflector::store();
        let vm_ar = virtual_machines();
        let vmi_ar = virtual_machine_instances();
        let vms_w = reflector::store::Writer::new(vm_ar.clone());
        let vms = vms_w.as_reader();
        let vmis_w = reflector::store::Writer::new(vmi_ar.clone());
        let vmis = vmis_w.as_reader();
        let (jobs, jobs_w) = reflector::store();
        let caches = Self {
            requests,
            tenancies: tenancies.clone(),
            changes: changes.clone(),
            calendars,
            catalogs,
            units,
            namespaces: namespaces.clone(),
            quotas,
            limit_ranges,
            network_policies,
            role_bindings,
            storage_classes,
            pvcs,
            vms,
            vmis,
            jobs,
        };

        let wake_owner = {
            let tx = tenancies_tx.clone();
            let namespaces = namespaces.clone();
            move |meta: &kube::api::ObjectMeta| {
                if let Some(r) = tenancy_of(meta, &namespaces) {
                    let _ = tx.send(r);
                }
            }
        };
        let c = client;
        let mut tasks: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();

        {
            let tx = requests_tx.clone();
            tasks.push(
                full(
                    Api::<Guarded<CloudResourceRequest>>::all(c.clone()),
                    watcher::Config::default(),
                    requests_w,
                    move |o| {
                        let _ = tx.send(ObjectRef::from_obj(o));
                    },
                )
                .boxed(),
            );
        }
        {
            let (ttx, rtx, ctx, utx) = (
                tenancies_tx.clone(),
                requests_tx.clone(),
                changes_tx.clone(),
                units_tx.clone(),
            );
            let changes = changes.clone();
            tasks.push(
                full(
                    Api::<Guarded<Tenancy>>::all(c.clone()),
                    watcher::Config::default(),
                    tenancies_w,
                    move |o| {
                        let _ = ttx.send(ObjectRef::from_obj(o));
                        // Its unit, which counts the tenancies in service.
                        if let Some(ns) = o.namespace() {
                            let _ = utx.send(ObjectRef::new(&ns));
                        }
                        // Its changes: they follow what it becomes.
                        let (ns, name) = (o.namespace(), o.name_any());
                        for ch in changes.state() {
                            if let Ok(c) = &ch.0
                                && c.namespace() == ns
                                && c.spec.tenancy.as_str() == name
                            {
                                let _ = ctx.send(ObjectRef::from_obj(&*ch));
                            }
                        }
                        // The request that created it (its status names the tenancy).
                        let name = match &o.0 {
                            Ok(t) => t.spec.request.to_string(),
                            Err(_) => o.name_any(),
                        };
                        let mut r = ObjectRef::new(&name);
                        if let Some(ns) = o.namespace() {
                            r = r.within(&ns);
                        }
                        let _ = rtx.send(r);
                    },
                )
                .boxed(),
            );
        }
        {
            let tx = changes_tx.clone();
            tasks.push(
                trimmed(
                    Api::<Guarded<ChangeRequest>>::all(c.clone()),
                    watcher::Config::default(),
                    changes_w,
                    move |o| {
                        let _ = tx.send(ObjectRef::from_obj(o));
                    },
                    false,
                    |_| {},
                )
                .boxed(),
            );
        }
        tasks.push(
            full(
                Api::<Guarded<WorkCalendar>>::all(c.clone()),
                watcher::Config::default(),
                calendars_w,
                |_| {},
            )
            .boxed(),
        );
        {
            // New prices reprice every tenancy's month.
            let (ttx, tenancies) = (tenancies_tx.clone(), tenancies.clone());
            tasks.push(
                full(
                    Api::<Guarded<ServiceCatalog>>::all(c.clone()),
                    watcher::Config::default(),
                    catalogs_w,
                    move |_| {
                        for t in tenancies.state() {
                            let _ = ttx.send(ObjectRef::from_obj(&*t));
                        }
                    },
                )
                .boxed(),
            );
        }
        {
            let (utx, ttx, tenancies) = (units_tx.clone(), tenancies_tx.clone(), tenancies.clone());
            tasks.push(
                meta::<Namespace>(
                    c.clone(),
                    watcher::Config::default().labels(keys::UNIT),
                    units_w,
                    move |ns| {
                        let _ = utx.send(ObjectRef::from_obj(ns));
                        // Its tenancies (the unit's group binds in each).
                        let name = ns.name_any();
                        for t in tenancies.state() {
                            if t.namespace().as_deref() == Some(name.as_str()) {
                                let _ = ttx.send(ObjectRef::from_obj(&*t));
                            }
                        }
                    },
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner.clone();
            tasks.push(
                trimmed(
                    Api::<PartialObjectMeta<Namespace>>::all(c.clone()),
                    watcher::Config::default(),
                    namespaces_w,
                    move |o| w(&o.metadata),
                    true,
                    |o| mark_live(o, "Namespace"),
                )
                .boxed(),
            );
        }
        {
            // A class appearing or going changes every tenancy's quota.
            let (ttx, tenancies) = (tenancies_tx.clone(), tenancies.clone());
            tasks.push(
                meta::<StorageClass>(
                    c.clone(),
                    watcher::Config::default(),
                    storage_classes_w,
                    move |_| {
                        for t in tenancies.state() {
                            let _ = ttx.send(ObjectRef::from_obj(&*t));
                        }
                    },
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner.clone();
            tasks.push(
                trimmed(
                    Api::<ResourceQuota>::all(c.clone()),
                    managed(),
                    quotas_w,
                    move |o| w(&o.metadata),
                    true,
                    quota_fields,
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner.clone();
            tasks.push(
                trimmed(
                    Api::<LimitRange>::all(c.clone()),
                    managed(),
                    limit_ranges_w,
                    move |o| w(&o.metadata),
                    true,
                    fingerprinted("LimitRange", |o: &mut LimitRange| o.spec = None),
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner.clone();
            tasks.push(
                trimmed(
                    Api::<NetworkPolicy>::all(c.clone()),
                    managed(),
                    network_policies_w,
                    move |o| w(&o.metadata),
                    true,
                    fingerprinted("NetworkPolicy", |o: &mut NetworkPolicy| o.spec = None),
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner.clone();
            tasks.push(
                trimmed(
                    Api::<RoleBinding>::all(c.clone()),
                    managed(),
                    role_bindings_w,
                    move |o| w(&o.metadata),
                    true,
                    fingerprinted("RoleBinding", |o: &mut RoleBinding| o.subjects = None),
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner.clone();
            // Every volume, not only those labelled the operator's: one whose
            // label someone removed is still there, not lost.
            tasks.push(
                trimmed(
                    Api::<PartialObjectMeta<PersistentVolumeClaim>>::all(c.clone()),
                    watcher::Config::default(),
                    pvcs_w,
                    move |o| w(&o.metadata),
                    true,
                    |o| mark_live(o, "PersistentVolumeClaim"),
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner.clone();
            tasks.push(
                trimmed(
                    Api::<DynamicObject>::all_with(c.clone(), &vm_ar),
                    managed(),
                    vms_w,
                    move |o| w(&o.metadata),
                    true,
                    vm_fields,
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner.clone();
            // Instances carry the template's labels, the tenancy's among them.
            tasks.push(
                trimmed(
                    Api::<DynamicObject>::all_with(c.clone(), &vmi_ar),
                    watcher::Config::default().labels(keys::TENANCY),
                    vmis_w,
                    move |o| w(&o.metadata),
                    true,
                    vmi_fields,
                )
                .boxed(),
            );
        }
        {
            let w = wake_owner;
            tasks.push(
                full(Api::<Job>::all(c.clone()), managed(), jobs_w, move |o| {
                    w(&o.metadata)
                })
                .boxed(),
            );
        }
        let all = futures::future::join_all(tasks).map(|_| ());
        (caches, all)
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
                if let Some(t) = tenancy_of(meta, &namespaces) {
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
        ns.metadata.annotations = Some([(TENANCY_REF.to_owned(), "unit-a/web".to_owned())].into());
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
}
