//! Oversight against the real control plane: rectification, force-stop and
//! deregistration (Art. 20), isolation (Art. 25), compliance deadlines
//! (Art. 12 ¶2, 24).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use govcloud::api::tenancy::{RectificationTrigger, RetirementReason};
use govcloud::api::{Tenancy, TenancyPhase, keys};
use govcloud::config::{Config, IsolationVms, OversightConfig};
use govcloud::operator::metrics::ControllerName;
use govcloud::provisioning::{ALLOW_POLICY, UNIT_BINDING, UNIT_BINDING_ISOLATED};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::lab::{Lab, REVIEWER, WAIT, vms};
use crate::support::{Ctx, TestResult, Unit, eventually};

const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";

fn cond(t: &Tenancy, ty: &str) -> Option<(String, String, String)> {
    t.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The unit's own policy in its tenancy namespace: HTTPS in from the district
/// network.
fn unit_policy() -> NetworkPolicy {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": "web-in" },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{ "from": [{ "ipBlock": { "cidr": "10.20.0.0/16" } }], "ports": [{ "port": 443, "protocol": "TCP" }] }]
        }
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The tenancy once its condition `ty` has `status`.
async fn with_condition(lab: &Lab, ns: &str, name: &str, ty: &str, status: &str) -> Tenancy {
    lab.tenancy_where(ns, name, &format!("{ty}={status}"), |t| {
        cond(t, ty).is_some_and(|c| c.0 == status)
    })
    .await
}

/// What a hold takes away and lifting it puts back, as the cluster has it.
#[derive(Debug, Clone, PartialEq)]
struct State {
    /// VM name -> (runStrategy, running).
    vms: BTreeMap<String, (Option<String>, Option<bool>)>,
    policies: BTreeMap<String, serde_json::Value>,
    bindings: BTreeMap<String, String>,
}

async fn state(lab: &Lab, tns: &str) -> State {
    let vms = lab
        .dynamic(tns, &vms())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let spec = &v.data["spec"];
            (
                v.name_any(),
                (
                    spec["runStrategy"].as_str().map(str::to_owned),
                    spec["running"].as_bool(),
                ),
            )
        })
        .collect();
    let policies = Api::<NetworkPolicy>::namespaced(lab.admin.clone(), tns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            (
                p.name_any(),
                serde_json::to_value(&p.spec).unwrap_or_default(),
            )
        })
        .collect();
    let bindings = Api::<RoleBinding>::namespaced(lab.admin.clone(), tns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .map(|b| (b.name_any(), b.role_ref.name))
        .collect();
    State {
        vms,
        policies,
        bindings,
    }
}

/// A tenancy held: every VM halted, only the default-deny policy left, the
/// unit bound to `view` alone.
fn is_held(s: &State) -> bool {
    s.vms
        .values()
        .all(|(strategy, running)| strategy.as_deref() == Some("Halted") || *running == Some(false))
        && !s.policies.contains_key(ALLOW_POLICY)
        && !s.policies.contains_key("web-in")
        && !s.bindings.contains_key(UNIT_BINDING)
        && s.bindings.get(UNIT_BINDING_ISOLATED).map(String::as_str) == Some("view")
}

/// Whether the unit's members may create NetworkPolicies in the tenancy.
async fn member_may_open_the_network(lab: &Lab, unit: &Unit, tns: &str) -> bool {
    let member = lab
        .plane
        .client(&unit.member("clerk"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut policy = unit_policy();
    policy.metadata.name = Some("allow-all".into());
    match Api::<NetworkPolicy>::namespaced(member, tns)
        .create(&PostParams::default(), &policy)
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(e)) if e.code == 403 => false,
        Err(e) => panic!("creating a policy as a member: {e}"),
    }
}

/// A tenancy in formal operation with a policy of the unit's own in it.
async fn active_with_policy(lab: &mut Lab) -> (Unit, String) {
    let (unit, tns) = lab.active("finance", "oa").await;
    Api::<NetworkPolicy>::namespaced(lab.admin.clone(), &tns)
        .create(&PostParams::default(), &unit_policy())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (unit, tns)
}

async fn annotate_as(lab: &Lab, ns: &str, by: &str, key: &str, value: Option<&str>) {
    lab.tenancies(ns)
        .patch(
            "oa",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "annotations": { keys::DECIDED_BY: by, key: value } } }),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("annotating {key}: {e}"));
}

