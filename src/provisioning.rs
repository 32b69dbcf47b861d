//! What a tenancy's allocation becomes in Kubernetes (Art. 14): a namespace,
//! and in it a ResourceQuota, a LimitRange, default-deny network policies with
//! traffic allowed within the namespace, the unit's RoleBinding, the KubeVirt
//! VMs with their disks, and the cloud-storage PVCs. Pure: the same tenancy
//! and configuration always give the same objects, each with a hash of its
//! content, so an object already in that state is never written again.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{TenancySpec, keys};

/// The field manager of everything the operator writes.
pub const MANAGER: &str = "govcloud-operator";
/// On every object the operator creates: a hash of what it applied.
pub const SPEC_HASH: &str = "govcloud.dev/spec-hash";
/// On every object the operator creates: `<unit namespace>/<tenancy>`.
pub const TENANCY_REF: &str = "govcloud.dev/tenancy-ref";
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
}

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

/// The namespace of a tenancy: `<unit>-<tenancy>`, a DNS label of at most 63
/// characters (long names keep a prefix and gain a hash).
pub fn namespace_name(unit: &str, tenancy: &str) -> String {
    let raw: String = format!("{unit}-{tenancy}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if raw.len() <= 63 {
        return raw;
    }
    let prefix = raw[..54].trim_end_matches('-');
    format!("{prefix}-{}", &hash(raw.as_bytes())[..8])
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
}

impl Tenancy<'_> {
    pub fn namespace(&self) -> String {
        namespace_name(&self.spec.unit, self.name)
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
            "annotations": { TENANCY_REF: format!("{}/{}", self.unit_namespace, self.name) },
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

fn gib(n: u64) -> String {
    format!("{n}Gi")
}

/// Everything the tenancy should have, in the order to create it: the
/// namespace first; the rest once the namespace exists. High-end items wait
/// for procurement.
pub fn desired(t: &Tenancy<'_>, cfg: &ProvisioningConfig) -> Vec<Desired> {
    let mut out = vec![finish(
        "v1",
        "Namespace",
        json!({ "metadata": t.metadata(&t.namespace(), false) }),
    )];
    if t.namespace_uid.is_none() {
        return out;
    }
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
            "metadata": t.metadata("govcloud-default-deny", true),
            "spec": { "podSelector": {}, "policyTypes": ["Ingress", "Egress"] },
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
    if let Some(group) = t.unit_group {
        // A RoleBinding's role cannot change: isolation binds under another name.
        let (binding, role) = if t.isolated {
            (UNIT_BINDING_ISOLATED, &cfg.isolated_cluster_role)
        } else {
            (UNIT_BINDING, &cfg.tenant_cluster_role)
        };
        out.push(finish(
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
        ));
    }
    let alloc = &t.spec.allocation;
    for g in alloc.vm_groups.iter().filter(|g| !g.high_end || t.procured) {
        for n in 1..=g.count {
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
                volumes.push(json!({ "name": "data", "persistentVolumeClaim": { "claimName": data_disk(&vm) } }));
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
        }
    }
    for v in alloc
        .cloud_storage
        .iter()
        .filter(|v| !v.high_end || t.procured)
    {
        out.push(finish(
            "v1",
            "PersistentVolumeClaim",
            pvc(
                t,
                &volume_pvc(v.name.as_str()),
                v.class.as_str(),
                v.size_gib,
            ),
        ));
    }
    out
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
    if alloc.backup_storage_gib == 0 {
        hard.insert(
            "count/volumesnapshots.snapshot.storage.k8s.io".into(),
            json!("0"),
        );
    }
    finish(
        "v1",
        "ResourceQuota",
        json!({ "metadata": t.metadata("govcloud-allocation", true), "spec": { "hard": hard } }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn tenancy<'a>(spec: &'a TenancySpec, uid: Option<&'a str>) -> Tenancy<'a> {
        Tenancy {
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
        assert_eq!(
            (d[0].kind, d[0].name.as_str()),
            ("Namespace", "finance-finance-oa")
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
                "Namespace/finance-finance-oa",
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
        let ns = namespace_name("education", &long);
        assert!(ns.len() <= 63, "{ns}");
        assert!(ns.starts_with("education-aaaa"));
        assert_ne!(ns, namespace_name("education", &"a".repeat(71)));
        assert_eq!(namespace_name("finance", "oa.v2"), "finance-oa-v2");
    }
}
