//! Releasing a tenancy's resources with its data wiped (Art. 15 reclaim,
//! Art. 19 termination, Art. 20 deregistration): a pure planner of the next
//! steps from what exists in the tenancy namespace.
//!
//! Order, each step waiting for the one before:
//! 1. every VM of the namespace is set to `Halted`, and its instance gone;
//! 2. every PVC of the namespace (VM disks, cloud storage, and whatever the
//!    unit created) is wiped: in `overwrite` mode a Job overwrites it and must
//!    succeed; in `delete` mode the storage class's own erase is trusted;
//! 3. a PVC is deleted only once its wipe record is in the tenancy's status;
//!    a failed wipe stops that PVC's deletion and says so;
//! 4. the VMs are deleted, then the namespace, last.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::keys;
use crate::api::tenancy::{WipeJob, WipeMethod, WipeRecord, WipeResult};
use crate::provisioning::{self, Desired, MANAGER, PodSecurity};

/// Annotation on a wipe Job: the PVC it overwrites.
pub const WIPE_OF: &str = "govcloud.dev/wipe-of";
/// Annotation on a wipe Job: the PVC's size in GiB.
pub const WIPE_SIZE: &str = "govcloud.dev/wipe-size-gib";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WipeMode {
    /// A Job overwrites each volume before it is deleted (the default).
    Overwrite,
    /// Delete volumes directly, trusting the storage class to erase them.
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WipeConfig {
    pub mode: WipeMode,
    /// Image of the overwrite Job.
    pub image: String,
    /// Command of the overwrite Job; the volume is mounted at `/volume`
    /// (filesystem) or attached as `/dev/volume` (block).
    pub command: Vec<String>,
}

/// The default overwrite. A raw volume is written with zeros to its end. In
/// a filesystem every file is first overwritten in place with zeros and
/// flushed (its own blocks: a filesystem keeps a few percent of its free
/// blocks from any writer, so filling the free space alone leaves some of a
/// deleted file's data), then everything is deleted and the free space
/// filled with zeros, flushed before the filler goes (what files deleted
/// earlier left). Only a full device or filesystem ends a filling; any other
/// error (a volume that cannot be opened or written) fails the Job, its
/// output the reason. Plain POSIX sh, dd, find, head, wc and rm: busybox and
/// coreutils alike.
pub const WIPE_SCRIPT: &str = "set -e; \
full() { case \"$1\" in *'No space left on device'*) return 0;; esac; echo \"$1\" >&2; return 1; }; \
if [ -b /dev/volume ]; then \
out=$(dd if=/dev/zero of=/dev/volume bs=1M 2>&1) || full \"$out\"; sync; \
else \
find /volume -type f -exec sh -c 'set -e; for f; do out=$(head -c \"$(wc -c < \"$f\")\" /dev/zero | dd of=\"$f\" bs=64k conv=notrunc,fsync 2>&1) || { echo \"$f: $out\" >&2; exit 1; }; done' sh {} +; \
find /volume -mindepth 1 -maxdepth 1 -exec rm -rf {} +; \
out=$(dd if=/dev/zero of=/volume/.wipe bs=64k 2>&1) || full \"$out\"; sync; rm -f /volume/.wipe; sync; \
fi";

impl Default for WipeConfig {
    fn default() -> Self {
        Self {
            mode: WipeMode::Overwrite,
            image: "docker.io/library/busybox:1.36".into(),
            command: vec!["sh".into(), "-c".into(), WIPE_SCRIPT.into()],
        }
    }
}

/// A VM in the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vm {
    pub name: String,
    pub halted: bool,
    /// Whether the operator created it (else the unit did).
    pub ours: bool,
    /// Its `spec.runStrategy` and `spec.running`, as they are.
    pub run_strategy: Option<String>,
    pub running: Option<bool>,
}

/// A NetworkPolicy in the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    /// Whether the operator created it.
    pub ours: bool,
    /// Labels, annotations and spec as JSON, to put it back as it was.
    pub manifest: String,
}

