//! What a tenancy's allocation becomes in Kubernetes (Art. 14): a namespace,
//! and in it a ResourceQuota, a LimitRange, default-deny network policies with
//! traffic allowed within the namespace, the unit's RoleBinding, the KubeVirt
//! VMs with their disks, and the cloud-storage PVCs. Pure: the same tenancy
//! and configuration always give the same objects, each with a hash of its
//! content, so an object already in that state is never written again.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{TenancySpec, VmGroup, keys};

/// The field manager of everything the operator writes.
pub const MANAGER: &str = "govcloud-operator";
/// On every object the operator creates: a hash of what it applied.
pub const SPEC_HASH: &str = "govcloud.dev/spec-hash";
/// On every object the operator creates: `<unit namespace>/<tenancy>`.
pub const TENANCY_REF: &str = "govcloud.dev/tenancy-ref";

/// The tenancy's ResourceQuota: its allocation (Art. 11).
pub const QUOTA: &str = "govcloud-allocation";

/// A limit no object can reach (no storage class has this name), set and
/// removed at once to have the quota controller count a quota's usage
/// again: a change to `spec.hard` is what makes it recount a quota before
/// its full resync. Held at zero, it only ever tightens the quota.
pub const RECOUNT: &str = "govcloud-recount.storageclass.storage.k8s.io/requests.storage";

/// Whether to ask for a recount of a quota that refused a create: quota
/// admission charges a create before it is stored, so a create cut off (the
/// operator killed mid-request, the apiserver restarted) stays charged until
/// the quota controller recounts, which by itself it does every five
/// minutes. Asked once per usage the quota shows (`used`): if the count
/// stands after a recount, the refusal is the unit's own use, and asking
/// again would only write.
pub fn recount(used: &str, asked_at: Option<&str>) -> bool {
    asked_at != Some(used)
}

/// The two patches of a recount: the limit no object reaches, then its removal.
pub fn recount_patches() -> [serde_json::Value; 2] {
    [
        json!({ "spec": { "hard": { RECOUNT: "0" } } }),
        json!({ "spec": { "hard": { RECOUNT: null } } }),
    ]
}
/// Label: the unit whose tenancy an object belongs to.
pub const TENANCY_UNIT: &str = "govcloud.dev/tenancy-unit";
/// Label on VMs and their instances: the VM group.
pub const VM_GROUP: &str = "govcloud.dev/vm-group";

/// The unit's RoleBinding in the tenancy namespace, and its stand-in while
/// the tenancy is isolated.
pub const UNIT_BINDING: &str = "govcloud-unit";
pub const UNIT_BINDING_ISOLATED: &str = "govcloud-unit-isolated";
/// The policy that opens the namespace to itself (lifted while isolated).
pub const ALLOW_POLICY: &str = "govcloud-allow-within-namespace";
/// The policy that denies all traffic but what another policy allows.
pub const DENY_POLICY: &str = "govcloud-default-deny";

/// How allocations become objects; part of the operator's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// Storage class of the VMs' system and data disks.
    pub vm_disk_storage_class: String,
    /// Storage class that backup storage is quoted against.
    pub backup_storage_class: String,
    /// The ClusterRole bound to the unit's group in the tenancy namespace.
    pub tenant_cluster_role: String,
    /// The ClusterRole bound instead while the tenancy is isolated or
    /// force-stopped (Art. 20, 25): enough to look, not to undo it.
    pub isolated_cluster_role: String,
    /// Per-VM allowance in the quota for KubeVirt's own overhead.
    pub vm_overhead_millicpu: u32,
    pub vm_overhead_memory_mib: u32,
    /// Container defaults of the LimitRange.
    pub default_cpu: String,
    pub default_memory: String,
    pub default_request_cpu: String,
    pub default_request_memory: String,
    /// Where system-disk images come from, `{image}` replaced by the VM
    /// group's image, e.g. `docker://registry.example/govcloud/{image}`.
    /// Set, system disks are annotated for CDI's import; unset, they are
    /// annotated with the image name only, for the vendor's tooling.
    pub image_url_template: Option<String>,
    /// The Pod Security level enforced in tenancy namespaces: `baseline`
    /// (no privileged pods, host namespaces, host paths or host ports) or
    /// `restricted`. Never less: a unit's people hold `edit` there.
    pub pod_security: PodSecurity,
    /// How many objects of each kind the unit may create of its own in a
    /// tenancy namespace (quota names: `pods`, `services`, `count/jobs.batch`
    /// ...; ingresses and HTTP routes none, since a route through a shared
    /// gateway exposes the system beyond the public IPs approved). The
    /// operator adds what its own objects need: a launcher pod per VM, and a
    /// volume, a wipe Job and its pod per volume.
    pub object_counts: std::collections::BTreeMap<String, u32>,
}

/// A Pod Security Standards level a tenancy namespace enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurity {
    #[default]
    Baseline,
    Restricted,
}

impl PodSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

/// The labels of Pod Security admission on a tenancy namespace.
pub const POD_SECURITY_LABELS: [&str; 4] = [
    "pod-security.kubernetes.io/enforce",
    "pod-security.kubernetes.io/enforce-version",
    "pod-security.kubernetes.io/audit",
    "pod-security.kubernetes.io/warn",
];

