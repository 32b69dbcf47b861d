//! The trust boundary against a hostile unit (Ch. 2, Art. 6-10, 12-15, 19,
//! 25), tried as an attacker would: the chart as rendered, installed into a
//! real apiserver, the operator running as its ServiceAccount, and the people
//! of two units, a reviewer, a vendor and an administrator acting. A unit's
//! people hold `edit` in their tenancy namespaces; reviewers decide but grant
//! nothing; an administrator's slip destroys no data unnoticed.

use std::time::Duration;

use govcloud::api::{
    ChangePhase, ChangeRequest, CloudResourceRequest, RequestPhase, ServiceCatalog, Tenancy,
    TenancyPhase, WorkCalendar, keys,
};
use govcloud::provisioning::{self, namespace_name};
use govcloud_testenv::User;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::admission::{
    Fixture, annotate, change_in, decision, delete, file, from_sample, generation, lift_suspension,
    listed, merge, outcome, request_in,
};
use crate::support::lab::{Lab, REVIEWER, WAIT};
use crate::support::{Ctx, TestResult, eventually};

type Crr = CloudResourceRequest;

/// Creates `object` (any kind) as `client`.
async fn create(client: &Client, ns: Option<&str>, object: Value) -> Result<(), String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let ar = provisioning::api_resource(&api_version, &kind);
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let object: DynamicObject = serde_json::from_value(object).map_err(|e| e.to_string())?;
    outcome(api.create(&PostParams::default(), &object).await)
}

/// A pod of the unit's, `spec` merged into a plain one.
fn pod(name: &str, spec: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }] },
    });
    merge_into(&mut pod["spec"], spec);
    for c in pod["spec"]["containers"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if c["image"].is_null() {
            c["image"] = json!("registry.example/app:1");
        }
    }
    pod
}

fn merge_into(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge_into(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

fn service(name: &str, spec: Value) -> Value {
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name },
        "spec": { "ports": [{ "port": 80 }], "selector": { "app": name } },
    });
    merge_into(&mut svc["spec"], spec);
    svc
}

fn pvc(name: &str, class: &str, size: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": name },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": class,
            "resources": { "requests": { "storage": size } },
        },
    })
}

/// Merges `patch` into namespace `name`, as `client`.
async fn patch_namespace(client: &Client, name: &str, patch: Value) -> Result<(), String> {
    outcome(
        Api::<Namespace>::all(client.clone())
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await,
    )
}

/// A condition of a tenancy as (status, reason, message).
async fn tenancy_condition(
    lab: &Lab,
    ns: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)> {
    let t = lab.tenancies(ns).get(name).await.ok()?;
    t.status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.reason, c.message))
}

/// Waits until a tenancy's condition has `status` and `reason`; its message.
async fn tenancy_says(
    lab: &Lab,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> String {
    tenancy_says_of(lab, ns, name, type_, status, reason, "").await
}

/// As [`tenancy_says`], with `words` in the message.
async fn tenancy_says_of(
    lab: &Lab,
    ns: &str,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
    words: &str,
) -> String {
    eventually(
        &format!("{name}: {type_}={status} ({reason}) {words}"),
        WAIT,
        || async {
            let (s, r, m) = tenancy_condition(lab, ns, name, type_).await?;
            (s == status && r == reason && m.contains(words)).then_some(m)
        },
    )
    .await
}

/// A member of a unit in the fixture's cluster, by the unit's id.
async fn member(f: &Fixture, unit: &str, name: &str) -> Client {
    let user = User::new(
        format!("{name}@{unit}"),
        Some(&format!("govcloud:unit:{unit}")),
    );
    f.lab
        .plane
        .client(&user)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The platform team declares a unit: its namespace, group and binding.
async fn declare_unit(f: &mut Fixture, id: &str) -> String {
    let unit = f.lab.unit(id).await;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "govcloud-tenant", "namespace": unit.namespace },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "govcloud-tenant" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": unit.group }],
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    Api::<RoleBinding>::namespaced(f.admin.clone(), &unit.namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    unit.namespace
}

/// A request filed by `client` and approved by the fixture's reviewer.
async fn approved(f: &Fixture, client: &Client, ns: &str, name: &str) {
    file(client, ns, name, json!({}))
        .await
        .unwrap_or_else(|e| panic!("filing {name}: {e}"));
    request_in(&f.lab, ns, name, RequestPhase::UnderReview).await;
    let g = generation::<Crr>(&f.lab, ns, name).await;
    annotate::<Crr>(&f.reviewer, ns, name, decision(REVIEWER, g, "approve"))
        .await
        .unwrap_or_else(|e| panic!("approving {name}: {e}"));
    request_in(&f.lab, ns, name, RequestPhase::Approved).await;
}

/// What binds whom in a namespace: the subjects of its RoleBindings.
async fn bound(admin: &Client, ns: &str) -> Vec<String> {
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|b| b.subjects.unwrap_or_default())
        .map(|s| s.name)
        .collect()
}

/// Defect 1: `<unit>-<name>` made unit `finance-sod`'s `test` and unit
/// `finance`'s `sod-test` one namespace; and the operator wrote into any
/// namespace of the name it computed.
pub async fn art8_no_two_tenancies_share_a_namespace_and_none_is_taken_over(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let finance = f.ns.clone();
    let sod = declare_unit(&mut f, "finance-sod").await;
    let sod_clerk = member(&f, "finance-sod", "clerk").await;
    let a = f.tenant_a.clone();
    approved(&f, &a, &finance, "sod-test").await;
    approved(&f, &sod_clerk, &sod, "test").await;
    let ns_a = namespace_name(&finance, "finance", "sod-test");
    let ns_b = namespace_name(&sod, "finance-sod", "test");
    f.lab.deliver(&finance, "sod-test", "finance").await;
    f.lab.deliver(&sod, "test", "finance-sod").await;
    let admin = f.admin.clone();
    let m = &mut f.m;
    m.allowed(
        "the approval gives unit finance's sod-test and unit finance-sod's test a namespace each",
        if ns_a != ns_b {
            Ok(())
        } else {
            Err(format!("both in {ns_a}"))
        },
    );
    let (in_a, in_b) = (bound(&admin, &ns_a).await, bound(&admin, &ns_b).await);
    m.allowed(
        "the approval binds each unit's group in its own tenancy namespace only",
        if in_a == ["govcloud:unit:finance"] && in_b == ["govcloud:unit:finance-sod"] {
            Ok(())
        } else {
            Err(format!("{ns_a}: {in_a:?}; {ns_b}: {in_b:?}"))
        },
    );
    m.refused(
        "a tenant of another unit lists the pods of unit finance's tenancy namespace",
        "forbidden",
        listed(Api::<k8s_openapi::api::core::v1::Pod>::namespaced(
            sod_clerk.clone(),
            &ns_a,
        ))
        .await,
    );

    // A namespace of the name a tenancy maps to, made by someone else first.
    let taken = namespace_name(&finance, "finance", "third");
    create(
        &admin,
        None,
        json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": taken },
        }),
    )
    .await?;
    approved(&f, &a, &finance, "third").await;
    let message = tenancy_says(
        &f.lab,
        &finance,
        "third",
        "NamespaceOwned",
        "False",
        "NamespaceTaken",
    )
    .await;
    let written = bound(&admin, &taken).await;
    let quotas = Api::<ResourceQuota>::namespaced(admin.clone(), &taken)
        .list(&ListParams::default())
        .await?
        .items
        .len();
    let events = f
        .lab
        .reasons_with(&finance, "third", "NamespaceConflict")
        .await;
    f.m.refused(
        "the operator takes over a namespace it did not create for the tenancy",
        "already exists and is not this tenancy's",
        if written.is_empty() && quotas == 0 && events.iter().any(|e| e == "NamespaceConflict") {
            Err(message)
        } else {
            Ok(())
        },
    );
    f.m.refused(
        "an administrator marks a namespace as a tenancy's to hand it over",
        "annotation govcloud.dev/tenancy-ref on namespace",
        patch_namespace(
            &admin,
            &taken,
            json!({ "metadata": {
                "labels": { keys::TENANCY: "third", keys::MANAGED_BY: provisioning::MANAGER },
                "annotations": { provisioning::TENANCY_REF: format!("{finance}/third") },
            }}),
        )
        .await,
    );
    f.check("Art. 8: one namespace, one tenancy");
    Ok(())
}

