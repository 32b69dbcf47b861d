//! Review, provisioning, trial and reclaim (Art. 11-16) against a private
//! control plane per test, with the operator on a development clock.

use std::collections::BTreeSet;

use govcloud::api::request::RequestPhase;
use govcloud::api::{Decision, TenancyPhase, keys};
use govcloud::operator::metrics::ControllerName;
use govcloud::provisioning::namespace_name;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::lab::{Lab, WAIT, vms};
use crate::support::{Ctx, TestResult, eventually};

const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";

fn condition<'a>(
    conds: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    t: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    conds.iter().find(|c| c.type_ == t)
}

fn phase(r: &govcloud::api::CloudResourceRequest) -> Option<RequestPhase> {
    r.status.as_ref().and_then(|s| s.phase)
}

async fn names<K>(api: Api<K>) -> BTreeSet<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|o| o.name_any()).collect())
        .unwrap_or_default()
}

async fn namespace_exists(lab: &Lab, name: &str) -> bool {
    Api::<Namespace>::all(lab.admin.clone())
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// Delivery as the cluster would do it: KubeVirt creates the VMs.
async fn deliver(lab: &Lab, unit_ns: &str, name: &str, tenancy_ns: &str) -> govcloud::api::Tenancy {
    lab.tenancy_where(unit_ns, name, "VMs to exist", |t| {
        t.status
            .as_ref()
            .is_some_and(|s| s.inventory.iter().any(|i| i.kind == "VirtualMachine"))
    })
    .await;
    eventually(
        "KubeVirt to create the VMs",
        crate::support::lab::WAIT,
        || async {
            lab.kubevirt_creates_vms(tenancy_ns).await.ok();
            let t = lab.tenancies(unit_ns).get(name).await.ok()?;
            (t.status.as_ref()?.phase == Some(TenancyPhase::Trial)).then_some(t)
        },
    )
    .await
}

pub async fn art13_nothing_is_provisioned_before_an_approval_of_the_current_generation(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    lab.file(&unit, OA, "oa", |_| {}).await;
    let r = lab
        .request_where(ns, "oa", "UnderReview", |r| {
            phase(r) == Some(RequestPhase::UnderReview)
        })
        .await;
    let status = r.status.clone().unwrap_or_default();
    assert!(status.submitted_at.is_some());
    assert_eq!(status.requested.as_ref().map(|x| x.vm_count()), Some(3));
    let tenancy_ns = namespace_name("unit-finance", "finance", "oa");

    // The unit edits (generation 2); the reviewer approves generation 1.
    lab.requests(ns)
        .patch(
            "oa",
            &Default::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "resources": { "publicIPs": 2 } } })),
        )
        .await?;
    lab.decide(ns, "oa", "approve", 1, None).await;
    let r = lab
        .request_where(ns, "oa", "the stale approval to be refused", |r| {
            r.status
                .as_ref()
                .and_then(|s| condition(&s.conditions, "DecisionValid"))
                .is_some_and(|c| c.reason == "StaleDecision")
        })
        .await;
    assert_eq!(phase(&r), Some(RequestPhase::UnderReview));
    let message = &condition(&r.status.as_ref().unwrap().conditions, "DecisionValid")
        .unwrap()
        .message;
    assert!(
        message.contains("names generation 1 but the request is at generation 2"),
        "{message}"
    );
    let looked = lab.reconciles(ControllerName::Requests);
    lab.clock.advance(jiff::SignedDuration::from_secs(1));
    lab.looked_at_all(ControllerName::Requests, looked).await;
    assert!(
        lab.tenancies(ns).get_opt("oa").await?.is_none(),
        "a tenancy exists before approval"
    );
    assert!(
        !namespace_exists(&lab, &tenancy_ns).await,
        "the tenancy namespace exists before approval"
    );
    assert!(names(lab.dynamic(&tenancy_ns, &vms())).await.is_empty());

    // Approval of the current generation provisions it.
    lab.decide(ns, "oa", "approve", 2, None).await;
    let r = lab
        .request_where(ns, "oa", "Approved", |r| {
            phase(r) == Some(RequestPhase::Approved)
        })
        .await;
    let status = r.status.unwrap();
    assert_eq!(status.approved_generation, Some(2));
    let review = status.reviews.last().unwrap();
    assert_eq!(
        (review.decision, review.reviewer.as_str(), review.generation),
        (Decision::Approve, "wang.reviewer", 2)
    );
    let t = lab.tenancy_in(ns, "oa", TenancyPhase::Provisioning).await;
    assert_eq!(t.spec.allocation.public_ips, 2);
    assert_eq!(t.spec.request_generation, 2);

    // Edited after approval: not provisioned until approved again.
    lab.requests(ns)
        .patch(
            "oa",
            &Default::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "resources": { "publicIPs": 3 } } })),
        )
        .await?;
    let r = lab
        .request_where(ns, "oa", "the edit to be flagged", |r| {
            r.status
                .as_ref()
                .and_then(|s| condition(&s.conditions, "SpecApproved"))
                .is_some_and(|c| c.status == "False")
        })
        .await;
    let flagged = condition(&r.status.as_ref().unwrap().conditions, "SpecApproved").unwrap();
    assert_eq!(flagged.reason, "SpecChangedAfterApproval");
    assert!(
        flagged
            .message
            .contains("generation 2 is approved and provisioned; generation 3 is not"),
        "{}",
        flagged.message
    );
    let looked = lab.reconciles(ControllerName::Requests);
    lab.clock.advance(jiff::SignedDuration::from_secs(1));
    lab.looked_at_all(ControllerName::Requests, looked).await;
    assert_eq!(
        lab.tenancies(ns)
            .get("oa")
            .await?
            .spec
            .allocation
            .public_ips,
        2
    );
    lab.decide(ns, "oa", "approve", 3, None).await;
    let t = lab
        .tenancy_where(ns, "oa", "the re-approved allocation", |t| {
            t.spec.allocation.public_ips == 3
        })
        .await;
    assert_eq!(t.spec.request_generation, 3);
    Ok(())
}