impl Default for ProvisioningConfig {
    fn default() -> Self {
        Self {
            vm_disk_storage_class: "standard".into(),
            backup_storage_class: "backup".into(),
            tenant_cluster_role: "edit".into(),
            isolated_cluster_role: "view".into(),
            vm_overhead_millicpu: 200,
            vm_overhead_memory_mib: 512,
            default_cpu: "1".into(),
            default_memory: "1Gi".into(),
            default_request_cpu: "100m".into(),
            default_request_memory: "128Mi".into(),
            image_url_template: None,
            pod_security: PodSecurity::Baseline,
            object_counts: [
                ("pods", 50),
                ("services", 20),
                ("configmaps", 100),
                ("secrets", 100),
                ("persistentvolumeclaims", 20),
                ("count/jobs.batch", 20),
                // Routes from the outside through a shared gateway are
                // public exposure beyond the public IPs approved.
                ("count/ingresses.networking.k8s.io", 0),
                ("count/gateways.gateway.networking.k8s.io", 0),
                ("count/httproutes.gateway.networking.k8s.io", 0),
                ("count/grpcroutes.gateway.networking.k8s.io", 0),
                ("count/tlsroutes.gateway.networking.k8s.io", 0),
                ("count/tcproutes.gateway.networking.k8s.io", 0),
                ("count/udproutes.gateway.networking.k8s.io", 0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        }
    }
}

/// One object the tenancy should have.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub name: String,
    /// `None` for the namespace itself.
    pub namespace: Option<String>,
    /// The full object, metadata included.
    pub object: Value,
    pub hash: String,
    /// What of it the operator governs, hashed (see [`governed`]); `None`
    /// for kinds whose content is only known by `hash`.
    pub fingerprint: Option<String>,
    /// How to write it.
    pub write: Write,
}

/// How an object is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Write {
    /// Server-side apply with the operator's field manager.
    #[default]
    Apply,
    /// Create only: an object of that name that already exists is not
    /// taken over (a namespace, a wipe Job).
    Create,
    /// Replace it whole: someone else changed it, and fields they added
    /// must go too.
    Replace,
    /// Delete and create it again: what must change cannot (a
    /// RoleBinding's role).
    Recreate,
    /// Merge its labels and its `spec.template` into the object as it is: a
    /// VM someone resized is put back, and its run state, which the unit
    /// starts and stops, is left as it is.
    Template,
}

/// The API resource of an object the operator writes, for a dynamic client.
pub fn api_resource(api_version: &str, kind: &str) -> kube::api::ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "NetworkPolicy" => "networkpolicies".to_owned(),
        k => format!("{}s", k.to_lowercase()),
    };
    kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(group, version, kind),
        &plural,
    )
}

/// A stable 64-bit FNV-1a hash, as 16 hex digits.
pub fn hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The namespace of a tenancy: `<unit>-<tenancy>-<hash>`, a DNS label of at
/// most 63 characters. The readable part alone could be shared (unit
/// `finance-sod`'s `test` and unit `finance`'s `sod-test`); the hash of the
/// unit's namespace and the tenancy's name, which together are unique, tells
/// them apart. The operator still writes into a namespace only once it has
/// seen that the namespace is this tenancy's (see [`owner`]).
pub fn namespace_name(unit_namespace: &str, unit: &str, tenancy: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{unit_namespace}/{tenancy}").as_bytes(),
    );
    let suffix: String = digest.as_ref()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let readable: String = format!("{unit}-{tenancy}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    // 63 less the dash and the suffix.
    let cut = readable.len().min(63 - 1 - suffix.len());
    let prefix = readable[..cut].trim_matches('-');
    if prefix.is_empty() {
        format!("t-{suffix}")
    } else {
        format!("{prefix}-{suffix}")
    }
}

/// The `<unit namespace>/<tenancy>` a namespace or object names as its owner.
pub fn tenancy_ref(unit_namespace: &str, tenancy: &str) -> String {
    format!("{unit_namespace}/{tenancy}")
}

/// Whom an existing namespace belongs to, judged by the reference the
/// operator writes on the namespaces it creates (which admission lets nobody
/// else set or remove): `Ok` when it is this tenancy's, else why not. Its
/// labels are not the judge: one removed is put back.
pub fn owner(
    annotations: &std::collections::BTreeMap<String, String>,
    unit_namespace: &str,
    tenancy: &str,
) -> Result<(), String> {
    owned_by(
        annotations.get(TENANCY_REF).map(String::as_str),
        unit_namespace,
        tenancy,
    )
}

/// [`owner`], of an object whose [`TENANCY_REF`] is `reference`.
pub fn owned_by(
    reference: Option<&str>,
    unit_namespace: &str,
    tenancy: &str,
) -> Result<(), String> {
    match reference {
        Some(r) if r == tenancy_ref(unit_namespace, tenancy) => Ok(()),
        Some(r) => Err(format!("it belongs to tenancy {r}")),
        None => Err("the operator did not create it for a tenancy".into()),
    }
}

/// Whether a unit's group may be bound to a role in its tenancy namespaces:
/// never a `system:` group (every user, every service account ...) and
/// never the groups of the reviewers, vendors or auditors, who decide,
/// operate and supervise but do not hold a unit's access.
pub fn bindable(group: &str, role_groups: &[&str]) -> Result<(), String> {
    let group = group.trim();
    if group.is_empty() {
        return Err("the unit's group is empty".into());
    }
    if group.starts_with("system:") {
        return Err(format!(
            "{group} is a system group (everyone signed in, service accounts, administrators): a unit's access is bound only to the unit's own group"
        ));
    }
    if role_groups.iter().any(|g| g.trim() == group) {
        return Err(format!(
            "{group} is the group of the reviewers, vendors or auditors, who decide, operate and supervise but never hold a unit's access"
        ));
    }
    Ok(())
}

/// The name of a VM: `<group>-<n>`, n from 1.
pub fn vm_name(group: &str, n: u32) -> String {
    format!("{group}-{n}")
}

pub fn system_disk(vm: &str) -> String {
    format!("{vm}-system")
}

