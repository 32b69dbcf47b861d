//! Emergency openings, the trial, reclaim and suspension, extensions (Art.
//! 13 ¶2, 14 ¶2, 15, 16, 17), against a private control plane per test.

use std::collections::BTreeSet;

use govcloud::api::request::RequestPhase;
use govcloud::api::tenancy::{WipeMethod, WipeResult};
use govcloud::api::{TenancyPhase, keys};
use govcloud::operator::metrics::ControllerName;
use govcloud::provisioning::namespace_name;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::lab::{Lab, WAIT, vms};
use crate::support::{Ctx, TestResult, eventually};

const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";
const URGENT: &str = "config/samples/21-cloudresourcerequest-emergency.yaml";
const EXTENSION: &str = "config/samples/22-cloudresourcerequest-extension.yaml";

fn phase(r: &govcloud::api::CloudResourceRequest) -> Option<RequestPhase> {
    r.status.as_ref().and_then(|s| s.phase)
}

fn cond(t: &govcloud::api::Tenancy, ty: &str) -> Option<(String, String, String)> {
    t.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn approve_and_deliver(lab: &Lab, unit_ns: &str, name: &str, unit_id: &str) -> String {
    lab.request_where(unit_ns, name, "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    let generation = lab
        .requests(unit_ns)
        .get(name)
        .await
        .unwrap()
        .metadata
        .generation
        .unwrap();
    lab.decide(unit_ns, name, "approve", generation, None).await;
    let tns = namespace_name(&format!("unit-{unit_id}"), unit_id, name);
    deliver(lab, unit_ns, name, &tns).await;
    tns
}

async fn deliver(lab: &Lab, unit_ns: &str, name: &str, tns: &str) {
    eventually("delivery", WAIT, || async {
        lab.kubevirt_creates_vms(tns).await.ok();
        let t = lab.tenancies(unit_ns).get(name).await.ok()?;
        (t.status.as_ref()?.phase == Some(TenancyPhase::Trial)).then_some(())
    })
    .await;
}

async fn pvc_names(lab: &Lab, ns: &str) -> BTreeSet<String> {
    Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|p| p.name_any()).collect())
        .unwrap_or_default()
}

/// Plays KubeVirt and the Job controller until the tenancy has released
/// everything.
async fn release(lab: &Lab, unit_ns: &str, name: &str, tns: &str) -> govcloud::api::Tenancy {
    eventually(
        "the release to finish",
        std::time::Duration::from_secs(60),
        || async {
            lab.kubevirt_stops_halted(tns).await.ok();
            lab.jobs_finish(tns, true).await.ok();
            let t = lab.tenancies(unit_ns).get(name).await.ok()?;
            t.status.as_ref()?.retired_at.is_some().then_some(t)
        },
    )
    .await
}

