//! Changes and terminations with data wiping (Art. 17, 19), and nothing lost
//! by accident, against a private control plane per test.

use std::collections::BTreeSet;
use std::time::Duration;

use govcloud::api::change::ChangePhase;
use govcloud::api::tenancy::{WipeMethod, WipeResult};
use govcloud::api::{ChangeRequest, TenancyPhase, keys};
use govcloud::operator::metrics::ControllerName;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::support::lab::{Lab, REVIEWER, WAIT, vms};
use crate::support::{Ctx, TestResult, eventually, read};

const MODIFY: &str = "config/samples/30-changerequest-modify.yaml";
pub(crate) const TERMINATE: &str = "config/samples/31-changerequest-terminate.yaml";

fn changes(lab: &Lab, ns: &str) -> Api<ChangeRequest> {
    Api::namespaced(lab.admin.clone(), ns)
}

/// Files a sample ChangeRequest against `tenancy`, edited by `edit`.
pub(crate) async fn file_change(
    lab: &Lab,
    ns: &str,
    sample: &str,
    name: &str,
    tenancy: &str,
    edit: impl FnOnce(&mut Value),
) -> ChangeRequest {
    let objs =
        govcloud_testenv::manifests::parse(sample, &read(sample)).unwrap_or_else(|e| panic!("{e}"));
    let mut v = serde_json::to_value(&objs[0]).unwrap_or_default();
    v["metadata"] = json!({ "name": name, "namespace": ns });
    v["spec"]["tenancy"] = json!(tenancy);
    edit(&mut v);
    let obj: ChangeRequest = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    changes(lab, ns)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("filing {name}: {e}"))
}

async fn change_where(
    lab: &Lab,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&ChangeRequest) -> bool,
) -> ChangeRequest {
    let api = changes(lab, ns);
    eventually(what, WAIT, || {
        let api = api.clone();
        let check = &check;
        async move { api.get(name).await.ok().filter(|c| check(c)) }
    })
    .await
}

pub(crate) async fn change_in(
    lab: &Lab,
    ns: &str,
    name: &str,
    phase: ChangePhase,
) -> ChangeRequest {
    change_where(lab, ns, name, &format!("{name} {phase:?}"), |c| {
        c.status.as_ref().and_then(|s| s.phase) == Some(phase)
    })
    .await
}

fn condition(c: &ChangeRequest, t: &str) -> Option<(String, String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == t)
        .map(|x| (x.status.clone(), x.reason.clone(), x.message.clone()))
}

