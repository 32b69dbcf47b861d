//! Who may do what (Ch. 2, Art. 7-10, 13, 15, 17, 19, 20, 25): the chart as
//! `helm template` renders it, installed into a real apiserver, with the
//! operator running as the chart's ServiceAccount and distinct users acting.

use govcloud::api::{
    ChangePhase, ChangeRequest, CloudResourceRequest, RequestPhase, Tenancy, keys,
};
use govcloud::config::Config;
use govcloud::controlplane::User;
use govcloud::controlplane::helm::Release;
use govcloud::manifests;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};

use crate::support::lab::{Lab, REVIEWER, WAIT, vms};
use crate::support::{Ctx, TestResult, eventually, read};

const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";
const URGENT: &str = "config/samples/21-cloudresourcerequest-emergency.yaml";
const MODIFY: &str = "config/samples/30-changerequest-modify.yaml";
const NAMESPACE: &str = "govcloud-system";

/// The matrix: what was tried, and `None` when it must succeed or the words
/// the refusal must contain.
#[derive(Default)]
struct Matrix {
    cases: Vec<(String, Option<String>, Result<(), String>)>,
}

impl Matrix {
    fn allowed(&mut self, what: &str, outcome: Result<(), String>) {
        self.cases.push((what.into(), None, outcome));
    }

    fn refused(&mut self, what: &str, words: &str, outcome: Result<(), String>) {
        self.cases.push((what.into(), Some(words.into()), outcome));
    }

    fn check(&self) {
        let mut wrong = Vec::new();
        for (what, expected, got) in &self.cases {
            match (expected, got) {
                (None, Ok(())) => {}
                (Some(words), Err(message)) if message.contains(words.as_str()) => {}
                _ => wrong.push(format!("{what}: expected {expected:?}, got {got:?}")),
            }
        }
        eprintln!(
            "  {} cases, {} as expected",
            self.cases.len(),
            self.cases.len() - wrong.len()
        );
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}

fn outcome<T>(r: Result<T, kube::Error>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| match e {
        kube::Error::Api(s) => s.message,
        e => e.to_string(),
    })
}

async fn merge<K>(client: &Client, ns: &str, name: &str, patch: Value) -> Result<(), String>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    outcome(
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await,
    )
}

async fn annotate<K>(
    client: &Client,
    ns: &str,
    name: &str,
    annotations: Value,
) -> Result<(), String>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    merge::<K>(
        client,
        ns,
        name,
        json!({ "metadata": { "annotations": annotations } }),
    )
    .await
}

async fn delete<K>(client: &Client, ns: &str, name: &str) -> Result<(), String>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    outcome(api.delete(name, &DeleteParams::default()).await)
}

fn from_sample<K: serde::de::DeserializeOwned>(
    sample: &str,
    ns: &str,
    name: &str,
    annotations: Value,
) -> K {
    let objs = manifests::parse(sample, &read(sample)).unwrap_or_else(|e| panic!("{e}"));
    let mut v = serde_json::to_value(&objs[0]).unwrap_or_default();
    v["metadata"] = json!({ "name": name, "namespace": ns, "annotations": annotations });
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

async fn file(client: &Client, ns: &str, name: &str, annotations: Value) -> Result<(), String> {
    let api: Api<CloudResourceRequest> = Api::namespaced(client.clone(), ns);
    outcome(
        api.create(
            &PostParams::default(),
            &from_sample(OA, ns, name, annotations),
        )
        .await,
    )
}

async fn file_change(client: &Client, ns: &str, name: &str, tenancy: &str) -> Result<(), String> {
    let mut change: ChangeRequest = from_sample(MODIFY, ns, name, json!({}));
    change.spec.tenancy = tenancy.into();
    let api: Api<ChangeRequest> = Api::namespaced(client.clone(), ns);
    outcome(api.create(&PostParams::default(), &change).await)
}

fn decision(by: &str, generation: i64, decision: &str) -> Value {
    json!({
        keys::DECISION: decision,
        keys::DECIDED_GENERATION: generation.to_string(),
        keys::DECIDED_BY: by,
    })
}

async fn generation<K>(lab: &Lab, ns: &str, name: &str) -> i64
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(lab.admin.clone(), ns)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .meta()
        .generation
        .unwrap_or(1)
}

