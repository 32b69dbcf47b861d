//! Who may do what (Ch. 2, Art. 7-11, 13, 15, 17, 19, 20, 25): the chart as
//! `helm template` renders it, installed into a real apiserver, with the
//! operator running as the chart's ServiceAccount and distinct users acting.

use govcloud::api::{
    ChangePhase, ChangeRequest, CloudResourceRequest, RequestPhase, Tenancy, TenancyPhase, keys,
};
use govcloud::config::Config;
use govcloud_testenv::User;
use govcloud_testenv::helm::Release;
use govcloud_testenv::manifests;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};

use crate::support::lab::{Lab, REVIEWER, WAIT, vms};
use crate::support::matrix::Matrix;
use crate::support::{Ctx, TestResult, eventually, read};

pub(crate) const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";
pub(crate) const URGENT: &str = "config/samples/21-cloudresourcerequest-emergency.yaml";
pub(crate) const MODIFY: &str = "config/samples/30-changerequest-modify.yaml";
pub(crate) const TERMINATE: &str = "config/samples/31-changerequest-terminate.yaml";
pub(crate) const NAMESPACE: &str = "govcloud-system";

/// A reviewer's lifting of a unit's suspension (Art. 15), tried by `client`.
pub(crate) async fn lift_suspension(client: &Client, ns: &str) -> Result<(), String> {
    let patch = json!({ "metadata": { "annotations": { keys::SUSPENSION_LIFTED: "2026-12-01" } } });
    outcome(
        Api::<Namespace>::all(client.clone())
            .patch(ns, &PatchParams::default(), &Patch::Merge(patch))
            .await,
    )
}

/// Writing an object's status phase, which only the operator does.
pub(crate) async fn write_phase<K>(
    client: &Client,
    ns: &str,
    name: &str,
    phase: &str,
) -> Result<(), String>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let patch = json!({ "status": { "phase": phase } });
    outcome(
        Api::<K>::namespaced(client.clone(), ns)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await,
    )
}

/// Whether the client may list what `api` points at.
pub(crate) async fn listed<K>(api: Api<K>) -> Result<(), String>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    outcome(api.list(&ListParams::default()).await)
}

pub(crate) fn outcome<T>(r: Result<T, kube::Error>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| match e {
        kube::Error::Api(s) => s.message,
        e => e.to_string(),
    })
}

pub(crate) async fn merge<K>(
    client: &Client,
    ns: &str,
    name: &str,
    patch: Value,
) -> Result<(), String>
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

pub(crate) async fn annotate<K>(
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

pub(crate) async fn delete<K>(client: &Client, ns: &str, name: &str) -> Result<(), String>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    outcome(api.delete(name, &DeleteParams::default()).await)
}

