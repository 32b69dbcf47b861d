//! What a platform team checks before trusting an operator: a settled tenancy
//! is never written again, and a crash in the middle of provisioning ends
//! with exactly the approved objects.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use govcloud::api::TenancyPhase;
use govcloud::api::request::RequestPhase;
use govcloud::operator::Lists;
use govcloud::operator::metrics::ControllerName;
use govcloud::provisioning::namespace_name;
use jiff::SignedDuration;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::support::lab::{Lab, WAIT, vms};
use crate::support::{Ctx, TestResult, eventually};

const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";

fn phase(r: &govcloud::api::CloudResourceRequest) -> Option<RequestPhase> {
    r.status.as_ref().and_then(|s| s.phase)
}

/// What the operator reads and writes; the apiserver's own bookkeeping
/// (leases, the `kubernetes` endpoints) is left out.
const OPERATOR_RESOURCES: [&str; 12] = [
    "cloudresourcerequests",
    "tenancies",
    "changerequests",
    "namespaces",
    "resourcequotas",
    "limitranges",
    "networkpolicies",
    "rolebindings",
    "persistentvolumeclaims",
    "virtualmachines",
    "jobs",
    "events",
];

/// Writes the apiserver has served to the operator's resources, by
/// resource, from its own metrics.
async fn writes(lab: &Lab) -> BTreeMap<String, u64> {
    let mut req = http::Request::new(Vec::new());
    *req.uri_mut() = http::Uri::from_static("/metrics");
    let text = lab.admin.request_text(req).await.unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let get = |key: &str| {
            labels
                .split(&format!("{key}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        if !matches!(
            get("verb").as_str(),
            "APPLY" | "PATCH" | "PUT" | "POST" | "CREATE" | "UPDATE" | "DELETE"
        ) {
            continue;
        }
        if !OPERATOR_RESOURCES.contains(&get("resource").as_str()) {
            continue;
        }
        let resource = format!("{}/{}", get("resource"), get("subresource"));
        *out.entry(resource).or_default() += value.parse::<f64>().unwrap_or(0.0) as u64;
    }
    out
}

async fn versions(lab: &Lab, unit_ns: &str, tns: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let rv = |o: &dyn Fn() -> Option<String>| o().unwrap_or_default();
    let r = lab.requests(unit_ns).get("oa").await.ok();
    out.insert("request".into(), rv(&|| r.as_ref()?.resource_version()));
    let t = lab.tenancies(unit_ns).get("oa").await.ok();
    out.insert("tenancy".into(), rv(&|| t.as_ref()?.resource_version()));
    let n = Api::<Namespace>::all(lab.admin.clone()).get(tns).await.ok();
    out.insert("namespace".into(), rv(&|| n.as_ref()?.resource_version()));
    for vm in lab
        .dynamic(tns, &vms())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        out.insert(
            format!("vm/{}", vm.name_any()),
            vm.resource_version().unwrap_or_default(),
        );
    }
    for p in Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), tns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        out.insert(
            format!("pvc/{}", p.name_any()),
            p.resource_version().unwrap_or_default(),
        );
    }
    for q in Api::<ResourceQuota>::namespaced(lab.admin.clone(), tns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        out.insert(
            format!("quota/{}", q.name_any()),
            q.resource_version().unwrap_or_default(),
        );
    }
    out
}