pub fn data_disk(vm: &str) -> String {
    format!("{vm}-data")
}

pub fn volume_pvc(volume: &str) -> String {
    format!("vol-{volume}")
}

/// The names of every PVC an allocation has (VM disks and volumes).
pub fn pvc_names(spec: &TenancySpec) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for g in &spec.allocation.vm_groups {
        for n in 1..=g.count {
            let vm = vm_name(g.name.as_str(), n);
            names.insert(system_disk(&vm));
            if g.data_disk_gib > 0 {
                names.insert(data_disk(&vm));
            }
        }
    }
    for v in &spec.allocation.cloud_storage {
        names.insert(volume_pvc(v.name.as_str()));
    }
    names
}

/// What the controller knows about a tenancy when building its objects.
pub struct Tenancy<'a> {
    pub unit_namespace: &'a str,
    pub name: &'a str,
    /// The tenancy's namespace (see `lifecycle::namespace_of`).
    pub namespace: &'a str,
    pub spec: &'a TenancySpec,
    /// The unit's Kubernetes group, from its namespace.
    pub unit_group: Option<&'a str>,
    /// The tenancy namespace's uid, once it exists (owner of the rest).
    pub namespace_uid: Option<&'a str>,
    /// Whether the vendor acknowledged procurement of high-end items.
    pub procured: bool,
    /// VMs to run Halted instead of Always (force-stop, isolation).
    pub halted: bool,
    /// Cut off (force-stop, isolation): no allow-within-namespace policy, so
    /// the default-deny policy alone holds, and the unit's group bound to the
    /// isolated role instead of its own.
    pub isolated: bool,
    /// Storage (GiB by class) of volumes being wiped and removed: the quota
    /// keeps room for them until they are gone.
    pub storage_in_removal: std::collections::BTreeMap<String, u64>,
    /// Every storage class known (the cluster's and the price list's): those
    /// the allocation does not have are held at zero in the quota.
    pub storage_classes: &'a std::collections::BTreeSet<String>,
}

impl Tenancy<'_> {
    pub fn namespace(&self) -> String {
        self.namespace.to_owned()
    }

    fn labels(&self) -> Value {
        json!({
            keys::MANAGED_BY: MANAGER,
            keys::TENANCY: self.name,
            TENANCY_UNIT: self.spec.unit,
        })
    }

    fn metadata(&self, name: &str, namespaced: bool) -> Value {
        let mut meta = json!({
            "name": name,
            "labels": self.labels(),
            "annotations": { TENANCY_REF: tenancy_ref(self.unit_namespace, self.name) },
        });
        if namespaced {
            meta["namespace"] = json!(self.namespace());
            if let Some(uid) = self.namespace_uid {
                meta["ownerReferences"] = json!([{
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "name": self.namespace(),
                    "uid": uid,
                }]);
            }
        }
        meta
    }
}

fn finish(api_version: &'static str, kind: &'static str, mut object: Value) -> Desired {
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    let hash = hash(object.to_string().as_bytes());
    object["metadata"]["annotations"][SPEC_HASH] = json!(hash);
    Desired {
        fingerprint: fingerprint(kind, &object),
        write: Write::Apply,
        api_version,
        kind,
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        namespace: object["metadata"]["namespace"].as_str().map(str::to_owned),
        object,
        hash,
    }
}

/// The annotations of a VM's template that carry its bandwidth.
pub const BANDWIDTH_ANNOTATIONS: [&str; 2] = [
    "kubernetes.io/ingress-bandwidth",
    "kubernetes.io/egress-bandwidth",
];

/// The labels and annotations the operator sets on what it owns.
const OWN_LABELS: [&str; 4] = [keys::MANAGED_BY, keys::TENANCY, TENANCY_UNIT, VM_GROUP];

/// Of an object, what the operator governs, in a form that is the same for
/// the object it applies and for that object as the apiserver holds it
/// (defaults filled in, quantities respelled): anything someone else changed
/// there shows as a difference. Of a volume only its marks (its spec the
/// apiserver keeps from changing, but for growing, which the quota bounds);
/// `None` for Jobs, known by their `spec-hash` and UID.
pub fn governed(kind: &str, object: &Value) -> Option<Value> {
    let meta = &object["metadata"];
    let pick = |map: &Value, keys: &[&str]| -> Value {
        keys.iter()
            .map(|k| ((*k).to_owned(), map[*k].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let labels = pick(&meta["labels"], &OWN_LABELS);
    let spec = &object["spec"];
    let content = match kind {
        "Namespace" => {
            let mut all: Vec<&str> = OWN_LABELS.to_vec();
            all.extend(POD_SECURITY_LABELS);
            json!({
                "labels": pick(&meta["labels"], &all),
                "annotations": pick(&meta["annotations"], &[TENANCY_REF, keys::UNIT_GROUP]),
            })
        }
        "NetworkPolicy" => {
            let mut spec = spec.clone();
            for rules in ["ingress", "egress"] {
                if spec[rules].is_null() {
                    spec[rules] = json!([]);
                }
            }
            json!({ "labels": labels, "spec": spec })
        }
        "RoleBinding" => json!({
            "labels": labels,
            "roleRef": object["roleRef"],
            "subjects": object["subjects"],
        }),
        "LimitRange" => json!({ "labels": labels, "spec": quantities(spec) }),
        "PersistentVolumeClaim" => json!({ "labels": labels }),
        "ResourceQuota" => json!({
            "labels": labels,
            "hard": quantities(&spec["hard"]),
            "scopes": spec["scopes"],
            "scopeSelector": spec["scopeSelector"],
        }),
        "VirtualMachine" => {
            // What the operator sets of a VM; KubeVirt fills in much more.
            let template = &spec["template"];
            let domain = &template["spec"]["domain"];
            let bandwidth = pick(&template["metadata"]["annotations"], &BANDWIDTH_ANNOTATIONS);
            let disks: Vec<Value> = domain["devices"]["disks"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .map(|d| json!([d["name"], d["disk"]["bus"]]))
                        .collect()
                })
                .unwrap_or_default();
            let volumes: Vec<Value> = template["spec"]["volumes"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|v| json!([v["name"], v["persistentVolumeClaim"]["claimName"]]))
                        .collect()
                })
                .unwrap_or_default();
            // Not `runStrategy`: the unit stops and starts its VMs (KubeVirt
            // writes it then), and a hold sets it through the halt manager.
            json!({
                "labels": labels,
                "templateLabels": pick(&template["metadata"]["labels"], &OWN_LABELS),
                "bandwidth": bandwidth,
                "architecture": template["spec"]["architecture"],
                "cores": domain["cpu"]["cores"],
                "guest": quantities(&domain["memory"]["guest"]),
                "memory": quantities(&domain["resources"]["requests"]["memory"]),
                "disks": disks,
                "volumes": volumes,
            })
        }
        _ => return None,
    };
    Some(content)
}

