//! The Tenancy controller: observes the tenancy's objects through the caches
//! (and, while releasing, everything in its namespace through the API), asks
//! the lifecycle planner, and applies the plan in a crash-safe order: the
//! unit's suspension, the objects, the status (wipe records included), and
//! only then deletions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tracing::{debug, info};

use super::caches::{Guarded, TenancyRef, virtual_machine_instances, virtual_machines};
use super::index::{Index, Known};
use super::metrics::ControllerName;
use super::packed::Packed;
use super::{Context, Error, MANAGER, drive, recheck, timed};
use crate::api::tenancy::{Accrual, HeldVm, StashedPolicy, TenancyStatus};
use crate::api::{ChangeRequest, CloudResourceRequest, Tenancy, keys};
use crate::billing;
use crate::lifecycle::{self, Instance, Lookup, Observed, Seen, SeenNamespace};
use crate::provisioning::{self, Desired, SPEC_HASH, Write};
use crate::release::{self, Deletion, JobOutcome, WIPE_OF};

/// Applies of one reconcile in flight at once.
const APPLY_CONCURRENCY: usize = 4;

pub fn controller(
    ctx: Arc<Context>,
    triggers: impl Stream<Item = TenancyRef> + Send + 'static,
    clock_moves: impl Stream<Item = ()> + Send + 'static,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    drive(
        ctx.caches.tenancies.clone(),
        triggers,
        clock_moves,
        stop,
        reconcile,
        ctx,
    )
}

fn annotation_of(meta: &kube::api::ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(key)).cloned()
}

/// What the cache shows of one of the operator's objects.
fn seen(meta: &kube::api::ObjectMeta, ready: bool) -> Seen {
    Seen {
        hash: annotation_of(meta, SPEC_HASH),
        live: None,
        ready,
        deleting: meta.deletion_timestamp.is_some(),
    }
}

/// What an index shows of one of the operator's objects.
fn known(k: Known) -> Seen {
    Seen {
        hash: k.hash.map(String::from),
        live: k.live.map(String::from),
        ready: k.ready,
        deleting: k.deleting,
    }
}

/// Reads the caches for the planner.
struct CacheLookup<'a> {
    ctx: &'a Context,
    ns: &'a str,
    /// The namespace as the apiserver answered its creation by this
    /// reconcile, which the cache may not show yet.
    created: Option<&'a DynamicObject>,
}

impl Lookup for CacheLookup<'_> {
    fn object(&self, kind: &str, name: &str) -> Option<Seen> {
        let c = &self.ctx.caches;
        let here = |index: &Index| index.get(Some(self.ns), name).map(known);
        match kind {
            "Namespace" if self.created.is_some_and(|n| n.name_any() == name) => {
                self.created.map(|n| Seen {
                    live: super::caches::live(n, kind),
                    ..seen(&n.metadata, true)
                })
            }
            "Namespace" => c.namespaces.get(None, name).map(known),
            "LimitRange" => here(&c.limit_ranges),
            "NetworkPolicy" => here(&c.network_policies),
            "RoleBinding" => here(&c.role_bindings),
            "PersistentVolumeClaim" => here(&c.pvcs),
            // Ready when the quota controller has taken it up.
            "ResourceQuota" => here(&c.quotas),
            // Ready when KubeVirt has created the VM.
            "VirtualMachine" => here(&c.vms),
            "Job" => c
                .jobs
                .get(&ObjectRef::new(name).within(self.ns))
                .map(|j| seen(&j.metadata, true)),
            _ => None,
        }
    }

    fn quota_storage_used(&self) -> Option<String> {
        let quota = self
            .ctx
            .caches
            .quotas
            .get(Some(self.ns), provisioning::QUOTA)?;
        quota.usage?.storage.map(String::from)
    }

    fn instance(&self, vm: &str) -> Option<Instance> {
        let vmi = self.ctx.caches.vmis.get(Some(self.ns), vm)?;
        let started = vmi.instance.unwrap_or_default();
        Some(Instance {
            name: vm.to_owned(),
            running_since: started.running,
            agent_since: started.agent,
        })
    }
}

/// What of the unit's own may run pods or VMs, by API version and kind
/// (KubeVirt's kinds where KubeVirt has them).
const WORKLOAD_KINDS: [(&str, &str); 8] = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("v1", "ReplicationController"),
    ("batch/v1", "CronJob"),
    ("kubevirt.io/v1", "VirtualMachineInstanceReplicaSet"),
    ("pool.kubevirt.io/v1alpha1", "VirtualMachinePool"),
];