async fn held(lab: &Lab, tns: &str) -> State {
    eventually("the hold to be carried out", WAIT, || async {
        let s = state(lab, tns).await;
        is_held(&s).then_some(s)
    })
    .await
}

pub async fn art20_an_overdue_rectification_force_stops_and_deregistration_retires_it_wiped(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-06-01T02:00:00Z").await;
    let (unit, tns) = active_with_policy(&mut lab).await;
    let ns = &unit.namespace;

    // Deregistration needs a case not rectified in time: refused, nothing released.
    annotate_as(
        &lab,
        ns,
        REVIEWER,
        keys::DEREGISTER,
        Some("no longer needed"),
    )
    .await;
    let t = with_condition(&lab, ns, "oa", "DeregistrationRefused", "True").await;
    assert!(t.spec.retirement.is_none());
    assert_eq!(t.status.unwrap().phase, Some(TenancyPhase::Active));
    annotate_as(&lab, ns, REVIEWER, keys::DEREGISTER, None).await;

    // 2 July 10:00 Beijing: a case for vulnerabilities, due at the end of 2 August.
    annotate_as(&lab, ns, REVIEWER, keys::RECTIFICATION, Some("3")).await;
    let t = lab.tenancy_in(ns, "oa", TenancyPhase::Rectifying).await;
    let case = t.status.unwrap().rectification.unwrap();
    assert_eq!(case.trigger, RectificationTrigger::Vulnerabilities);
    assert_eq!(case.opened_by.as_deref(), Some(REVIEWER));
    assert_eq!(case.due_at.0.to_string(), "2026-08-02T15:59:59Z");
    let reasons = lab.reasons_with(ns, "oa", "RectificationOpened").await;
    assert!(
        reasons.contains(&"RectificationOpened".to_owned()),
        "{reasons:?}"
    );

    // On its last day the tenancy still runs.
    let before = state(&lab, &tns).await;
    let looked = lab.reconciles(ControllerName::Tenancies);
    lab.set_clock("2026-08-02T15:00:00Z");
    lab.looked_at_all(ControllerName::Tenancies, looked).await;
    assert_eq!(
        lab.tenancies(ns).get("oa").await?.status.unwrap().phase,
        Some(TenancyPhase::Rectifying)
    );
    assert_eq!(state(&lab, &tns).await, before);
    assert!(
        before
            .vms
            .values()
            .all(|v| v.0.as_deref() == Some("Always")),
        "{before:?}"
    );

    // Overdue: force-stopped.
    lab.set_clock("2026-08-02T16:00:00Z");
    let t = lab.tenancy_in(ns, "oa", TenancyPhase::ForceStopped).await;
    assert_eq!(cond(&t, "ForceStopped").unwrap().0, "True");
    held(&lab, &tns).await;
    let t = lab
        .tenancy_where(ns, "oa", "Ready to say why", |t| {
            cond(t, "Ready").is_some_and(|c| c.1 == "ForceStopped")
        })
        .await;
    assert_eq!(cond(&t, "Ready").unwrap().0, "False");
    assert!(
        !member_may_open_the_network(&lab, &unit, &tns).await,
        "the unit cannot reopen the network"
    );
    let reasons = lab.reasons_with(ns, "oa", "ForceStopped").await;
    assert!(reasons.contains(&"ForceStopped".to_owned()), "{reasons:?}");

    // Deregistered: retired through the termination path, every volume wiped.
    let volumes: BTreeSet<String> =
        Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), &tns)
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
    annotate_as(
        &lab,
        ns,
        REVIEWER,
        keys::DEREGISTER,
        Some("vulnerabilities not fixed"),
    )
    .await;
    let t = lab
        .tenancy_where(ns, "oa", "the retirement", |t| t.spec.retirement.is_some())
        .await;
    let retirement = t.spec.retirement.unwrap();
    assert_eq!(retirement.reason, RetirementReason::Deregistered);
    assert!(
        retirement.reference.contains(REVIEWER),
        "{}",
        retirement.reference
    );
    let t = eventually("the release", Duration::from_secs(60), || async {
        lab.play_release(&tns).await;
        let t = lab.tenancies(ns).get("oa").await.ok()?;
        (t.status.as_ref()?.phase? == TenancyPhase::Retired).then_some(t)
    })
    .await;
    let wiped: BTreeSet<String> = t
        .status
        .unwrap()
        .wipe_records
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(wiped, volumes);
    eventually("the namespace to go", WAIT, || async {
        Api::<Namespace>::all(lab.admin.clone())
            .get_opt(&tns)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    Ok(())
}

pub async fn art20_a_rectified_case_lifts_the_force_stop_and_restores_what_it_held(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-06-01T02:00:00Z").await;
    let (unit, tns) = active_with_policy(&mut lab).await;
    let ns = &unit.namespace;
    let before = state(&lab, &tns).await;
    assert!(
        member_may_open_the_network(&lab, &unit, &tns).await,
        "the unit edits its own tenancy"
    );
    Api::<NetworkPolicy>::namespaced(lab.admin.clone(), &tns)
        .delete("allow-all", &Default::default())
        .await?;

    annotate_as(&lab, ns, REVIEWER, keys::RECTIFICATION, Some("2")).await;
    lab.tenancy_in(ns, "oa", TenancyPhase::Rectifying).await;
    lab.set_clock("2026-08-03T02:00:00Z");
    lab.tenancy_in(ns, "oa", TenancyPhase::ForceStopped).await;
    held(&lab, &tns).await;

    annotate_as(
        &lab,
        ns,
        REVIEWER,
        keys::RECTIFIED,
        Some("cryptography assessment passed"),
    )
    .await;
    let t = lab.tenancy_in(ns, "oa", TenancyPhase::Active).await;
    let case = t.status.as_ref().unwrap().rectification.clone().unwrap();
    assert_eq!(
        case.closed_note.as_deref(),
        Some("cryptography assessment passed")
    );
    assert_eq!(case.closed_by.as_deref(), Some(REVIEWER));
    let after = eventually("everything back", WAIT, || async {
        let s = state(&lab, &tns).await;
        (s == before).then_some(s)
    })
    .await;
    assert_eq!(after.policies.get("web-in"), before.policies.get("web-in"));
    let t = lab
        .tenancy_where(ns, "oa", "the hold lifted", |t| {
            t.status.as_ref().is_some_and(|s| s.held.is_none())
        })
        .await;
    assert_eq!(cond(&t, "RectificationOpen").unwrap().1, "Rectified");
    assert_eq!(cond(&t, "ForceStopped").unwrap().0, "False");
    assert!(
        member_may_open_the_network(&lab, &unit, &tns).await,
        "the unit's role is back"
    );
    Ok(())
}

pub async fn art25_isolation_cuts_and_halts_at_once_and_lifting_restores_exactly(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-06-01T02:00:00Z").await;
    let (unit, tns) = active_with_policy(&mut lab).await;
    let ns = &unit.namespace;
    let before = state(&lab, &tns).await;

    annotate_as(
        &lab,
        ns,
        "li.vendor",
        keys::ISOLATE,
        Some("outbound scanning from app-1"),
    )
    .await;
    let t = lab
        .tenancy_where(ns, "oa", "the isolation", |t| {
            t.status.as_ref().is_some_and(|s| s.isolation.is_some())
        })
        .await;
    let isolation = t.status.as_ref().unwrap().isolation.clone().unwrap();
    assert_eq!(
        (isolation.reason.as_str(), isolation.by.as_deref()),
        ("outbound scanning from app-1", Some("li.vendor"))
    );
    assert_eq!(isolation.since.0, lab.now());
    assert_eq!(cond(&t, "Isolated").unwrap().0, "True");
    // At once: no clock moves, the next reconciles carry it out.
    held(&lab, &tns).await;
    assert!(!member_may_open_the_network(&lab, &unit, &tns).await);
    let (reason, message) = lab
        .events(ns, "oa")
        .await
        .into_iter()
        .find(|(r, _)| r == "Isolated")
        .unwrap_or_default();
    assert_eq!(reason, "Isolated");
    assert!(
        message.contains("li.vendor") && message.contains("outbound scanning"),
        "{message}"
    );
    // An isolation is not a phase of its own: billing and deadlines go on.
    assert_eq!(t.status.unwrap().phase, Some(TenancyPhase::Active));

    annotate_as(&lab, ns, "li.vendor", keys::ISOLATE, None).await;
    eventually("everything back as it was", WAIT, || async {
        (state(&lab, &tns).await == before).then_some(())
    })
    .await;
    let t = lab
        .tenancy_where(ns, "oa", "the isolation lifted", |t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.held.is_none() && s.isolation.is_none())
        })
        .await;
    assert_eq!(cond(&t, "Isolated").unwrap().1, "Lifted");
    let reasons = lab.reasons_with(ns, "oa", "IsolationLifted").await;
    assert!(
        reasons.contains(&"IsolationLifted".to_owned()),
        "{reasons:?}"
    );
    Ok(())
}