pub(crate) async fn decide_change(
    lab: &Lab,
    ns: &str,
    name: &str,
    decision: &str,
    opinion: Option<&str>,
) {
    let generation = changes(lab, ns)
        .get(name)
        .await
        .unwrap()
        .metadata
        .generation
        .unwrap_or(1);
    let mut annotations = json!({
        keys::DECISION: decision,
        keys::DECIDED_GENERATION: generation.to_string(),
        keys::DECIDED_BY: REVIEWER,
    });
    if let Some(o) = opinion {
        annotations[keys::OPINION] = json!(o);
    }
    changes(lab, ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": annotations } })),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The sample's configuration after the change, as the OA sample has it.
fn oa_after(edit: impl FnOnce(&mut Value)) -> impl FnOnce(&mut Value) {
    move |v| {
        let oa = govcloud_testenv::manifests::parse(
            "oa",
            &read("config/samples/20-cloudresourcerequest-oa.yaml"),
        )
        .unwrap();
        let mut after = serde_json::to_value(&oa[0]).unwrap()["spec"]["resources"].clone();
        edit(&mut after);
        v["spec"]["after"] = after;
    }
}

pub async fn art17_a_change_filed_on_2025_09_26_is_due_by_the_end_of_2025_10_16(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2025-08-22T02:00:00Z").await;
    let (unit, _) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    // 10:00 Beijing on Friday 2025-09-26, before the National Day holiday.
    lab.set_clock("2025-09-26T02:00:00Z");
    file_change(
        &lab,
        ns,
        MODIFY,
        "resize",
        "oa",
        oa_after(|a| a["bandwidthMbps"] = json!(50)),
    )
    .await;
    let c = change_in(&lab, ns, "resize", ChangePhase::UnderReview).await;
    let status = c.status.clone().unwrap();
    assert_eq!(
        status.review_due_at.unwrap().0.to_string(),
        "2025-10-16T15:59:59Z"
    );
    assert_eq!(
        status.before.as_ref().map(|b| b.bandwidth_mbps),
        Some(20),
        "the configuration before is filled in"
    );
    assert_eq!(status.system_name.as_deref(), Some("财政金融部OA办公系统"));

    let looked = lab.reconciles(ControllerName::Changes);
    lab.set_clock("2025-10-16T15:59:59Z");
    lab.looked_at_all(ControllerName::Changes, looked).await;
    let c = changes(&lab, ns).get("resize").await?;
    assert_eq!(
        condition(&c, "ReviewOverdue").map(|c| c.0),
        Some("False".into())
    );
    lab.set_clock("2025-10-16T16:00:00Z");
    let c = change_where(&lab, ns, "resize", "ReviewOverdue", |c| {
        condition(c, "ReviewOverdue").is_some_and(|x| x.0 == "True")
    })
    .await;
    assert!(
        condition(&c, "ReviewOverdue")
            .unwrap()
            .2
            .contains("due by 2025-10-16")
    );
    lab.events_with(ns, "resize", &["ReviewOverdue"]).await;
    Ok(())
}

pub async fn art17_a_change_that_adds_or_shrinks_is_refused_with_what_to_do(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let (unit, _) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    file_change(
        &lab,
        ns,
        MODIFY,
        "more-vms",
        "oa",
        oa_after(|a| a["vmGroups"][0]["count"] = json!(3)),
    )
    .await;
    // Held back before review: the unit corrects or withdraws it.
    let c = change_in(&lab, ns, "more-vms", ChangePhase::Submitted).await;
    let (_, reason, message) = condition(&c, "Accepted").unwrap();
    assert_eq!(reason, "FileAnExtension");
    assert!(
        message.contains("file a CloudResourceRequest with `extends: oa`"),
        "{message}"
    );

    file_change(
        &lab,
        ns,
        MODIFY,
        "more-ips",
        "oa",
        oa_after(|a| a["publicIPs"] = json!(4)),
    )
    .await;
    let c = change_in(&lab, ns, "more-ips", ChangePhase::Submitted).await;
    assert!(
        condition(&c, "Accepted")
            .unwrap()
            .2
            .contains("3 more public IPs")
    );

    file_change(
        &lab,
        ns,
        MODIFY,
        "shrink",
        "oa",
        oa_after(|a| a["vmGroups"][1]["dataDiskGiB"] = json!(100)),
    )
    .await;
    let c = change_in(&lab, ns, "shrink", ChangePhase::Submitted).await;
    let message = condition(&c, "Accepted").unwrap().2;
    assert!(
        message.contains("would shrink from 500 GiB to 100 GiB"),
        "{message}"
    );
    assert!(
        message.contains("nothing is done by deleting data"),
        "{message}"
    );

    file_change(
        &lab,
        ns,
        MODIFY,
        "nowhere",
        "no-such-tenancy",
        oa_after(|_| {}),
    )
    .await;
    let c = change_in(&lab, ns, "nowhere", ChangePhase::Submitted).await;
    assert!(
        condition(&c, "Accepted")
            .unwrap()
            .2
            .contains("there is no tenancy no-such-tenancy")
    );

    // A change to a tenancy still in its trial is refused with the reason.
    lab.file(
        &unit,
        "config/samples/20-cloudresourcerequest-oa.yaml",
        "trial",
        |_| {},
    )
    .await;
    lab.approve(ns, "trial").await;
    lab.deliver(ns, "trial", "finance").await;
    file_change(
        &lab,
        ns,
        MODIFY,
        "too-early",
        "trial",
        oa_after(|a| a["bandwidthMbps"] = json!(30)),
    )
    .await;
    let c = change_in(&lab, ns, "too-early", ChangePhase::Submitted).await;
    let (_, reason, message) = condition(&c, "Accepted").unwrap();
    assert_eq!(reason, "WrongPhase");
    assert!(message.contains("in its trial"), "{message}");
    // Nothing changed on the tenancy.
    assert_eq!(
        lab.tenancies(ns)
            .get("oa")
            .await?
            .spec
            .allocation
            .vm_count(),
        3
    );
    Ok(())
}

pub async fn art17_an_approved_change_resizes_reduces_and_wipes_what_it_removes(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let (unit, tns) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    file_change(
        &lab,
        ns,
        MODIFY,
        "resize",
        "oa",
        oa_after(|a| {
            a["vmGroups"][0]["count"] = json!(1);
            a["vmGroups"][1]["memoryGiB"] = json!(32);
            a["cloudStorage"][0]["sizeGiB"] = json!(2048);
            a["publicIPs"] = json!(0);
            a["bandwidthMbps"] = json!(50);
        }),
    )
    .await;
    change_in(&lab, ns, "resize", ChangePhase::UnderReview).await;
    // Reviewed after the unit asked: no tenancy object changed before approval.
    assert_eq!(
        lab.tenancies(ns)
            .get("oa")
            .await?
            .spec
            .allocation
            .bandwidth_mbps,
        20
    );
    decide_change(&lab, ns, "resize", "approve", None).await;
    let c = change_in(&lab, ns, "resize", ChangePhase::Applied).await;
    assert_eq!(c.status.as_ref().unwrap().removes, ["app-2"]);

    let t = lab
        .tenancy_where(ns, "oa", "the allocation", |t| {
            t.spec.changes.iter().any(|c| c.as_str() == "resize")
        })
        .await;
    assert_eq!(t.spec.allocation.vm_count(), 2);
    // The objects follow.
    let quota = eventually("the quota to follow", WAIT, || async {
        let q = Api::<ResourceQuota>::namespaced(lab.admin.clone(), &tns)
            .get("govcloud-allocation")
            .await
            .ok()?;
        (q.spec.as_ref()?.hard.as_ref()?["services.loadbalancers"].0 == "0").then_some(q)
    })
    .await;
    // app-1 (8 GiB) and db-1 (32 GiB), with 512 MiB overhead each.
    assert_eq!(
        quota.spec.unwrap().hard.unwrap()["requests.memory"].0,
        "41Gi"
    );
    // The VMs follow once the quota is in force.
    let db = eventually("db-1 to be resized", WAIT, || async {
        let db = lab.dynamic(&tns, &vms()).get("db-1").await.ok()?;
        (db.data["spec"]["template"]["spec"]["domain"]["memory"]["guest"] == "32Gi").then_some(db)
    })
    .await;

    assert_eq!(
        db.data["spec"]["template"]["metadata"]["annotations"]["kubernetes.io/egress-bandwidth"],
        "50M"
    );
    // The volume grows (once the quota has room for it and the disk being removed).
    eventually("vol-files to grow", WAIT, || async {
        let files = Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), &tns)
            .get("vol-files")
            .await
            .ok()?;
        (files.spec?.resources?.requests?["storage"].0 == "2Ti").then_some(())
    })
    .await;

    // The VM removed by the reduction is halted, its disk wiped, then both deleted.
    eventually("app-2 halted", WAIT, || async {
        let vm = lab.dynamic(&tns, &vms()).get("app-2").await.ok()?;
        (vm.data["spec"]["runStrategy"] == "Halted").then_some(())
    })
    .await;
    eventually("app-2 wiped and gone", Duration::from_secs(60), || async {
        lab.play_release(&tns).await;
        let gone = lab
            .dynamic(&tns, &vms())
            .get_opt("app-2")
            .await
            .ok()?
            .is_none();
        let disk = Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), &tns)
            .get_opt("app-2-system")
            .await
            .ok()?;
        (gone && disk.is_none_or(|d| d.metadata.deletion_timestamp.is_some())).then_some(())
    })
    .await;
    let c = change_where(&lab, ns, "resize", "the wipe record", |c| {
        c.status
            .as_ref()
            .is_some_and(|s| !s.wipe_records.is_empty())
    })
    .await;
    let records = c.status.unwrap().wipe_records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (
            records[0].name.as_str(),
            records[0].size_gib,
            records[0].method,
            records[0].result
        ),
        (
            "app-2-system",
            40,
            WipeMethod::Overwrite,
            WipeResult::Succeeded
        )
    );
    // The rest is untouched and the tenancy carries on.
    for kept in ["app-1", "db-1"] {
        assert!(
            lab.dynamic(&tns, &vms()).get_opt(kept).await?.is_some(),
            "{kept} was removed"
        );
    }
    // Once the deletions are seen, the inventory no longer lists anything as
    // being removed (the status follows on the next reconcile).
    lab.tenancy_where(ns, "oa", "Active with nothing being removed", |t| {
        t.status.as_ref().is_some_and(|s| {
            s.phase == Some(TenancyPhase::Active) && !s.inventory.iter().any(|i| i.removing)
        })
    })
    .await;
    Ok(())
}