/// Defect 2 and the multi-tenancy benchmark (MTB, profile level 1): tenancy
/// namespaces carried no Pod Security level, so a unit with `edit` ran a
/// privileged pod with the host's PID, network and `/`. Each of the
/// benchmark's checks, by its name, as the unit's user in its tenancy
/// namespace.
pub async fn art8_a_unit_runs_nothing_privileged_and_passes_the_multi_tenancy_benchmark(
    _: Ctx,
) -> TestResult {
    let mut f = Fixture::new().await;
    let tns = f.active("erp").await;
    let (a, admin) = (f.tenant_a.clone(), f.admin.clone());
    let other_unit = f.other_ns.clone();
    let tns = tns.as_str();
    let psa = "violates PodSecurity \"baseline:latest\"";
    let m = &mut f.m;
    m.allowed(
        "a tenant runs a pod within the baseline level",
        create(&a, Some(tns), pod("web", json!({}))).await,
    );
    let refused_pods = [
        (
            "runs a privileged container (MTB block-privileged-containers)",
            "privileged",
            json!({ "containers": [{ "name": "app", "securityContext": { "privileged": true } }] }),
        ),
        (
            "lets a container escalate its privileges (MTB block-privilege-escalation)",
            "set securityContext.allowPrivilegeEscalation to false",
            json!({ "containers": [{ "name": "app", "securityContext": { "allowPrivilegeEscalation": true } }] }),
        ),
        (
            "adds the SYS_ADMIN capability (MTB block-add-capabilities)",
            psa,
            json!({ "containers": [{ "name": "app", "securityContext": { "capabilities": { "add": ["SYS_ADMIN"] } } }] }),
        ),
        (
            "mounts the host's / (MTB block-use-of-host-path)",
            psa,
            json!({ "volumes": [{ "name": "root", "hostPath": { "path": "/" } }],
                 "containers": [{ "name": "app", "volumeMounts": [{ "name": "root", "mountPath": "/host" }] }] }),
        ),
        (
            "uses the host's network (MTB block-use-of-host-networking-and-ports)",
            psa,
            json!({ "hostNetwork": true }),
        ),
        (
            "opens a host port (MTB block-use-of-host-networking-and-ports)",
            psa,
            json!({ "containers": [{ "name": "app", "ports": [{ "containerPort": 80, "hostPort": 8080 }] }] }),
        ),
        (
            "shares the host's PID namespace (MTB block-use-of-host-pid)",
            psa,
            json!({ "hostPID": true }),
        ),
        (
            "shares the host's IPC namespace (MTB block-use-of-host-ipc)",
            psa,
            json!({ "hostIPC": true }),
        ),
    ];
    for (i, (what, words, spec)) in refused_pods.into_iter().enumerate() {
        m.refused(
            &format!("a tenant {what}"),
            words,
            create(&a, Some(tns), pod(&format!("p{i}"), spec)).await,
        );
    }
    let controller = f
        .lab
        .plane
        .impersonating(
            "system:serviceaccount:kube-system:replicaset-controller",
            &[
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
            ],
        )
        .await?;
    m.refused(
        "a tenant lets a container escalate its privileges through a Deployment (the ReplicaSet controller creates the pod)",
        "set securityContext.allowPrivilegeEscalation to false",
        create(&controller, Some(tns), pod("web-abc12", json!({
            "containers": [{ "name": "app", "securityContext": { "allowPrivilegeEscalation": true } }] }))).await,
    );
    m.refused(
        "a tenant labels a pod of its own as a Job's, for the Job to adopt it",
        "are the Job controller's: they make a pod a Job's",
        create(&a, Some(tns), {
            let mut p = pod("adopt-me", json!({}));
            p["metadata"]["labels"] = json!({ "batch.kubernetes.io/controller-uid": "0b7c5b4e-0000-0000-0000-000000000000" });
            p
        }).await,
    );
    m.refused(
        "a tenant has a Deployment make pods labelled as a Job's (the ReplicaSet controller creates them)",
        "are the Job controller's: they make a pod a Job's",
        create(&controller, Some(tns), {
            let mut p = pod("web-def34", json!({}));
            p["metadata"]["labels"] = json!({ "controller-uid": "0b7c5b4e-0000-0000-0000-000000000000" });
            p
        }).await,
    );
    m.refused(
        "a tenant runs a Job that chooses its own selector, to adopt another Job's pods",
        "chooses no selector of its own (spec.manualSelector)",
        create(&a, Some(tns), json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": "adopter" },
            "spec": {
                "manualSelector": true,
                "selector": { "matchLabels": { "batch.kubernetes.io/controller-uid": "0b7c5b4e-0000-0000-0000-000000000000" } },
                "template": {
                    "metadata": { "labels": { "batch.kubernetes.io/controller-uid": "0b7c5b4e-0000-0000-0000-000000000000" } },
                    "spec": { "restartPolicy": "Never", "containers": [{ "name": "x", "image": "busybox", "command": ["true"] }] },
                },
            },
        })).await,
    );
    m.refused(
        "a tenant exposes a NodePort Service (MTB block-use-of-nodeport-services)",
        "a NodePort Service opens every node to the outside",
        create(&a, Some(tns), service("np", json!({ "type": "NodePort" }))).await,
    );
    m.refused(
        "a tenant raises its resource quota (MTB block-modification-of-resource-quotas)",
        "forbidden",
        merge::<ResourceQuota>(
            &a,
            tns,
            "govcloud-allocation",
            json!({ "spec": { "hard": { "requests.cpu": "1000" } } }),
        )
        .await,
    );
    m.refused(
        "a tenant deletes its resource quota (MTB block-modification-of-resource-quotas)",
        "forbidden",
        delete::<ResourceQuota>(&a, tns, "govcloud-allocation").await,
    );
    m.refused(
        "a tenant lists the nodes (MTB block-access-to-cluster-resources)",
        "forbidden",
        listed(Api::<k8s_openapi::api::core::v1::Node>::all(a.clone())).await,
    );
    m.refused(
        "a tenant lists the namespaces (MTB block-access-to-cluster-resources)",
        "forbidden",
        listed(Api::<Namespace>::all(a.clone())).await,
    );
    m.refused(
        "a tenant creates a namespace (MTB block-access-to-cluster-resources)",
        "forbidden",
        create(
            &a,
            None,
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "mine" } }),
        )
        .await,
    );
    m.refused(
        "a tenant lists the cluster roles (MTB block-access-to-cluster-resources)",
        "forbidden",
        listed(Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(
            a.clone(),
        ))
        .await,
    );
    m.refused(
        "a tenant reads another unit's secrets (MTB block-multitenant-resources)",
        "forbidden",
        listed(Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
            a.clone(),
            &other_unit,
        ))
        .await,
    );
    m.refused(
        "a tenant creates a pod in another unit's namespace (MTB block-multitenant-resources)",
        "forbidden",
        create(&a, Some(&other_unit), pod("intruder", json!({}))).await,
    );
    let quota = Api::<ResourceQuota>::namespaced(a.clone(), tns)
        .get("govcloud-allocation")
        .await?;
    let hard = quota.spec.and_then(|s| s.hard).unwrap_or_default();
    let has = |keys: &[&str]| {
        let missing: Vec<&&str> = keys.iter().filter(|k| !hard.contains_key(**k)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("no {missing:?} in {hard:?}"))
        }
    };
    f.m.allowed(
        "the operator holds the tenancy to a quota of compute and storage (MTB configure-ns-quotas)",
        has(&["requests.cpu", "limits.cpu", "requests.memory", "limits.memory", "requests.storage"]),
    );
    f.m.allowed(
        "the operator holds the tenancy to counts of objects (MTB configure-ns-object-quota)",
        has(&[
            "pods",
            "services",
            "configmaps",
            "secrets",
            "persistentvolumeclaims",
            "count/jobs.batch",
            "services.loadbalancers",
            "services.nodeports",
        ]),
    );
    f.m.refused(
        "an administrator relaxes a tenancy namespace's Pod Security level",
        "only the operator sets or removes label pod-security.kubernetes.io/enforce",
        patch_namespace(
            &admin,
            tns,
            json!({ "metadata": { "labels": {
            "pod-security.kubernetes.io/enforce": "privileged" } } }),
        )
        .await,
    );

    // The operator's wipe Jobs run under either level.
    let wipe = |level| {
        let pvc = govcloud::release::Pvc {
            name: "app-1-system".into(),
            size_gib: 40,
            block: false,
            class: "standard".into(),
        };
        let job = govcloud::release::wipe_job(tns, "erp", &pvc, &Default::default(), level);
        let mut pod = json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": format!("wipe-{}", level.as_str()) } });
        pod["spec"] = job.object["spec"]["template"]["spec"].clone();
        pod
    };
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let pods = |ns: &str| {
        Api::<DynamicObject>::namespaced_with(
            admin.clone(),
            ns,
            &provisioning::api_resource("v1", "Pod"),
        )
    };
    let as_object =
        |v: Value| -> DynamicObject { serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}")) };
    f.m.allowed(
        "the operator runs its wipe Job's pod in a baseline tenancy namespace",
        outcome(
            pods(tns)
                .create(
                    &dry_run,
                    &as_object(wipe(provisioning::PodSecurity::Baseline)),
                )
                .await,
        ),
    );
    create(
        &admin,
        None,
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "restricted-probe",
        "labels": { "pod-security.kubernetes.io/enforce": "restricted" } } }),
    )
    .await?;
    f.m.allowed(
        "the operator runs its wipe Job's pod where the level is restricted",
        outcome(
            pods("restricted-probe")
                .create(
                    &dry_run,
                    &as_object(wipe(provisioning::PodSecurity::Restricted)),
                )
                .await,
        ),
    );
    f.check("Art. 8: Pod Security and the multi-tenancy benchmark");
    Ok(())
}