/// A PVC in the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pvc {
    pub name: String,
    pub size_gib: u32,
    pub block: bool,
    pub class: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Running,
    Succeeded,
    Failed,
}

/// A Job in the namespace that names a volume as the one it wipes, or has
/// the name of a volume's wipe Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub name: String,
    pub uid: String,
    /// The volume it claims to wipe, or whose wipe Job's name it has.
    pub pvc: String,
    pub outcome: JobOutcome,
    /// The fingerprint of what it runs (see [`job_fingerprint`]).
    pub runs: String,
}

/// Something of the unit's own that runs pods or VMs (a Deployment, a Job,
/// a bare pod, a VM replica set ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// What exists in the tenancy namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    pub exists: bool,
    pub terminating: bool,
    pub vms: Vec<Vm>,
    /// Names of the VM instances still present.
    pub instances: Vec<String>,
    /// Of those, the ones already being deleted.
    pub instances_deleting: Vec<String>,
    /// What of the unit's own runs pods or VMs, gathered for a release only.
    pub workloads: Vec<Workload>,
    /// Pods still present that are not a wipe Job's, gathered for a release
    /// only.
    pub pods: Vec<String>,
    /// The RoleBindings of the namespace, gathered for a release only.
    pub bindings: Vec<String>,
    /// Names of the instances that are paused.
    pub paused: Vec<String>,
    pub network_policies: Vec<Policy>,
    pub pvcs: Vec<Pvc>,
    pub jobs: Vec<Job>,
    /// What a wipe Job's failed pod said (its container's termination
    /// message: the command's last output), by Job name; gathered for a
    /// release only.
    pub wipe_messages: std::collections::BTreeMap<String, String>,
}

/// Something to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
}

/// Something of the unit's own to delete (its kind known only at run time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub namespace: String,
    pub workload: Workload,
}

/// The field manager of halt patches: apart from the operator's own, so that
/// a patch naming only `runStrategy` removes none of the fields the operator
/// applied.
pub const HALT_MANAGER: &str = "govcloud-operator-halt";

/// What is released: everything, the namespace last (a retirement), or only
/// some items of a tenancy that goes on (a reduction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespace,
    Items,
}

/// The next steps of a release.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Steps {
    /// Wipe Jobs to create.
    pub apply: Vec<Desired>,
    /// VMs to set to `Halted` (by [`HALT_MANAGER`]).
    pub halt: Vec<String>,
    pub delete: Vec<Deletion>,
    /// Records to add to the status (before anything is deleted).
    pub records: Vec<WipeRecord>,
    /// Human summary of what is being waited for; `None` when done.
    pub waiting: Option<String>,
    /// A wipe failed: the volumes concerned.
    pub failed: Vec<String>,
    /// Jobs that claim to wipe a volume but are not the operator's (not
    /// created by it, or running something else): removed, never counted.
    pub impostors: Vec<String>,
    /// The unit's own workloads, removed before anything is wiped.
    pub remove: Vec<Removal>,
}

/// A Job name for wiping `pvc`: `wipe-<pvc>`, kept within 63 characters.
pub fn job_name(pvc: &str) -> String {
    let name = format!("wipe-{pvc}");
    if name.len() <= 63 {
        name
    } else {
        format!(
            "{}-{}",
            name[..54].trim_end_matches('-'),
            &provisioning::hash(pvc.as_bytes())[..8]
        )
    }
}