/// The caches take their first lists streamed over the watch where the
/// apiserver can (WatchList, on by default since Kubernetes 1.34), and in
/// pages where it cannot (off, as by default in 1.30, 1.31 and 1.33, where a
/// streamed watch is refused and would be retried for ever): either way the
/// operator is ready and delivers what is approved.
pub async fn caches_stream_their_first_lists_where_the_apiserver_can_and_page_where_not(
    _: Ctx,
) -> TestResult {
    for (flags, lists) in [
        (&[][..], Lists::Streamed),
        (&["--feature-gates=WatchList=false"][..], Lists::Paged),
    ] {
        let mut lab = Lab::cluster_flagged("2026-11-27T02:00:00Z", flags).await;
        assert_eq!(
            Lists::of(&lab.admin).await,
            lists,
            "kube-apiserver {flags:?}"
        );
        // A tenancy in service when the operator starts again: what it
        // lists first is all it knows of it.
        lab.run_operator(govcloud::config::Config::default());
        let (unit, tns) = lab.active("finance", "oa").await;
        lab.stop_operator().await;
        let before = versions(&lab, &unit.namespace, &tns).await;
        lab.run_operator(govcloud::config::Config::default());
        lab.looked_at_all(ControllerName::Tenancies, 0).await;
        // The running operator says which it chose, where users can see it.
        assert_eq!(lab.metrics.first_lists(), Some(lists), "{flags:?}");
        let mode = if lists == Lists::Streamed {
            "streamed"
        } else {
            "paged"
        };
        assert!(
            lab.metrics.render().contains(&format!(
                "govcloud_watch_first_lists{{mode=\"{mode}\"}} 1\n"
            )),
            "{flags:?}: /metrics does not say the first lists were {mode}"
        );
        lab.file(&unit, OA, "oa2", |_| {}).await;
        lab.request_where(&unit.namespace, "oa2", "UnderReview", |r| {
            phase(r) == Some(RequestPhase::UnderReview)
        })
        .await;
        assert_eq!(
            versions(&lab, &unit.namespace, &tns).await,
            before,
            "{lists:?}: the restarted operator changed the tenancy in service"
        );
        eprintln!(
            "  {lists:?} first lists: ready, {} writes for the new request alone",
            lab.metrics.writes()
        );
    }
    Ok(())
}