/// Defect 3: a unit patched `govcloud-default-deny` open and put its own
/// finalizer on the operator's volume; the operator trusted its hash and
/// never saw a change made by anyone.
pub async fn art8_what_the_operator_owns_is_the_units_to_use_not_to_change(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let tns = f.active("erp").await;
    let (a, admin, ns) = (f.tenant_a.clone(), f.admin.clone(), f.ns.clone());
    let tns = tns.as_str();
    let pvc = "app-1-system";
    // KubeVirt's share of `edit` reaches the unit once aggregated.
    eventually("KubeVirt's edit rules aggregated", WAIT, || async {
        listed(f.lab.dynamic(tns, &crate::support::lab::vms()).clone())
            .await
            .ok()
            .and(
                Api::<DynamicObject>::namespaced_with(a.clone(), tns, &crate::support::lab::vms())
                    .list(&ListParams::default())
                    .await
                    .ok(),
            )
    })
    .await;
    let owned = "belongs to the operator (tenancy erp)";
    let m = &mut f.m;
    m.refused(
        "a tenant opens govcloud-default-deny to all ingress",
        owned,
        merge::<NetworkPolicy>(
            &a,
            tns,
            provisioning::DENY_POLICY,
            json!({ "spec": { "ingress": [{}] } }),
        )
        .await,
    );
    m.refused(
        "a tenant deletes govcloud-allow-within-namespace",
        owned,
        delete::<NetworkPolicy>(&a, tns, provisioning::ALLOW_POLICY).await,
    );
    m.refused(
        "a tenant puts its own finalizer on the operator's volume",
        owned,
        merge::<PersistentVolumeClaim>(
            &a,
            tns,
            pvc,
            json!({ "metadata": { "finalizers": ["unit.example/keep"] } }),
        )
        .await,
    );
    let vm = |patch: Value| {
        let api =
            Api::<DynamicObject>::namespaced_with(a.clone(), tns, &crate::support::lab::vms());
        async move {
            outcome(
                api.patch("app-1", &PatchParams::default(), &Patch::Merge(patch))
                    .await,
            )
        }
    };
    m.refused(
        "a tenant gives the operator's VM more cores than approved",
        owned,
        vm(json!({ "spec": { "template": { "spec": { "domain": { "cpu": { "cores": 64 } } } } } }))
            .await,
    );
    m.refused(
        "a tenant strips the operator's label from its VM",
        owned,
        vm(json!({ "metadata": { "labels": { keys::MANAGED_BY: null } } })).await,
    );
    m.refused(
        "a tenant passes a policy of its own off as the operator's",
        "mark the operator's objects",
        create(&a, Some(tns), json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": { "name": "govcloud-extra", "labels": { keys::MANAGED_BY: provisioning::MANAGER } },
            "spec": { "podSelector": {}, "ingress": [{}] },
        }))
        .await,
    );
    m.allowed(
        "a tenant adds a NetworkPolicy of its own",
        create(&a, Some(tns), json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": { "name": "allow-web" },
            "spec": { "podSelector": { "matchLabels": { "app": "web" } }, "ingress": [{ "ports": [{ "port": 443 }] }] },
        }))
        .await,
    );
    m.refused(
        "a tenant marks its own policy as a tenancy's",
        "mark the operator's objects",
        merge::<NetworkPolicy>(
            &a,
            tns,
            "allow-web",
            json!({ "metadata": { "labels": { keys::TENANCY: "erp" } } }),
        )
        .await,
    );
    m.refused(
        "a tenant creates a Job that claims to wipe a volume",
        "mark the operator's objects",
        create(&a, Some(tns), json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": "wipe-fake", "annotations": { govcloud::release::WIPE_OF: pvc } },
            "spec": { "template": { "spec": { "restartPolicy": "Never",
                "containers": [{ "name": "wipe", "image": "busybox", "command": ["true"] }] } } },
        }))
        .await,
    );
    m.refused(
        "a tenant's service account opens govcloud-default-deny",
        "forbidden",
        {
            let sa = f
                .lab
                .plane
                .impersonating(
                    &format!("system:serviceaccount:{tns}:default"),
                    &[
                        "system:serviceaccounts",
                        &format!("system:serviceaccounts:{tns}"),
                    ],
                )
                .await?;
            merge::<NetworkPolicy>(
                &sa,
                tns,
                provisioning::DENY_POLICY,
                json!({ "spec": { "ingress": [{}] } }),
            )
            .await
        },
    );

    // A wipe Job's pod (as the Job controller makes it while a reduction
    // wipes a volume): the unit neither enters nor evicts it.
    let wipe_pod = "wipe-app-2-system-x7k2p";
    create(&admin, Some(tns), pod(wipe_pod, json!({}))).await?;
    let exec = http::Request::post(format!(
        "/api/v1/namespaces/{tns}/pods/{wipe_pod}/exec?command=true&stdout=true"
    ))
    .body(Vec::new())?;
    f.m.refused(
        "a tenant enters a wipe Job's pod to stop its overwrite",
        "overwrites a volume being removed (Art. 17, 19): the unit neither enters it",
        outcome(a.request_text(exec).await),
    );
    f.m.refused(
        "a tenant evicts a wipe Job's pod",
        "the unit neither evicts it",
        outcome(
            Api::<k8s_openapi::api::core::v1::Pod>::namespaced(a.clone(), tns)
                .evict(wipe_pod, &Default::default())
                .await,
        ),
    );

    // An administrator may change them; the operator puts them back.
    let deny: Api<NetworkPolicy> = Api::namespaced(admin.clone(), tns);
    f.m.allowed(
        "an administrator opens govcloud-default-deny to all ingress",
        merge::<NetworkPolicy>(
            &admin,
            tns,
            provisioning::DENY_POLICY,
            json!({ "spec": { "ingress": [{}] } }),
        )
        .await,
    );
    let restored = eventually("the default-deny put back", WAIT, || async {
        let p = deny.get(provisioning::DENY_POLICY).await.ok()?;
        p.spec?.ingress.unwrap_or_default().is_empty().then_some(())
    })
    .await;
    let events = f.lab.reasons_with(&ns, "erp", "DriftRepaired").await;
    f.m.allowed(
        "the operator puts back the default-deny an administrator opened, and says so",
        if events.iter().any(|e| e == "DriftRepaired") {
            Ok(restored)
        } else {
            Err(format!("events: {events:?}"))
        },
    );
    f.m.allowed(
        "an administrator adds a key of its own to the tenancy's quota",
        merge::<ResourceQuota>(
            &admin,
            tns,
            "govcloud-allocation",
            json!({ "spec": { "hard": { "count/widgets.example.com": "5" } } }),
        )
        .await,
    );
    let quotas: Api<ResourceQuota> = Api::namespaced(admin.clone(), tns);
    f.m.allowed("the operator puts back the quota as approved", {
        eventually("the quota put back", WAIT, || async {
            let q = quotas.get("govcloud-allocation").await.ok()?;
            (!q.spec?.hard?.contains_key("count/widgets.example.com")).then_some(())
        })
        .await;
        Ok(())
    });
    f.m.allowed(
        "an administrator binds everyone signed in to the unit's role",
        merge::<RoleBinding>(&admin, tns, provisioning::UNIT_BINDING, json!({ "subjects": [
            { "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated" }] })).await,
    );
    f.m.allowed("the operator binds the unit's group alone again", {
        eventually("the binding put back", WAIT, || async {
            (bound(&admin, tns).await == ["govcloud:unit:finance"]).then_some(())
        })
        .await;
        Ok(())
    });

    // Isolated, the network is what the policies are, not what was written.
    f.m.allowed(
        "a vendor isolates the tenancy",
        annotate::<Tenancy>(
            &f.vendor,
            &ns,
            "erp",
            json!({ keys::ISOLATE: "probe traffic", keys::DECIDED_BY: "li.vendor" }),
        )
        .await,
    );
    let lab = &f.lab;
    eventually("the isolation in force", WAIT, || async {
        lab.play_release(tns).await;
        let policies = Api::<NetworkPolicy>::namespaced(admin.clone(), tns)
            .list(&ListParams::default())
            .await
            .ok()?;
        let names: Vec<String> = policies.items.iter().map(|p| p.name_any()).collect();
        (names == [provisioning::DENY_POLICY]).then_some(())
    })
    .await;
    f.m.allowed(
        "an administrator opens govcloud-default-deny while the tenancy is isolated",
        merge::<NetworkPolicy>(
            &admin,
            tns,
            provisioning::DENY_POLICY,
            json!({ "spec": { "egress": [{}] } }),
        )
        .await,
    );
    f.m.allowed(
        "the operator denies all traffic of the isolated tenancy again",
        {
            eventually("the isolation restored", WAIT, || async {
                let p = deny.get(provisioning::DENY_POLICY).await.ok()?;
                p.spec?.egress.unwrap_or_default().is_empty().then_some(())
            })
            .await;
            Ok(())
        },
    );
    f.check("Art. 8: what the operator owns");
    Ok(())
}