/// The hash of what the operator governs of an object (see [`governed`]),
/// whatever the order of its keys.
pub fn fingerprint(kind: &str, object: &Value) -> Option<String> {
    governed(kind, object).map(|g| hash(sorted(&g).to_string().as_bytes()))
}

/// `v` with the keys of every object in order (JSON objects here keep the
/// order they were written in, which differs between what the operator
/// writes and what the apiserver returns).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut entries: Vec<(&String, &Value)> = o.iter().collect();
            entries.sort_by_key(|(k, _)| *k);
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Every string in `v` that is a quantity, in one spelling.
fn quantities(v: &Value) -> Value {
    match v {
        Value::String(q) => json!(crate::quantity::canonical(q)),
        Value::Number(n) => json!(crate::quantity::canonical(&n.to_string())),
        Value::Array(a) => Value::Array(a.iter().map(quantities).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), quantities(v))).collect())
        }
        other => other.clone(),
    }
}

fn gib(n: u64) -> String {
    format!("{n}Gi")
}

/// The wave in which an object of `kind` is written when a plan writes
/// several: the namespace, then the envelope (the quota, limits and
/// policies), then what fills it, then the unit's access. Objects of one
/// wave do not depend on each other.
pub fn wave(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "ResourceQuota" | "LimitRange" | "NetworkPolicy" => 1,
        "RoleBinding" => 3,
        _ => 2,
    }
}

/// Everything the tenancy should have, in the order to create it: the
/// namespace first; the rest once the namespace exists. High-end items wait
/// for procurement.
pub fn desired(t: &Tenancy<'_>, cfg: &ProvisioningConfig) -> Vec<Desired> {
    let mut out = vec![namespace(t, cfg)];
    if t.namespace_uid.is_none() {
        return out;
    }
    out.extend(envelope(t, cfg));
    out.extend(unit_binding(t, cfg));
    let alloc = &t.spec.allocation;
    for g in alloc.vm_groups.iter().filter(|g| !g.high_end || t.procured) {
        for n in 1..=g.count {
            out.extend(vm(t, cfg, g, n));
        }
    }
    for v in alloc
        .cloud_storage
        .iter()
        .filter(|v| !v.high_end || t.procured)
    {
        let claim = pvc(
            t,
            &volume_pvc(v.name.as_str()),
            v.class.as_str(),
            v.size_gib,
        );
        out.push(finish("v1", "PersistentVolumeClaim", claim));
    }
    out
}

/// The tenancy's namespace, at the Pod Security level configured.
fn namespace(t: &Tenancy<'_>, cfg: &ProvisioningConfig) -> Desired {
    let mut namespace = t.metadata(&t.namespace(), false);
    let level = cfg.pod_security.as_str();
    for (label, value) in POD_SECURITY_LABELS
        .iter()
        .zip([level, "latest", level, level])
    {
        namespace["labels"][*label] = json!(value);
    }
    // Who the unit's people are, for the admission policies that keep them
    // off what the operator owns here.
    if let Some(group) = t.unit_group {
        namespace["annotations"][keys::UNIT_GROUP] = json!(group);
    }
    finish("v1", "Namespace", json!({ "metadata": namespace }))
}

/// The envelope: the quota, the default limits, and the network policies
/// (traffic within the namespace and DNS only, none while isolated).
fn envelope(t: &Tenancy<'_>, cfg: &ProvisioningConfig) -> Vec<Desired> {
    let mut out = Vec::new();
    out.push(quota(t, cfg));
    out.push(finish(
        "v1",
        "LimitRange",
        json!({
            "metadata": t.metadata("govcloud-defaults", true),
            "spec": { "limits": [{
                "type": "Container",
                "default": { "cpu": cfg.default_cpu, "memory": cfg.default_memory },
                "defaultRequest": { "cpu": cfg.default_request_cpu, "memory": cfg.default_request_memory },
            }]},
        }),
    ));
    out.push(finish(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        json!({
            "metadata": t.metadata(DENY_POLICY, true),
            // The empty lists are written out, so that rules someone else
            // added are removed when it is put back.
            "spec": { "podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": [] },
        }),
    ));
    if !t.isolated {
        out.push(finish(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            json!({
                "metadata": t.metadata(ALLOW_POLICY, true),
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{ "from": [{ "podSelector": {} }] }],
                    "egress": [
                        { "to": [{ "podSelector": {} }] },
                        { "to": [{ "namespaceSelector": {} }],
                          "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }] },
                    ],
                },
            }),
        ));
    }
    out
}