pub async fn art13_an_urgent_mark_alone_opens_nothing_and_emergency_open_starts_the_paperwork_clock(
    _: Ctx,
) -> TestResult {
    // 10:00 Beijing on Thursday 2026-02-12, before the Spring Festival.
    let mut lab = Lab::start("2026-02-12T02:00:00Z").await;
    let unit = lab.unit("education").await;
    let ns = &unit.namespace;
    lab.file(&unit, URGENT, "exam", |_| {}).await;
    lab.request_where(ns, "exam", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    let looked = lab.reconciles(ControllerName::Requests);
    lab.clock.advance(jiff::SignedDuration::from_secs(1));
    lab.looked_at_all(ControllerName::Requests, looked).await;
    assert!(
        lab.tenancies(ns).get_opt("exam").await?.is_none(),
        "the urgent mark alone opened resources"
    );

    lab.decide(ns, "exam", "emergency-open", 1, None).await;
    let r = lab
        .request_where(ns, "exam", "EmergencyOpened", |r| {
            phase(r) == Some(RequestPhase::EmergencyOpened)
        })
        .await;
    let due = r
        .status
        .as_ref()
        .unwrap()
        .paperwork_due_at
        .clone()
        .unwrap()
        .0;
    // The end of 2026-03-04 in Beijing (calendar/README.md's worked example).
    assert_eq!(due.to_string(), "2026-03-04T15:59:59Z");
    let t = lab.tenancy_in(ns, "exam", TenancyPhase::Provisioning).await;
    assert_eq!(
        t.spec.emergency.as_ref().map(|e| e.paperwork_due_at.0),
        Some(due)
    );

    // One second past the deadline.
    lab.set_clock("2026-03-04T16:00:00Z");
    let r = lab
        .request_where(ns, "exam", "PaperworkOverdue", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "PaperworkOverdue" && c.status == "True")
            })
        })
        .await;
    assert_eq!(phase(&r), Some(RequestPhase::EmergencyOpened));
    let events = lab.events_with(ns, "exam", &["PaperworkOverdue"]).await;
    assert!(
        events
            .iter()
            .any(|(reason, m)| reason == "PaperworkOverdue" && m.contains("2026-03-04")),
        "{events:?}"
    );

    // Approval without the materials is refused; with them it clears the overdue mark.
    lab.decide(ns, "exam", "approve", 1, None).await;
    lab.request_where(ns, "exam", "materials to be required", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "MaterialsMissing"))
    })
    .await;
    let documents = serde_json::to_value(&lab.requests(ns).get("exam").await?.spec)?;
    let oa = govcloud_testenv::manifests::parse(OA, &crate::support::read(OA))?;
    let docs = serde_json::to_value(&oa[0])?["spec"]["documents"].clone();
    assert!(documents["documents"].get("requestLetter").is_none());
    // The paperwork arrives: the materials are filed (a new generation) and approved.
    let r = lab
        .requests(ns)
        .patch(
            "exam",
            &Default::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "documents": docs } })),
        )
        .await?;
    lab.decide(ns, "exam", "approve", r.metadata.generation.unwrap(), None)
        .await;
    let r = lab
        .request_where(ns, "exam", "Approved", |r| {
            phase(r) == Some(RequestPhase::Approved)
        })
        .await;
    let overdue = r
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "PaperworkOverdue")
        .unwrap();
    assert_eq!(
        (overdue.status.as_str(), overdue.reason.as_str()),
        ("False", "PaperworkCompleted")
    );
    lab.tenancy_where(ns, "exam", "the emergency mark to clear", |t| {
        t.spec.emergency.is_none()
    })
    .await;
    Ok(())
}

pub async fn art13_an_approval_after_an_emergency_opening_must_keep_what_was_opened(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-02-12T02:00:00Z").await;
    let unit = lab.unit("education").await;
    let ns = &unit.namespace;
    let oa = govcloud_testenv::manifests::parse(OA, &crate::support::read(OA))?;
    let docs = serde_json::to_value(&oa[0])?["spec"]["documents"].clone();
    lab.file(&unit, URGENT, "exam", |v| v["spec"]["documents"] = docs)
        .await;
    lab.request_where(ns, "exam", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    lab.decide(ns, "exam", "emergency-open", 1, None).await;
    lab.tenancy_in(ns, "exam", TenancyPhase::Provisioning).await;
    // The unit asks for more while the paperwork is pending.
    let r = lab
        .requests(ns)
        .patch(
            "exam",
            &Default::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "resources": { "bandwidthMbps": 100 } } })),
        )
        .await?;
    lab.decide(ns, "exam", "approve", r.metadata.generation.unwrap(), None)
        .await;
    let r = lab
        .request_where(ns, "exam", "the change to be refused", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.reason == "ChangedSinceOpening")
            })
        })
        .await;
    assert_eq!(phase(&r), Some(RequestPhase::EmergencyOpened));
    let t = lab.tenancies(ns).get("exam").await?;
    assert_eq!(
        t.spec.allocation.bandwidth_mbps, 50,
        "what runs is what was opened"
    );
    Ok(())
}