/// The objects of a kind in a namespace; none if the cluster has no such kind.
async fn list_kind(
    client: &kube::Client,
    ns: &str,
    api_version: &str,
    kind: &str,
) -> Result<Vec<DynamicObject>, Error> {
    let ar = provisioning::api_resource(api_version, kind);
    match Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar)
        .list(&ListParams::default())
        .await
    {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Everything in the namespace, from the API: what a release must see,
/// including what the unit created itself (its workloads when `releasing`).
async fn gather(
    ctx: &Context,
    ns: &str,
    meta: Option<&Known>,
    releasing: bool,
) -> Result<release::Namespace, Error> {
    let Some(meta) = meta else {
        return Ok(release::Namespace::default());
    };
    let c = ctx.client.clone();
    let lp = ListParams::default();
    let vms = Api::<DynamicObject>::namespaced_with(c.clone(), ns, &virtual_machines())
        .list(&lp)
        .await?;
    let vmis = Api::<DynamicObject>::namespaced_with(c.clone(), ns, &virtual_machine_instances())
        .list(&lp)
        .await?;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(c.clone(), ns)
        .list(&lp)
        .await?;
    let jobs = Api::<Job>::namespaced(c.clone(), ns).list(&lp).await?;
    let policies = Api::<NetworkPolicy>::namespaced(c.clone(), ns)
        .list(&lp)
        .await?;
    let wipe_of = |j: &Job| wipe_of(j, &pvcs.items);
    let mut seen = release::Namespace {
        exists: true,
        terminating: meta.deleting,
        vms: vms.items.iter().map(seen_vm).collect(),
        instances: vmis.items.iter().map(|i| i.name_any()).collect(),
        instances_deleting: vmis
            .items
            .iter()
            .filter(|i| i.metadata.deletion_timestamp.is_some())
            .map(|i| i.name_any())
            .collect(),
        paused: vmis
            .items
            .iter()
            .filter(|i| paused(i))
            .map(|i| i.name_any())
            .collect(),
        network_policies: policies.items.iter().map(seen_policy).collect(),
        pvcs: pvcs
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(seen_pvc)
            .collect(),
        jobs: jobs
            .items
            .iter()
            .filter_map(|j| seen_job(j, wipe_of(j)?))
            .collect(),
        ..release::Namespace::default()
    };
    if releasing {
        unit_workloads(&c, ns, &jobs.items, &wipe_of, &mut seen).await?;
    }
    Ok(seen)
}

/// The volume a Job wipes, by its annotation or by squatting its wipe Job's
/// name: such Jobs are judged by the wipe.
fn wipe_of(j: &Job, pvcs: &[PersistentVolumeClaim]) -> Option<String> {
    j.annotations().get(WIPE_OF).cloned().or_else(|| {
        pvcs.iter()
            .map(|p| p.name_any())
            .find(|p| release::job_name(p) == j.name_any())
    })
}

/// What a release must remove of the unit's own: its workloads, bare pods
/// and role bindings (a wipe Job's pods and VM launchers aside).
async fn unit_workloads(
    c: &kube::Client,
    ns: &str,
    jobs: &[Job],
    wipe_of: &impl Fn(&Job) -> Option<String>,
    seen: &mut release::Namespace,
) -> Result<(), Error> {
    let lp = ListParams::default();
    let (workloads, pods) = (&mut seen.workloads, &mut seen.pods);
    seen.bindings = Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(c.clone(), ns)
        .list(&lp)
        .await?
        .items
        .iter()
        .map(|b| b.name_any())
        .collect();
    let going = |m: &kube::api::ObjectMeta| m.deletion_timestamp.is_some();
    for (api_version, kind) in WORKLOAD_KINDS {
        for o in list_kind(c, ns, api_version, kind).await? {
            if !going(&o.metadata) {
                workloads.push(release::Workload {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                    name: o.name_any(),
                });
            }
        }
    }
    for j in jobs
        .iter()
        .filter(|j| wipe_of(j).is_none() && !going(&j.metadata))
    {
        workloads.push(release::Workload {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            name: j.name_any(),
        });
    }
    // By name and UID: a pod naming a wipe Job it does not belong to is the
    // unit's, and says nothing of a wipe.
    let wipe_jobs: Vec<(String, String)> = jobs
        .iter()
        .filter(|j| wipe_of(j).is_some())
        .map(|j| (j.name_any(), j.uid().unwrap_or_default()))
        .collect();
    for p in list_kind(c, ns, "v1", "Pod").await? {
        let owners = p.metadata.owner_references.clone().unwrap_or_default();
        // A wipe Job's pods run the wipe; a VM's launcher goes with its
        // instance.
        if let Some(job) = owners.iter().find(|o| {
            o.kind == "Job"
                && wipe_jobs
                    .iter()
                    .any(|(n, uid)| *n == o.name && *uid == o.uid)
        }) {
            if let Some(said) = failure_message(&p) {
                seen.wipe_messages.insert(job.name.clone(), said);
            }
            continue;
        }
        if owners.iter().any(|o| o.kind == "VirtualMachineInstance") {
            continue;
        }
        if owners.is_empty() && !going(&p.metadata) {
            workloads.push(release::Workload {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: p.name_any(),
            });
        }
        pods.push(p.name_any());
    }
    Ok(())
}

/// What a failed pod's container said as it ended (its termination
/// message, or the exit code), on one line and at most 300 characters.
fn failure_message(p: &DynamicObject) -> Option<String> {
    let statuses = p.data["status"]["containerStatuses"].as_array()?;
    statuses.iter().find_map(|c| {
        let ended = &c["state"]["terminated"];
        let code = ended["exitCode"].as_i64()?;
        if code == 0 {
            return None;
        }
        let said = ended["message"].as_str().unwrap_or_default();
        let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
        let said = match said.char_indices().rev().nth(299) {
            Some((at, _)) => format!("…{}", &said[at..]),
            None => said,
        };
        Some(if said.is_empty() {
            format!("exit code {code}")
        } else {
            format!("exit code {code}: {said}")
        })
    })
}

fn seen_vm(vm: &DynamicObject) -> release::Vm {
    release::Vm {
        name: vm.name_any(),
        halted: vm.data["spec"]["runStrategy"] == "Halted"
            || vm.data["spec"]["running"] == json!(false),
        ours: vm.labels().get(keys::MANAGED_BY).map(String::as_str) == Some(MANAGER),
        run_strategy: vm.data["spec"]["runStrategy"].as_str().map(str::to_owned),
        running: vm.data["spec"]["running"].as_bool(),
    }
}

fn paused(i: &DynamicObject) -> bool {
    i.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Paused" && c["status"] == "True")
    })
}