/// Defect 4: the reviewer role patched namespaces freely: setting a unit's
/// group to `govcloud:reviewers` or `system:authenticated` made the operator
/// bind `edit` for them. Reviewers lift suspensions and nothing else; the
/// operator binds no system or role group, whoever declares it.
pub async fn art7_reviewers_decide_but_never_grant_access(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let tns = f.active("erp").await;
    let (r, admin, ns) = (f.reviewer.clone(), f.admin.clone(), f.ns.clone());
    let group_to = |g: &str| json!({ "metadata": { "annotations": { keys::UNIT_GROUP: g } } });
    let reviewers_only = "reviewers set or remove govcloud.dev/suspension-lifted on a unit's namespace and change nothing else";
    let m = &mut f.m;
    m.refused(
        "a reviewer declares the reviewers' group as unit finance's",
        reviewers_only,
        patch_namespace(&r, &ns, group_to("govcloud:reviewers")).await,
    );
    m.refused(
        "a reviewer declares everyone signed in as unit finance's group",
        reviewers_only,
        patch_namespace(&r, &ns, group_to("system:authenticated")).await,
    );
    m.refused(
        "a reviewer makes kube-system a unit",
        reviewers_only,
        patch_namespace(
            &r,
            "kube-system",
            json!({ "metadata": { "labels": { keys::UNIT: "system" } } }),
        )
        .await,
    );
    m.refused(
        "a reviewer strips the tenancy label from a tenancy namespace",
        "only the operator sets or removes label govcloud.dev/tenancy",
        patch_namespace(
            &r,
            &tns,
            json!({ "metadata": { "labels": { keys::TENANCY: null } } }),
        )
        .await,
    );
    m.refused(
        "a reviewer renames a unit for its letters",
        reviewers_only,
        patch_namespace(
            &r,
            &ns,
            json!({ "metadata": { "annotations": { keys::UNIT_NAME: "别的单位" } } }),
        )
        .await,
    );
    m.refused(
        "a reviewer gives a tenancy namespace an owner that does not exist, for the garbage collector to delete it",
        "an owner reference would let the garbage collector delete it",
        patch_namespace(&r, &tns, json!({ "metadata": { "ownerReferences": [{
            "apiVersion": "v1", "kind": "Node", "name": "gone",
            "uid": "00000000-0000-0000-0000-000000000001" }] } })).await,
    );
    m.refused(
        "a reviewer binds a role in a tenancy namespace",
        "forbidden",
        create(&r, Some(&tns), json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": "mine" },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit" },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "govcloud:reviewers" }],
        }))
        .await,
    );
    // The platform administrators declare groups; the operator binds only a
    // unit's own.
    for (who, group) in [
        ("everyone signed in", "system:authenticated"),
        ("the reviewers", "govcloud:reviewers"),
    ] {
        f.m.allowed(
            &format!("an administrator declares {who} ({group}) as unit finance's group"),
            patch_namespace(&admin, &ns, group_to(group)).await,
        );
        let message = tenancy_says_of(
            &f.lab,
            &ns,
            "erp",
            "UnitGroupKnown",
            "False",
            "GroupRefused",
            group,
        )
        .await;
        let lab = &f.lab;
        let subjects = eventually("the binding to go", WAIT, || async {
            let s = bound(&lab.admin, &tns).await;
            (!s.iter().any(|g| g == group || g == "govcloud:unit:finance")).then_some(s)
        })
        .await;
        f.m.refused(
            &format!("the operator binds {who} in the tenancy namespace"),
            &format!("not bound: {group} is"),
            if subjects.is_empty() {
                Err(message)
            } else {
                Ok(())
            },
        );
    }
    f.m.allowed(
        "an administrator declares the unit's own group again",
        patch_namespace(&admin, &ns, group_to("govcloud:unit:finance")).await,
    );
    let lab = &f.lab;
    eventually("the unit's group bound again", WAIT, || async {
        (bound(&lab.admin, &tns).await == ["govcloud:unit:finance"]).then_some(())
    })
    .await;
    f.m.allowed("the operator binds the unit's own group again", Ok(()));
    f.check("Art. 7: reviewers grant nothing");
    Ok(())
}