pub async fn art13_a_rejection_after_an_emergency_opening_retires_the_tenancy_wiped(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-02-12T02:00:00Z").await;
    let unit = lab.unit("education").await;
    let ns = &unit.namespace;
    lab.file(&unit, URGENT, "exam", |_| {}).await;
    lab.request_where(ns, "exam", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    lab.decide(ns, "exam", "emergency-open", 1, None).await;
    let tns = namespace_name("unit-education", "education", "exam");
    deliver(&lab, ns, "exam", &tns).await;
    lab.kubevirt_runs(&tns, "web-1", true).await?;
    let before = pvc_names(&lab, &tns).await;
    assert_eq!(before.len(), 4, "{before:?}");

    lab.decide(ns, "exam", "reject", 1, Some("不符合上云条件"))
        .await;
    lab.request_where(ns, "exam", "Rejected", |r| {
        phase(r) == Some(RequestPhase::Rejected)
    })
    .await;
    lab.tenancy_in(ns, "exam", TenancyPhase::Terminating).await;
    let t = release(&lab, ns, "exam", &tns).await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, Some(TenancyPhase::Retired));
    let wiped: BTreeSet<String> = status
        .wipe_records
        .iter()
        .filter(|r| r.result == WipeResult::Succeeded && r.method == WipeMethod::Overwrite)
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(wiped, before);
    assert!(
        Api::<Namespace>::all(lab.admin.clone())
            .get_opt(&tns)
            .await?
            .is_none_or(|n| n.metadata.deletion_timestamp.is_some())
    );
    Ok(())
}

pub async fn art16_a_used_trial_becomes_active_billed_from_the_trial_end(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    lab.file(&unit, OA, "oa", |_| {}).await;
    let tns = approve_and_deliver(&lab, ns, "oa", "finance").await;
    let t = lab.tenancy_in(ns, "oa", TenancyPhase::Trial).await;
    let ends = t.status.as_ref().unwrap().trial_ends_at.clone().unwrap().0;

    // A VM running without its probe is not yet use.
    lab.kubevirt_runs(&tns, "app-1", false).await?;
    lab.advance_days(3);
    lab.kubevirt_runs(&tns, "db-1", true).await?;
    let t = lab
        .tenancy_where(ns, "oa", "usage to be recorded", |t| {
            t.status.as_ref().is_some_and(|s| s.usage.is_some())
        })
        .await;
    let usage = t.status.unwrap().usage.unwrap();
    assert_eq!(usage.vm.as_deref(), Some("db-1"));
    assert_eq!(usage.probe_reported_at.unwrap().0, lab.now());

    // The unit confirms delivery (Attachment 2 reply).
    lab.annotate(
        &lab.tenancies(ns),
        "oa",
        keys::DELIVERY_CONFIRMED,
        Some("2026-12-01 财政金融部回函"),
    )
    .await;
    let confirmed = lab
        .tenancy_where(ns, "oa", "the confirmation", |t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.delivery_confirmed_at.is_some())
        })
        .await
        .status
        .unwrap_or_default();
    assert_eq!(
        confirmed.delivery_confirmed_at.map(|t| t.0),
        Some(lab.now())
    );
    assert_eq!(
        confirmed.delivery_confirmation.as_deref(),
        Some("2026-12-01 财政金融部回函"),
        "the unit's words are kept"
    );

    lab.advance_days(27);
    let t = lab.tenancy_in(ns, "oa", TenancyPhase::Active).await;
    let status = t.status.unwrap();
    assert_eq!(
        status.billing_started_at.unwrap().0,
        ends,
        "billing starts at the trial end"
    );
    assert!(status.delivered_at.unwrap().0 < ends);
    let events: Vec<String> = lab
        .events(ns, "oa")
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    for reason in [
        "Delivered",
        "UsageDetected",
        "DeliveryConfirmed",
        "TrialPassed",
    ] {
        assert!(
            events.contains(&reason.to_owned()),
            "{reason} missing: {events:?}"
        );
    }
    // Nothing was removed.
    assert_eq!(pvc_names(&lab, &tns).await.len(), 5);
    Ok(())
}