pub(crate) fn from_sample<K: serde::de::DeserializeOwned>(
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

pub(crate) async fn file(
    client: &Client,
    ns: &str,
    name: &str,
    annotations: Value,
) -> Result<(), String> {
    let api: Api<CloudResourceRequest> = Api::namespaced(client.clone(), ns);
    outcome(
        api.create(
            &PostParams::default(),
            &from_sample(OA, ns, name, annotations),
        )
        .await,
    )
}

pub(crate) async fn file_change(
    client: &Client,
    ns: &str,
    name: &str,
    tenancy: &str,
) -> Result<(), String> {
    let mut change: ChangeRequest = from_sample(MODIFY, ns, name, json!({}));
    change.spec.tenancy = tenancy.into();
    let api: Api<ChangeRequest> = Api::namespaced(client.clone(), ns);
    outcome(api.create(&PostParams::default(), &change).await)
}

pub(crate) fn decision(by: &str, generation: i64, decision: &str) -> Value {
    json!({
        keys::DECISION: decision,
        keys::DECIDED_GENERATION: generation.to_string(),
        keys::DECIDED_BY: by,
    })
}

pub(crate) async fn generation<K>(lab: &Lab, ns: &str, name: &str) -> i64
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

pub(crate) async fn request_in(lab: &Lab, ns: &str, name: &str, phase: RequestPhase) {
    lab.request_where(ns, name, &format!("{name} {phase:?}"), |r| {
        r.status.as_ref().and_then(|s| s.phase) == Some(phase)
    })
    .await;
}

pub(crate) async fn change_in(lab: &Lab, ns: &str, name: &str, phase: ChangePhase) {
    let api: Api<ChangeRequest> = Api::namespaced(lab.admin.clone(), ns);
    eventually(&format!("{name} {phase:?}"), WAIT, || async {
        let c = api.get(name).await.ok()?;
        (c.status?.phase? == phase).then_some(())
    })
    .await;
}
/// A private cluster with the chart installed as `helm template` renders it
/// (CRDs, roles, the groups' bindings, the policies, the Deployment, the
/// defaults), the operator running as the chart's ServiceAccount with the
/// rendered configuration, two units and a client for each kind of user.
pub(crate) struct Fixture {
    pub(crate) lab: Lab,
    pub(crate) m: Matrix,
    pub(crate) ns: String,
    pub(crate) other_ns: String,
    pub(crate) tenant_a: Client,
    pub(crate) tenant_b: Client,
    pub(crate) reviewer: Client,
    pub(crate) vendor: Client,
    pub(crate) auditor: Client,
    pub(crate) operator: Client,
    pub(crate) admin: Client,
    /// Who unit A's clerk and the reviewer are, for kubeconfigs.
    pub(crate) tenant_a_user: User,
    pub(crate) reviewer_user: User,
    pub(crate) vendor_user: User,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        let mut lab = Lab::cluster("2026-11-27T02:00:00Z").await;
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
        let config = operator_config(&objs);
        let a = lab.unit("finance").await;
        let b = lab.unit("health").await;
        let client = |user: User| {
            let plane = &lab.plane;
            async move { plane.client(&user).await.unwrap_or_else(|e| panic!("{e}")) }
        };
        let operator = client(Lab::operator_user(NAMESPACE)).await;
        let reviewer = client(User::new(REVIEWER, Some("govcloud:reviewers"))).await;
        let vendor_user = User::new("li.vendor", Some("govcloud:vendors"));
        let vendor = client(vendor_user.clone()).await;
        let auditor = client(User::new("sun.auditor", Some("govcloud:auditors"))).await;
        let tenant_a_user = a.member("clerk");
        let reviewer_user = User::new(REVIEWER, Some("govcloud:reviewers"));
        let tenant_a = client(tenant_a_user.clone()).await;
        let tenant_b = client(b.member("nurse")).await;
        // The apiserver authorizes by the RBAC it has just been given only
        // once its own caches have it; an operator started before that
        // would see 403s and back off.
        eventually("the operator's RBAC to be in force", WAIT, || async {
            let requests = Api::<CloudResourceRequest>::all(operator.clone());
            let namespaces = Api::<Namespace>::all(operator.clone());
            (listed(requests).await.is_ok() && listed(namespaces).await.is_ok()).then_some(())
        })
        .await;
        lab.run_operator_as(operator.clone(), config);
        lab.reviewer = reviewer.clone();
        // What the platform team declares with each unit.
        let mut applier = manifests::Applier::new(lab.admin.clone(), "platform-team");
        for unit in [&a, &b] {
            let binding = json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": { "name": "govcloud-tenant", "namespace": unit.namespace },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "govcloud-tenant" },
                "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": unit.group }],
            });
            let binding = serde_json::from_value(binding).unwrap_or_else(|e| panic!("{e}"));
            applier
                .apply(&binding, None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // What a cluster with KubeVirt and storage has: KubeVirt's share of
        // the `edit` role (aggregated, as its operator installs it), and a
        // storage class the price list does not price.
        let kubevirt_edit = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": { "name": "kubevirt.io:edit",
                          "labels": { "rbac.authorization.k8s.io/aggregate-to-edit": "true" } },
            "rules": [
                { "apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
                  "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"] },
                { "apiGroups": ["subresources.kubevirt.io"],
                  "resources": ["virtualmachines/start", "virtualmachines/stop", "virtualmachines/restart"],
                  "verbs": ["update", "put"] },
            ],
        });
        let mut objects = vec![kubevirt_edit];
        // standard, ssd and backup come with the control plane.
        objects.push(json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": { "name": "premium-ssd" },
            "provisioner": "govcloud.dev/local-standin",
            "volumeBindingMode": "Immediate",
        }));
        for object in objects {
            let object = serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"));
            applier
                .apply(&object, None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // Policies take a moment to be enforced after they are created. The
        // probe is a dry run: filed before they are, it would otherwise stay,
        // a request of unit A's approved by its own clerk.
        let ns = a.namespace.clone();
        let probe = from_sample(OA, &ns, "probe", decision("clerk@finance", 1, "approve"));
        let requests = Api::<CloudResourceRequest>::namespaced(tenant_a.clone(), &ns);
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        eventually("the policies to be enforced", WAIT, || async {
            let refused = outcome(requests.create(&dry_run, &probe).await).err()?;
            refused.contains("reviewers").then_some(())
        })
        .await;
        Self {
            admin: lab.admin.clone(),
            lab,
            m: Matrix::default(),
            ns,
            other_ns: b.namespace,
            tenant_a,
            tenant_b,
            reviewer,
            vendor,
            auditor,
            operator,
            tenant_a_user,
            reviewer_user,
            vendor_user,
        }
    }

    /// The OA sample filed by unit A's clerk as `name`, in review.
    pub(crate) async fn filed(&self, name: &str) -> i64 {
        file(&self.tenant_a, &self.ns, name, json!({}))
            .await
            .unwrap_or_else(|e| panic!("filing {name}: {e}"));
        request_in(&self.lab, &self.ns, name, RequestPhase::UnderReview).await;
        generation::<CloudResourceRequest>(&self.lab, &self.ns, name).await
    }

    /// A tenancy of unit A in formal operation; returns its namespace.
    pub(crate) async fn active(&mut self, name: &str) -> String {
        self.lab.active("finance", name).await.1
    }

    /// Unit A files the termination of `tenancy`, a reviewer approves it,
    /// the clock reaches its effective date and the operator releases
    /// everything (KubeVirt's and the Job controller's parts played).
    pub(crate) async fn terminate(&mut self, tenancy: &str, tns: &str) -> Tenancy {
        let ns = self.ns.clone();
        let change = format!("{tenancy}-stop");
        let mut stop: ChangeRequest = from_sample(TERMINATE, &ns, &change, json!({}));
        stop.spec.tenancy = tenancy.into();
        self.m.allowed(
            "a tenant files its tenancy's termination",
            outcome(
                Api::<ChangeRequest>::namespaced(self.tenant_a.clone(), &ns)
                    .create(&PostParams::default(), &stop)
                    .await,
            ),
        );
        change_in(&self.lab, &ns, &change, ChangePhase::UnderReview).await;
        let g = generation::<ChangeRequest>(&self.lab, &ns, &change).await;
        self.m.allowed(
            "a reviewer approves the termination",
            annotate::<ChangeRequest>(
                &self.reviewer,
                &ns,
                &change,
                decision(REVIEWER, g, "approve"),
            )
            .await,
        );
        change_in(&self.lab, &ns, &change, ChangePhase::Approved).await;
        self.lab.set_clock("2027-01-14T16:00:00Z");
        let lab = &self.lab;
        let admin = &self.admin;
        let retired = eventually("the release under the policies", WAIT, || async {
            lab.play_release(tns).await;
            let gone = Api::<Namespace>::all(admin.clone())
                .get_opt(tns)
                .await
                .ok()?
                .is_none();
            let t = lab.tenancies(&ns).get(tenancy).await.ok()?;
            (gone && t.status.as_ref()?.phase? == TenancyPhase::Retired).then_some(t)
        })
        .await;
        // The change records the release once the tenancy has retired.
        change_in(&self.lab, &ns, &change, ChangePhase::Applied).await;
        retired
    }

    pub(crate) fn check(&self, part: &str) {
        self.m.check(part);
    }
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

/// Art. 7, 13: the Digital City Department's reviewers decide, amend, return
/// and open in an emergency, always in their own name and on the generation
/// they reviewed; nobody else decides, the operator included.
pub async fn art7_only_reviewers_decide_in_their_own_name_on_the_current_generation(
    _: Ctx,
) -> TestResult {
    let mut f = Fixture::new().await;
    let (ns, a, r) = (f.ns.clone(), f.tenant_a.clone(), f.reviewer.clone());
    let ns = ns.as_str();
    type Crr = CloudResourceRequest;
    let g = f.filed("oa").await;
    let m = &mut f.m;
    m.refused(
        "a tenant files a request already approved",
        "only the Digital City Department's reviewers",
        file(
            &a,
            ns,
            "self-approved",
            decision("clerk@finance", 1, "approve"),
        )
        .await,
    );
    m.refused(
        "a tenant approves its own request",
        "may set govcloud.dev/decision, govcloud.dev/decided-generation",
        annotate::<Crr>(&a, ns, "oa", decision("clerk@finance", g, "approve")).await,
    );
    m.refused(
        "a tenant opens its request in an emergency",
        "only the Digital City Department's reviewers",
        annotate::<Crr>(&a, ns, "oa", decision("clerk@finance", g, "emergency-open")).await,
    );
    m.refused(
        "a tenant writes a review opinion",
        "govcloud.dev/opinion",
        annotate::<Crr>(&a, ns, "oa", json!({ keys::OPINION: "looks fine" })).await,
    );
    m.refused(
        "the operator's service account approves a request",
        "only the Digital City Department's reviewers",
        annotate::<Crr>(
            &f.operator,
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
        annotate::<Crr>(&r, ns, "oa", decision("zhao.reviewer", g, "approve")).await,
    );
    m.allowed(
        "a reviewer amends the requested resources during review",
        merge::<Crr>(
            &r,
            ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 0 } } }),
        )
        .await,
    );
    m.refused(
        "a reviewer approves the generation before the amendment",
        &format!("the current generation, \"{}\"", g + 1),
        annotate::<Crr>(&r, ns, "oa", decision(REVIEWER, g, "approve")).await,
    );
    m.refused(
        "a reviewer approves without naming a generation",
        "set govcloud.dev/decided-generation",
        annotate::<Crr>(
            &r,
            ns,
            "oa",
            json!({ keys::DECISION: "approve", keys::DECIDED_BY: REVIEWER }),
        )
        .await,
    );
    m.allowed(
        "a reviewer approves in their own name on the current generation",
        annotate::<Crr>(&r, ns, "oa", decision(REVIEWER, g + 1, "approve")).await,
    );
    request_in(&f.lab, ns, "oa", RequestPhase::Approved).await;
    let approved = Api::<Crr>::namespaced(f.admin.clone(), ns)
        .get("oa")
        .await?;
    let m = &mut f.m;
    m.allowed(
        "the approval provisions the amended generation",
        match approved.status.and_then(|s| s.approved) {
            Some(res) if res.public_ips == 0 => Ok(()),
            other => Err(format!("approved: {other:?}")),
        },
    );
    m.refused(
        "a tenant re-signs the decision in its own name",
        "may set govcloud.dev/decided-by",
        annotate::<Crr>(&a, ns, "oa", json!({ keys::DECIDED_BY: "wang.reviewer.2" })).await,
    );
    m.refused(
        "a reviewer edits an approved request",
        "what was decided is not edited",
        merge::<Crr>(
            &r,
            ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 4 } } }),
        )
        .await,
    );

    let g = f.filed("portal").await;
    let mut ret = decision(REVIEWER, g, "return");
    ret[keys::OPINION] = json!("请补充等保备案证明");
    f.m.allowed(
        "a reviewer returns a request with an opinion",
        annotate::<Crr>(&r, ns, "portal", ret).await,
    );

    // Urgent (Art. 13 ¶2): only a reviewer opens it before the review.
    let urgent: Crr = from_sample(URGENT, ns, "urgent", json!({}));
    Api::<Crr>::namespaced(a.clone(), ns)
        .create(&PostParams::default(), &urgent)
        .await?;
    request_in(&f.lab, ns, "urgent", RequestPhase::UnderReview).await;
    let g = generation::<Crr>(&f.lab, ns, "urgent").await;
    f.m.allowed(
        "a reviewer opens an urgent request before the review",
        annotate::<Crr>(&r, ns, "urgent", decision(REVIEWER, g, "emergency-open")).await,
    );
    request_in(&f.lab, ns, "urgent", RequestPhase::EmergencyOpened).await;
    // Its materials follow within 10 working days; what was opened stays.
    let oa: Crr = from_sample(OA, ns, "oa", json!({}));
    let documents = serde_json::to_value(&oa.spec.documents)?;
    f.m.allowed(
        "a tenant supplements the materials of an emergency-opened request",
        merge::<Crr>(
            &a,
            ns,
            "urgent",
            json!({ "spec": { "documents": documents } }),
        )
        .await,
    );
    f.m.refused(
        "a tenant changes the resources of an emergency-opened request",
        "it was opened in an emergency: the unit supplements its materials",
        merge::<Crr>(
            &a,
            ns,
            "urgent",
            json!({ "spec": { "resources": { "publicIPs": 9 } } }),
        )
        .await,
    );

    // Changes (Art. 17): decided by reviewers alone, too.
    f.active("erp").await;
    file_change(&a, ns, "resize", "erp").await?;
    change_in(&f.lab, ns, "resize", ChangePhase::UnderReview).await;
    let g = generation::<ChangeRequest>(&f.lab, ns, "resize").await;
    let m = &mut f.m;
    m.refused(
        "a tenant approves its own change",
        "only the Digital City Department's reviewers",
        annotate::<ChangeRequest>(&a, ns, "resize", decision("clerk@finance", g, "approve")).await,
    );
    m.allowed(
        "a reviewer amends a change under review",
        merge::<ChangeRequest>(
            &r,
            ns,
            "resize",
            json!({ "spec": { "after": { "backupStorageGiB": 600 } } }),
        )
        .await,
    );
    m.allowed(
        "a reviewer approves a change in their own name",
        annotate::<ChangeRequest>(&r, ns, "resize", decision(REVIEWER, g + 1, "approve")).await,
    );
    change_in(&f.lab, ns, "resize", ChangePhase::Applied).await;
    f.m.refused(
        "a reviewer deregisters in someone else's name",
        &format!("must name the person acting: set it to \"{REVIEWER}\""),
        annotate::<Tenancy>(
            &r,
            ns,
            "erp",
            json!({ keys::DEREGISTER: "true", keys::DECIDED_BY: "zhao.reviewer" }),
        )
        .await,
    );
    f.m.refused(
        "a reviewer changes a tenancy's allocation by hand",
        "file a ChangeRequest (action Modify, Art. 17)",
        merge::<Tenancy>(
            &r,
            ns,
            "erp",
            json!({ "spec": { "allocation": { "publicIPs": 3 } } }),
        )
        .await,
    );
    f.check("Art. 7: reviewers decide");
    Ok(())
}

