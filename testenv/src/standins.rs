//! What a local control plane lacks and a real cluster does: KubeVirt's
//! controllers (VMs come up, instances run, halted instances go) and the Job
//! controller (wipe Jobs finish). The tests and the demo play these parts by
//! writing the status those controllers would write; nothing here is used by
//! the operator.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

pub fn vms() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine"),
        "virtualmachines",
    )
}

pub fn vmis() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance"),
        "virtualmachineinstances",
    )
}

/// The storage provisioner's part: every pending PVC in `ns` is bound, with
/// the capacity it asks for (so that it can later grow, as bound claims can).
pub async fn bind_pvcs(client: &Client, ns: &str) -> Result<usize, kube::Error> {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut n = 0;
    for pvc in api.list(&ListParams::default()).await?.items {
        let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        if bound || pvc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let requested = pvc
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage").cloned());
        api.patch_status(
            &pvc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": {
                "phase": "Bound",
                "accessModes": ["ReadWriteOnce"],
                "capacity": { "storage": requested },
            }})),
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

/// KubeVirt's part: every VM in `ns` is created, its disks bound. Returns
/// how many VMs changed.
pub async fn create_vms(client: &Client, ns: &str) -> Result<usize, kube::Error> {
    bind_pvcs(client, ns).await?;
    vms_created(client, ns).await
}

/// KubeVirt's part where a real volume binder binds the disks (a cluster
/// with a node): every VM in `ns` is created.
pub async fn vms_created(client: &Client, ns: &str) -> Result<usize, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &vms());
    let mut n = 0;
    for vm in api.list(&ListParams::default()).await?.items {
        if vm.data["status"]["created"] != json!(true) {
            api.patch_status(
                &vm.name_any(),
                &PatchParams::default(),
                &Patch::Merge(
                    json!({ "status": { "created": true, "printableStatus": "Starting" } }),
                ),
            )
            .await?;
            n += 1;
        }
    }
    Ok(n)
}

/// A VMI status as KubeVirt reports a running instance, with the guest
/// agent connected when `agent`.
fn running_status(now: &str, agent: bool) -> Value {
    let mut conditions =
        vec![json!({ "type": "Ready", "status": "True", "lastTransitionTime": now })];
    if agent {
        conditions
            .push(json!({ "type": "AgentConnected", "status": "True", "lastTransitionTime": now }));
    }
    json!({
        "phase": "Running",
        "phaseTransitionTimestamps": [{ "phase": "Running", "phaseTransitionTimestamp": now }],
        "conditions": conditions,
    })
}

/// KubeVirt's part: the VM's instance runs since `now`; with `agent`, its
/// guest agent (the monitoring probe) reports.
pub async fn run_vm(
    client: &Client,
    ns: &str,
    vm: &str,
    agent: bool,
    now: Timestamp,
) -> Result<(), kube::Error> {
    let vm_obj = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &vms())
        .get(vm)
        .await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &vmis());
    let vmi: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {
            "name": vm,
            "namespace": ns,
            "labels": vm_obj.data["spec"]["template"]["metadata"]["labels"].clone(),
        },
        "spec": vm_obj.data["spec"]["template"]["spec"].clone(),
    }))
    .map_err(kube::Error::SerdeError)?;
    let mut obj = match api.create(&PostParams::default(), &vmi).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 409 => api.get(vm).await?,
        Err(e) => return Err(e),
    };
    // KubeVirt's VMI CRD has no status subresource: the status is part of the object.
    obj.data["status"] = running_status(&now.to_string(), agent);
    api.replace(vm, &PostParams::default(), &obj).await?;
    Ok(())
}

/// KubeVirt's part: instances of VMs set to Halted go away.
pub async fn stop_halted(client: &Client, ns: &str) -> Result<usize, kube::Error> {
    let vms: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &vms());
    let vmis: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &vmis());
    let mut n = 0;
    for vmi in vmis.list(&ListParams::default()).await?.items {
        let halted = match vms.get_opt(&vmi.name_any()).await? {
            Some(vm) => vm.data["spec"]["runStrategy"] == "Halted",
            None => true,
        };
        if halted {
            vmis.delete(&vmi.name_any(), &Default::default()).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The Job controller's part: every unfinished Job in `ns` completes (or,
/// with `succeed` false, fails).
pub async fn finish_jobs(
    client: &Client,
    ns: &str,
    succeed: bool,
    now: Timestamp,
) -> Result<usize, kube::Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), ns);
    let now = now.to_string();
    let mut n = 0;
    for job in api.list(&ListParams::default()).await?.items {
        let finished = job
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| !c.is_empty());
        if finished {
            continue;
        }
        let status = if succeed {
            json!({
                "startTime": now, "completionTime": now, "succeeded": 1,
                "conditions": [
                    { "type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now },
                    { "type": "Complete", "status": "True", "lastTransitionTime": now },
                ],
            })
        } else {
            json!({
                "startTime": now, "failed": 3,
                "conditions": [
                    { "type": "FailureTarget", "status": "True", "lastTransitionTime": now },
                    { "type": "Failed", "status": "True", "lastTransitionTime": now },
                ],
            })
        };
        api.patch_status(
            &job.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
        n += 1;
    }
    Ok(n)
}