/// Defect 5: with its label removed, a tenancy namespace could be deleted and
/// its volumes went unwiped; a unit namespace holding Active tenancies went
/// the same way. Only the operator removes those marks.
pub async fn art19_a_removed_label_frees_nothing(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let tns = f.active("erp").await;
    let (admin, ns) = (f.admin.clone(), f.ns.clone());
    let unit_ns: Api<Namespace> = Api::all(admin.clone());
    let counted = eventually("the tenancies in service counted", WAIT, || async {
        let n = unit_ns.get(&ns).await.ok()?;
        n.annotations()
            .get(keys::TENANCIES_IN_SERVICE)
            .cloned()
            .filter(|c| c == "1")
    })
    .await;
    let m = &mut f.m;
    m.allowed(
        "the operator counts unit finance's tenancies in service on its namespace",
        if counted == "1" { Ok(()) } else { Err(counted) },
    );
    m.refused(
        "an administrator removes the tenancy label from a tenancy namespace",
        "only the operator sets or removes label govcloud.dev/tenancy",
        patch_namespace(
            &admin,
            &tns,
            json!({ "metadata": { "labels": { keys::TENANCY: null } } }),
        )
        .await,
    );
    m.refused(
        "an administrator removes the operator's reference from a tenancy namespace",
        "only the operator sets or removes annotation govcloud.dev/tenancy-ref",
        patch_namespace(
            &admin,
            &tns,
            json!({ "metadata": { "annotations": { provisioning::TENANCY_REF: null } } }),
        )
        .await,
    );
    m.refused(
        "an administrator deletes a tenancy namespace",
        "belongs to tenancy erp",
        outcome(unit_ns.delete(&tns, &DeleteParams::default()).await),
    );
    m.refused(
        "an administrator removes the unit label of a unit holding a tenancy in service",
        "holds 1 tenancies in service",
        patch_namespace(
            &admin,
            &ns,
            json!({ "metadata": { "labels": { keys::UNIT: null } } }),
        )
        .await,
    );
    m.refused(
        "an administrator resets the count of a unit's tenancies in service",
        "only the operator sets or removes annotation govcloud.dev/tenancies-in-service",
        patch_namespace(
            &admin,
            &ns,
            json!({ "metadata": { "annotations": { keys::TENANCIES_IN_SERVICE: "0" } } }),
        )
        .await,
    );
    m.refused(
        "an administrator lifts a unit's suspension by removing its label",
        "only the operator sets or removes label govcloud.dev/suspended",
        patch_namespace(
            &admin,
            &ns,
            json!({ "metadata": { "labels": { keys::SUSPENDED: "false" } } }),
        )
        .await,
    );
    m.refused(
        "an administrator gives a unit's namespace an owner",
        "an owner reference would let the garbage collector delete it",
        patch_namespace(
            &admin,
            &ns,
            json!({ "metadata": { "ownerReferences": [{
            "apiVersion": "v1", "kind": "Node", "name": "gone",
            "uid": "00000000-0000-0000-0000-000000000001" }] } }),
        )
        .await,
    );
    m.refused(
        "an administrator deletes the namespace of a unit holding a tenancy in service",
        "is unit finance's",
        outcome(unit_ns.delete(&ns, &DeleteParams::default()).await),
    );
    f.check("Art. 19: a removed label frees nothing");
    Ok(())
}

/// Defect 5, when every guard was bypassed (admission off): the marks of a
/// tenancy namespace removed are put back, and a volume deleted anyway makes
/// the tenancy say its data went unwiped, instead of Ready.
pub async fn art19_removed_marks_come_back_and_volumes_lost_without_a_wipe_are_reported(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let (unit, tns) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    // The marks of the tenancy namespace, removed anyway, are put back.
    let namespaces: Api<Namespace> = Api::all(lab.admin.clone());
    namespaces
        .patch(
            &tns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": {
                keys::TENANCY: null, keys::MANAGED_BY: null,
                "pod-security.kubernetes.io/enforce": "privileged" } } })),
        )
        .await?;
    eventually("the namespace's marks put back", WAIT, || async {
        let n = namespaces.get(&tns).await.ok()?;
        let labels = n.labels();
        (labels.get(keys::TENANCY).map(String::as_str) == Some("oa")
            && labels.get(keys::MANAGED_BY).map(String::as_str) == Some(provisioning::MANAGER)
            && labels
                .get("pod-security.kubernetes.io/enforce")
                .map(String::as_str)
                == Some("baseline"))
        .then_some(())
    })
    .await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(lab.admin.clone(), &tns);
    pvcs.delete("vol-files", &DeleteParams::default()).await?;
    // No kubelet uses it: what the protection controller would do.
    pvcs.patch(
        "vol-files",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .ok();
    let message = tenancy_says(&lab, ns, "oa", "VolumesLost", "True", "DeletedWithoutWipe").await;
    assert!(message.contains("vol-files"), "{message}");
    let (status, reason, _) = tenancy_condition(&lab, ns, "oa", "Ready")
        .await
        .unwrap_or_default();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "VolumesLost"));
    let events = lab.reasons_with(ns, "oa", "VolumesLost").await;
    assert!(events.iter().any(|e| e == "VolumesLost"), "{events:?}");
    assert_eq!(lab.metrics.volumes_lost_total(), 1);
    let t = lab.tenancies(ns).get("oa").await?;
    assert_eq!(t.status.unwrap().lost_volumes[0].name, "vol-files");
    // Acknowledged by a vendor, with what was done; the loss stays on record.
    lab.annotate(
        &lab.tenancies(ns),
        "oa",
        keys::LOSS_ACKNOWLEDGED,
        Some("restored from backup B-17"),
    )
    .await;
    tenancy_says(&lab, ns, "oa", "Ready", "True", "InPlace").await;
    tenancy_says(&lab, ns, "oa", "VolumesLost", "True", "Acknowledged").await;
    Ok(())
}