pub async fn art25_pausing_without_kubevirt_api_still_cuts_the_network_and_says_what_failed(
    _: Ctx,
) -> TestResult {
    let config = Config {
        oversight: OversightConfig {
            isolation_vms: IsolationVms::Pause,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut lab = Lab::start_with("2026-06-01T02:00:00Z", config).await;
    let (unit, tns) = active_with_policy(&mut lab).await;
    let ns = &unit.namespace;
    annotate_as(
        &lab,
        ns,
        REVIEWER,
        keys::ISOLATE,
        Some("data leak under investigation"),
    )
    .await;
    // This control plane has no virt-api serving subresources.kubevirt.io: the
    // pause cannot be carried out, and the tenancy says so.
    let t = with_condition(&lab, ns, "oa", "HoldIncomplete", "True").await;
    let (_, reason, message) = cond(&t, "HoldIncomplete").unwrap();
    assert_eq!(reason, "PauseFailed");
    assert!(message.contains("app-1"), "{message}");
    eventually("the network cut", WAIT, || async {
        let s = state(&lab, &tns).await;
        (!s.policies.contains_key(ALLOW_POLICY) && !s.policies.contains_key("web-in")).then_some(())
    })
    .await;
    // Paused, not halted: the VMs keep their run strategy.
    assert!(
        state(&lab, &tns)
            .await
            .vms
            .values()
            .all(|v| v.0.as_deref() == Some("Always"))
    );
    Ok(())
}

pub async fn art12_and_art24_missing_evidence_past_its_deadline_is_overdue_until_added(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-11-16T02:00:00Z").await;
    // The OA sample has all security evidence but no Xinchuang adaptation.
    let (unit, _) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    let t = lab
        .tenancy_where(ns, "oa", "ComplianceOverdue", |t| {
            cond(t, "ComplianceOverdue").is_some()
        })
        .await;
    assert_eq!(
        cond(&t, "ComplianceOverdue").unwrap().0,
        "False",
        "not yet due on {}",
        lab.now()
    );

    lab.set_clock("2027-01-01T02:00:00Z");
    let t = with_condition(&lab, ns, "oa", "ComplianceOverdue", "True").await;
    let (_, reason, message) = cond(&t, "ComplianceOverdue").unwrap();
    assert_eq!(reason, "EvidenceMissing");
    assert!(
        message.contains("Xinchuang adaptation (due by 2026-12-31)"),
        "{message}"
    );
    assert_eq!(
        t.status.unwrap().compliance_gaps,
        ["Xinchuang adaptation (due by 2026-12-31)"]
    );
    let reasons = lab.reasons_with(ns, "oa", "ComplianceOverdue").await;
    assert!(
        reasons.contains(&"ComplianceOverdue".to_owned()),
        "{reasons:?}"
    );

    lab.tenancies(ns)
        .patch(
            "oa",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "compliance": { "xinchuang": { "completedOn": "2027-01-05", "reference": "XC-2027-0012" } } } })),
        )
        .await?;
    let t = with_condition(&lab, ns, "oa", "ComplianceOverdue", "False").await;
    assert!(t.status.unwrap().compliance_gaps.is_empty());

    // A request without its cryptography assessment is overdue from delivery.
    let unit = lab.unit("health").await;
    lab.file(&unit, OA, "his", |v| {
        let c = &mut v["spec"]["compliance"];
        c.as_object_mut().map(|c| c.remove("cryptoAssessment"));
        c["xinchuang"] = json!({ "completedOn": "2026-10-08", "reference": "XC-2026-0031" });
    })
    .await;
    lab.approve(&unit.namespace, "his").await;
    lab.deliver(&unit.namespace, "his", "health").await;
    let t = with_condition(&lab, &unit.namespace, "his", "ComplianceOverdue", "True").await;
    assert_eq!(
        t.status.unwrap().compliance_gaps,
        ["cryptography assessment (due by 2025-12-31)"]
    );
    Ok(())
}