pub async fn art17_changes_of_one_tenancy_apply_in_order_of_approval(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let (unit, _) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    // Four changes filed against the same configuration.
    file_change(
        &lab,
        ns,
        MODIFY,
        "memory",
        "oa",
        oa_after(|a| a["vmGroups"][1]["memoryGiB"] = json!(32)),
    )
    .await;
    file_change(
        &lab,
        ns,
        MODIFY,
        "bandwidth",
        "oa",
        oa_after(|a| a["bandwidthMbps"] = json!(50)),
    )
    .await;
    file_change(
        &lab,
        ns,
        MODIFY,
        "thirty",
        "oa",
        oa_after(|a| a["backupStorageGiB"] = json!(300)),
    )
    .await;
    file_change(
        &lab,
        ns,
        MODIFY,
        "forty",
        "oa",
        oa_after(|a| a["backupStorageGiB"] = json!(400)),
    )
    .await;
    for name in ["memory", "bandwidth", "thirty", "forty"] {
        change_in(&lab, ns, name, ChangePhase::UnderReview).await;
    }
    // Approved in this order; each sees what the one before left.
    for name in ["bandwidth", "memory", "forty", "thirty"] {
        decide_change(&lab, ns, name, "approve", None).await;
        change_in(&lab, ns, name, ChangePhase::Applied).await;
        lab.clock.advance(jiff::SignedDuration::from_secs(60));
    }
    let t = lab.tenancies(ns).get("oa").await?;
    let names: Vec<&str> = t.spec.changes.iter().map(|c| c.as_str()).collect();
    assert_eq!(names, ["bandwidth", "memory", "forty", "thirty"]);
    let a = &t.spec.allocation;
    assert_eq!(
        (
            a.bandwidth_mbps,
            a.vm_groups[1].memory_gib,
            a.backup_storage_gib
        ),
        (50, 32, 300)
    );
    let memory = changes(&lab, ns)
        .get("memory")
        .await?
        .status
        .unwrap()
        .applied
        .unwrap();
    assert_eq!(memory.bandwidth_mbps, 50, "the second change saw the first");

    // Two approvals the operator finds together, after being down: they are
    // applied in the order they were made ("zeta" first), not by name.
    for (name, gib) in [("zeta", 500), ("alpha", 600)] {
        file_change(
            &lab,
            ns,
            MODIFY,
            name,
            "oa",
            oa_after(move |a| a["backupStorageGiB"] = json!(gib)),
        )
        .await;
        change_in(&lab, ns, name, ChangePhase::UnderReview).await;
    }
    lab.stop_operator().await;
    decide_change(&lab, ns, "zeta", "approve", None).await;
    // The apiserver records write times to the second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    decide_change(&lab, ns, "alpha", "approve", None).await;
    lab.run_operator(govcloud::config::Config::default());
    change_in(&lab, ns, "zeta", ChangePhase::Applied).await;
    change_in(&lab, ns, "alpha", ChangePhase::Applied).await;
    let t = lab.tenancies(ns).get("oa").await?;
    let names: Vec<&str> = t.spec.changes.iter().map(|c| c.as_str()).collect();
    assert_eq!(names[4..], ["zeta", "alpha"]);
    assert_eq!(
        t.spec.allocation.backup_storage_gib, 600,
        "the later approval wins"
    );
    Ok(())
}