/// One VM of a group: its system disk, its data disk if any, and the VM.
fn vm(t: &Tenancy<'_>, cfg: &ProvisioningConfig, g: &VmGroup, n: u32) -> Vec<Desired> {
    let alloc = &t.spec.allocation;
    let mut out = Vec::new();
    let vm = vm_name(g.name.as_str(), n);
    let mut system = pvc(
        t,
        &system_disk(&vm),
        &cfg.vm_disk_storage_class,
        g.system_disk_gib,
    );
    system["metadata"]["annotations"]["govcloud.dev/image"] = json!(g.image);
    if let Some(template) = &cfg.image_url_template {
        system["metadata"]["annotations"]["cdi.kubevirt.io/storage.import.endpoint"] =
            json!(template.replace("{image}", &g.image));
    }
    out.push(finish("v1", "PersistentVolumeClaim", system));
    let mut disks = vec![json!({ "name": "system", "disk": { "bus": "virtio" } })];
    let mut volumes = vec![
        json!({ "name": "system", "persistentVolumeClaim": { "claimName": system_disk(&vm) } }),
    ];
    if g.data_disk_gib > 0 {
        out.push(finish(
            "v1",
            "PersistentVolumeClaim",
            pvc(
                t,
                &data_disk(&vm),
                &cfg.vm_disk_storage_class,
                g.data_disk_gib,
            ),
        ));
        disks.push(json!({ "name": "data", "disk": { "bus": "virtio" } }));
        volumes.push(
            json!({ "name": "data", "persistentVolumeClaim": { "claimName": data_disk(&vm) } }),
        );
    }
    let mut template_meta = json!({ "labels": t.labels() });
    template_meta["labels"][VM_GROUP] = json!(g.name);
    if alloc.bandwidth_mbps > 0 {
        template_meta["annotations"] = json!({
            "kubernetes.io/ingress-bandwidth": format!("{}M", alloc.bandwidth_mbps),
            "kubernetes.io/egress-bandwidth": format!("{}M", alloc.bandwidth_mbps),
        });
    }
    let mut meta = t.metadata(&vm, true);
    meta["labels"][VM_GROUP] = json!(g.name);
    out.push(finish(
        "kubevirt.io/v1",
        "VirtualMachine",
        json!({
            "metadata": meta,
            "spec": {
                "runStrategy": if t.halted { "Halted" } else { "Always" },
                "template": {
                    "metadata": template_meta,
                    "spec": {
                        "architecture": g.architecture,
                        "domain": {
                            "cpu": { "cores": g.vcpu },
                            "memory": { "guest": gib(u64::from(g.memory_gib)) },
                            "resources": { "requests": { "memory": gib(u64::from(g.memory_gib)) } },
                            "devices": { "disks": disks },
                        },
                        "volumes": volumes,
                    },
                },
            },
        }),
    ));
    out
}

/// The unit's group bound to its role in the tenancy namespace: the tenant
/// role, or the isolated one (to look, not to act) while the tenancy is held
/// or released. A RoleBinding's role cannot change: each has its own name.
pub fn unit_binding(t: &Tenancy<'_>, cfg: &ProvisioningConfig) -> Option<Desired> {
    let group = t.unit_group?;
    let (binding, role) = if t.isolated {
        (UNIT_BINDING_ISOLATED, &cfg.isolated_cluster_role)
    } else {
        (UNIT_BINDING, &cfg.tenant_cluster_role)
    };
    Some(finish(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        json!({
            "metadata": t.metadata(binding, true),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group }],
        }),
    ))
}

fn pvc(t: &Tenancy<'_>, name: &str, class: &str, size_gib: u32) -> Value {
    json!({
        "metadata": t.metadata(name, true),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Filesystem",
            "storageClassName": class,
            "resources": { "requests": { "storage": gib(u64::from(size_gib)) } },
        },
    })
}