/// Defect 6: any Job whose `govcloud.dev/wipe-of` named a volume counted as
/// its wipe. Only the Job the operator created (by UID) running its command
/// does; another is removed and the volume wiped for real.
pub async fn art19_a_wipe_record_comes_only_from_the_operators_own_job(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-06-01T02:00:00Z").await;
    let (unit, tns) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    // A Job that "succeeded" at wiping vol-files by running `true`, made
    // before the release (as nothing in admission stops here).
    let jobs: Api<Job> = Api::namespaced(lab.admin.clone(), &tns);
    let name = govcloud::release::job_name("vol-files");
    let forged: Job = serde_json::from_value(json!({
        "metadata": { "name": name,
            "labels": { keys::MANAGED_BY: provisioning::MANAGER, keys::TENANCY: "oa" },
            "annotations": { govcloud::release::WIPE_OF: "vol-files" } },
        "spec": { "template": { "spec": { "restartPolicy": "Never",
            "containers": [{ "name": "wipe", "image": "busybox", "command": ["true"] }],
            "volumes": [{ "name": "volume", "persistentVolumeClaim": { "claimName": "vol-files" } }] } } },
    }))?;
    let forged_uid = jobs
        .create(&PostParams::default(), &forged)
        .await?
        .uid()
        .unwrap_or_default();
    lab.jobs_finish(&tns, true).await?;
    // Terminated from 2026-07-16.
    let clerk = lab.plane.client(&unit.member("clerk")).await?;
    let stop: ChangeRequest = from_sample(crate::admission::TERMINATE, ns, "stop", json!({}));
    let mut stop = serde_json::to_value(stop)?;
    stop["spec"]["tenancy"] = json!("oa");
    stop["spec"]["effectiveDate"] = json!("2026-07-16");
    Api::<ChangeRequest>::namespaced(lab.admin.clone(), ns)
        .create(&PostParams::default(), &serde_json::from_value(stop)?)
        .await?;
    change_in(&lab, ns, "stop", ChangePhase::UnderReview).await;
    let g = generation::<ChangeRequest>(&lab, ns, "stop").await;
    annotate::<ChangeRequest>(&lab.admin, ns, "stop", decision(REVIEWER, g, "approve")).await?;
    change_in(&lab, ns, "stop", ChangePhase::Approved).await;
    lab.set_clock("2026-07-15T16:00:00Z");
    // The unit's people watch a release; they do not act in it.
    let configmaps = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(clerk.clone(), &tns);
    eventually("the unit's hands off the namespace", WAIT, || async {
        let refused = configmaps
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({ "metadata": { "name": "late" } })).ok()?,
            )
            .await
            .err()?;
        matches!(refused, kube::Error::Api(s) if s.code == 403).then_some(())
    })
    .await;
    assert!(
        listed(Api::<Job>::namespaced(clerk.clone(), &tns))
            .await
            .is_ok(),
        "still watching"
    );
    let t = eventually("the release", Duration::from_secs(90), || async {
        lab.play_release(&tns).await;
        let t = lab.tenancies(ns).get("oa").await.ok()?;
        (t.status.as_ref()?.phase? == TenancyPhase::Retired).then_some(t)
    })
    .await;
    let status = t.status.unwrap_or_default();
    let record = status
        .wipe_records
        .iter()
        .find(|r| r.name == "vol-files")
        .ok_or("a wipe record of vol-files")?;
    let by = record.job.clone().unwrap_or_default();
    assert!(by.starts_with(&format!("{name} (uid ")), "{by}");
    assert!(
        !by.contains(&forged_uid),
        "the forged Job's success counted: {by}"
    );
    let events = lab.reasons_with(ns, "oa", "WipeJobRefused").await;
    assert!(events.iter().any(|e| e == "WipeJobRefused"), "{events:?}");
    Ok(())
}

/// Defect 7: a reviewer who is also in a unit's group approved that unit's
/// own request. Such a reviewer decides, amends, lifts and isolates nothing
/// of their own unit's; another unit's, yes.
pub async fn art13_a_reviewer_decides_nothing_of_their_own_unit(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let (ns, other) = (f.ns.clone(), f.other_ns.clone());
    let both = f
        .lab
        .plane
        .impersonating(
            "zhou.reviewer",
            &["govcloud:reviewers", "govcloud:unit:finance"],
        )
        .await?;
    let g = f.filed("oa").await;
    let own = "you belong to the group of unit finance (govcloud:unit:finance)";
    let m = &mut f.m;
    m.refused(
        "a reviewer of the unit approves its request",
        own,
        annotate::<Crr>(&both, &ns, "oa", decision("zhou.reviewer", g, "approve")).await,
    );
    let mut ret = decision("zhou.reviewer", g, "return");
    ret[keys::OPINION] = json!("请补充");
    m.refused(
        "a reviewer of the unit returns its request",
        own,
        annotate::<Crr>(&both, &ns, "oa", ret).await,
    );
    m.refused(
        "a reviewer of the unit amends its request under review",
        "a reviewer does not amend their own unit's CloudResourceRequest",
        merge::<Crr>(
            &both,
            &ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 4 } } }),
        )
        .await,
    );
    m.allowed(
        "a reviewer approves the request of a unit they do not belong to",
        annotate::<Crr>(&f.reviewer, &ns, "oa", decision(REVIEWER, g, "approve")).await,
    );
    let b = f.tenant_b.clone();
    file(&b, &other, "clinic", json!({})).await?;
    request_in(&f.lab, &other, "clinic", RequestPhase::UnderReview).await;
    let g = generation::<Crr>(&f.lab, &other, "clinic").await;
    f.m.allowed(
        "a reviewer of the unit approves another unit's request",
        annotate::<Crr>(
            &both,
            &other,
            "clinic",
            decision("zhou.reviewer", g, "approve"),
        )
        .await,
    );
    let tns = f.active("erp").await;
    let _ = tns;
    let m = &mut f.m;
    m.refused(
        "a reviewer of the unit opens a rectification case on its tenancy",
        "you belong to the group of the unit whose tenancy this is",
        annotate::<Tenancy>(
            &both,
            &ns,
            "erp",
            json!({ keys::RECTIFICATION: "3", keys::DECIDED_BY: "zhou.reviewer" }),
        )
        .await,
    );
    m.refused(
        "a reviewer of the unit isolates its tenancy",
        "you belong to the group of the unit whose tenancy this is",
        annotate::<Tenancy>(
            &both,
            &ns,
            "erp",
            json!({ keys::ISOLATE: "x", keys::DECIDED_BY: "zhou.reviewer" }),
        )
        .await,
    );
    // Suspended (as the operator marks it), lifted by another reviewer only.
    Api::<Namespace>::all(f.operator.clone())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { keys::SUSPENDED: "true" } } })),
        )
        .await?;
    m.refused(
        "a reviewer of the unit lifts its suspension",
        "another reviewer lifts its suspension",
        lift_suspension(&both, &ns).await,
    );
    m.allowed(
        "a reviewer lifts the suspension of a unit they do not belong to",
        lift_suspension(&f.reviewer, &ns).await,
    );
    f.check("Art. 13: separation of duties");
    Ok(())
}

/// Defect 8: only the approved classes were pinned, so the backup allowance
/// bought primary storage of any other class; NodePorts and external IPs
/// went around the public-IP count; a class nobody offers was approved.
pub async fn art14_nothing_beyond_the_approved_envelope_is_had(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let tns = f.active("erp").await;
    let (a, ns) = (f.tenant_a.clone(), f.ns.clone());
    let tns = tns.as_str();
    let m = &mut f.m;
    m.refused(
        "a tenant claims storage of a class it was not approved (premium-ssd)",
        "exceeded quota",
        create(&a, Some(tns), pvc("fast", "premium-ssd", "10Gi")).await,
    );
    m.refused(
        "a tenant claims more of its approved class than approved",
        "exceeded quota",
        create(&a, Some(tns), pvc("more", "standard", "10Gi")).await,
    );
    m.allowed(
        "a tenant claims backup storage within its backup allowance",
        create(&a, Some(tns), pvc("backups", "backup", "100Gi")).await,
    );
    m.refused(
        "a tenant routes outside traffic in by externalIPs",
        "spec.externalIPs would route outside traffic",
        create(
            &a,
            Some(tns),
            service("ext", json!({ "externalIPs": ["203.0.113.7"] })),
        )
        .await,
    );
    m.refused(
        "a tenant opens a LoadBalancer Service with node ports",
        "sets allocateLoadBalancerNodePorts: false",
        create(
            &a,
            Some(tns),
            service("lb-ports", json!({ "type": "LoadBalancer" })),
        )
        .await,
    );
    m.allowed(
        "a tenant opens its one approved public IP as a LoadBalancer Service",
        create(
            &a,
            Some(tns),
            service(
                "lb",
                json!({ "type": "LoadBalancer", "allocateLoadBalancerNodePorts": false }),
            ),
        )
        .await,
    );
    m.refused(
        "a tenant opens a second public IP",
        "exceeded quota",
        create(
            &a,
            Some(tns),
            service(
                "lb2",
                json!({ "type": "LoadBalancer", "allocateLoadBalancerNodePorts": false }),
            ),
        )
        .await,
    );
    // A class neither the cluster nor the price list has.
    let mut gold: Crr = from_sample(crate::admission::OA, &ns, "gold", json!({}));
    gold.spec.resources.cloud_storage[0].class = "gold".into();
    f.m.allowed(
        "a tenant files a request for storage of class gold",
        outcome(
            Api::<Crr>::namespaced(a.clone(), &ns)
                .create(&PostParams::default(), &gold)
                .await,
        ),
    );
    request_in(&f.lab, &ns, "gold", RequestPhase::UnderReview).await;
    let g = generation::<Crr>(&f.lab, &ns, "gold").await;
    annotate::<Crr>(&f.reviewer, &ns, "gold", decision(REVIEWER, g, "approve")).await?;
    let refusal = f
        .lab
        .request_where(&ns, "gold", "the approval refused", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "DecisionValid" && c.reason == "StorageClassNotOffered")
            })
        })
        .await;
    let status = refusal.status.unwrap_or_default();
    let message = status
        .conditions
        .iter()
        .find(|c| c.type_ == "DecisionValid")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    f.m.refused(
        "a reviewer approves storage of a class nothing offers",
        "storage class gold is not offered here (neither the cluster nor the price list has it): amend spec.resources.cloudStorage to one of backup, premium-ssd, ssd, standard",
        if status.phase == Some(RequestPhase::UnderReview) { Err(message) } else { Ok(()) },
    );
    f.check("Art. 14: the approved envelope");
    Ok(())
}