pub async fn a_settled_tenancy_receives_no_writes(_: Ctx) -> TestResult {
    let mut lab = Lab::start("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = unit.namespace.clone();
    lab.file(&unit, OA, "oa", |_| {}).await;
    lab.request_where(&ns, "oa", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    lab.decide(&ns, "oa", "approve", 1, None).await;
    let tns = namespace_name("unit-finance", "finance", "oa");
    eventually("delivery", WAIT, || async {
        lab.kubevirt_creates_vms(&tns).await.ok();
        let t = lab.tenancies(&ns).get("oa").await.ok()?;
        (t.status.as_ref()?.phase == Some(TenancyPhase::Trial)).then_some(())
    })
    .await;
    lab.kubevirt_runs(&tns, "app-1", true).await?;
    // The usage must be on record before the trial ends, or it is reclaimed.
    lab.tenancy_where(&ns, "oa", "usage", |t| {
        t.status.as_ref().is_some_and(|s| s.usage.is_some())
    })
    .await;
    lab.advance_days(31);
    lab.tenancy_in(&ns, "oa", TenancyPhase::Active).await;

    // Settled: the same state twice, two seconds apart.
    let before = eventually("the cluster to settle", WAIT, || async {
        let a = (versions(&lab, &ns, &tns).await, writes(&lab).await);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let b = (versions(&lab, &ns, &tns).await, writes(&lab).await);
        (a == b).then_some(b)
    })
    .await;
    // Every controller looks at everything again, five times (each clock move
    // wakes them all), over a simulated five hours.
    let reconciles = lab.metrics.reconciles(ControllerName::Tenancies);
    let sent = lab.metrics.writes();
    for _ in 0..5 {
        let looked = lab.reconciles(ControllerName::Tenancies);
        lab.clock.advance(SignedDuration::from_hours(1));
        lab.looked_at_all(ControllerName::Tenancies, looked).await;
    }
    let after = (versions(&lab, &ns, &tns).await, writes(&lab).await);
    assert_eq!(before.0, after.0, "resourceVersions changed");
    let changed: Vec<String> = after
        .1
        .iter()
        .filter(|(k, v)| before.1.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {} -> {v}", before.1.get(k).copied().unwrap_or(0)))
        .collect();
    assert!(
        changed.is_empty(),
        "the apiserver served writes: {changed:?}"
    );
    let looked = lab.metrics.reconciles(ControllerName::Tenancies) - reconciles;
    assert!(looked >= 5, "the tenancy was reconciled {looked} times");
    assert_eq!(lab.metrics.writes(), sent, "the operator sent writes");
    eprintln!(
        "  settled: {} objects, {looked} tenancy reconciles, 0 writes",
        after.0.len()
    );
    Ok(())
}

pub async fn an_operator_killed_while_provisioning_ends_with_exactly_the_approved_objects(
    _: Ctx,
) -> TestResult {
    let lab = Lab::cluster("2026-11-27T02:00:00Z").await;
    let dir = lab.plane.dir().to_path_buf();
    // The operator as the chart installs it: its ClusterRole, nothing more.
    let kubeconfig = lab.operator_kubeconfig("govcloud-system").await;
    let clock_file = dir.join("now");
    std::fs::write(&clock_file, "2026-11-27T02:00:00Z")?;
    let log = dir.join("operator.log");
    let start = || -> std::io::Result<std::process::Child> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_govcloud-operator"));
        cmd.args([
            "run",
            "--metrics-address",
            "127.0.0.1:0",
            "--dev-clock-file",
        ])
        .arg(&clock_file)
        .env("KUBECONFIG", &kubeconfig)
        .stdout(out.try_clone()?)
        .stderr(out)
        .stdin(Stdio::null());
        govcloud_testenv::spawn_tied(cmd)
    };
    let seed = std::env::var("GOVCLOUD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond() as u64);
    eprintln!("  crash seed {seed} (GOVCLOUD_CRASH_SEED to repeat)");
    let mut rng = govcloud_testenv::fleet::Rng(seed);

    let mut lab = lab;
    let unit = lab.unit("finance").await;
    let ns = unit.namespace.clone();
    let mut child = start()?;
    lab.file(&unit, OA, "oa", |_| {}).await;
    lab.request_where(&ns, "oa", "UnderReview", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    lab.decide(&ns, "oa", "approve", 1, None).await;
    let tns = namespace_name("unit-finance", "finance", "oa");

    // Kill it at random moments while it provisions, and start it again.
    let mut kills = 0;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(50 + rng.below(600))).await;
        govcloud_testenv::kill(&mut child);
        kills += 1;
        lab.kubevirt_creates_vms(&tns).await.ok();
        child = start()?;
    }
    let t = eventually(
        "delivery after the crashes",
        Duration::from_secs(60),
        || async {
            lab.kubevirt_creates_vms(&tns).await.ok();
            let t = lab.tenancies(&ns).get("oa").await.ok()?;
            (t.status.as_ref()?.phase == Some(TenancyPhase::Trial)).then_some(t)
        },
    )
    .await;
    govcloud_testenv::terminate(&child);
    let _ = child.wait();

    let vm_names: BTreeSet<String> = lab
        .dynamic(&tns, &vms())
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|v| v.name_any())
        .collect();
    assert_eq!(
        vm_names,
        BTreeSet::from(["app-1".into(), "app-2".into(), "db-1".into()])
    );
    let pvcs: BTreeSet<String> = Api::<PersistentVolumeClaim>::namespaced(lab.admin.clone(), &tns)
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(pvcs.len(), 5, "{pvcs:?}");
    let managed: Vec<String> = Api::<Namespace>::all(lab.admin.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=govcloud-operator"))
        .await?
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(
        managed,
        std::slice::from_ref(&tns),
        "one tenancy namespace, no other"
    );
    assert_eq!(
        lab.tenancies(&ns)
            .list(&ListParams::default())
            .await?
            .items
            .len(),
        1
    );
    let status = t.status.unwrap();
    assert_eq!(status.inventory.len(), 14);
    assert!(status.inventory.iter().all(|i| i.ready));
    eprintln!("  {kills} kills while provisioning; delivered with exactly the 14 approved objects");
    Ok(())
}

pub async fn an_unreadable_object_does_not_stop_the_others(_: Ctx) -> TestResult {
    let mut lab = Lab::cluster("2026-11-27T02:00:00Z").await;
    // Loosen the schema as an older CRD version might have: vcpu unbounded.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(lab.admin.clone());
    let path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/resources/properties/vmGroups/items/properties/vcpu/maximum";
    crds.patch(
        "cloudresourcerequests.govcloud.dev",
        &Default::default(),
        &kube::api::Patch::<()>::Json(serde_json::from_value(
            serde_json::json!([{ "op": "remove", "path": path }]),
        )?),
    )
    .await?;
    let unit = lab.unit("finance").await;
    let ns = unit.namespace.clone();
    // Past the range of the operator's types; the apiserver's caches take a moment.
    eventually("the loosened schema", WAIT, || async {
        let objs = govcloud_testenv::manifests::parse(OA, &crate::support::read(OA)).ok()?;
        let mut bad = serde_json::to_value(&objs[0]).ok()?;
        bad["metadata"] = serde_json::json!({ "name": "bad", "namespace": ns });
        bad["spec"]["resources"]["vmGroups"][0]["vcpu"] = serde_json::json!(10_000_000_000u64);
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
            lab.admin.clone(),
            &ns,
            &kube::api::ApiResource::erase::<govcloud::api::CloudResourceRequest>(&()),
        );
        api.create(&Default::default(), &serde_json::from_value(bad).ok()?)
            .await
            .ok()
    })
    .await;
    // A WorkCalendar the operator's types cannot read either: its year
    // beyond 32 bits, once the schema lets it through.
    let year = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/year";
    crds.patch(
        "workcalendars.govcloud.dev",
        &Default::default(),
        &kube::api::Patch::<()>::Json(serde_json::from_value(serde_json::json!([
            { "op": "remove", "path": format!("{year}/maximum") },
            { "op": "remove", "path": format!("{year}/format") },
        ]))?),
    )
    .await?;
    eventually("the loosened calendar schema", WAIT, || async {
        let api: Api<kube::api::DynamicObject> = Api::all_with(
            lab.admin.clone(),
            &kube::api::ApiResource::erase::<govcloud::api::WorkCalendar>(&()),
        );
        let bad = serde_json::json!({
            "apiVersion": "govcloud.dev/v1alpha1", "kind": "WorkCalendar",
            "metadata": { "name": "bad-year" },
            "spec": { "year": 10_000_000_000u64, "notice": "?", "holidays": [], "workingDays": [] },
        });
        api.create(&Default::default(), &serde_json::from_value(bad).ok()?)
            .await
            .ok()
    })
    .await;
    lab.file(&unit, OA, "good", |_| {}).await;
    lab.run_operator(govcloud::config::Config::default());
    lab.request_where(&ns, "good", "the readable request to be reviewed", |r| {
        phase(r) == Some(RequestPhase::UnderReview)
    })
    .await;
    let events = eventually("the unreadable request to be reported", WAIT, || async {
        let e = lab.events(&ns, "bad").await;
        e.iter().any(|(r, _)| r == "Unreadable").then_some(e)
    })
    .await;
    assert!(
        events[0].1.contains("leaves it alone until it changes"),
        "{events:?}"
    );
    Ok(())
}

pub async fn an_event_repeated_within_six_minutes_is_one_series_on_the_apiserver(
    _: Ctx,
) -> TestResult {
    use govcloud::operator::events::Events;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::runtime::events::{Event, EventType, Reporter};

    let mut lab = Lab::cluster("2026-11-27T02:00:00Z").await;
    let unit = lab.unit("finance").await;
    let ns = unit.namespace.clone();
    let maps: Api<ConfigMap> = Api::namespaced(lab.admin.clone(), &ns);
    let map = maps
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({ "metadata": { "name": "subject" } }))?,
        )
        .await?;
    let regarding = kube::Resource::object_ref(&map, &());
    let events = Events::new(
        lab.admin.clone(),
        Reporter {
            controller: "govcloud-operator".into(),
            instance: None,
        },
    );
    let said = |note: &str| Event {
        type_: EventType::Warning,
        reason: "Refused".into(),
        note: Some(note.into()),
        action: "Create".into(),
        secondary: None,
    };
    let listed = || async {
        let mut l: Vec<K8sEvent> = Api::<K8sEvent>::namespaced(lab.admin.clone(), &ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("subject"))
            .collect();
        l.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
        l.into_iter()
            .map(|e| {
                (
                    e.note.unwrap_or_default(),
                    e.series.map_or(1, |s| s.count),
                    e.metadata.name.unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
    };
    events.publish(&said("quota exceeded"), &regarding).await?;
    events.publish(&said("quota exceeded"), &regarding).await?;
    events.publish(&said("quota exceeded"), &regarding).await?;
    let once = listed().await;
    assert_eq!(
        once.iter()
            .map(|(n, c, _)| (n.as_str(), *c))
            .collect::<Vec<_>>(),
        [("quota exceeded", 3)],
        "three publishes of one event are one event seen three times"
    );
    // Another message is another event; the first keeps its own.
    events.publish(&said("cpu exceeded"), &regarding).await?;
    let two = listed().await;
    assert_eq!(
        two.iter()
            .map(|(n, c, _)| (n.as_str(), *c))
            .collect::<Vec<_>>(),
        [("quota exceeded", 3), ("cpu exceeded", 1)]
    );
    // An event deleted meanwhile is created again, not lost.
    Api::<K8sEvent>::namespaced(lab.admin.clone(), &ns)
        .delete(&once[0].2, &Default::default())
        .await?;
    events.publish(&said("quota exceeded"), &regarding).await?;
    let again = listed().await;
    assert_eq!(
        again
            .iter()
            .map(|(n, c, _)| (n.as_str(), *c))
            .collect::<Vec<_>>(),
        [("cpu exceeded", 1), ("quota exceeded", 1)]
    );
    Ok(())
}