pub async fn art19_a_termination_five_working_days_out_waits_for_the_earliest_date(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-06-01T02:00:00Z").await;
    let (unit, _) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    // Filed on Thursday 2026-07-02; 5 working days out is 2026-07-09.
    file_change(&lab, ns, TERMINATE, "stop", "oa", |v| {
        v["spec"]["effectiveDate"] = json!("2026-07-09")
    })
    .await;
    let c = change_where(&lab, ns, "stop", "the termination held back", |c| {
        condition(c, "Accepted").is_some_and(|a| a.0 == "False")
    })
    .await;
    // Not rejected: no reviewer saw it, and the unit may still correct or
    // withdraw it.
    assert_eq!(
        c.status.as_ref().and_then(|s| s.phase),
        Some(ChangePhase::Submitted)
    );
    let message = condition(&c, "Accepted").unwrap().2;
    assert!(
        message.contains("the earliest effective date is 2026-07-16")
            && message.contains("withdraw it (kubectl delete changerequest stop)"),
        "{message}"
    );
    assert!(lab.tenancies(ns).get("oa").await?.spec.retirement.is_none());
    changes(&lab, ns)
        .patch(
            "stop",
            &Default::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "effectiveDate": "2026-07-16" } })),
        )
        .await?;
    let c = change_in(&lab, ns, "stop", ChangePhase::UnderReview).await;
    assert_eq!(condition(&c, "Accepted").unwrap().0, "True");
    Ok(())
}