/// The quota is the approved envelope: CPU and memory of all VMs (plus
/// KubeVirt's per-VM overhead), storage per class, backup storage, load
/// balancers for the public IPs.
fn quota(t: &Tenancy<'_>, cfg: &ProvisioningConfig) -> Desired {
    let alloc = &t.spec.allocation;
    let vms = u64::from(alloc.vm_count());
    let millicpu: u64 = alloc
        .vm_groups
        .iter()
        .map(|g| u64::from(g.count) * u64::from(g.vcpu) * 1000)
        .sum::<u64>()
        + vms * u64::from(cfg.vm_overhead_millicpu);
    let mem_mib: u64 = alloc
        .vm_groups
        .iter()
        .map(|g| u64::from(g.count) * u64::from(g.memory_gib) * 1024)
        .sum::<u64>()
        + vms * u64::from(cfg.vm_overhead_memory_mib);
    let mut per_class: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let disks: u64 = alloc
        .vm_groups
        .iter()
        .map(|g| u64::from(g.count) * (u64::from(g.system_disk_gib) + u64::from(g.data_disk_gib)))
        .sum();
    if disks > 0 {
        *per_class
            .entry(cfg.vm_disk_storage_class.clone())
            .or_default() += disks;
    }
    for v in &alloc.cloud_storage {
        *per_class.entry(v.class.to_string()).or_default() += u64::from(v.size_gib);
    }
    *per_class
        .entry(cfg.backup_storage_class.clone())
        .or_default() += u64::from(alloc.backup_storage_gib);
    for (class, size) in &t.storage_in_removal {
        *per_class.entry(class.clone()).or_default() += size;
    }
    // Every other class at zero: an allowance of one class (backup above
    // all) is never primary storage of another.
    for class in t.storage_classes {
        per_class.entry(class.clone()).or_default();
    }
    let total: u64 = per_class.values().sum();
    let mut hard = serde_json::Map::new();
    let cpu = if millicpu.is_multiple_of(1000) {
        format!("{}", millicpu / 1000)
    } else {
        format!("{millicpu}m")
    };
    let mem = if mem_mib.is_multiple_of(1024) {
        format!("{}Gi", mem_mib / 1024)
    } else {
        format!("{mem_mib}Mi")
    };
    hard.insert("requests.cpu".into(), json!(cpu));
    hard.insert("limits.cpu".into(), json!(cpu));
    hard.insert("requests.memory".into(), json!(mem));
    hard.insert("limits.memory".into(), json!(mem));
    hard.insert("requests.storage".into(), json!(gib(total)));
    for (class, size) in per_class {
        hard.insert(
            format!("{class}.storageclass.storage.k8s.io/requests.storage"),
            json!(gib(size)),
        );
    }
    hard.insert(
        "services.loadbalancers".into(),
        json!(alloc.public_ips.to_string()),
    );
    // A NodePort opens every node to the outside, beyond the public IPs
    // approved (a LoadBalancer Service sets allocateLoadBalancerNodePorts:
    // false).
    hard.insert("services.nodeports".into(), json!("0"));
    // Object counts: the unit's own, and what the operator's objects need.
    let volumes = pvc_names(t.spec).len() as u64;
    for (resource, count) in &cfg.object_counts {
        let ours = match resource.as_str() {
            "pods" => vms + volumes,
            "persistentvolumeclaims" | "count/jobs.batch" => volumes,
            _ => 0,
        };
        hard.insert(
            resource.clone(),
            json!((u64::from(*count) + ours).to_string()),
        );
    }
    if alloc.backup_storage_gib == 0 {
        hard.insert(
            "count/volumesnapshots.snapshot.storage.k8s.io".into(),
            json!("0"),
        );
    }
    finish(
        "v1",
        "ResourceQuota",
        json!({ "metadata": t.metadata(QUOTA, true), "spec": { "hard": hard } }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn art14_a_recount_is_asked_once_per_usage_and_only_tightens() {
        // Refused at a usage never recounted: ask.
        assert!(recount(r#"{"requests.storage":"2668Gi"}"#, None));
        // The recount left the usage as it was: the unit's own; ask no more.
        let used = r#"{"requests.storage":"1644Gi"}"#;
        assert!(!recount(used, Some(used)));
        // The usage changed since: ask again.
        assert!(recount(used, Some(r#"{"requests.storage":"2668Gi"}"#)));
        let [set, unset] = recount_patches();
        assert_eq!(set["spec"]["hard"][RECOUNT], "0", "a limit of zero");
        assert!(unset["spec"]["hard"][RECOUNT].is_null(), "then removed");
        assert_eq!(set["spec"]["hard"].as_object().map(|h| h.len()), Some(1));
    }
    use crate::api::CloudResourceRequest;

    fn spec() -> TenancySpec {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/samples/20-cloudresourcerequest-oa.yaml"
        ))
        .unwrap();
        let crr: CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        let s = crr.spec;
        TenancySpec {
            unit: "finance".into(),
            unit_name: s.unit.name.clone(),
            system_name: s.system.name.clone(),
            purpose: s.system.purpose.clone(),
            request: "finance-oa".into(),
            request_generation: 1,
            service_types: s.service_types.clone(),
            allocation: s.resources.clone(),
            compliance: s.compliance.clone(),
            extensions: vec![],
            changes: vec![],
            emergency: None,
            retirement: None,
        }
    }

    static NS: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| namespace_name("unit-finance", "finance", "finance-oa"));
    static CLASSES: std::sync::LazyLock<std::collections::BTreeSet<String>> =
        std::sync::LazyLock::new(|| {
            ["backup", "premium-ssd", "standard"]
                .map(String::from)
                .into()
        });

    fn tenancy<'a>(spec: &'a TenancySpec, uid: Option<&'a str>) -> Tenancy<'a> {
        Tenancy {
            namespace: NS.as_str(),
            storage_classes: &CLASSES,
            unit_namespace: "unit-finance",
            name: "finance-oa",
            spec,
            unit_group: Some("govcloud:unit:finance"),
            namespace_uid: uid,
            procured: false,
            halted: false,
            isolated: false,
            storage_in_removal: Default::default(),
        }
    }

    #[test]
    fn the_namespace_comes_first_and_alone() {
        let s = spec();
        let d = desired(&tenancy(&s, None), &ProvisioningConfig::default());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, "Namespace");
        assert_eq!(
            d[0].name,
            namespace_name("unit-finance", "finance", "finance-oa")
        );
        assert!(
            d[0].name.starts_with("finance-finance-oa-"),
            "{}",
            d[0].name
        );
    }

    #[test]
    fn art8_no_two_tenancies_of_any_units_share_a_namespace() {
        // The readable part is shared; the namespace is not.
        let a = namespace_name("unit-finance", "finance", "sod-test");
        let b = namespace_name("unit-finance-sod", "finance-sod", "test");
        assert_ne!(a, b);
        assert!(a.starts_with("finance-sod-test-") && b.starts_with("finance-sod-test-"));
        // One unit's two names, or two units' one name, differ too.
        assert_ne!(
            namespace_name("unit-finance", "finance", "oa"),
            namespace_name("unit-health", "finance", "oa")
        );
        assert_eq!(
            namespace_name("unit-finance", "finance", "oa"),
            namespace_name("unit-finance", "finance", "oa"),
            "the same tenancy always maps to the same namespace"
        );
    }

    #[test]
    fn art8_a_namespace_is_a_tenancys_only_by_the_operators_reference() {
        let refs =
            |r: &str| std::collections::BTreeMap::from([(TENANCY_REF.to_owned(), r.to_owned())]);
        assert_eq!(
            owner(&refs("unit-finance/oa"), "unit-finance", "oa"),
            Ok(())
        );
        let other = owner(&refs("unit-finance/sod-test"), "unit-finance-sod", "test");
        assert_eq!(
            other,
            Err("it belongs to tenancy unit-finance/sod-test".into())
        );
        // Made by someone else: no reference.
        assert!(owner(&Default::default(), "unit-finance", "oa").is_err());
    }

    #[test]
    fn art7_system_and_role_groups_are_never_bound_as_a_unit() {
        let roles = [
            "govcloud:reviewers",
            "govcloud:vendors",
            "govcloud:auditors",
        ];
        assert_eq!(bindable("govcloud:unit:finance", &roles), Ok(()));
        for refused in [
            "system:authenticated",
            "system:serviceaccounts",
            "system:masters",
            "govcloud:reviewers",
            " govcloud:vendors ",
            "govcloud:auditors",
            "",
        ] {
            assert!(bindable(refused, &roles).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn art8_tenancy_namespaces_enforce_pod_security_and_name_the_unit() {
        let s = spec();
        let mut cfg = ProvisioningConfig::default();
        let ns = &desired(&tenancy(&s, None), &cfg)[0].object["metadata"];
        assert_eq!(
            ns["labels"]["pod-security.kubernetes.io/enforce"],
            "baseline"
        );
        assert_eq!(
            ns["labels"]["pod-security.kubernetes.io/enforce-version"],
            "latest"
        );
        assert_eq!(ns["annotations"][keys::UNIT_GROUP], "govcloud:unit:finance");
        cfg.pod_security = PodSecurity::Restricted;
        let ns = &desired(&tenancy(&s, None), &cfg)[0].object["metadata"];
        assert_eq!(
            ns["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        assert_eq!(
            ns["labels"]["pod-security.kubernetes.io/warn"],
            "restricted"
        );
    }

    #[test]
    fn art14_the_quota_holds_every_other_class_and_nodeports_at_zero() {
        let s = spec();
        let d = desired(&tenancy(&s, Some("uid-1")), &ProvisioningConfig::default());
        let hard = &d[1].object["spec"]["hard"];
        assert_eq!(
            hard["premium-ssd.storageclass.storage.k8s.io/requests.storage"],
            "0Gi"
        );
        assert_eq!(
            hard["standard.storageclass.storage.k8s.io/requests.storage"],
            "1644Gi"
        );
        assert_eq!(
            hard["backup.storageclass.storage.k8s.io/requests.storage"],
            "1024Gi"
        );
        assert_eq!(hard["services.nodeports"], "0");
        // Object counts: the unit's 50 pods, a launcher for each of 3 VMs and
        // a wipe pod for each of 5 volumes.
        assert_eq!(hard["pods"], "58");
        assert_eq!(hard["persistentvolumeclaims"], "25");
        assert_eq!(hard["count/jobs.batch"], "25");
        assert_eq!(hard["services"], "20");
    }

    #[test]
    fn a_change_by_someone_else_changes_the_fingerprint_and_server_defaults_do_not() {
        let s = spec();
        let d = desired(&tenancy(&s, Some("uid-1")), &ProvisioningConfig::default());
        let of = |kind: &str| d.iter().find(|o| o.kind == kind).unwrap();
        assert!(d.iter().all(|o| o.fingerprint.is_some()));
        // The apiserver's spellings and defaults.
        let mut quota = of("ResourceQuota").object.clone();
        quota["spec"]["hard"]["requests.cpu"] = json!("16.6");
        quota["status"] = json!({ "used": {} });
        assert_eq!(
            fingerprint("ResourceQuota", &quota),
            of("ResourceQuota").fingerprint
        );
        let deny = d.iter().find(|o| o.name == DENY_POLICY).unwrap();
        let mut stored = deny.object.clone();
        stored["spec"].as_object_mut().unwrap().remove("ingress");
        stored["spec"].as_object_mut().unwrap().remove("egress");
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!("{}");
        assert_eq!(fingerprint("NetworkPolicy", &stored), deny.fingerprint);
        let mut vm = of("VirtualMachine").object.clone();
        vm["spec"]["template"]["spec"]["domain"]["machine"] = json!({ "type": "q35" });
        vm["spec"]["runStrategy"] = json!("Halted");
        vm["status"] = json!({ "created": true });
        assert_eq!(
            fingerprint("VirtualMachine", &vm),
            of("VirtualMachine").fingerprint
        );

        // The order of keys does not matter.
        let mut reordered = serde_json::Map::new();
        let allow = d.iter().find(|o| o.name == ALLOW_POLICY).unwrap();
        for (k, v) in allow.object["spec"].as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        let mut stored = allow.object.clone();
        stored["spec"] = Value::Object(reordered);
        assert_eq!(fingerprint("NetworkPolicy", &stored), allow.fingerprint);

        // Changes that matter.
        let mut open = deny.object.clone();
        open["spec"]["ingress"] = json!([{}]);
        assert_ne!(fingerprint("NetworkPolicy", &open), deny.fingerprint);
        let mut bigger = of("ResourceQuota").object.clone();
        bigger["spec"]["hard"]["pods"] = json!("100");
        assert_ne!(
            fingerprint("ResourceQuota", &bigger),
            of("ResourceQuota").fingerprint
        );
        let mut rebound = of("RoleBinding").object.clone();
        rebound["subjects"][0]["name"] = json!("system:authenticated");
        assert_ne!(
            fingerprint("RoleBinding", &rebound),
            of("RoleBinding").fingerprint
        );
        let mut unlabelled = of("Namespace").object.clone();
        unlabelled["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] =
            json!("privileged");
        assert_ne!(
            fingerprint("Namespace", &unlabelled),
            of("Namespace").fingerprint
        );
        let mut resized = of("VirtualMachine").object.clone();
        resized["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] = json!(64);
        assert_ne!(
            fingerprint("VirtualMachine", &resized),
            of("VirtualMachine").fingerprint
        );
    }

    #[test]
    fn art14_the_approved_allocation_becomes_exactly_these_objects() {
        let s = spec();
        let d = desired(&tenancy(&s, Some("uid-1")), &ProvisioningConfig::default());
        let names: Vec<String> = d.iter().map(|o| format!("{}/{}", o.kind, o.name)).collect();
        assert_eq!(
            names,
            [
                "Namespace/finance-finance-oa-1c5aaa9f98",
                "ResourceQuota/govcloud-allocation",
                "LimitRange/govcloud-defaults",
                "NetworkPolicy/govcloud-default-deny",
                "NetworkPolicy/govcloud-allow-within-namespace",
                "RoleBinding/govcloud-unit",
                "PersistentVolumeClaim/app-1-system",
                "VirtualMachine/app-1",
                "PersistentVolumeClaim/app-2-system",
                "VirtualMachine/app-2",
                "PersistentVolumeClaim/db-1-system",
                "PersistentVolumeClaim/db-1-data",
                "VirtualMachine/db-1",
                "PersistentVolumeClaim/vol-files",
            ]
        );
        let quota = &d[1].object["spec"]["hard"];
        // 2x4 + 8 vCPU, 200m overhead for each of 3 VMs.
        assert_eq!(quota["requests.cpu"], "16600m");
        // 2x8 + 16 GiB = 32768 MiB, plus 512 MiB overhead for each of 3 VMs.
        assert_eq!(quota["requests.memory"], "34304Mi");
        // disks 3x40 + 500, files 1024 (standard), backup 1024.
        assert_eq!(
            quota["standard.storageclass.storage.k8s.io/requests.storage"],
            "1644Gi"
        );
        assert_eq!(
            quota["backup.storageclass.storage.k8s.io/requests.storage"],
            "1024Gi"
        );
        assert_eq!(quota["requests.storage"], "2668Gi");
        assert_eq!(quota["services.loadbalancers"], "1");
        let db = d.iter().find(|o| o.name == "db-1").unwrap();
        let vm = &db.object["spec"]["template"]["spec"];
        assert_eq!(vm["domain"]["cpu"]["cores"], 8);
        assert_eq!(vm["domain"]["memory"]["guest"], "16Gi");
        assert_eq!(vm["architecture"], "arm64");
        assert_eq!(
            vm["volumes"][1]["persistentVolumeClaim"]["claimName"],
            "db-1-data"
        );
        assert_eq!(db.object["spec"]["runStrategy"], "Always");
        assert_eq!(
            db.object["spec"]["template"]["metadata"]["annotations"]["kubernetes.io/egress-bandwidth"],
            "20M"
        );
        for o in &d[1..] {
            assert_eq!(
                o.object["metadata"]["ownerReferences"][0]["uid"], "uid-1",
                "{}",
                o.name
            );
            assert_eq!(
                o.object["metadata"]["labels"]["govcloud.dev/tenancy"],
                "finance-oa"
            );
            assert_eq!(
                o.object["metadata"]["annotations"][SPEC_HASH],
                o.hash.as_str()
            );
        }
    }

    #[test]
    fn art14_high_end_items_wait_for_procurement() {
        let mut s = spec();
        s.allocation.vm_groups[1].high_end = true;
        s.allocation.cloud_storage[0].high_end = true;
        let waiting = desired(&tenancy(&s, Some("u")), &ProvisioningConfig::default());
        assert!(
            !waiting
                .iter()
                .any(|o| o.name.starts_with("db-") || o.name == "vol-files")
        );
        let mut t = tenancy(&s, Some("u"));
        t.procured = true;
        let all = desired(&t, &ProvisioningConfig::default());
        assert_eq!(all.len(), waiting.len() + 4);
    }

    #[test]
    fn the_same_tenancy_gives_the_same_hashes_and_a_change_changes_them() {
        let s = spec();
        let a = desired(&tenancy(&s, Some("u")), &ProvisioningConfig::default());
        let b = desired(&tenancy(&s, Some("u")), &ProvisioningConfig::default());
        assert_eq!(a, b);
        let mut s2 = spec();
        s2.allocation.vm_groups[1].memory_gib = 32;
        let c = desired(&tenancy(&s2, Some("u")), &ProvisioningConfig::default());
        let changed: Vec<&str> = a
            .iter()
            .zip(&c)
            .filter(|(x, y)| x.hash != y.hash)
            .map(|(x, _)| x.name.as_str())
            .collect();
        assert_eq!(changed, ["govcloud-allocation", "db-1"]);
    }

    #[test]
    fn long_names_make_a_valid_namespace() {
        let long = "a".repeat(70);
        let ns = namespace_name("unit-education", "education", &long);
        assert!(ns.len() <= 63, "{ns}");
        assert!(ns.starts_with("education-aaaa"));
        assert_ne!(
            ns,
            namespace_name("unit-education", "education", &"a".repeat(71))
        );
        let dotted = namespace_name("unit-finance", "finance", "oa.v2");
        assert!(dotted.starts_with("finance-oa-v2-"), "{dotted}");
        for name in [&ns, &dotted] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!name.starts_with('-') && !name.ends_with('-'));
        }
    }
}