/// The Job that overwrites `pvc`, admissible under the namespace's Pod
/// Security level: under `restricted` it runs as a non-root user that owns
/// the volume through `fsGroup`, under `baseline` as root, with no added
/// capabilities either way.
pub fn wipe_job(
    namespace: &str,
    tenancy: &str,
    pvc: &Pvc,
    cfg: &WipeConfig,
    level: PodSecurity,
) -> Desired {
    let mut security = json!({
        "allowPrivilegeEscalation": false,
        "seccompProfile": { "type": "RuntimeDefault" },
    });
    let mut pod_security = json!({ "seccompProfile": { "type": "RuntimeDefault" } });
    if level == PodSecurity::Restricted {
        security["capabilities"] = json!({ "drop": ["ALL"] });
        security["runAsNonRoot"] = json!(true);
        pod_security = json!({
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": { "type": "RuntimeDefault" },
        });
    }
    let mut container = json!({
        "name": "wipe",
        "image": cfg.image,
        "command": cfg.command,
        "securityContext": security,
        // A failed wipe says why: the command's last output becomes the
        // pod's termination message, which the failure record quotes.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
    if pvc.block {
        container["volumeDevices"] = json!([{ "name": "volume", "devicePath": "/dev/volume" }]);
    } else {
        container["volumeMounts"] = json!([{ "name": "volume", "mountPath": "/volume" }]);
    }
    let object = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(&pvc.name),
            "namespace": namespace,
            "labels": { keys::MANAGED_BY: MANAGER, keys::TENANCY: tenancy },
            "annotations": { WIPE_OF: pvc.name, WIPE_SIZE: pvc.size_gib.to_string() },
        },
        "spec": {
            "backoffLimit": 2,
            // A pod evicted or preempted is run again, not counted as a
            // failed wipe.
            "podFailurePolicy": { "rules": [{
                "action": "Ignore",
                "onPodConditions": [{ "type": "DisruptionTarget" }],
            }] },
            "template": {
                "metadata": { "labels": { keys::MANAGED_BY: MANAGER, keys::TENANCY: tenancy } },
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": pod_security,
                    "containers": [container],
                    "volumes": [{ "name": "volume", "persistentVolumeClaim": { "claimName": pvc.name } }],
                },
            },
        },
    });
    Desired {
        api_version: "batch/v1",
        kind: "Job",
        name: job_name(&pvc.name),
        namespace: Some(namespace.to_owned()),
        hash: provisioning::hash(object.to_string().as_bytes()),
        object,
        fingerprint: None,
        // Created, never applied: a Job of that name that exists is not
        // taken over.
        write: provisioning::Write::Create,
    }
}

/// What a Job runs: its containers' images, commands and arguments, and the
/// volumes it mounts. A Job's template cannot change once created, so this
/// tells a wipe Job of the operator's from one that only claims to wipe.
pub fn job_fingerprint(job: &serde_json::Value) -> String {
    let spec = &job["spec"]["template"]["spec"];
    let containers = |key: &str| -> Vec<serde_json::Value> {
        spec[key]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| json!([c["image"], c["command"], c["args"]]))
                    .collect()
            })
            .unwrap_or_default()
    };
    let volumes: Vec<serde_json::Value> = spec["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| json!([v["name"], v["persistentVolumeClaim"]["claimName"]]))
                .collect()
        })
        .unwrap_or_default();
    provisioning::hash(
        json!([
            containers("initContainers"),
            containers("containers"),
            volumes
        ])
        .to_string()
        .as_bytes(),
    )
}

fn recorded(records: &[WipeRecord], pvc: &str, result: WipeResult) -> bool {
    records.iter().any(|r| r.name == pvc && r.result == result)
}

/// What a release step is planned from.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    pub namespace: &'a str,
    pub tenancy: &'a str,
    /// What exists; with [`Scope::Items`], only the items to remove.
    pub seen: &'a Namespace,
    /// The wipe records already in the tenancy's status.
    pub records: &'a [WipeRecord],
    /// The wipe Jobs the operator created, by UID.
    pub jobs: &'a [WipeJob],
    pub wipe: &'a WipeConfig,
    /// The Pod Security level the wipe Jobs must be admissible under.
    pub pod_security: PodSecurity,
    pub scope: Scope,
    /// Put on the records: what the volumes are wiped for.
    pub cause: &'a str,
    pub now: Timestamp,
}