pub async fn art19_an_approved_termination_releases_everything_wiped_at_its_effective_date(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::start("2026-06-01T02:00:00Z").await;
    let (unit, tns) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    let before: BTreeSet<String> =
        Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), &tns)
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
    file_change(&lab, ns, TERMINATE, "stop", "oa", |v| {
        v["spec"]["effectiveDate"] = json!("2026-07-16")
    })
    .await;
    change_in(&lab, ns, "stop", ChangePhase::UnderReview).await;
    decide_change(&lab, ns, "stop", "approve", None).await;
    change_in(&lab, ns, "stop", ChangePhase::Approved).await;
    let t = lab
        .tenancy_where(ns, "oa", "the retirement", |t| t.spec.retirement.is_some())
        .await;
    assert_eq!(
        t.spec
            .retirement
            .unwrap()
            .effective_at
            .unwrap()
            .0
            .to_string(),
        "2026-07-15T16:00:00Z"
    );
    // Before the effective date nothing is touched: once the tenancy
    // controller has seen the retirement (and looked again a second on).
    eventually("the tenancy to see its retirement", WAIT, || async {
        let t = lab.tenancies(ns).get("oa").await.ok()?;
        (t.status?.observed_generation == t.metadata.generation).then_some(())
    })
    .await;
    let looked = lab.reconciles(ControllerName::Tenancies);
    lab.clock.advance(jiff::SignedDuration::from_secs(1));
    lab.looked_at_all(ControllerName::Tenancies, looked).await;
    assert_eq!(
        lab.tenancies(ns).get("oa").await?.status.unwrap().phase,
        Some(TenancyPhase::Active)
    );
    assert!(lab.dynamic(&tns, &vms()).get("app-1").await?.data["spec"]["runStrategy"] == "Always");

    lab.set_clock("2026-07-15T16:00:00Z");
    lab.tenancy_in(ns, "oa", TenancyPhase::Terminating).await;
    let t = eventually("the release", Duration::from_secs(60), || async {
        lab.play_release(&tns).await;
        let t = lab.tenancies(ns).get("oa").await.ok()?;
        (t.status.as_ref()?.phase? == TenancyPhase::Retired).then_some(t)
    })
    .await;
    let status = t.status.unwrap();
    assert_eq!(
        status.billing_ended_at.unwrap().0.to_string(),
        "2026-07-15T16:00:00Z",
        "billing stops at the effective date"
    );
    let wiped: BTreeSet<String> = status.wipe_records.iter().map(|r| r.name.clone()).collect();
    assert_eq!(wiped, before);
    // Each by the Job the operator created for it, run once.
    assert_eq!(status.wipe_jobs.len(), before.len());
    for r in &status.wipe_records {
        let job = status.wipe_jobs.iter().find(|j| j.pvc == r.name).unwrap();
        assert_eq!(
            r.job.as_deref(),
            Some(format!("{} (uid {})", job.job, job.uid).as_str())
        );
    }
    let events = lab.events(ns, "oa").await;
    assert!(
        !events.iter().any(|(reason, _)| reason == "WipeJobRefused"),
        "no Job of the operator's own is taken for another's: {events:?}"
    );
    assert!(
        status
            .wipe_records
            .iter()
            .all(|r| r.cause.as_deref() == Some("ChangeRequest/stop"))
    );
    // Nothing of the tenancy is left: no VM, no PVC, no namespace.
    assert!(
        lab.dynamic(&tns, &vms())
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    assert!(
        Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), &tns)
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    eventually("the namespace to go", WAIT, || async {
        Api::<Namespace>::all(lab.admin.clone())
            .get_opt(&tns)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let c = change_in(&lab, ns, "stop", ChangePhase::Applied).await;
    let records: BTreeSet<String> = c
        .status
        .unwrap()
        .wipe_records
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(records, before, "the ChangeRequest carries the wipe record");
    let events: Vec<String> = lab
        .events(ns, "oa")
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(
        events.iter().filter(|r| *r == "VolumeWiped").count(),
        before.len(),
        "{events:?}"
    );
    Ok(())
}

pub async fn art19_a_tenancy_deleted_by_hand_keeps_everything_until_released(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-06-01T02:00:00Z").await;
    let (unit, tns) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    // As a GitOps tool pruning it would.
    lab.tenancies(ns)
        .delete("oa", &DeleteParams::default())
        .await?;
    let t = lab
        .tenancy_where(ns, "oa", "the deletion to be held", |t| {
            t.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "DeletionHeld" && c.status == "True")
            })
        })
        .await;
    assert!(t.metadata.deletion_timestamp.is_some());
    let looked = lab.reconciles(ControllerName::Tenancies);
    lab.clock.advance(jiff::SignedDuration::from_secs(1));
    lab.looked_at_all(ControllerName::Tenancies, looked).await;
    assert_eq!(
        lab.dynamic(&tns, &vms())
            .list(&ListParams::default())
            .await?
            .items
            .len(),
        3
    );
    assert_eq!(
        Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), &tns)
            .list(&ListParams::default())
            .await?
            .items
            .len(),
        5
    );
    assert!(
        Api::<Namespace>::all(lab.admin.clone())
            .get_opt(&tns)
            .await?
            .is_some()
    );
    let events = lab.reasons_with(ns, "oa", "DeletionHeld").await;
    assert!(events.contains(&"DeletionHeld".to_owned()), "{events:?}");

    // An approved termination releases it; then the tenancy goes.
    file_change(&lab, ns, TERMINATE, "stop", "oa", |v| {
        v["spec"]["effectiveDate"] = json!("2026-07-16")
    })
    .await;
    change_in(&lab, ns, "stop", ChangePhase::UnderReview).await;
    decide_change(&lab, ns, "stop", "approve", None).await;
    lab.set_clock("2026-07-16T02:00:00Z");
    eventually(
        "the tenancy to be released and gone",
        Duration::from_secs(60),
        || async {
            lab.play_release(&tns).await;
            lab.tenancies(ns)
                .get_opt("oa")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    Ok(())
}

pub async fn art19_a_failed_wipe_keeps_the_volume_and_says_so(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-06-01T02:00:00Z").await;
    let (unit, tns) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    file_change(&lab, ns, TERMINATE, "stop", "oa", |v| {
        v["spec"]["effectiveDate"] = json!("2026-07-16")
    })
    .await;
    change_in(&lab, ns, "stop", ChangePhase::UnderReview).await;
    decide_change(&lab, ns, "stop", "approve", None).await;
    lab.set_clock("2026-07-16T02:00:00Z");
    lab.tenancy_in(ns, "oa", TenancyPhase::Terminating).await;
    // The overwrite Jobs fail (playing the Job controller), all five: the
    // failure is reported with the first, and a Job made after it must fail
    // too.
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(lab.admin.clone(), &tns);
    let t = eventually(
        "the failure of every wipe to be reported",
        Duration::from_secs(60),
        || async {
            lab.kubevirt_stops_halted(&tns).await.ok();
            let made = jobs.list(&ListParams::default()).await.ok()?.items.len();
            lab.jobs_finish(&tns, false).await.ok()?;
            let t = lab.tenancies(ns).get("oa").await.ok()?;
            (made == 5
                && t.status
                    .as_ref()?
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "WipeFailed" && c.status == "True"))
            .then_some(t)
        },
    )
    .await;
    let failed = t
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "WipeFailed")
        .unwrap()
        .message
        .clone();
    assert!(failed.contains("those volumes are kept"), "{failed}");
    let looked = lab.reconciles(ControllerName::Tenancies);
    lab.clock.advance(jiff::SignedDuration::from_secs(1));
    lab.looked_at_all(ControllerName::Tenancies, looked).await;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), &tns)
        .list(&ListParams::default())
        .await?
        .items;
    assert_eq!(pvcs.len(), 5, "no volume whose wipe failed is deleted");
    assert!(pvcs.iter().all(|p| p.metadata.deletion_timestamp.is_none()));
    assert!(
        Api::<Namespace>::all(lab.admin.clone())
            .get_opt(&tns)
            .await?
            .is_some()
    );
    let t = lab.tenancies(ns).get("oa").await?;
    let failures: Vec<_> = t
        .status
        .unwrap()
        .wipe_records
        .into_iter()
        .filter(|r| r.result == WipeResult::Failed)
        .collect();
    assert_eq!(failures.len(), 5);

    // The vendor deletes the failed Jobs to try again; this time they succeed.
    jobs.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    eventually(
        "the release after the retry",
        Duration::from_secs(60),
        || async {
            lab.play_release(&tns).await;
            let t = lab.tenancies(ns).get("oa").await.ok()?;
            (t.status.as_ref()?.phase? == TenancyPhase::Retired).then_some(())
        },
    )
    .await;
    Ok(())
}