/// Art. 8, 13, 15: a unit files, edits and withdraws its own requests, only
/// in its namespace and only before the decision; it confirms delivery; it
/// cannot decide, write status, or take away what protects its data.
pub async fn art8_a_unit_acts_in_its_own_namespace_and_edits_only_before_the_decision(
    _: Ctx,
) -> TestResult {
    let mut f = Fixture::new().await;
    let (ns, a, b, r) = (
        f.ns.clone(),
        f.tenant_a.clone(),
        f.tenant_b.clone(),
        f.reviewer.clone(),
    );
    let ns = ns.as_str();
    type Crr = CloudResourceRequest;
    f.m.allowed(
        "a tenant files a request in its unit",
        file(&a, ns, "oa", json!({})).await,
    );
    request_in(&f.lab, ns, "oa", RequestPhase::UnderReview).await;
    let g = generation::<Crr>(&f.lab, ns, "oa").await;
    let m = &mut f.m;
    m.refused(
        "a tenant edits its request under review",
        "CloudResourceRequest oa is UnderReview: only a reviewer may amend it during review",
        merge::<Crr>(
            &a,
            ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 4 } } }),
        )
        .await,
    );
    m.refused(
        "a tenant of another unit reads the request",
        "forbidden",
        outcome(Api::<Crr>::namespaced(b.clone(), ns).get("oa").await),
    );
    m.refused(
        "a tenant of another unit lists the unit's requests",
        "forbidden",
        listed(Api::<Crr>::namespaced(b.clone(), ns)).await,
    );
    m.refused(
        "a tenant of another unit changes the request",
        "forbidden",
        annotate::<Crr>(&b, ns, "oa", json!({ "note": "x" })).await,
    );
    m.refused(
        "a tenant files in another unit's namespace",
        "forbidden",
        file(&b, ns, "intruder", json!({})).await,
    );
    m.refused(
        "a tenant writes its request's status",
        "forbidden",
        write_phase::<Crr>(&a, ns, "oa", "Approved").await,
    );
    m.refused(
        "a tenant gives its request an owner, for the garbage collector to delete it",
        "owner references are not set on requests and changes",
        merge::<Crr>(
            &a,
            ns,
            "oa",
            json!({ "metadata": { "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "gone",
                "uid": "00000000-0000-0000-0000-000000000000",
            }] } }),
        )
        .await,
    );
    m.allowed(
        "a tenant reads the price list",
        outcome(
            Api::<govcloud::api::ServiceCatalog>::all(a.clone())
                .get("default")
                .await,
        ),
    );
    m.allowed(
        "a tenant adds an annotation of its own",
        annotate::<Crr>(
            &a,
            ns,
            "oa",
            json!({ "finance.example/owner": "it-office" }),
        )
        .await,
    );
    m.allowed(
        "a reviewer approves",
        annotate::<Crr>(&r, ns, "oa", decision(REVIEWER, g, "approve")).await,
    );
    request_in(&f.lab, ns, "oa", RequestPhase::Approved).await;
    let m = &mut f.m;
    m.refused(
        "a tenant edits its approved request",
        "CloudResourceRequest oa is Approved: what was decided is not edited: file a ChangeRequest",
        merge::<Crr>(
            &a,
            ns,
            "oa",
            json!({ "spec": { "resources": { "publicIPs": 4 } } }),
        )
        .await,
    );
    m.refused(
        "a tenant deletes its approved request",
        "request oa is Approved: its decision and review record stay as the audit trail",
        delete::<Crr>(&a, ns, "oa").await,
    );

    // Returned to be supplemented (Art. 13): the unit edits, then withdraws.
    let g = f.filed("portal").await;
    let mut ret = decision(REVIEWER, g, "return");
    ret[keys::OPINION] = json!("请补充等保备案证明");
    annotate::<Crr>(&r, ns, "portal", ret)
        .await
        .map_err(|e| e.to_string())?;
    request_in(&f.lab, ns, "portal", RequestPhase::Returned).await;
    f.m.allowed(
        "a tenant supplements its returned request",
        merge::<Crr>(
            &a,
            ns,
            "portal",
            json!({ "spec": { "resources": { "publicIPs": 0 } } }),
        )
        .await,
    );
    f.m.allowed(
        "a tenant withdraws its request before the decision",
        delete::<Crr>(&a, ns, "portal").await,
    );

    // Its tenancy: read, confirm delivery; not its finalizer, status, volumes.
    let tns = f.active("erp").await;
    let t = "erp";
    let m = &mut f.m;
    m.allowed(
        "a tenant reads its tenancy",
        outcome(Api::<Tenancy>::namespaced(a.clone(), ns).get(t).await),
    );
    m.allowed(
        "a tenant confirms delivery",
        annotate::<Tenancy>(&a, ns, t, json!({ keys::DELIVERY_CONFIRMED: "2026-11-28" })).await,
    );
    m.refused(
        "a reviewer confirms delivery for the unit",
        "only the unit's own people (group govcloud:unit:finance)",
        annotate::<Tenancy>(&r, ns, t, json!({ keys::DELIVERY_CONFIRMED: "2026-11-29" })).await,
    );
    m.refused(
        "a tenant of another unit confirms delivery",
        "forbidden",
        annotate::<Tenancy>(&b, ns, t, json!({ keys::DELIVERY_CONFIRMED: "2026-11-29" })).await,
    );
    m.refused(
        "a tenant removes its tenancy's finalizer",
        "the finalizer keeps a tenancy's resources and data",
        merge::<Tenancy>(&a, ns, t, json!({ "metadata": { "finalizers": null } })).await,
    );
    m.refused(
        "a tenant writes its tenancy's status",
        "forbidden",
        write_phase::<Tenancy>(&a, ns, t, "Retired").await,
    );
    m.refused(
        "a tenant deletes its Active tenancy",
        "forbidden",
        delete::<Tenancy>(&a, ns, t).await,
    );
    let pvc = Api::<PersistentVolumeClaim>::namespaced(f.admin.clone(), &tns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .next()
        .and_then(|p| p.metadata.name)
        .ok_or("the tenancy has a volume")?;
    f.m.refused(
        "a tenant deletes a volume of its tenancy",
        "belongs to tenancy erp: the operator wipes and deletes it",
        delete::<PersistentVolumeClaim>(&a, &tns, &pvc).await,
    );
    let unlabelled = merge::<PersistentVolumeClaim>(
        &a,
        &tns,
        "app-1-system",
        json!({ "metadata": { "labels": { keys::TENANCY: null } } }),
    )
    .await;
    f.m.refused(
        "a tenant removes a volume's label, then deletes it",
        "PersistentVolumeClaim app-1-system belongs to the operator (tenancy erp); the unit may not change it",
        unlabelled.and(delete::<PersistentVolumeClaim>(&a, &tns, "app-1-system").await),
    );

    // Its changes (Art. 17): edited before review only, withdrawn before
    // the decision.
    f.m.allowed(
        "a tenant files a change of its tenancy",
        file_change(&a, ns, "resize", t).await,
    );
    change_in(&f.lab, ns, "resize", ChangePhase::UnderReview).await;
    f.m.refused(
        "a tenant edits its change under review",
        "ChangeRequest resize is UnderReview: only a reviewer may amend it during review",
        merge::<ChangeRequest>(
            &a,
            ns,
            "resize",
            json!({ "spec": { "reason": "更多内存" } }),
        )
        .await,
    );
    f.m.allowed(
        "a tenant withdraws its change before the decision",
        delete::<ChangeRequest>(&a, ns, "resize").await,
    );

    // A suspended unit files nothing new (Art. 15) until a reviewer lifts it
    // (the operator marks it so when a trial goes unused).
    Api::<Namespace>::all(f.operator.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { keys::SUSPENDED: "true" } } })),
        )
        .await?;
    let other_ns = f.other_ns.clone();
    let m = &mut f.m;
    m.refused(
        "a suspended unit files a request",
        "this unit may not file new requests: it is suspended",
        file(&a, ns, "another", json!({})).await,
    );
    m.allowed(
        "another unit files while one is suspended",
        file(&b, &other_ns, "his", json!({})).await,
    );
    m.refused(
        "a suspended unit lifts its own suspension",
        "forbidden",
        lift_suspension(&a, ns).await,
    );
    m.allowed(
        "a reviewer lifts the unit's suspension",
        lift_suspension(&r, ns).await,
    );
    eventually("the unit to file again once lifted", WAIT, || async {
        file(&a, ns, "another", json!({})).await.ok()
    })
    .await;
    f.m.allowed("the unit files again once lifted", Ok(()));
    f.check("Art. 8: units");
    Ok(())
}