async fn request_in(lab: &Lab, ns: &str, name: &str, phase: RequestPhase) {
    lab.request_where(ns, name, &format!("{name} {phase:?}"), |r| {
        r.status.as_ref().and_then(|s| s.phase) == Some(phase)
    })
    .await;
}

async fn change_in(lab: &Lab, ns: &str, name: &str, phase: ChangePhase) {
    let api: Api<ChangeRequest> = Api::namespaced(lab.admin.clone(), ns);
    eventually(&format!("{name} {phase:?}"), WAIT, || async {
        let c = api.get(name).await.ok()?;
        (c.status?.phase? == phase).then_some(())
    })
    .await;
}

pub async fn art13_only_reviewers_decide_in_their_own_name_on_the_current_generation(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::cluster("2026-11-27T02:00:00Z").await;
    // What users install: `helm template` of the chart, CRDs, roles, the
    // groups' bindings, the policies, the Deployment and the defaults.
    let objs = lab
        .install_chart(&Release::new("govcloud", NAMESPACE))
        .await;
    let kinds: Vec<String> = objs
        .iter()
        .filter_map(|o| o.types.as_ref().map(|t| t.kind.clone()))
        .collect();
    for kind in ["Deployment", "ValidatingAdmissionPolicy", "ServiceCatalog"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    // The operator runs with the rendered configuration, as the chart's
    // ServiceAccount: it must do its work under these policies.
    let config = operator_config(&objs);
    let operator = lab.plane.client(&Lab::operator_user(NAMESPACE)).await?;
    lab.run_operator_as(operator.clone(), config);

    let a = lab.unit("finance").await;
    let b = lab.unit("health").await;
    let mut applier = manifests::Applier::new(lab.admin.clone(), "platform-team");
    for unit in [&a, &b] {
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": "govcloud-tenant", "namespace": unit.namespace },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "govcloud-tenant" },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": unit.group }],
        });
        applier
            .apply(&serde_json::from_value(binding)?, None)
            .await?;
    }
    let client = |user: User| {
        let plane = &lab.plane;
        async move { plane.client(&user).await.unwrap_or_else(|e| panic!("{e}")) }
    };
    let tenant_a = client(a.member("clerk")).await;
    let tenant_b = client(b.member("nurse")).await;
    let reviewer = client(User::new(REVIEWER, Some("govcloud:reviewers"))).await;
    let vendor = client(User::new("li.vendor", Some("govcloud:vendors"))).await;
    let auditor = client(User::new("sun.auditor", Some("govcloud:auditors"))).await;
    lab.reviewer = reviewer.clone();
    let admin = lab.admin.clone();
    let ns = a.namespace.as_str();
    // Policies take a moment to be enforced after they are created.
    eventually("the policies to be enforced", WAIT, || async {
        let refused = file(
            &tenant_a,
            ns,
            "probe",
            decision("clerk@finance", 1, "approve"),
        )
        .await
        .err()?;
        refused.contains("reviewers").then_some(())
    })
    .await;

    let mut m = Matrix::default();
    requests(
        &lab, &mut m, ns, &tenant_a, &tenant_b, &reviewer, &vendor, &auditor, &operator,
    )
    .await;

    // A tenancy in formal operation, with its namespace, VMs and volumes.
    let (_, tns) = lab.active("finance", "erp").await;
    let t = "erp";
    m.allowed(
        "a tenant reads its tenancy",
        outcome(
            Api::<Tenancy>::namespaced(tenant_a.clone(), ns)
                .get(t)
                .await,
        ),
    );
    m.allowed(
        "an auditor reads every tenancy",
        outcome(
            Api::<Tenancy>::all(auditor.clone())
                .list(&ListParams::default())
                .await,
        ),
    );
    m.allowed(
        "a tenant confirms delivery",
        annotate::<Tenancy>(
            &tenant_a,
            ns,
            t,
            json!({ keys::DELIVERY_CONFIRMED: "2026-11-28" }),
        )
        .await,
    );
    m.refused(
        "a reviewer confirms delivery for the unit",
        "only the unit's own people (group govcloud:unit:finance)",
        annotate::<Tenancy>(
            &reviewer,
            ns,
            t,
            json!({ keys::DELIVERY_CONFIRMED: "2026-11-29" }),
        )
        .await,
    );
    m.refused(
        "a tenant of another unit confirms delivery",
        "forbidden",
        annotate::<Tenancy>(
            &tenant_b,
            ns,
            t,
            json!({ keys::DELIVERY_CONFIRMED: "2026-11-28" }),
        )
        .await,
    );
    m.refused(
        "a tenant isolates its tenancy",
        "only vendors (group govcloud:vendors) and reviewers",
        annotate::<Tenancy>(&tenant_a, ns, t, json!({ keys::ISOLATE: "incident" })).await,
    );
    m.refused(
        "a tenant opens a rectification case",
        "may set govcloud.dev/rectification",
        annotate::<Tenancy>(&tenant_a, ns, t, json!({ keys::RECTIFICATION: "art20-1" })).await,
    );
    m.refused(
        "a vendor opens a rectification case",
        "only the Digital City Department's reviewers",
        annotate::<Tenancy>(&vendor, ns, t, json!({ keys::RECTIFICATION: "art20-1" })).await,
    );
    m.refused(
        "a tenant marks a high-end item procured",
        "only the cloud vendor (group govcloud:vendors)",
        annotate::<Tenancy>(&tenant_a, ns, t, json!({ keys::PROCURED: "true" })).await,
    );
    m.allowed(
        "a vendor marks a service fulfilled",
        annotate::<Tenancy>(&vendor, ns, t, json!({ keys::FULFILLED: "Database" })).await,
    );
    m.refused(
        "a reviewer deregisters in someone else's name",
        &format!("must name the person acting: set it to \"{REVIEWER}\""),
        annotate::<Tenancy>(
            &reviewer,
            ns,
            t,
            json!({ keys::DEREGISTER: "true", keys::DECIDED_BY: "zhao.reviewer" }),
        )
        .await,
    );
    m.refused(
        "a reviewer changes a tenancy's allocation",
        "file a ChangeRequest (action Modify, Art. 17)",
        merge::<Tenancy>(
            &reviewer,
            ns,
            t,
            json!({ "spec": { "allocation": { "publicIPs": 3 } } }),
        )
        .await,
    );
    m.refused(
        "a tenant removes its tenancy's finalizer",
        "the finalizer keeps a tenancy's resources and data",
        merge::<Tenancy>(
            &tenant_a,
            ns,
            t,
            json!({ "metadata": { "finalizers": null } }),
        )
        .await,
    );
    m.refused(
        "a tenant writes its tenancy's status",
        "forbidden",
        outcome(
            Api::<Tenancy>::namespaced(tenant_a.clone(), ns)
                .patch_status(
                    t,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": { "phase": "Retired" } })),
                )
                .await,
        ),
    );
    m.refused(
        "a tenant deletes its Active tenancy",
        "forbidden",
        delete::<Tenancy>(&tenant_a, ns, t).await,
    );
    m.refused(
        "a reviewer deletes an Active tenancy",
        "is Active and holds resources and data: end it with a ChangeRequest of action Terminate",
        delete::<Tenancy>(&reviewer, ns, t).await,
    );
    m.refused(
        "the platform's admin (or a GitOps prune) deletes an Active tenancy",
        "is Active and holds resources and data",
        delete::<Tenancy>(&admin, ns, t).await,
    );
    m.refused(
        "the admin deletes the tenancy's namespace",
        "belongs to tenancy erp: the operator wipes and deletes it",
        outcome(
            Api::<Namespace>::all(admin.clone())
                .delete(&tns, &DeleteParams::default())
                .await,
        ),
    );
    let pvc = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &tns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .next()
        .and_then(|p| p.metadata.name)
        .ok_or("the tenancy has a volume")?;
    m.refused(
        "a tenant deletes a volume of its tenancy",
        "belongs to tenancy erp: the operator wipes and deletes it",
        delete::<PersistentVolumeClaim>(&tenant_a, &tns, &pvc).await,
    );
    m.refused(
        "the admin deletes a VM of a tenancy",
        "VirtualMachine app-1 belongs to tenancy erp",
        outcome(
            lab.dynamic(&tns, &vms())
                .delete("app-1", &DeleteParams::default())
                .await,
        ),
    );
    m.refused(
        "the admin deletes a unit's namespace",
        "is unit finance's: it holds its requests, tenancies and their records",
        outcome(
            Api::<Namespace>::all(admin.clone())
                .delete(ns, &DeleteParams::default())
                .await,
        ),
    );
    m.refused(
        "the operator's service account deletes a unit's namespace",
        "is unit finance's",
        outcome(
            Api::<Namespace>::all(operator.clone())
                .delete(ns, &DeleteParams::default())
                .await,
        ),
    );

    // Changes (Art. 17): edited by the unit only before review, amended by a
    // reviewer during it, kept once decided.
    m.allowed(
        "a tenant files a change of its tenancy",
        file_change(&tenant_a, ns, "resize", t).await,
    );
    change_in(&lab, ns, "resize", ChangePhase::UnderReview).await;
    m.refused(
        "a tenant edits its change under review",
        "ChangeRequest resize is UnderReview: only a reviewer may amend it during review",
        merge::<ChangeRequest>(
            &tenant_a,
            ns,
            "resize",
            json!({ "spec": { "reason": "更多内存" } }),
        )
        .await,
    );
    m.allowed(
        "a reviewer amends a change under review",
        merge::<ChangeRequest>(
            &reviewer,
            ns,
            "resize",
            json!({ "spec": { "after": { "backupStorageGiB": 600 } } }),
        )
        .await,
    );
    m.allowed(
        "a tenant withdraws its change before the decision",
        delete::<ChangeRequest>(&tenant_a, ns, "resize").await,
    );
    file_change(&tenant_a, ns, "resize-2", t).await?;
    change_in(&lab, ns, "resize-2", ChangePhase::UnderReview).await;
    let g = generation::<ChangeRequest>(&lab, ns, "resize-2").await;
    m.refused(
        "a tenant approves its own change",
        "only the Digital City Department's reviewers",
        annotate::<ChangeRequest>(
            &tenant_a,
            ns,
            "resize-2",
            decision("clerk@finance", g, "approve"),
        )
        .await,
    );
    m.allowed(
        "a reviewer approves a change in their own name",
        annotate::<ChangeRequest>(&reviewer, ns, "resize-2", decision(REVIEWER, g, "approve"))
            .await,
    );
    change_in(&lab, ns, "resize-2", ChangePhase::Applied).await;
    m.refused(
        "the admin deletes an applied change",
        "change resize-2 is Applied: it records what was decided and wiped",
        delete::<ChangeRequest>(&admin, ns, "resize-2").await,
    );

    // A suspended unit files nothing new (Art. 15) until a reviewer lifts it.
    Api::<Namespace>::all(admin.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { keys::SUSPENDED: "true" } } })),
        )
        .await?;
    m.refused(
        "a suspended unit files a request",
        "this unit may not file new requests: it is suspended",
        file(&tenant_a, ns, "another", json!({})).await,
    );
    m.allowed(
        "another unit files while one is suspended",
        file(&tenant_b, &b.namespace, "his", json!({})).await,
    );
    m.allowed(
        "a reviewer lifts the unit's suspension",
        outcome(
            Api::<Namespace>::all(reviewer.clone())
                .patch(
                    ns,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "metadata": { "annotations": {
                        keys::SUSPENSION_LIFTED: "2026-12-01",
                    } } })),
                )
                .await,
        ),
    );
    let refiled = eventually("the unit to file again once lifted", WAIT, || async {
        file(&tenant_a, ns, "another", json!({})).await.ok()
    })
    .await;
    m.allowed("the unit files again once lifted", Ok(refiled));
    m.check();
    assert!(m.cases.len() >= 40, "{} cases", m.cases.len());
    Ok(())
}