pub async fn art15_an_unused_trial_is_reclaimed_wiped_and_the_unit_suspended(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    lab.file(&unit, OA, "oa", |_| {}).await;
    let tns = approve_and_deliver(&lab, ns, "oa", "finance").await;
    // The unit ran a VM but never let the probe report.
    lab.kubevirt_runs(&tns, "app-1", false).await?;
    let before = pvc_names(&lab, &tns).await;
    assert_eq!(before.len(), 5);

    lab.advance_days(31);
    lab.tenancy_in(ns, "oa", TenancyPhase::Reclaimed).await;
    let unit_ns = eventually("the unit to be suspended", WAIT, || async {
        let n = Api::<Namespace>::all(lab.admin.clone())
            .get(ns)
            .await
            .ok()?;
        (n.labels().get(keys::SUSPENDED).map(String::as_str) == Some("true")).then_some(n)
    })
    .await;
    let reason = unit_ns
        .annotations()
        .get(keys::SUSPENDED_REASON)
        .cloned()
        .unwrap_or_default();
    assert!(
        reason.contains("ended on 2026-12-27 without use"),
        "{reason}"
    );
    // When, in Beijing time (machine-readable too).
    let at = unit_ns
        .annotations()
        .get(keys::SUSPENDED_AT)
        .cloned()
        .unwrap_or_default();
    assert!(at.ends_with("+08:00"), "{at}");
    assert!(at.parse::<jiff::Timestamp>().is_ok(), "{at}");

    // The VMs are halted first.
    eventually("VMs halted", WAIT, || async {
        let all = lab
            .dynamic(&tns, &vms())
            .list(&ListParams::default())
            .await
            .ok()?;
        all.items
            .iter()
            .all(|vm| vm.data["spec"]["runStrategy"] == "Halted")
            .then_some(())
    })
    .await;
    let t = release(&lab, ns, "oa", &tns).await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, Some(TenancyPhase::Reclaimed));
    let wiped: BTreeSet<String> = status.wipe_records.iter().map(|r| r.name.clone()).collect();
    assert_eq!(wiped, before, "every disk and volume has a wipe record");
    assert!(
        status
            .wipe_records
            .iter()
            .all(|r| r.result == WipeResult::Succeeded && r.size_gib > 0)
    );
    assert!(
        pvc_names(&lab, &tns).await.is_empty(),
        "disks and PVCs are gone"
    );
    assert!(
        lab.dynamic(&tns, &vms())
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );

    // A new request of the suspended unit is refused, with the reason.
    lab.file(&unit, OA, "oa-again", |_| {}).await;
    let r = lab
        .request_where(ns, "oa-again", "Rejected", |r| {
            phase(r) == Some(RequestPhase::Rejected)
        })
        .await;
    let accepted = r
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert_eq!(accepted.reason, "UnitSuspended");
    assert!(
        accepted.message.contains("suspension-lifted"),
        "{}",
        accepted.message
    );

    // A reviewer lifts the suspension; the unit may apply again.
    lab.annotate(
        &Api::<Namespace>::all(lab.admin.clone()),
        ns,
        keys::SUSPENSION_LIFTED,
        Some("2027-01-05 数字城市部同意恢复申请"),
    )
    .await;
    eventually("the suspension to be lifted", WAIT, || async {
        let n = Api::<Namespace>::all(lab.admin.clone())
            .get(ns)
            .await
            .ok()?;
        (!n.labels().contains_key(keys::SUSPENDED)).then_some(())
    })
    .await;
    lab.file(&unit, OA, "oa-third", |_| {}).await;
    lab.request_where(ns, "oa-third", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    Ok(())
}