pub async fn art19_delete_mode_trusts_the_storage_to_erase(_: Ctx) -> TestResult {
    let config = govcloud::config::Config {
        wipe: govcloud::release::WipeConfig {
            mode: govcloud::release::WipeMode::Delete,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut lab = Lab::start_with("2026-06-01T02:00:00Z", config).await;
    let (unit, tns) = lab.active("finance", "oa").await;
    let ns = &unit.namespace;
    file_change(&lab, ns, TERMINATE, "stop", "oa", |v| {
        v["spec"]["effectiveDate"] = json!("2026-07-16")
    })
    .await;
    change_in(&lab, ns, "stop", ChangePhase::UnderReview).await;
    decide_change(&lab, ns, "stop", "approve", None).await;
    lab.set_clock("2026-07-16T02:00:00Z");
    let t = eventually("the release", Duration::from_secs(60), || async {
        lab.kubevirt_stops_halted(&tns).await.ok();
        let t = lab.tenancies(ns).get("oa").await.ok()?;
        (t.status.as_ref()?.phase? == TenancyPhase::Retired).then_some(t)
    })
    .await;
    let records = t.status.unwrap().wipe_records;
    assert_eq!(records.len(), 5);
    assert!(
        records
            .iter()
            .all(|r| r.method == WipeMethod::Delete && r.result == WipeResult::Succeeded)
    );
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(lab.admin.clone(), &tns);
    assert!(
        jobs.list(&ListParams::default())
            .await
            .map(|l| l.items.is_empty())
            .unwrap_or(true),
        "no overwrite Job in delete mode"
    );
    Ok(())
}