/// Defect 9: a reviewer could add a price period effective in the past,
/// repricing bills already issued, and edit the State Council calendars that
/// count their own deadlines. Both are the platform administrators', and a
/// period only ever starts after the latest published one.
pub async fn art6_prices_and_calendars_are_the_platform_administrators_to_publish(
    _: Ctx,
) -> TestResult {
    let mut f = Fixture::new().await;
    let (r, a, admin) = (f.reviewer.clone(), f.tenant_a.clone(), f.admin.clone());
    let catalogs: Api<ServiceCatalog> = Api::all(admin.clone());
    let catalog = catalogs.get("default").await?;
    let latest = catalog
        .spec
        .periods
        .iter()
        .map(|p| p.effective_from)
        .max()
        .ok_or("the shipped price list has a period")?;
    let period_from = |from: jiff::civil::Date| {
        let mut p = serde_json::to_value(&catalog.spec.periods[0]).unwrap_or_default();
        p["effectiveFrom"] = json!(from.to_string());
        p
    };
    let with_period = |from: jiff::civil::Date| {
        let mut periods = serde_json::to_value(&catalog.spec.periods).unwrap_or_default();
        if let Some(ps) = periods.as_array_mut() {
            ps.push(period_from(from));
        }
        json!({ "spec": { "periods": periods } })
    };
    let patch = |client: &Client, body: Value| {
        let api: Api<ServiceCatalog> = Api::all(client.clone());
        async move {
            outcome(
                api.patch("default", &PatchParams::default(), &Patch::Merge(body))
                    .await,
            )
        }
    };
    let earlier = latest.checked_sub(jiff::Span::new().days(30))?;
    let later = latest.checked_add(jiff::Span::new().days(30))?;
    let m = &mut f.m;
    m.refused(
        "a reviewer adds a price period",
        "forbidden",
        patch(&r, with_period(later)).await,
    );
    m.refused(
        "a reviewer publishes a price list of their own",
        "forbidden",
        create(
            &r,
            None,
            json!({ "apiVersion": "govcloud.dev/v1alpha1", "kind": "ServiceCatalog",
            "metadata": { "name": "cheaper" },
            "spec": { "currency": "CNY", "periods": [period_from(later)] } }),
        )
        .await,
    );
    m.refused(
        "a reviewer moves a holiday in the State Council calendar",
        "forbidden",
        {
            let calendars: Api<WorkCalendar> = Api::all(r.clone());
            outcome(
                calendars
                    .patch(
                        "cn-2026",
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "metadata": { "labels": { "edited": "yes" } } })),
                    )
                    .await,
            )
        },
    );
    m.refused(
        "a tenant adds a price period",
        "forbidden",
        patch(&a, with_period(later)).await,
    );
    m.refused(
        "an administrator adds a price period starting before the latest published one",
        "a new price period starts after the latest published one",
        patch(&admin, with_period(earlier)).await,
    );
    m.allowed(
        "an administrator adds a price period starting after the latest published one",
        patch(&admin, with_period(later)).await,
    );
    f.check("Art. 6: prices and calendars");
    Ok(())
}

/// Defect 10: the README told units to patch `spec.compliance`, which every
/// user was refused. The unit and reviewers add evidence there, and change
/// nothing else of the tenancy.
pub async fn art12_the_unit_and_reviewers_add_compliance_evidence(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    f.active("erp").await;
    let (a, b, r, v, ns) = (
        f.tenant_a.clone(),
        f.tenant_b.clone(),
        f.reviewer.clone(),
        f.vendor.clone(),
        f.ns.clone(),
    );
    let evidence = |reference: &str| {
        json!({ "spec": { "compliance": { "xinchuang": {
        "completedOn": "2026-11-20", "reference": reference } } } })
    };
    let m = &mut f.m;
    m.allowed(
        "a tenant adds its Xinchuang evidence to its tenancy",
        merge::<Tenancy>(&a, &ns, "erp", evidence("XC-2026-0042")).await,
    );
    m.allowed(
        "a reviewer corrects the evidence's reference",
        merge::<Tenancy>(&r, &ns, "erp", evidence("XC-2026-0043")).await,
    );
    m.refused(
        "a vendor adds compliance evidence",
        "is added by its unit (govcloud:unit:finance) or a reviewer",
        merge::<Tenancy>(&v, &ns, "erp", evidence("XC-vendor")).await,
    );
    m.refused(
        "a tenant of another unit adds evidence to the tenancy",
        "forbidden",
        merge::<Tenancy>(&b, &ns, "erp", evidence("XC-other")).await,
    );
    let mut both = evidence("XC-2026-0044");
    both["spec"]["allocation"] = json!({ "publicIPs": 5 });
    m.refused(
        "a tenant adds evidence and more public IPs in one patch",
        "only spec.compliance takes evidence directly",
        merge::<Tenancy>(&a, &ns, "erp", both).await,
    );
    m.refused(
        "a tenant renames its system on the tenancy",
        "file a ChangeRequest (action Modify, Art. 17)",
        merge::<Tenancy>(
            &a,
            &ns,
            "erp",
            json!({ "spec": { "systemName": "另一个系统" } }),
        )
        .await,
    );
    let t = f.lab.tenancies(&ns).get("erp").await?;
    let kept = t
        .spec
        .compliance
        .xinchuang
        .map(|x| x.reference)
        .unwrap_or_default();
    f.m.allowed(
        "the operator keeps the evidence the unit and reviewer added",
        if kept == "XC-2026-0043" {
            Ok(())
        } else {
            Err(kept)
        },
    );
    f.check("Art. 12: compliance evidence");
    Ok(())
}

/// Waits until the operator holds a change back (Submitted, not accepted);
/// the message it gives.
async fn held_back(lab: &Lab, ns: &str, name: &str) -> String {
    let changes: Api<ChangeRequest> = Api::namespaced(lab.admin.clone(), ns);
    eventually(&format!("{name} held back"), WAIT, || async {
        let s = changes.get(name).await.ok()?.status?;
        let refused = s
            .conditions
            .iter()
            .find(|c| c.type_ == "Accepted" && c.status == "False")?;
        (s.phase == Some(ChangePhase::Submitted)).then(|| refused.message.clone())
    })
    .await
}