fn seen_policy(p: &NetworkPolicy) -> release::Policy {
    release::Policy {
        name: p.name_any(),
        // A label alone does not make a policy the operator's.
        ours: p.labels().get(keys::MANAGED_BY).map(String::as_str) == Some(MANAGER)
            && [provisioning::DENY_POLICY, provisioning::ALLOW_POLICY]
                .contains(&p.name_any().as_str()),
        manifest: json!({
            "labels": p.metadata.labels,
            "annotations": p.metadata.annotations,
            "spec": p.spec,
        })
        .to_string(),
    }
}

fn seen_pvc(p: &PersistentVolumeClaim) -> release::Pvc {
    let spec = p.spec.clone().unwrap_or_default();
    let size = spec
        .resources
        .and_then(|r| r.requests)
        .and_then(|r| r.get("storage").cloned())
        .and_then(|q| crate::quantity::gib(&q.0))
        .unwrap_or(0);
    release::Pvc {
        name: p.name_any(),
        size_gib: size,
        block: spec.volume_mode.as_deref() == Some("Block"),
        class: spec.storage_class_name.clone().unwrap_or_default(),
    }
}

fn seen_job(j: &Job, pvc: String) -> Option<release::Job> {
    let conditions = j
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let is = |t: &str| {
        conditions
            .iter()
            .any(|c| c.type_ == t && c.status == "True")
    };
    let outcome = if is("Complete") || is("SuccessCriteriaMet") {
        JobOutcome::Succeeded
    } else if is("Failed") || is("FailureTarget") {
        JobOutcome::Failed
    } else {
        JobOutcome::Running
    };
    Some(release::Job {
        name: j.name_any(),
        uid: j.uid().unwrap_or_default(),
        pvc,
        outcome,
        runs: release::job_fingerprint(&serde_json::to_value(j).ok()?),
    })
}

/// Writes one object as the plan says; a create returns what was created.
async fn apply(ctx: &Context, d: &Desired) -> Result<Option<DynamicObject>, Error> {
    let ar = provisioning::api_resource(d.api_version, d.kind);
    let api: Api<DynamicObject> = match &d.namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &ar),
        None => Api::all_with(ctx.client.clone(), &ar),
    };
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    let object = || serde_json::from_value::<DynamicObject>(d.object.clone());
    let verb = match d.write {
        Write::Apply => "apply",
        Write::Create => "create",
        Write::Replace => "replace",
        Write::Recreate => "recreate",
        Write::Template => "patch",
    };
    let created = match d.write {
        Write::Apply => {
            let apply = Patch::Apply(&d.object);
            let params = PatchParams::apply(MANAGER).force();
            ctx.write(d.kind, verb, api.patch(&d.name, &params, &apply))
                .await?;
            None
        }
        // An object of that name that exists already is not this one: the
        // conflict is an error, and the planner sees what is there next time.
        Write::Create => Some(
            ctx.write(d.kind, verb, api.create(&params, &object()?))
                .await?,
        ),
        Write::Replace => {
            ctx.write(d.kind, verb, api.replace(&d.name, &params, &object()?))
                .await?;
            None
        }
        Write::Recreate => {
            // The one the planner saw, not one made since (a cache that lags
            // would have a binding made a moment ago deleted again).
            let seen = d
                .namespace
                .as_deref()
                .and_then(|ns| ctx.caches.role_bindings.get(Some(ns), &d.name));
            let once = DeleteParams {
                preconditions: seen.map(|b| kube::api::Preconditions {
                    uid: Some(b.uid.into()),
                    resource_version: Some(b.version.into()),
                }),
                ..DeleteParams::default()
            };
            match ctx
                .write(d.kind, "delete", api.delete(&d.name, &once))
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_gone() => {}
                Err(e) => return Err(e),
            }
            Some(
                ctx.write(d.kind, verb, api.create(&params, &object()?))
                    .await?,
            )
        }
        Write::Template => {
            let mut template = d.object["spec"]["template"].clone();
            // What the operator sets and the allocation no longer has goes.
            for key in provisioning::BANDWIDTH_ANNOTATIONS {
                if template["metadata"]["annotations"][key].is_null() {
                    template["metadata"]["annotations"][key] = Value::Null;
                }
            }
            let patch = json!({
                "metadata": {
                    "labels": d.object["metadata"]["labels"],
                    "annotations": d.object["metadata"]["annotations"],
                },
                "spec": { "template": template },
            });
            let params = PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            };
            let merge = Patch::Merge(&patch);
            ctx.write(d.kind, verb, api.patch(&d.name, &params, &merge))
                .await?;
            None
        }
    };
    debug!(kind = d.kind, name = %d.name, verb, "written");
    Ok(created)
}