/// Art. 9: supervising authorities read everything the operator owns, events
/// included, in every unit, and change nothing.
pub async fn art9_auditors_read_everything_and_change_nothing(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let (ns, au) = (f.ns.clone(), f.auditor.clone());
    let ns = ns.as_str();
    type Crr = CloudResourceRequest;
    let g = f.filed("oa").await;
    f.lab.decide(ns, "oa", "approve", g, None).await;
    let tenancies: Api<Tenancy> = Api::namespaced(f.admin.clone(), ns);
    eventually("the tenancy", WAIT, || async {
        tenancies.get("oa").await.ok()
    })
    .await;
    let tns = govcloud::provisioning::namespace_name("unit-finance", "finance", "oa");
    eventually("its VMs", WAIT, || async {
        let n = f
            .lab
            .dynamic(&tns, &vms())
            .list(&ListParams::default())
            .await
            .ok()?;
        (!n.items.is_empty()).then_some(())
    })
    .await;
    let m = &mut f.m;
    m.allowed(
        "an auditor lists every unit's requests",
        listed(Api::<Crr>::all(au.clone())).await,
    );
    m.allowed(
        "an auditor lists every tenancy",
        listed(Api::<Tenancy>::all(au.clone())).await,
    );
    m.allowed(
        "an auditor lists every change",
        listed(Api::<ChangeRequest>::all(au.clone())).await,
    );
    m.allowed(
        "an auditor reads a tenancy's VMs",
        listed(Api::<DynamicObject>::namespaced_with(
            au.clone(),
            &tns,
            &vms(),
        ))
        .await,
    );
    m.allowed(
        "an auditor reads the events of a unit",
        listed(Api::<k8s_openapi::api::core::v1::Event>::namespaced(
            au.clone(),
            ns,
        ))
        .await,
    );
    m.refused(
        "an auditor annotates a request",
        "forbidden",
        annotate::<Crr>(&au, ns, "oa", json!({ "note": "x" })).await,
    );
    m.refused(
        "an auditor files a request",
        "forbidden",
        file(&au, ns, "audit", json!({})).await,
    );
    m.refused(
        "an auditor deletes a request",
        "forbidden",
        delete::<Crr>(&au, ns, "oa").await,
    );
    m.refused(
        "an auditor isolates a tenancy",
        "forbidden",
        annotate::<Tenancy>(&au, ns, "oa", json!({ keys::ISOLATE: "audit" })).await,
    );
    m.refused(
        "an auditor writes a tenancy's status",
        "forbidden",
        write_phase::<Tenancy>(&au, ns, "oa", "Retired").await,
    );
    m.refused(
        "an auditor lifts a unit's suspension",
        "forbidden",
        lift_suspension(&au, ns).await,
    );
    f.check("Art. 9: auditors");
    Ok(())
}