impl Namespace {
    /// What of it concerns the VMs and volumes named: their instances and
    /// wipe Jobs with them; the rest as it is.
    pub fn only(&self, vm: impl Fn(&str) -> bool, pvc: impl Fn(&str) -> bool) -> Self {
        Self {
            vms: self.vms.iter().filter(|v| vm(&v.name)).cloned().collect(),
            instances: self.instances.iter().filter(|i| vm(i)).cloned().collect(),
            pvcs: self.pvcs.iter().filter(|p| pvc(&p.name)).cloned().collect(),
            jobs: self.jobs.iter().filter(|j| pvc(&j.pvc)).cloned().collect(),
            ..self.clone()
        }
    }
}

/// The next steps of a release, given what exists and what is recorded:
/// every VM halted (and the unit's own workloads removed); then each volume
/// wiped, the wipe recorded and the volume deleted; then the VMs and the
/// namespace. Each waits for the one before.
pub fn plan(input: &Input<'_>) -> Steps {
    let mut steps = Steps::default();
    if input.seen.exists && stopped(input, &mut steps) && wiped(input, &mut steps) {
        delete_the_rest(input, &mut steps);
    }
    steps
}

/// Step 1: halts every VM and waits for the instances to go; an instance of no
/// VM (made by hand) is deleted. In a release, what of the unit's own runs
/// pods or VMs goes too, so that nothing writes to a volume being wiped,
/// holds it, or takes the quota the wipe needs. Whether all is stopped.
fn stopped(input: &Input<'_>, steps: &mut Steps) -> bool {
    let (ns, seen) = (input.namespace, input.seen);
    let running: Vec<&Vm> = seen.vms.iter().filter(|v| !v.halted).collect();
    for vm in &running {
        steps.halt.push(vm.name.clone());
    }
    for w in &seen.workloads {
        steps.remove.push(Removal {
            namespace: ns.to_owned(),
            workload: w.clone(),
        });
    }
    if input.scope == Scope::Namespace && (!seen.workloads.is_empty() || !seen.pods.is_empty()) {
        let names: Vec<String> = seen
            .workloads
            .iter()
            .map(|w| format!("{} {}", w.kind, w.name))
            .chain(seen.pods.iter().map(|p| format!("Pod {p}")))
            .collect();
        steps.waiting = Some(format!(
            "removing the unit's own workloads: {}",
            names.join(", ")
        ));
        return false;
    }
    for orphan in seen
        .instances
        .iter()
        .filter(|i| !seen.vms.iter().any(|v| &v.name == *i))
        .filter(|i| !seen.instances_deleting.contains(i))
    {
        steps.delete.push(deletion(
            "kubevirt.io/v1",
            "VirtualMachineInstance",
            ns,
            orphan,
        ));
    }
    if running.is_empty() && seen.instances.is_empty() {
        return true;
    }
    let names: std::collections::BTreeSet<&str> = seen
        .instances
        .iter()
        .map(String::as_str)
        .chain(running.iter().map(|v| v.name.as_str()))
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    steps.waiting = Some(format!("stopping VMs: {}", names.join(", ")));
    false
}

fn deletion(api_version: &'static str, kind: &'static str, ns: &str, name: &str) -> Deletion {
    Deletion {
        api_version,
        kind,
        namespace: Some(ns.to_owned()),
        name: name.to_owned(),
    }
}

/// Steps 2-3: wipes each volume, records the wipe, then deletes the volume.
/// Whether every volume is gone.
fn wiped(input: &Input<'_>, steps: &mut Steps) -> bool {
    let mut pending = Vec::new();
    for pvc in &input.seen.pvcs {
        if recorded(input.records, &pvc.name, WipeResult::Succeeded) {
            let pvc_deletion = deletion("v1", "PersistentVolumeClaim", input.namespace, &pvc.name);
            steps.delete.push(pvc_deletion);
            pending.push(format!("{} (deleting)", pvc.name));
            continue;
        }
        match input.wipe.mode {
            WipeMode::Delete => {
                let done = record(
                    input,
                    pvc,
                    WipeMethod::Delete,
                    WipeResult::Succeeded,
                    None,
                    None,
                );
                steps.records.push(done);
                pending.push(format!("{} (deleting)", pvc.name));
            }
            WipeMode::Overwrite => overwrite(input, pvc, steps, &mut pending),
        }
    }
    if pending.is_empty() && steps.failed.is_empty() {
        return true;
    }
    let mut parts = pending;
    parts.extend(steps.failed.iter().map(|p| format!("{p} (wipe failed)")));
    steps.waiting = Some(format!("wiping volumes: {}", parts.join(", ")));
    false
}