async fn delete(ctx: &Context, d: &Deletion) -> Result<(), Error> {
    let ar = provisioning::api_resource(d.api_version, d.kind);
    let api: Api<DynamicObject> = match &d.namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &ar),
        None => Api::all_with(ctx.client.clone(), &ar),
    };
    let background = DeleteParams::background();
    match ctx
        .write(d.kind, "delete", api.delete(&d.name, &background))
        .await
    {
        Ok(_) => {
            info!(
                kind = d.kind,
                namespace = d.namespace.as_deref().unwrap_or("-"),
                name = %d.name,
                "deleted"
            );
            Ok(())
        }
        Err(e) if e.is_gone() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Adds or removes the operator's finalizer, guarded by the resourceVersion
/// read; the tenancy's resourceVersion after it.
async fn finalizer(ctx: &Context, tenancy: &Tenancy, add: bool) -> Result<Option<String>, Error> {
    let mut finalizers: Vec<String> = tenancy
        .finalizers()
        .iter()
        .filter(|f| f.as_str() != lifecycle::FINALIZER)
        .cloned()
        .collect();
    if add {
        finalizers.push(lifecycle::FINALIZER.to_owned());
    }
    let api: Api<Tenancy> =
        Api::namespaced(ctx.client.clone(), &tenancy.namespace().unwrap_or_default());
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    let merge = Patch::Merge(json!({ "metadata": {
        "finalizers": finalizers,
        "resourceVersion": tenancy.resource_version(),
    }}));
    let patched = ctx
        .write(
            "Tenancy",
            "patch",
            api.patch(&tenancy.name_any(), &params, &merge),
        )
        .await?;
    Ok(patched.resource_version())
}

/// Appends the record of a wipe Job just created to the tenancy's status at
/// once, whatever else the status says: were it written only with the rest
/// of the status, and that write refused (the tenancy changed meanwhile), the
/// Job would be taken for another's next time.
async fn record_wipe_job(
    ctx: &Context,
    ns: &str,
    name: &str,
    record: &crate::api::tenancy::WipeJob,
) -> Result<(), Error> {
    let api: Api<Tenancy> = Api::namespaced(ctx.client.clone(), ns);
    let append = |path: &str, value: Value| -> Result<json_patch::Patch, Error> {
        Ok(serde_json::from_value(
            json!([{ "op": "add", "path": path, "value": value }]),
        )?)
    };
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    let one = serde_json::to_value(record)?;
    let to_list = Patch::Json::<()>(append("/status/wipeJobs/-", one.clone())?);
    match ctx
        .write(
            "Tenancy",
            "status",
            api.patch_status(name, &params, &to_list),
        )
        .await
    {
        Ok(_) => {}
        // The first: there is no list to append to yet.
        Err(Error::Kube(kube::Error::Api(s))) if s.code == 422 => {
            let first = Patch::Json::<()>(append("/status/wipeJobs", json!([one]))?);
            ctx.write("Tenancy", "status", api.patch_status(name, &params, &first))
                .await?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Sets a VM to `Halted`, owned by the halt manager; a VM already gone is fine.
async fn halt(ctx: &Context, ns: &str, vm: &str) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &virtual_machines());
    let params = PatchParams {
        field_manager: Some(release::HALT_MANAGER.into()),
        ..Default::default()
    };
    // `running` goes: KubeVirt refuses a VM with both (a unit's own VM may
    // have been created with `running: true`).
    let merge = Patch::Merge(json!({ "spec": { "runStrategy": "Halted", "running": null } }));
    match ctx
        .write("VirtualMachine", "patch", api.patch(vm, &params, &merge))
        .await
    {
        Ok(_) => {
            info!(vm = %format!("{ns}/{vm}"), "halted");
            Ok(())
        }
        Err(e) if e.is_gone() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets how a VM runs (a hold, or its lifting), by the halt manager.
async fn run_state(ctx: &Context, ns: &str, vm: &HeldVm) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &virtual_machines());
    let params = PatchParams {
        field_manager: Some(release::HALT_MANAGER.into()),
        ..Default::default()
    };
    let patch = json!({ "spec": { "runStrategy": vm.run_strategy, "running": vm.running } });
    let merge = Patch::Merge(patch);
    match ctx
        .write(
            "VirtualMachine",
            "patch",
            api.patch(&vm.name, &params, &merge),
        )
        .await
    {
        Ok(_) => {
            info!(vm = %format!("{ns}/{}", vm.name), run_strategy = ?vm.run_strategy, running = ?vm.running, "run state set");
            Ok(())
        }
        Err(e) if e.is_gone() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Puts back a NetworkPolicy of the unit's that a hold removed.
async fn restore_policy(ctx: &Context, ns: &str, policy: &StashedPolicy) -> Result<(), Error> {
    let saved: Value = serde_json::from_str(&policy.manifest)
        .map_err(|e| Error::Invalid(format!("stashed policy {}: {e}", policy.name)))?;
    let object: NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy.name,
            "namespace": ns,
            "labels": saved["labels"],
            "annotations": saved["annotations"],
        },
        "spec": saved["spec"],
    }))
    .map_err(|e| Error::Invalid(format!("stashed policy {}: {e}", policy.name)))?;
    let params = PostParams {
        field_manager: Some(release::HALT_MANAGER.into()),
        ..Default::default()
    };
    let api = Api::<NetworkPolicy>::namespaced(ctx.client.clone(), ns);
    match ctx
        .write("NetworkPolicy", "create", api.create(&params, &object))
        .await
    {
        Ok(_) => {
            info!(policy = %format!("{ns}/{}", policy.name), "network policy restored");
            Ok(())
        }
        // Already back.
        Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Pauses or unpauses a VM instance through KubeVirt's subresource API.
async fn pause_instance(ctx: &Context, ns: &str, vmi: &str, pause: bool) -> Result<(), Error> {
    let verb = if pause { "pause" } else { "unpause" };
    let request = http::Request::put(format!(
        "/apis/subresources.kubevirt.io/v1/namespaces/{ns}/virtualmachineinstances/{vmi}/{verb}"
    ))
    .header(http::header::CONTENT_TYPE, "application/json")
    .body(b"{}".to_vec())
    .map_err(kube::Error::HttpError)?;
    ctx.write(
        "VirtualMachineInstance",
        verb,
        ctx.client.request_text(request),
    )
    .await?;
    info!(vmi = %format!("{ns}/{vmi}"), verb, "done");
    Ok(())
}

async fn suspend_unit(
    ctx: &Context,
    unit_ns: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let patch = json!({
        "metadata": {
            "labels": { keys::SUSPENDED: "true" },
            "annotations": {
                keys::SUSPENDED_REASON: reason,
                keys::SUSPENDED_AT: crate::calendar::rfc3339(now),
                keys::SUSPENSION_LIFTED: null,
            },
        },
    });
    ctx.patch_namespace(unit_ns, patch).await?;
    info!(unit = %unit_ns, reason, "unit applications suspended");
    Ok(())
}

/// Has the quota controller count the usage of the tenancy's quota again,
/// unless it was asked to at the usage the quota shows now. Whether it was
/// asked.
async fn recount_quota(ctx: &Context, ns: &str) -> Result<bool, Error> {
    let quota = ctx.caches.quotas.get(Some(ns), provisioning::QUOTA);
    let used = quota
        .and_then(|q| q.usage)
        .map(|u| String::from(u.counted))
        .unwrap_or_default();
    {
        let mut asked = ctx.recounts.lock().unwrap_or_else(|e| e.into_inner());
        if !provisioning::recount(&used, asked.get(ns).map(String::as_str)) {
            return Ok(false);
        }
        asked.insert(ns.to_owned(), used);
    }
    let api: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(ctx.client.clone(), ns);
    let params = PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    for patch in provisioning::recount_patches() {
        let merge = Patch::Merge(&patch);
        ctx.write(
            "ResourceQuota",
            "patch",
            api.patch(provisioning::QUOTA, &params, &merge),
        )
        .await?;
    }
    ctx.metrics.quota_recounted();
    info!(namespace = %ns, "asked the quota controller to count usage again");
    Ok(true)
}

async fn reconcile(obj: Arc<Packed<Tenancy>>, ctx: Arc<Context>) -> Result<Action, Error> {
    let obj = obj.unpack();
    timed(
        &ctx,
        ControllerName::Tenancies,
        &obj,
        reconcile_tenancy(&obj, &ctx),
    )
    .await
}

async fn reconcile_tenancy(obj: &Guarded<Tenancy>, ctx: &Context) -> Result<Action, Error> {
    let tenancy = match &obj.0 {
        Ok(t) => t,
        Err(invalid) => {
            ctx.unreadable(invalid, "govcloud.dev/v1alpha1", "Tenancy")
                .await;
            return Ok(Action::await_change());
        }
    };
    let unit_ns = tenancy.namespace().unwrap_or_default();
    let name = tenancy.name_any();
    let now = ctx.clock.now();
    let status = tenancy.status.clone().unwrap_or_default();
    let recorded = status.namespace.as_deref().and_then(|n| {
        let m = ctx.caches.namespaces.get(None, n)?;
        provisioning::owned_by(m.tenancy.as_deref(), &unit_ns, &name).ok()?;
        Some(n)
    });
    let ns = lifecycle::namespace_of(recorded, &unit_ns, &tenancy.spec.unit, &name);
    let ns_meta = ctx.caches.namespaces.get(None, &ns);
    let unit = ctx.caches.units.get(&ObjectRef::new(&unit_ns));
    let unit_group = unit
        .as_ref()
        .and_then(|u| u.annotations().get(keys::UNIT_GROUP).cloned());
    let view = if lifecycle::needs_view(&tenancy.spec, &status, tenancy.annotations(), now) {
        let releasing = lifecycle::releasing(&tenancy.spec, &status, now);
        Some(gather(ctx, &ns, ns_meta.as_ref(), releasing).await?)
    } else {
        None
    };
    let role_groups = ctx.role_groups();
    let storage_classes = ctx.storage_classes();
    let mut progress = Progress {
        read_as: tenancy.resource_version(),
        finalized: tenancy
            .finalizers()
            .iter()
            .any(|f| f == lifecycle::FINALIZER),
        created: None,
    };
    // Planned twice when the first plan creates the namespace: the second
    // time with the namespace as the apiserver answered, so that what goes
    // in it follows at once instead of after the watch has shown it.
    loop {
        let created = progress.created.clone();
        let lookup = CacheLookup {
            ctx,
            ns: &ns,
            created: created.as_ref(),
        };
        let namespace = match &created {
            Some(n) => Some(SeenNamespace {
                uid: n.uid().unwrap_or_default(),
                terminating: false,
                owner: provisioning::owner(n.annotations(), &unit_ns, &name),
            }),
            None => ns_meta.as_ref().map(|m| SeenNamespace {
                uid: m.uid.to_string(),
                terminating: m.deleting,
                owner: provisioning::owned_by(m.tenancy.as_deref(), &unit_ns, &name),
            }),
        };
        let observed = Observed {
            namespace,
            lookup: &lookup,
            view: view.clone(),
        };
        let input = lifecycle::Input {
            unit_namespace: &unit_ns,
            name: &name,
            namespace: &ns,
            generation: tenancy.metadata.generation.unwrap_or_default(),
            spec: &tenancy.spec,
            status: &status,
            annotations: tenancy.annotations(),
            unit_group: unit_group.as_deref(),
            role_groups: &role_groups,
            storage_classes: &storage_classes,
            observed: &observed,
            provisioning: &ctx.config.provisioning,
            wipe: &ctx.config.wipe,
            oversight: &ctx.config.oversight,
            deleting: tenancy.metadata.deletion_timestamp.is_some(),
            finalized: progress.finalized,
            now,
        };
        let plan = lifecycle::plan(&input);
        // A Job is called an impostor by the wipe Jobs recorded in the status;
        // the cache may not show the record of one created a moment ago yet.
        if plan.actions.delete.iter().any(|d| d.kind == "Job") {
            let fresh = Api::<Tenancy>::namespaced(ctx.client.clone(), &unit_ns)
                .get(&name)
                .await?;
            if fresh.status.map(|s| s.wipe_jobs).unwrap_or_default() != status.wipe_jobs {
                return Ok(Action::requeue(Duration::from_millis(500)));
            }
        }
        if let Some(action) = carry_out(ctx, tenancy, &ns, plan, now, &mut progress).await? {
            return Ok(action);
        }
    }
}

/// What a reconcile has done so far, across its plans.
struct Progress {
    /// The tenancy as this reconcile last read or wrote it.
    read_as: Option<String>,
    /// The tenancy carries the finalizer.
    finalized: bool,
    /// The namespace this reconcile created, as the apiserver answered.
    created: Option<DynamicObject>,
}

/// Carries out a plan's steps in their order, settles the status from what
/// they reported, writes it, and tells when to look again; or, when the
/// plan created the tenancy's namespace, stops there (`None`) to be planned
/// again with it.
async fn carry_out(
    ctx: &Context,
    tenancy: &Tenancy,
    ns: &str,
    plan: lifecycle::Plan,
    now: Timestamp,
    progress: &mut Progress,
) -> Result<Option<Action>, Error> {
    let unit_ns = tenancy.namespace().unwrap_or_default();
    let name = tenancy.name_any();
    let key = format!("{unit_ns}/{name}");
    let mut outcome = lifecycle::Outcome::default();
    let read_as = &mut progress.read_as;
    let replan = progress.created.is_none() && plan.actions.suspend_unit.is_none();
    let mut settled = None;
    for step in plan.actions.steps() {
        use lifecycle::Step;
        match step {
            Step::SuspendUnit(reason) => suspend_unit(ctx, &unit_ns, reason, now).await?,
            Step::Finalizer(add) => {
                *read_as = finalizer(ctx, tenancy, add).await?;
                progress.finalized = add;
            }
            Step::Apply(objects) => {
                let created = apply_all(ctx, tenancy, ns, objects, &mut outcome).await?;
                if replan && created.is_some() {
                    progress.created = created;
                    return Ok(None);
                }
            }
            Step::RecountQuota => outcome.quota_recounted |= recount_quota(ctx, ns).await?,
            Step::RestorePolicy(policy) => restore_policy(ctx, ns, policy).await?,
            Step::RunState(vm) => run_state(ctx, ns, vm).await?,
            Step::Halt(vm) => halt(ctx, ns, vm).await?,
            Step::Pause(vm, pause) => {
                // Needs KubeVirt's subresource API; when it cannot be reached
                // the network stays cut and the status says what still runs.
                if let Err(e) = pause_instance(ctx, ns, vm, pause).await {
                    let verb = if pause { "pausing" } else { "unpausing" };
                    outcome.not_paused.push(format!("{verb} {vm}: {e}"));
                }
            }
            Step::Retire(retirement) => {
                *read_as = ctx
                    .patch_tenancy_spec(&unit_ns, &name, json!({ "retirement": retirement }))
                    .await?;
                info!(tenancy = %key, "deregistered: retiring");
            }
            Step::WriteStatus => {
                outcome.refusals_in_a_row =
                    ctx.refusals_in_a_row(&key, !outcome.refused.is_empty());
                outcome.accrual = accrual(ctx, tenancy, &plan.status, now);
                let deleting = tenancy.metadata.deletion_timestamp.is_some();
                let generation = tenancy.metadata.generation.unwrap_or_default();
                let done = lifecycle::settle(&plan, &outcome, generation, deleting, now);
                write_status(ctx, tenancy, &done.status, read_as.take()).await?;
                settled = Some(done);
            }
            Step::Delete(d) => delete(ctx, d).await?,
            Step::Remove(r) => remove(ctx, r).await?,
        }
    }
    for object in &plan.actions.drift {
        ctx.metrics.drift_repaired(object);
    }
    if !plan.actions.lost_volumes.is_empty() {
        ctx.metrics.volumes_lost(plan.actions.lost_volumes.len());
    }
    let Some(settled) = settled else {
        return Err(Error::Invalid("a plan without a status step".into()));
    };
    ctx.publish(tenancy, &settled.events).await;
    Ok(Some(match settled.wake {
        lifecycle::Wake::After(soon) => Action::requeue(soon),
        lifecycle::Wake::At { at, settled } => recheck(ctx, at, settled),
    }))
}

fn refusal(d: &Desired, message: String) -> lifecycle::Refusal {
    lifecycle::Refusal {
        kind: d.kind.to_owned(),
        name: d.name.clone(),
        message,
    }
}

/// Applies a step's objects wave by wave (see [`provisioning::wave`]), the
/// objects of a wave `APPLY_CONCURRENCY` at a time; records a wipe Job
/// created at once, and reports what the apiserver refused (invalid, over
/// the quota, or a name taken by someone else); any other failure fails the
/// reconcile. Returns the tenancy's namespace if it was created here, as the
/// apiserver answered.
async fn apply_all(
    ctx: &Context,
    tenancy: &Tenancy,
    ns: &str,
    objects: &[Desired],
    outcome: &mut lifecycle::Outcome,
) -> Result<Option<DynamicObject>, Error> {
    let mut waves: Vec<&Desired> = objects.iter().collect();
    waves.sort_by_key(|d| provisioning::wave(d.kind));
    let mut namespace = None;
    let mut failed = None;
    for wave in waves.chunk_by(|a, b| provisioning::wave(a.kind) == provisioning::wave(b.kind)) {
        let writes: Vec<_> = wave.iter().map(|d| apply(ctx, d)).collect();
        let applied: Vec<_> = futures::stream::iter(writes)
            .buffered(APPLY_CONCURRENCY)
            .collect()
            .await;
        for (d, result) in wave.iter().zip(applied) {
            match result {
                Err(Error::Kube(kube::Error::Api(s))) if matches!(s.code, 422 | 403) => {
                    outcome.refused.push(refusal(d, s.message));
                }
                Err(Error::Conflict(message)) => outcome.refused.push(refusal(d, message)),
                Err(e) => {
                    failed.get_or_insert(e);
                }
                Ok(Some(created)) if d.kind == "Namespace" && d.name == ns => {
                    namespace = Some(created);
                }
                Ok(Some(created)) => {
                    let record = created
                        .uid()
                        .and_then(|uid| lifecycle::wipe_record(d, &uid));
                    if let Some(record) = record {
                        let (unit_ns, name) =
                            (tenancy.namespace().unwrap_or_default(), tenancy.name_any());
                        record_wipe_job(ctx, &unit_ns, &name, &record).await?;
                        outcome.wipe_jobs.push(record);
                    }
                }
                Ok(None) => {}
            }
        }
        // A wave that did not all go in holds back the next.
        if failed.is_some() || !outcome.refused.is_empty() {
            break;
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if outcome.refused.iter().any(lifecycle::Refusal::over_quota) {
        outcome.quota_recounted = recount_quota(ctx, ns).await?;
    }
    Ok(namespace)
}

/// Writes the settled status unless it says what the tenancy's says
/// already; over the tenancy as read (and as this reconcile changed it),
/// never over a newer one: a status planned from a cache that lags would
/// drop what a reconcile before recorded (wipe records).
async fn write_status(
    ctx: &Context,
    tenancy: &Tenancy,
    settled: &TenancyStatus,
    read_as: Option<String>,
) -> Result<(), Error> {
    let before = tenancy.status.clone().unwrap_or_default();
    if lifecycle::same_status(&before, settled) {
        return Ok(());
    }
    let (unit_ns, name) = (tenancy.namespace().unwrap_or_default(), tenancy.name_any());
    // What the utilisation evaluator owns is neither written nor removed here.
    let mut own = settled.clone();
    crate::utilisation::strip(&mut own);
    ctx.apply_status(tenancy, MANAGER, &own, read_as).await?;
    info!(tenancy = %format!("{unit_ns}/{name}"), phase = ?settled.phase, "status updated");
    for w in release::recorded_wipes(&before, settled) {
        info!(
            tenancy = %format!("{unit_ns}/{name}"),
            kind = %w.kind,
            namespace = %w.namespace,
            name = %w.name,
            result = ?w.result,
            method = ?w.method,
            at = %crate::calendar::display(w.at.0),
            "wipe recorded"
        );
    }
    Ok(())
}

/// Deletes a workload of the unit's for a release; one already gone is fine.
async fn remove(ctx: &Context, r: &release::Removal) -> Result<(), Error> {
    let w = &r.workload;
    let ar = provisioning::api_resource(&w.api_version, &w.kind);
    let api = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &r.namespace, &ar);
    let background = DeleteParams::background();
    match ctx
        .write(&w.kind, "delete", api.delete(&w.name, &background))
        .await
    {
        Ok(_) => {
            info!(kind = %w.kind, name = %w.name, "the unit's workload removed for the release");
            Ok(())
        }
        Err(e) if e.is_gone() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The month's charge (Art. 6, 16) for the status the plan leaves, from the
/// cached catalog and the requests and changes that made the allocation.
fn accrual(
    ctx: &Context,
    tenancy: &Tenancy,
    status: &TenancyStatus,
    now: Timestamp,
) -> Option<Accrual> {
    let ns = tenancy.namespace().unwrap_or_default();
    let spec = &tenancy.spec;
    let requests: Vec<CloudResourceRequest> = std::iter::once(&spec.request)
        .chain(&spec.extensions)
        .filter_map(|n| {
            let r = ctx
                .caches
                .requests
                .get(&ObjectRef::new(n.as_str()).within(&ns))?;
            r.unpack().0.ok()
        })
        .collect();
    let changes: Vec<ChangeRequest> = spec
        .changes
        .iter()
        .filter_map(|n| {
            let c = ctx
                .caches
                .changes
                .get(&ObjectRef::new(n.as_str()).within(&ns))?;
            c.0.as_ref().ok().cloned()
        })
        .collect();
    let catalog = ctx
        .caches
        .catalogs
        .get(&ObjectRef::new(&ctx.config.catalog));
    billing::tenancy_accrual(
        tenancy,
        status,
        &requests,
        &changes,
        catalog
            .as_ref()
            .and_then(|c| c.0.as_ref().ok())
            .map(|c| c.spec.periods.as_slice()),
        &ctx.config.catalog,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(terminated: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "wipe-x-abcde" },
            "status": { "containerStatuses": [{ "name": "wipe", "state": { "terminated": terminated } }] },
        }))
        .unwrap()
    }

    #[test]
    fn art19_a_failed_wipe_pod_says_why_on_one_line() {
        let said = failure_message(&pod(json!({
            "exitCode": 1,
            "message": "dd: error writing '/dev/volume':\n  Input/output error\n",
        })));
        assert_eq!(
            said.as_deref(),
            Some("exit code 1: dd: error writing '/dev/volume': Input/output error")
        );
        // Long output: its end, where the error is.
        let long = format!("{}the end", "x ".repeat(400));
        let said = failure_message(&pod(json!({ "exitCode": 2, "message": long }))).unwrap();
        assert!(
            said.starts_with("exit code 2: …") && said.ends_with("the end"),
            "{said}"
        );
        assert_eq!(said.chars().count(), "exit code 2: …".chars().count() + 300);
        // Silent: the exit code alone; a success says nothing.
        assert_eq!(
            failure_message(&pod(json!({ "exitCode": 137 }))).as_deref(),
            Some("exit code 137")
        );
        assert_eq!(
            failure_message(&pod(json!({ "exitCode": 0, "message": "ok" }))),
            None
        );
    }
}