/// Art. 10, 14, 25: the cloud vendor sees every tenancy, isolates at once and
/// lifts it, acknowledges procurement and fulfilment, and decides nothing.
pub async fn art10_vendors_isolate_and_acknowledge_but_decide_nothing(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let (ns, a, v) = (f.ns.clone(), f.tenant_a.clone(), f.vendor.clone());
    let ns = ns.as_str();
    let g = f.filed("oa").await;
    f.m.refused(
        "a vendor approves",
        "cannot patch resource \"cloudresourcerequests\"",
        annotate::<CloudResourceRequest>(&v, ns, "oa", decision("li.vendor", g, "approve")).await,
    );
    let tns = f.active("erp").await;
    let t = "erp";
    let m = &mut f.m;
    m.allowed(
        "a vendor lists every tenancy",
        listed(Api::<Tenancy>::all(v.clone())).await,
    );
    m.allowed(
        "a vendor reads a tenancy's VMs",
        listed(Api::<DynamicObject>::namespaced_with(
            v.clone(),
            &tns,
            &vms(),
        ))
        .await,
    );
    m.refused(
        "a tenant isolates its tenancy",
        "only vendors (group govcloud:vendors) and reviewers",
        annotate::<Tenancy>(&a, ns, t, json!({ keys::ISOLATE: "incident" })).await,
    );
    m.refused(
        "a tenant marks a high-end item procured",
        "only the cloud vendor (group govcloud:vendors)",
        annotate::<Tenancy>(&a, ns, t, json!({ keys::PROCURED: "true" })).await,
    );
    m.refused(
        "a tenant opens a rectification case",
        "may set govcloud.dev/rectification",
        annotate::<Tenancy>(&a, ns, t, json!({ keys::RECTIFICATION: "art20-1" })).await,
    );
    m.refused(
        "a vendor opens a rectification case",
        "only the Digital City Department's reviewers",
        annotate::<Tenancy>(&v, ns, t, json!({ keys::RECTIFICATION: "art20-1" })).await,
    );
    m.refused(
        "a vendor deregisters a system",
        "may set govcloud.dev/deregister",
        annotate::<Tenancy>(&v, ns, t, json!({ keys::DEREGISTER: "true" })).await,
    );
    m.refused(
        "a vendor changes a tenancy's allocation",
        "file a ChangeRequest (action Modify, Art. 17)",
        merge::<Tenancy>(
            &v,
            ns,
            t,
            json!({ "spec": { "allocation": { "publicIPs": 3 } } }),
        )
        .await,
    );
    m.allowed(
        "a vendor marks a service fulfilled",
        annotate::<Tenancy>(&v, ns, t, json!({ keys::FULFILLED: "Database" })).await,
    );
    m.allowed(
        "a vendor marks a high-end item procured",
        annotate::<Tenancy>(&v, ns, t, json!({ keys::PROCURED: "true" })).await,
    );
    m.refused(
        "a vendor isolates in someone else's name",
        "must name the person acting: set it to \"li.vendor\"",
        annotate::<Tenancy>(
            &v,
            ns,
            t,
            json!({ keys::ISOLATE: "incident", keys::DECIDED_BY: "zhao.vendor" }),
        )
        .await,
    );
    m.allowed(
        "a vendor isolates a tenancy at once (Art. 25)",
        annotate::<Tenancy>(
            &v,
            ns,
            t,
            json!({ keys::ISOLATE: "安全事件：异常外联", keys::DECIDED_BY: "li.vendor" }),
        )
        .await,
    );
    let lab = &f.lab;
    let isolated = eventually("the isolation to hold", WAIT, || async {
        let t = lab.tenancies(ns).get(t).await.ok()?;
        t.status?.isolation.is_some().then_some(())
    })
    .await;
    f.m.allowed("the operator holds the isolated tenancy", Ok(isolated));
    f.m.allowed(
        "a vendor lifts the isolation",
        annotate::<Tenancy>(&v, ns, t, json!({ keys::ISOLATE: null })).await,
    );
    f.check("Art. 10: vendors");
    Ok(())
}