pub async fn art14_high_end_items_wait_for_the_vendors_procurement(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    lab.file(&unit, OA, "oa", |v| {
        v["spec"]["resources"]["vmGroups"][1]["highEnd"] = json!(true);
        v["spec"]["highEndNote"] = json!("数据库服务器需配置NVMe SSD");
    })
    .await;
    lab.request_where(ns, "oa", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    lab.decide(ns, "oa", "approve", 1, None).await;
    let tns = namespace_name("unit-finance", "finance", "oa");
    let t = eventually("AwaitingProcurement", WAIT, || async {
        lab.kubevirt_creates_vms(&tns).await.ok();
        let t = lab.tenancies(ns).get("oa").await.ok()?;
        cond(&t, "Delivered")
            .is_some_and(|(s, r, m)| {
                s == "False" && r == "AwaitingProcurement" && m.starts_with("high-end items wait")
            })
            .then_some(t)
    })
    .await;
    let (_, _, message) = cond(&t, "Delivered").unwrap();
    assert!(message.contains("VM group db (1 VMs)"), "{message}");
    let vms_now: BTreeSet<String> = lab
        .dynamic(&tns, &vms())
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|v| v.name_any())
        .collect();
    assert_eq!(vms_now, BTreeSet::from(["app-1".into(), "app-2".into()]));
    assert_eq!(t.status.unwrap().phase, Some(TenancyPhase::Provisioning));

    lab.annotate(
        &lab.tenancies(ns),
        "oa",
        keys::PROCURED,
        Some("采购合同 CG-2026-118 已履约"),
    )
    .await;
    deliver(&lab, ns, "oa", &tns).await;
    assert!(lab.dynamic(&tns, &vms()).get_opt("db-1").await?.is_some());
    Ok(())
}

pub async fn art17_an_approved_extension_grows_the_tenancy_without_a_new_trial(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = &unit.namespace;
    lab.file(&unit, OA, "finance-oa", |_| {}).await;
    let tns = approve_and_deliver(&lab, ns, "finance-oa", "finance").await;
    let trial_ends = lab
        .tenancies(ns)
        .get("finance-oa")
        .await?
        .status
        .unwrap()
        .trial_ends_at
        .unwrap();

    lab.advance_days(5);
    lab.file(&unit, EXTENSION, "finance-oa-expansion", |v| {
        v["spec"]["extends"] = json!("finance-oa");
    })
    .await;
    lab.request_where(ns, "finance-oa-expansion", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    lab.decide(ns, "finance-oa-expansion", "approve", 1, None)
        .await;
    let r = lab
        .request_where(ns, "finance-oa-expansion", "Approved", |r| {
            phase(r) == Some(RequestPhase::Approved)
        })
        .await;
    assert_eq!(r.status.unwrap().tenancy.as_deref(), Some("finance-oa"));
    assert!(
        lab.tenancies(ns)
            .get_opt("finance-oa-expansion")
            .await?
            .is_none(),
        "no new tenancy"
    );

    let t = eventually("the extension to be delivered", WAIT, || async {
        lab.kubevirt_creates_vms(&tns).await.ok();
        let t = lab.tenancies(ns).get("finance-oa").await.ok()?;
        (!t.status.as_ref()?.extension_deliveries.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(t.spec.allocation.vm_count(), 4);
    assert_eq!(
        t.spec
            .extensions
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>(),
        ["finance-oa-expansion"]
    );
    let status = t.status.unwrap();
    assert_eq!(status.trial_ends_at.unwrap(), trial_ends, "no new trial");
    assert_eq!(status.extension_deliveries[0].delivered_at.0, lab.now());
    assert!(
        lab.dynamic(&tns, &vms())
            .get_opt("app-extra-1")
            .await?
            .is_some()
    );
    Ok(())
}