/// Defect 11: dates were refused only in status, after which the record
/// could be neither corrected nor withdrawn. What a schema can say is refused
/// at apply; what needs today's date and the State Council calendar waits,
/// open to correction or withdrawal, before any reviewer sees it.
pub async fn art19_dates_are_refused_at_apply_or_left_open_to_correction(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    f.active("erp").await;
    let (a, ns) = (f.tenant_a.clone(), f.ns.clone());
    let changes: Api<ChangeRequest> = Api::namespaced(a.clone(), &ns);
    let terminate = |name: &str, date: &str| {
        let mut c: ChangeRequest = from_sample(crate::admission::TERMINATE, &ns, name, json!({}));
        c.spec.tenancy = "erp".into();
        let mut v = serde_json::to_value(c).unwrap_or_default();
        v["spec"]["effectiveDate"] = json!(date);
        serde_json::from_value::<ChangeRequest>(v).unwrap_or_else(|e| panic!("{e}"))
    };
    let m = &mut f.m;
    m.refused(
        "a tenant files a termination effective in 2020",
        "spec.effectiveDate is a day from 2025-01-02 to 2099-12-31",
        outcome(
            changes
                .create(&PostParams::default(), &terminate("past", "2020-01-01"))
                .await,
        ),
    );
    let mut ancient: Crr = from_sample(crate::admission::OA, &ns, "ancient", json!({}));
    ancient.spec.planned_start = jiff::civil::date(1900, 1, 1);
    m.refused(
        "a tenant files a request planned to start in 1900",
        "spec.plannedStart is when the unit starts using the resources: a date from 2025-01-02",
        outcome(
            Api::<Crr>::namespaced(a.clone(), &ns)
                .create(&PostParams::default(), &ancient)
                .await,
        ),
    );
    // Three days out is too early whatever the calendar says.
    let soon = (f.lab.now() + jiff::SignedDuration::from_hours(72))
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai")?)
        .date();
    m.allowed(
        "a tenant files a termination dated too early",
        outcome(
            changes
                .create(
                    &PostParams::default(),
                    &terminate("early", &soon.to_string()),
                )
                .await,
        ),
    );
    let held = held_back(&f.lab, &ns, "early").await;
    let earliest = held
        .split("the earliest effective date is ")
        .nth(1)
        .and_then(|rest| rest.get(..10))
        .ok_or_else(|| format!("no earliest date in {held:?}"))?
        .to_owned();
    f.m.refused(
        "the operator takes a termination dated too early into review",
        "the earliest effective date is",
        Err(held),
    );
    f.m.allowed(
        "a tenant corrects the date of its held-back termination",
        merge::<ChangeRequest>(
            &a,
            &ns,
            "early",
            json!({ "spec": { "effectiveDate": earliest } }),
        )
        .await,
    );
    change_in(&f.lab, &ns, "early", ChangePhase::UnderReview).await;
    f.m.allowed(
        "a tenant files another termination dated too early",
        outcome(
            changes
                .create(
                    &PostParams::default(),
                    &terminate("hasty", &soon.to_string()),
                )
                .await,
        ),
    );
    held_back(&f.lab, &ns, "hasty").await;
    f.m.allowed(
        "a tenant withdraws its held-back termination",
        delete::<ChangeRequest>(&a, &ns, "hasty").await,
    );
    // A rejected request stays as the record; the unit files anew.
    let g = f.filed("portal").await;
    let mut reject = decision(REVIEWER, g, "reject");
    reject[keys::OPINION] = json!("不符合集约建设要求");
    annotate::<Crr>(&f.reviewer, &ns, "portal", reject).await?;
    request_in(&f.lab, &ns, "portal", RequestPhase::Rejected).await;
    f.m.refused(
        "a tenant re-applies its rejected request under the same name",
        "it was rejected and stays as the record of that decision: file a new CloudResourceRequest under another name",
        merge::<Crr>(&a, &ns, "portal", json!({ "spec": { "resources": { "publicIPs": 0 } } })).await,
    );
    f.check("Art. 19: dates");
    Ok(())
}

/// Nothing that counts against a tenancy's quota goes into its namespace,
/// and the unit's people do not get in, before the quota is in force.
/// kube-controller-manager (its quota controller) is stopped to hold the
/// quota not yet in force.
pub async fn art14_a_unit_uses_nothing_in_its_namespace_before_the_quota_is_in_force(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = unit.namespace.clone();
    lab.file(&unit, crate::admission::OA, "oa", |_| {}).await;
    lab.plane.stop_controller_manager();
    lab.approve(&ns, "oa").await;
    let tns = namespace_name(&ns, "finance", "oa");
    let vms_api = lab.dynamic(&tns, &crate::support::lab::vms());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(lab.admin.clone(), &tns);
    let quotas: Api<ResourceQuota> = Api::namespaced(lab.admin.clone(), &tns);
    let policies: Api<NetworkPolicy> = Api::namespaced(lab.admin.clone(), &tns);
    let bindings: Api<RoleBinding> = Api::namespaced(lab.admin.clone(), &tns);
    eventually("the envelope", WAIT, || async {
        let quota = quotas.get_opt(provisioning::QUOTA).await.ok()??;
        let policies = policies
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .len();
        (policies == 2).then_some(quota)
    })
    .await;
    // Time for the operator to do anything more it would.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let quota = quotas.get(provisioning::QUOTA).await?;
    assert!(
        quota
            .status
            .as_ref()
            .and_then(|s| s.hard.as_ref())
            .is_none(),
        "the quota is not in force without its controller: {:?}",
        quota.status
    );
    assert!(
        bindings
            .get_opt(provisioning::UNIT_BINDING)
            .await?
            .is_none(),
        "the unit was bound before its quota was in force"
    );
    let made = (
        vms_api.list(&ListParams::default()).await?.items.len(),
        pvcs.list(&ListParams::default()).await?.items.len(),
    );
    assert_eq!(
        made,
        (0, 0),
        "VMs and volumes before the quota was in force"
    );
    let t = lab.tenancies(&ns).get("oa").await?;
    let status = t.status.unwrap_or_default();
    assert_eq!(status.phase, Some(TenancyPhase::Provisioning));
    assert!(
        status
            .inventory
            .iter()
            .any(|i| i.kind == "RoleBinding" && !i.ready),
        "{:?}",
        status.inventory
    );
    let member = lab.plane.client(&unit.member("li")).await?;
    let tried = create(&member, Some(&tns), pvc("mine", "standard", "1Gi")).await;
    assert!(
        tried.as_ref().is_err_and(|e| e.contains("forbidden")),
        "a volume before the quota: {tried:?}"
    );
    let tried = create(&member, Some(&tns), pod("mine", json!({}))).await;
    assert!(
        tried.as_ref().is_err_and(|e| e.contains("forbidden")),
        "a pod before the quota: {tried:?}"
    );

    lab.plane.start_controller_manager()?;
    let bound = eventually(
        "the unit bound once the quota is in force",
        WAIT,
        || async { bindings.get_opt(provisioning::UNIT_BINDING).await.ok()? },
    )
    .await;
    let quota = quotas.get(provisioning::QUOTA).await?;
    let status = quota.status.unwrap_or_default();
    assert_eq!(status.hard, quota.spec.and_then(|s| s.hard));
    assert!(
        bound.metadata.creation_timestamp >= quota.metadata.creation_timestamp,
        "bound before the quota existed"
    );
    let delivered = lab.deliver(&ns, "oa", "finance").await;
    assert_eq!(
        delivered.status.and_then(|s| s.phase),
        Some(TenancyPhase::Trial)
    );
    // The quota counts the volumes made before it was in force: the unit's
    // approved standard storage is all taken by them.
    let tried = create(&member, Some(&tns), pvc("more", "standard", "10Gi")).await;
    assert!(
        tried.as_ref().is_err_and(|e| e.contains("exceeded quota")),
        "more storage than approved: {tried:?}"
    );
    Ok(())
}