pub async fn art14_an_approval_provisions_exactly_the_approved_objects(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    lab.file(&unit, OA, "oa", |_| {}).await;
    lab.request_where(ns, "oa", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    lab.decide(ns, "oa", "approve", 1, None).await;
    let tns = namespace_name("unit-finance", "finance", "oa");
    let t = deliver(&lab, ns, "oa", &tns).await;
    let status = t.status.clone().unwrap();
    assert_eq!(status.namespace.as_deref(), Some(tns.as_str()));
    assert!(
        status.inventory.iter().all(|i| i.ready),
        "{:?}",
        status.inventory
    );
    assert_eq!(status.inventory.len(), 14);
    let delivered = status.delivered_at.unwrap().0;
    assert_eq!(delivered, lab.now());
    assert_eq!(
        status.trial_ends_at.unwrap().0.to_string(),
        "2026-12-27T02:00:00Z"
    );
    // `kubectl get tny` reads the trial's end in Beijing time.
    let table: serde_json::Value = lab
        .admin
        .request(
            http::Request::get(format!(
                "/apis/govcloud.dev/v1alpha1/namespaces/{ns}/tenancies/oa"
            ))
            .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .body(Vec::new())?,
        )
        .await?;
    let column = table["columnDefinitions"]
        .as_array()
        .and_then(|c| c.iter().position(|c| c["name"] == "Trial-Ends"))
        .ok_or("no Trial-Ends column")?;
    assert_eq!(
        table["rows"][0]["cells"][column],
        "2026-12-27 10:00:00 +08:00"
    );

    let vm_names = names(lab.dynamic(&tns, &vms())).await;
    assert_eq!(
        vm_names,
        BTreeSet::from(["app-1".into(), "app-2".into(), "db-1".into()])
    );
    let db = lab.dynamic(&tns, &vms()).get("db-1").await?;
    assert_eq!(db.data["spec"]["runStrategy"], "Always");
    assert_eq!(
        db.data["spec"]["template"]["spec"]["domain"]["cpu"]["cores"],
        8
    );
    assert_eq!(
        db.data["spec"]["template"]["spec"]["domain"]["memory"]["guest"],
        "16Gi"
    );
    assert_eq!(db.data["spec"]["template"]["spec"]["architecture"], "arm64");
    assert_eq!(
        db.labels().get(keys::TENANCY).map(String::as_str),
        Some("oa")
    );
    let owner = &db.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Namespace", tns.as_str())
    );

    let pvcs = names(Api::<PersistentVolumeClaim>::namespaced(
        lab.admin.clone(),
        &tns,
    ))
    .await;
    assert_eq!(
        pvcs,
        [
            "app-1-system",
            "app-2-system",
            "db-1-data",
            "db-1-system",
            "vol-files"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    let quota = Api::<ResourceQuota>::namespaced(lab.admin.clone(), &tns)
        .get("govcloud-allocation")
        .await?;
    let hard = quota.status.unwrap().hard.unwrap();
    assert_eq!(hard["requests.cpu"].0, "16600m");
    assert_eq!(hard["services.loadbalancers"].0, "1");
    let policies = names(Api::<NetworkPolicy>::namespaced(lab.admin.clone(), &tns)).await;
    assert_eq!(
        policies,
        ["govcloud-allow-within-namespace", "govcloud-default-deny"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let binding = Api::<RoleBinding>::namespaced(lab.admin.clone(), &tns)
        .get("govcloud-unit")
        .await?;
    assert_eq!(binding.subjects.unwrap()[0].name, unit.group);
    assert_eq!(binding.role_ref.name, "edit");

    let events: Vec<String> = lab
        .events(ns, "oa")
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    for reason in ["Provisioning", "Delivered"] {
        assert!(
            events.iter().any(|e| e == reason),
            "no {reason} event: {events:?}"
        );
    }
    Ok(())
}

pub async fn art13_a_reviewer_amendment_is_what_gets_provisioned(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    lab.file(&unit, OA, "oa", |_| {}).await;
    lab.request_where(ns, "oa", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    // The reviewer amends: one application server instead of two, 8 GiB more for the database.
    let mut r = lab.requests(ns).get("oa").await?;
    r.spec.resources.vm_groups[0].count = 1;
    r.spec.resources.vm_groups[1].memory_gib = 24;
    let r = lab
        .requests(ns)
        .replace("oa", &Default::default(), &r)
        .await?;
    lab.decide(
        ns,
        "oa",
        "approve",
        r.metadata.generation.unwrap(),
        Some("应用服务器1台即可满足需求"),
    )
    .await;
    let r = lab
        .request_where(ns, "oa", "Approved", |r| {
            phase(r) == Some(RequestPhase::Approved)
        })
        .await;
    let status = r.status.unwrap();
    assert_eq!(
        status.requested.as_ref().unwrap().vm_groups[0].count,
        2,
        "what the unit asked for is kept"
    );
    assert_eq!(status.approved.as_ref().unwrap().vm_groups[0].count, 1);
    let approved = condition(&status.conditions, "Approved").unwrap();
    assert!(
        approved.message.contains("as amended in review"),
        "{}",
        approved.message
    );
    let tns = namespace_name("unit-finance", "finance", "oa");
    deliver(&lab, ns, "oa", &tns).await;
    assert_eq!(
        names(lab.dynamic(&tns, &vms())).await,
        BTreeSet::from(["app-1".into(), "db-1".into()])
    );
    let db = lab.dynamic(&tns, &vms()).get("db-1").await?;
    assert_eq!(
        db.data["spec"]["template"]["spec"]["domain"]["memory"]["guest"],
        "24Gi"
    );
    Ok(())
}

pub async fn art13_expert_review_return_and_rejection_follow_the_reviewers(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    lab.file(&unit, OA, "oa", |_| {}).await;
    lab.request_where(ns, "oa", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;

    // Return without an opinion is refused; with one, the request goes back.
    lab.decide(ns, "oa", "return", 1, None).await;
    lab.request_where(ns, "oa", "an opinion to be required", |r| {
        r.status
            .as_ref()
            .and_then(|s| condition(&s.conditions, "DecisionValid"))
            .is_some_and(|c| c.reason == "OpinionMissing")
    })
    .await;
    lab.decide(ns, "oa", "return", 1, Some("请补充业务量测算依据"))
        .await;
    lab.request_where(ns, "oa", "Returned", |r| {
        phase(r) == Some(RequestPhase::Returned)
    })
    .await;
    // The unit supplements: back under review.
    lab.requests(ns)
        .patch(
            "oa",
            &Default::default(),
            &kube::api::Patch::Merge(
                json!({ "spec": { "requirements": "补充：按峰值并发80人测算。" } }),
            ),
        )
        .await?;
    lab.request_where(ns, "oa", "resubmitted", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;

    // Expert review holds approval until the expert opinion is recorded.
    lab.decide(ns, "oa", "expert-review", 2, None).await;
    lab.request_where(ns, "oa", "ExpertReview", |r| {
        phase(r) == Some(RequestPhase::ExpertReview)
    })
    .await;
    lab.decide(ns, "oa", "approve", 2, None).await;
    let r = lab
        .request_where(ns, "oa", "approval to wait for the expert", |r| {
            r.status
                .as_ref()
                .and_then(|s| condition(&s.conditions, "DecisionValid"))
                .is_some_and(|c| c.reason == "AwaitingExpertOpinion")
        })
        .await;
    assert_eq!(phase(&r), Some(RequestPhase::ExpertReview));
    assert!(lab.tenancies(ns).get_opt("oa").await?.is_none());

    // A second request is rejected: the opinion is kept.
    lab.file(&unit, OA, "oa2", |_| {}).await;
    lab.request_where(ns, "oa2", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    lab.decide(ns, "oa2", "reject", 1, Some("与现有系统功能重复"))
        .await;
    let r = lab
        .request_where(ns, "oa2", "Rejected", |r| {
            phase(r) == Some(RequestPhase::Rejected)
        })
        .await;
    let status = r.status.unwrap();
    assert_eq!(
        status.reviews.last().unwrap().opinion.as_deref(),
        Some("与现有系统功能重复")
    );
    assert!(lab.tenancies(ns).get_opt("oa2").await?.is_none());

    // The expert opinion arrives; the approval stands.
    lab.annotate(
        &lab.requests(ns),
        "oa",
        keys::EXPERT_OPINION,
        Some("专家评审意见 ZJ-2026-031"),
    )
    .await;
    let r = lab
        .request_where(ns, "oa", "Approved", |r| {
            phase(r) == Some(RequestPhase::Approved)
        })
        .await;
    let reviews = r.status.unwrap().reviews;
    let decisions: Vec<Decision> = reviews.iter().map(|r| r.decision).collect();
    assert_eq!(
        decisions,
        [Decision::Return, Decision::ExpertReview, Decision::Approve]
    );
    assert_eq!(
        reviews[2].expert_opinion.as_deref(),
        Some("专家评审意见 ZJ-2026-031")
    );
    Ok(())
}

/// Quota admission charges a create before it is stored: one cut off (the
/// operator killed mid-request, the apiserver restarted) stays charged until
/// the quota controller counts again, which by itself it does every five
/// minutes. The operator has it count at once, and the envelope stays what
/// was approved.
pub async fn art14_a_charge_left_by_a_cut_off_create_holds_delivery_seconds_not_minutes(
    _: Ctx,
) -> TestResult {
    use kube::api::{Patch, PatchParams, PostParams};
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    let tns = namespace_name("unit-finance", "finance", "oa");
    let admin = lab.admin.clone();

    // Volumes cannot be created in the tenancy's namespace for now.
    let gvk = |kind| kube::api::GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind);
    let vap = kube::api::ApiResource::from_gvk_with_plural(
        &gvk("ValidatingAdmissionPolicy"),
        "validatingadmissionpolicies",
    );
    let binding = kube::api::ApiResource::from_gvk_with_plural(
        &gvk("ValidatingAdmissionPolicyBinding"),
        "validatingadmissionpolicybindings",
    );
    let policy: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": { "name": "test-hold-volumes" },
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": { "resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE"], "resources": ["persistentvolumeclaims"] }] },
            "validations": [{
                "expression": "!request.namespace.startsWith('finance-')",
                "message": "volumes are held by the test" }]
        }
    }))?;
    let bound: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": { "name": "test-hold-volumes" },
        "spec": { "policyName": "test-hold-volumes", "validationActions": ["Deny"] }
    }))?;
    Api::<kube::api::DynamicObject>::all_with(admin.clone(), &vap)
        .create(&PostParams::default(), &policy)
        .await?;
    let bindings = Api::<kube::api::DynamicObject>::all_with(admin.clone(), &binding);
    bindings.create(&PostParams::default(), &bound).await?;
    // In force once a volume in a namespace like the tenancy's is refused.
    let probe: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": "finance-probe" } }))?;
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &probe)
        .await?;
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": { "name": "probe" },
        "spec": { "accessModes": ["ReadWriteOnce"],
                  "resources": { "requests": { "storage": "1Gi" } } }
    }))?;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let probe = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), "finance-probe");
    let held = || async { probe.create(&dry, &claim).await.is_err() };
    eventually("the test's policy to hold volumes", WAIT, || async {
        held().await.then_some(())
    })
    .await;

    lab.file(&unit, OA, "oa", |_| {}).await;
    lab.approve(ns, "oa").await;
    let quotas = Api::<ResourceQuota>::namespaced(admin.clone(), &tns);
    let quota = eventually("the quota in force", WAIT, || async {
        let q = quotas.get(govcloud::provisioning::QUOTA).await.ok()?;
        let hard = q.spec.as_ref()?.hard.clone()?;
        (q.status.as_ref()?.hard.as_ref() == Some(&hard)).then_some(hard)
    })
    .await;
    lab.tenancy_where(ns, "oa", "the volumes refused", |t| {
        t.status.as_ref().is_some_and(|s| {
            condition(&s.conditions, "ApplyFailed")
                .is_some_and(|c| c.message.contains("volumes are held by the test"))
        })
    })
    .await;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &tns);
    assert!(pvcs.list(&ListParams::default()).await?.items.is_empty());

    // The operator is killed mid-create: what that leaves is a quota that
    // counts all its storage used, though no volume is stored.
    lab.stop_operator().await;
    let charged: serde_json::Map<String, serde_json::Value> = quota
        .iter()
        .filter(|(k, _)| k.ends_with("requests.storage"))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    quotas
        .patch_status(
            govcloud::provisioning::QUOTA,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "used": charged } })),
        )
        .await?;
    bindings
        .delete("test-hold-volumes", &Default::default())
        .await?;
    eventually("the test's policy gone", WAIT, || async {
        (!held().await).then_some(())
    })
    .await;
    // And started again.
    lab.run_operator(govcloud::config::Config::default());

    // Delivered within the lab's wait (30 s), not after the quota
    // controller's five-minute resync.
    let t = deliver(&lab, ns, "oa", &tns).await;
    assert!(
        t.status
            .as_ref()
            .is_some_and(|s| condition(&s.conditions, "ApplyFailed").is_none()),
        "nothing refused any more: {:?}",
        t.status.as_ref().map(|s| &s.conditions)
    );
    let events = lab.events_with(ns, "oa", &["QuotaRecount"]).await;
    assert!(
        events.iter().any(|(r, m)| r == "QuotaRecount"
            && m.contains("asked to count the namespace's usage again")),
        "{events:?}"
    );
    // The envelope is what was approved, without the recount's limit.
    let after = quotas.get(govcloud::provisioning::QUOTA).await?;
    assert_eq!(after.spec.and_then(|s| s.hard), Some(quota));
    Ok(())
}