/// The record of a volume's wipe.
fn record(
    input: &Input<'_>,
    pvc: &Pvc,
    method: WipeMethod,
    result: WipeResult,
    message: Option<String>,
    job: Option<&Job>,
) -> WipeRecord {
    WipeRecord {
        kind: "PersistentVolumeClaim".into(),
        name: pvc.name.clone(),
        namespace: input.namespace.to_owned(),
        size_gib: pvc.size_gib,
        method,
        at: Time(input.now),
        result,
        message,
        cause: Some(input.cause.to_owned()),
        job: job.map(|j| format!("{} (uid {})", j.name, j.uid)),
    }
}

/// A volume overwritten by a wipe Job: only a Job the operator created for
/// this volume, running what it was created to run, wipes it; any other of
/// its name is deleted first.
fn overwrite(input: &Input<'_>, pvc: &Pvc, steps: &mut Steps, pending: &mut Vec<String>) {
    let ns = input.namespace;
    let wanted = wipe_job(ns, input.tenancy, pvc, input.wipe, input.pod_security);
    let runs = job_fingerprint(&wanted.object);
    let (genuine, impostors): (Vec<&Job>, Vec<&Job>) = input
        .seen
        .jobs
        .iter()
        .filter(|j| j.pvc == pvc.name || j.name == job_name(&pvc.name))
        .partition(|j| {
            j.runs == runs
                && input
                    .jobs
                    .iter()
                    .any(|r| r.pvc == pvc.name && r.job == j.name && r.uid == j.uid)
        });
    for j in &impostors {
        steps.impostors.push(j.name.clone());
        steps.delete.push(deletion("batch/v1", "Job", ns, &j.name));
    }
    let Some(job) = genuine.first() else {
        if impostors.is_empty() {
            steps.apply.push(wanted);
            pending.push(format!("{} (overwriting)", pvc.name));
        } else {
            pending.push(format!(
                "{} (removing a Job that is not the operator's)",
                pvc.name
            ));
        }
        return;
    };
    let (method, name) = (WipeMethod::Overwrite, &pvc.name);
    match job.outcome {
        JobOutcome::Running => pending.push(format!("{name} (overwriting)")),
        JobOutcome::Succeeded => {
            let done = record(input, pvc, method, WipeResult::Succeeded, None, Some(job));
            steps.records.push(done);
            pending.push(format!("{name} (deleting)"));
        }
        JobOutcome::Failed => {
            if !recorded(input.records, name, WipeResult::Failed) {
                let said = input
                    .seen
                    .wipe_messages
                    .get(&job.name)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                let why = format!(
                    "Job {} failed{said}; the volume is kept. Delete the Job to try again",
                    job.name
                );
                let failed = record(input, pvc, method, WipeResult::Failed, Some(why), Some(job));
                steps.records.push(failed);
            }
            steps.failed.push(name.clone());
        }
    }
}

/// Step 4: the VMs, then the namespace (in a release of it).
fn delete_the_rest(input: &Input<'_>, steps: &mut Steps) {
    let (ns, seen) = (input.namespace, input.seen);
    if !seen.vms.is_empty() {
        for vm in &seen.vms {
            steps
                .delete
                .push(deletion("kubevirt.io/v1", "VirtualMachine", ns, &vm.name));
        }
        steps.waiting = Some("deleting VMs".into());
        return;
    }
    if input.scope == Scope::Items {
        return;
    }
    if !seen.terminating {
        steps.delete.push(Deletion {
            api_version: "v1",
            kind: "Namespace",
            namespace: None,
            name: ns.to_owned(),
        });
    }
    steps.waiting = Some(format!("deleting namespace {ns}"));
}