/// Art. 11: a system goes from application through review, opening, trial,
/// operation and change to exit, each step taken by the user the measures
/// name, under the chart's policies, the operator acting as its
/// ServiceAccount; the events tell the story in order.
pub async fn art11_a_system_goes_from_application_to_exit_by_the_users_the_measures_name(
    _: Ctx,
) -> TestResult {
    let mut f = Fixture::new().await;
    let ns = f.ns.clone();
    let tns = f.active("erp").await;
    file_change(&f.tenant_a, &ns, "resize", "erp").await?;
    change_in(&f.lab, &ns, "resize", ChangePhase::UnderReview).await;
    let g = generation::<ChangeRequest>(&f.lab, &ns, "resize").await;
    annotate::<ChangeRequest>(&f.reviewer, &ns, "resize", decision(REVIEWER, g, "approve"))
        .await
        .map_err(|e| e.to_string())?;
    change_in(&f.lab, &ns, "resize", ChangePhase::Applied).await;
    let retired = f.terminate("erp", &tns).await;
    assert!(!retired.status.unwrap_or_default().wipe_records.is_empty());
    let reasons = |events: Vec<(String, String)>| -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for (reason, _) in events {
            if seen.last() != Some(&reason) {
                seen.push(reason);
            }
        }
        seen
    };
    let steps = [
        "UnderReview",
        "Approved",
        "Provisioning",
        "Delivered",
        "UsageDetected",
        "TrialPassed",
        "Terminating",
        "NamespaceDeleted",
        "Retired",
    ];
    let request = reasons(f.lab.events_with(&ns, "erp", &steps).await);
    let order: Vec<usize> = [
        "Approved",
        "Delivered",
        "TrialPassed",
        "Terminating",
        "Retired",
    ]
    .iter()
    .map(|s| request.iter().position(|r| r == s).unwrap_or(usize::MAX))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{request:?}");
    f.lab.events_with(&ns, "resize", &["Applied"]).await;
    f.check("Art. 11: the lifecycle");
    Ok(())
}