/// The operator's configuration as the chart's ConfigMap holds it.
fn operator_config(objs: &[DynamicObject]) -> Config {
    let text = objs
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "ConfigMap"))
        .and_then(|o| o.data["data"]["operator.yaml"].as_str())
        .unwrap_or_else(|| panic!("the chart renders the operator's configuration"));
    Config::parse("operator.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

/// Requests (Art. 11-14): filing, deciding, amending, returning, emergency
/// opening, withdrawal, and who can see them.
#[allow(clippy::too_many_arguments)]
async fn requests(
    lab: &Lab,
    m: &mut Matrix,
    ns: &str,
    tenant_a: &Client,
    tenant_b: &Client,
    reviewer: &Client,
    vendor: &Client,
    auditor: &Client,
    operator: &Client,
) {
    type Crr = CloudResourceRequest;
    m.allowed(
        "a tenant files a request in its unit",
        file(tenant_a, ns, "oa", json!({})).await,
    );
    request_in(lab, ns, "oa", RequestPhase::UnderReview).await;
    let g = generation::<Crr>(lab, ns, "oa").await;
    m.refused(
        "a tenant files a request already approved",
        "only the Digital City Department's reviewers",
        file(
            tenant_a,
            ns,
            "self-approved",
            decision("clerk@finance", 1, "approve"),
        )
        .await,
    );
    m.refused(
        "a tenant approves its own request",
        "may set govcloud.dev/decision, govcloud.dev/decided-generation",
        annotate::<Crr>(tenant_a, ns, "oa", decision("clerk@finance", g, "approve")).await,
    );
    m.refused(
        "a tenant opens its request in an emergency",
        "only the Digital City Department's reviewers",
        annotate::<Crr>(
            tenant_a,
            ns,
            "oa",
            decision("clerk@finance", g, "emergency-open"),
        )
        .await,
    );
    m.refused(
        "a tenant writes a review opinion",
        "govcloud.dev/opinion",
        annotate::<Crr>(tenant_a, ns, "oa", json!({ keys::OPINION: "looks fine" })).await,
    );
    m.refused(
        "a tenant edits its request under review",
        "CloudResourceRequest oa is UnderReview: only a reviewer may amend it during review",
        merge::<Crr>(
            tenant_a,
            ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 4 } } }),
        )
        .await,
    );
    m.refused(
        "a tenant of another unit reads the request",
        "forbidden",
        outcome(Api::<Crr>::namespaced(tenant_b.clone(), ns).get("oa").await),
    );
    m.refused(
        "a tenant of another unit lists the unit's requests",
        "forbidden",
        outcome(
            Api::<Crr>::namespaced(tenant_b.clone(), ns)
                .list(&ListParams::default())
                .await,
        ),
    );
    m.refused(
        "a tenant of another unit changes the request",
        "forbidden",
        annotate::<Crr>(tenant_b, ns, "oa", json!({ "note": "x" })).await,
    );
    m.refused(
        "a tenant files in another unit's namespace",
        "forbidden",
        file(tenant_b, ns, "intruder", json!({})).await,
    );
    m.refused(
        "a tenant writes its request's status",
        "forbidden",
        outcome(
            Api::<Crr>::namespaced(tenant_a.clone(), ns)
                .patch_status(
                    "oa",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": { "phase": "Approved" } })),
                )
                .await,
        ),
    );
    m.refused(
        "a vendor approves",
        "cannot patch resource \"cloudresourcerequests\"",
        annotate::<Crr>(vendor, ns, "oa", decision("li.vendor", g, "approve")).await,
    );
    m.allowed(
        "an auditor lists every unit's requests",
        outcome(
            Api::<Crr>::all(auditor.clone())
                .list(&ListParams::default())
                .await,
        ),
    );
    m.refused(
        "an auditor annotates a request",
        "forbidden",
        annotate::<Crr>(auditor, ns, "oa", json!({ "note": "x" })).await,
    );
    m.refused(
        "the operator's service account approves a request",
        "only the Digital City Department's reviewers",
        annotate::<Crr>(
            operator,
            ns,
            "oa",
            decision(
                &format!("system:serviceaccount:{NAMESPACE}:govcloud-operator"),
                g,
                "approve",
            ),
        )
        .await,
    );
    m.refused(
        "a reviewer approves in someone else's name",
        &format!("must name the person deciding: set it to \"{REVIEWER}\""),
        annotate::<Crr>(reviewer, ns, "oa", decision("zhao.reviewer", g, "approve")).await,
    );
    m.allowed(
        "a reviewer amends the requested resources during review",
        merge::<Crr>(
            reviewer,
            ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 0 } } }),
        )
        .await,
    );
    m.refused(
        "a reviewer approves the generation before the amendment",
        &format!("the current generation, \"{}\"", g + 1),
        annotate::<Crr>(reviewer, ns, "oa", decision(REVIEWER, g, "approve")).await,
    );
    m.refused(
        "a reviewer approves without naming a generation",
        "set govcloud.dev/decided-generation",
        annotate::<Crr>(
            reviewer,
            ns,
            "oa",
            json!({ keys::DECISION: "approve", keys::DECIDED_BY: REVIEWER }),
        )
        .await,
    );
    m.allowed(
        "a reviewer approves in their own name on the current generation",
        annotate::<Crr>(reviewer, ns, "oa", decision(REVIEWER, g + 1, "approve")).await,
    );
    request_in(lab, ns, "oa", RequestPhase::Approved).await;
    m.refused(
        "a tenant edits the decider's name afterwards",
        "must name the person deciding",
        annotate::<Crr>(
            tenant_a,
            ns,
            "oa",
            json!({ keys::DECIDED_BY: "wang.reviewer.2" }),
        )
        .await,
    );
    m.allowed(
        "a tenant adds an annotation of its own",
        annotate::<Crr>(
            tenant_a,
            ns,
            "oa",
            json!({ "finance.example/owner": "it-office" }),
        )
        .await,
    );
    m.refused(
        "a tenant edits its approved request",
        "CloudResourceRequest oa is Approved: what was decided is not edited: file a ChangeRequest",
        merge::<Crr>(
            tenant_a,
            ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 4 } } }),
        )
        .await,
    );
    m.refused(
        "a reviewer edits an approved request",
        "what was decided is not edited",
        merge::<Crr>(
            reviewer,
            ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 4 } } }),
        )
        .await,
    );
    m.refused(
        "a tenant deletes its approved request",
        "request oa is Approved: its decision and review record stay as the audit trail",
        delete::<Crr>(tenant_a, ns, "oa").await,
    );

    // Returned to be supplemented (Art. 13): the unit edits, then withdraws.
    file(tenant_a, ns, "portal", json!({}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    request_in(lab, ns, "portal", RequestPhase::UnderReview).await;
    let g = generation::<Crr>(lab, ns, "portal").await;
    let mut ret = decision(REVIEWER, g, "return");
    ret[keys::OPINION] = json!("请补充等保备案证明");
    m.allowed(
        "a reviewer returns a request with an opinion",
        annotate::<Crr>(reviewer, ns, "portal", ret).await,
    );
    request_in(lab, ns, "portal", RequestPhase::Returned).await;
    m.allowed(
        "a tenant supplements its returned request",
        merge::<Crr>(
            tenant_a,
            ns,
            "portal",
            json!({ "spec": { "resources": { "publicIPs": 0 } } }),
        )
        .await,
    );
    m.allowed(
        "a tenant withdraws its request before the decision",
        delete::<Crr>(tenant_a, ns, "portal").await,
    );

    // Urgent (Art. 13 ¶2): only a reviewer opens it before the review.
    let urgent: Crr = from_sample(URGENT, ns, "urgent", json!({}));
    Api::<Crr>::namespaced(tenant_a.clone(), ns)
        .create(&PostParams::default(), &urgent)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    request_in(lab, ns, "urgent", RequestPhase::UnderReview).await;
    let g = generation::<Crr>(lab, ns, "urgent").await;
    m.allowed(
        "a reviewer opens an urgent request before the review",
        annotate::<Crr>(
            reviewer,
            ns,
            "urgent",
            decision(REVIEWER, g, "emergency-open"),
        )
        .await,
    );
    request_in(lab, ns, "urgent", RequestPhase::EmergencyOpened).await;
    let tenancy: Api<Tenancy> = Api::namespaced(lab.admin.clone(), ns);
    eventually("the emergency tenancy", WAIT, || async {
        tenancy.get("urgent").await.ok()
    })
    .await;
    m.refused(
        "a reviewer deletes a tenancy being provisioned",
        "holds resources and data",
        delete::<Tenancy>(reviewer, ns, "urgent").await,
    );
}