/// The wipe records `after` adds to `before`: what a status write reports
/// as done.
pub fn recorded_wipes<'a>(
    before: &crate::api::tenancy::TenancyStatus,
    after: &'a crate::api::tenancy::TenancyStatus,
) -> Vec<&'a crate::api::tenancy::WipeRecord> {
    after
        .wipe_records
        .iter()
        .filter(|w| !before.wipe_records.contains(w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn art19_a_wipe_recorded_by_a_status_write_is_reported() {
        let record: WipeRecord = serde_json::from_value(serde_json::json!({
            "kind": "PersistentVolumeClaim", "name": "vol-files", "namespace": "finance-oa-ed59c856e4",
            "sizeGiB": 100, "method": "Overwrite", "at": "2026-12-05T02:00:00Z", "result": "Succeeded",
        }))
        .unwrap();
        let before = crate::api::tenancy::TenancyStatus::default();
        let mut after = before.clone();
        after.wipe_records.push(record.clone());
        assert_eq!(recorded_wipes(&before, &after), [&record]);
        assert!(recorded_wipes(&after, &after).is_empty(), "reported once");
    }

    fn now() -> Timestamp {
        "2026-03-15T02:00:00Z".parse().unwrap()
    }

    /// The next steps of releasing the namespace `seen` of tenancy `oa`.
    fn released(
        seen: &Namespace,
        records: &[WipeRecord],
        jobs: &[WipeJob],
        wipe: &WipeConfig,
    ) -> Steps {
        plan(&Input {
            namespace: "t",
            tenancy: "oa",
            seen,
            records,
            jobs,
            wipe,
            pod_security: PodSecurity::Baseline,
            scope: Scope::Namespace,
            cause: "Reclaim",
            now: now(),
        })
    }

    fn ns() -> Namespace {
        Namespace {
            exists: true,
            terminating: false,
            vms: vec![
                Vm {
                    name: "app-1".into(),
                    halted: false,
                    ours: true,
                    ..Vm::default()
                },
                Vm {
                    name: "mine".into(),
                    halted: false,
                    ours: false,
                    ..Vm::default()
                },
            ],
            instances: vec!["app-1".into()],
            paused: vec![],
            network_policies: vec![],
            pvcs: vec![
                Pvc {
                    name: "app-1-system".into(),
                    size_gib: 40,
                    block: false,
                    class: "standard".into(),
                },
                Pvc {
                    name: "scratch".into(),
                    size_gib: 10,
                    block: true,
                    class: "standard".into(),
                },
            ],
            jobs: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn nothing_is_wiped_while_a_vm_runs() {
        let steps = released(&ns(), &[], &[], &WipeConfig::default());
        assert!(steps.delete.is_empty());
        assert!(steps.records.is_empty());
        assert_eq!(steps.halt, ["app-1", "mine"]);
        assert!(steps.waiting.unwrap().contains("stopping VMs: app-1, mine"));
    }

    #[test]
    fn an_instance_of_no_vm_is_deleted_before_anything_is_wiped() {
        let mut seen = ns();
        seen.instances.push("made-by-hand".into());
        let steps = released(&seen, &[], &[], &WipeConfig::default());
        let deleted: Vec<(&str, &str)> = steps
            .delete
            .iter()
            .map(|d| (d.kind, d.name.as_str()))
            .collect();
        assert_eq!(deleted, [("VirtualMachineInstance", "made-by-hand")]);
        assert!(steps.apply.is_empty() && steps.records.is_empty());
        assert!(steps.waiting.unwrap().contains("made-by-hand"));
    }

    #[test]
    fn every_volume_gets_an_overwrite_job_then_a_record_then_deletion() {
        let mut seen = ns();
        for vm in &mut seen.vms {
            vm.halted = true;
        }
        seen.instances.clear();
        let cfg = WipeConfig::default();
        let steps = released(&seen, &[], &[], &cfg);
        let jobs: Vec<&str> = steps.apply.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(jobs, ["wipe-app-1-system", "wipe-scratch"]);
        assert!(
            steps.apply[1].object["spec"]["template"]["spec"]["containers"][0]["volumeDevices"]
                .is_array()
        );
        assert!(steps.delete.is_empty());

        let (first, first_uid) = created(&steps.apply[0], "uid-1", JobOutcome::Succeeded);
        let (second, second_uid) = created(&steps.apply[1], "uid-2", JobOutcome::Failed);
        seen.jobs = vec![first, second];
        // What the failed pod said.
        seen.wipe_messages.insert(
            "wipe-scratch".into(),
            "exit code 1: dd: can't open '/dev/volume': Permission denied".into(),
        );
        let recorded = [first_uid, second_uid];
        let steps = released(&seen, &[], &recorded, &cfg);
        assert!(
            steps.delete.is_empty(),
            "nothing is deleted before its record is written"
        );
        assert_eq!(steps.records.len(), 2);
        assert_eq!(
            (steps.records[0].result, steps.records[0].size_gib),
            (WipeResult::Succeeded, 40)
        );
        assert_eq!(
            steps.records[0].job.as_deref(),
            Some("wipe-app-1-system (uid uid-1)"),
            "the record names the Job that wiped it"
        );
        assert_eq!(steps.records[1].result, WipeResult::Failed);
        assert_eq!(
            steps.records[1].message.as_deref(),
            Some(
                "Job wipe-scratch failed (exit code 1: dd: can't open '/dev/volume': Permission denied); \
                 the volume is kept. Delete the Job to try again"
            ),
            "the record says why, in the command's words"
        );
        assert_eq!(steps.failed, ["scratch"]);

        let records = steps.records;
        let steps = released(&seen, &records, &recorded, &cfg);
        let deleted: Vec<&str> = steps.delete.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(deleted, ["app-1-system"], "the failed volume is kept");
        assert!(steps.records.is_empty(), "the failure is recorded once");
        assert!(steps.waiting.unwrap().contains("scratch (wipe failed)"));
    }

    /// The Job the operator created from `wanted`, as the apiserver holds
    /// it, and its record.
    fn created(wanted: &Desired, uid: &str, outcome: JobOutcome) -> (Job, WipeJob) {
        let pvc = wanted.object["metadata"]["annotations"][WIPE_OF]
            .as_str()
            .unwrap()
            .to_owned();
        let mut live = wanted.object.clone();
        // What the apiserver fills in does not change what it runs.
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
            json!("IfNotPresent");
        live["spec"]["template"]["spec"]["dnsPolicy"] = json!("ClusterFirst");
        let job = Job {
            name: wanted.name.clone(),
            uid: uid.into(),
            pvc: pvc.clone(),
            outcome,
            runs: job_fingerprint(&live),
        };
        let record = WipeJob {
            pvc,
            job: wanted.name.clone(),
            uid: uid.into(),
        };
        (job, record)
    }

    #[test]
    fn art19_only_the_operators_own_wipe_job_makes_a_wipe_record() {
        let mut seen = ns();
        seen.vms.clear();
        seen.instances.clear();
        seen.pvcs.truncate(1);
        let cfg = WipeConfig::default();
        let input = |seen: &Namespace, jobs: &[WipeJob]| released(seen, &[], jobs, &cfg);
        let wanted = input(&seen, &[]).apply.remove(0);
        assert_eq!(
            wanted.write,
            provisioning::Write::Create,
            "never applied over another's Job"
        );
        let (genuine, record) = created(&wanted, "uid-1", JobOutcome::Succeeded);

        // A unit's Job of the same name that runs `true`, even with its UID recorded.
        let mut forged = genuine.clone();
        forged.runs = job_fingerprint(&json!({ "spec": { "template": { "spec": {
            "containers": [{ "image": "busybox", "command": ["true"] }],
            "volumes": [{ "name": "volume", "persistentVolumeClaim": { "claimName": "app-1-system" } }],
        }}}}));
        // The operator's command under another UID than the one recorded.
        let mut unrecorded = genuine.clone();
        unrecorded.uid = "uid-2".into();
        for (what, job) in [
            ("running true", forged),
            ("not created by the operator", unrecorded),
        ] {
            seen.jobs = vec![job];
            let steps = input(&seen, std::slice::from_ref(&record));
            assert!(steps.records.is_empty(), "{what}: no wipe record");
            assert_eq!(steps.impostors, ["wipe-app-1-system"], "{what}");
            assert!(
                steps.delete.iter().any(|d| d.kind == "Job")
                    && !steps
                        .delete
                        .iter()
                        .any(|d| d.kind == "PersistentVolumeClaim"),
                "{what}: the Job is removed and the volume kept: {:?}",
                steps.delete
            );
            assert!(steps.apply.is_empty(), "{what}: the name is freed first");
        }
        seen.jobs = vec![genuine];
        let steps = input(&seen, &[record]);
        assert_eq!(steps.records.len(), 1);
        assert_eq!(steps.records[0].result, WipeResult::Succeeded);
    }

    #[test]
    fn art19_the_wipe_job_is_admissible_under_restricted_pod_security() {
        let pvc = Pvc {
            name: "data".into(),
            size_gib: 1,
            block: false,
            class: "standard".into(),
        };
        let job = wipe_job(
            "t",
            "oa",
            &pvc,
            &WipeConfig::default(),
            PodSecurity::Restricted,
        );
        let pod = &job.object["spec"]["template"]["spec"];
        let container = &pod["containers"][0]["securityContext"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["fsGroup"], 65532);
        assert_eq!(container["allowPrivilegeEscalation"], false);
        assert_eq!(container["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        // Under baseline it keeps root, which overwrites whatever the unit wrote.
        let job = wipe_job(
            "t",
            "oa",
            &pvc,
            &WipeConfig::default(),
            PodSecurity::Baseline,
        );
        assert_eq!(
            job.object["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
            json!(null)
        );
    }

    #[test]
    fn delete_mode_records_then_deletes_without_jobs() {
        let mut seen = ns();
        seen.vms.clear();
        seen.instances.clear();
        let cfg = WipeConfig {
            mode: WipeMode::Delete,
            ..WipeConfig::default()
        };
        let steps = released(&seen, &[], &[], &cfg);
        assert!(steps.apply.is_empty());
        assert_eq!(steps.records.len(), 2);
        assert_eq!(steps.records[0].method, WipeMethod::Delete);
        let steps = released(&seen, &steps.records, &[], &cfg);
        assert_eq!(steps.delete.len(), 2);
    }

    #[test]
    fn the_namespace_goes_last() {
        let mut seen = ns();
        seen.instances.clear();
        for vm in &mut seen.vms {
            vm.halted = true;
        }
        seen.pvcs.clear();
        let steps = released(&seen, &[], &[], &WipeConfig::default());
        assert!(steps.delete.iter().all(|d| d.kind == "VirtualMachine"));
        seen.vms.clear();
        let steps = released(&seen, &[], &[], &WipeConfig::default());
        assert_eq!(steps.delete[0].kind, "Namespace");
        let items = plan(&Input {
            namespace: "t",
            tenancy: "oa",
            seen: &seen,
            records: &[],
            jobs: &[],
            wipe: &WipeConfig::default(),
            pod_security: PodSecurity::Baseline,
            scope: Scope::Items,
            cause: "ChangeRequest/x",
            now: now(),
        });
        assert!(
            items.delete.is_empty() && items.waiting.is_none(),
            "a reduction leaves the namespace"
        );
        seen.exists = false;
        let steps = released(&seen, &[], &[], &WipeConfig::default());
        assert_eq!(steps, Steps::default());
    }
}