/// Art. 15, 19, 20: nothing is deleted without the decision the measures
/// require, whoever asks, the cluster's admin and GitOps pruning included;
/// the operator itself never deletes a unit; after an approved termination
/// the operator releases and wipes everything, and the records stay.
pub async fn art19_nothing_is_deleted_without_the_decision_the_measures_require(
    _: Ctx,
) -> TestResult {
    let mut f = Fixture::new().await;
    let (ns, admin, r) = (f.ns.clone(), f.admin.clone(), f.reviewer.clone());
    let ns = ns.as_str();
    let tns = f.active("erp").await;
    let t = "erp";
    let m = &mut f.m;
    m.refused(
        "a reviewer deletes an Active tenancy",
        "is Active and holds resources and data: end it with a ChangeRequest of action Terminate",
        delete::<Tenancy>(&r, ns, t).await,
    );
    m.refused(
        "the admin (or a GitOps prune) deletes an Active tenancy",
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
    m.refused(
        "the admin deletes a VM of a tenancy",
        "VirtualMachine app-1 belongs to tenancy erp",
        outcome(
            f.lab
                .dynamic(&tns, &vms())
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
            Api::<Namespace>::all(f.operator.clone())
                .delete(ns, &DeleteParams::default())
                .await,
        ),
    );
    let retired = f.terminate(t, &tns).await;
    let m = &mut f.m;
    m.allowed(
        "the operator releases, wipes and deletes everything of the tenancy",
        match retired.status.map(|s| s.wipe_records.len()) {
            Some(n) if n > 0 => Ok(()),
            other => Err(format!("wipe records: {other:?}")),
        },
    );
    m.refused(
        "the admin deletes a retired tenancy",
        "tenancy erp is Retired: it is the record of what was released and wiped; only a reviewer removes it",
        delete::<Tenancy>(&admin, ns, t).await,
    );
    m.refused(
        "a tenant deletes an applied termination",
        "change erp-stop is Applied: it records what was decided and wiped",
        delete::<ChangeRequest>(&f.tenant_a, ns, "erp-stop").await,
    );
    m.allowed(
        "a reviewer removes a retired tenancy's record",
        delete::<Tenancy>(&r, ns, t).await,
    );
    f.check("Art. 19: deletions");
    Ok(())
}
