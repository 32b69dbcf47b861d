//! On a real node: kubelet, containerd and kube-proxy on this machine,
//! joined to a private control plane running every controller. What the
//! operator creates runs here: the chart's Deployment from a locally built
//! image, the wipe Jobs on local volumes backed by files, and the pods of a
//! tenancy under Pod Security. KubeVirt's controllers are still played
//! (`standins`).

use std::time::{Duration, Instant};

use govcloud_testenv::helm::Release;
use govcloud_testenv::image;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};

use crate::support::lab::{Lab, WAIT};
use crate::support::{Ctx, TestResult, eventually};

const CHART_NAMESPACE: &str = "govcloud-system";
/// How the chart's Deployment starts the operator (the image's entrypoint
/// and the chart's first argument).
const OPERATOR_ARGV: &[&str] = &["/usr/local/bin/govcloud-operator", "run"];

/// The processes on this machine whose command line starts with `argv`: the
/// user they run as and whether their root filesystem is read-only.
fn processes_running(argv: &[&str]) -> Vec<(u32, String, bool)> {
    let wanted: Vec<u8> = argv.join("\0").into_bytes();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !cmdline.starts_with(&wanted) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
        let root_ro = mounts.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(4) == Some(&"/") && f.get(5).is_some_and(|o| o.split(',').any(|x| x == "ro"))
        });
        found.push((pid, uid, root_ro));
    }
    found
}

/// An HTTP GET over plain TCP (what a scraper of the Service does).
fn http_get(host: &str, port: i32, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((host, port as u16))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// Prints how long since `since` and checks it is within the chart's 15 s
/// lease and a retry.
fn within_the_lease(what: &str, since: Instant) {
    let took = since.elapsed();
    eprintln!("{what} in {:.1} s", took.as_secs_f64());
    assert!(
        took < Duration::from_secs(15 + 3),
        "{what} within the 15 s lease (and a retry): {took:?}"
    );
}

fn holder(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

pub async fn chart_installs_an_operator_that_runs_hardened_and_hands_over_its_lease(
    _: Ctx,
) -> TestResult {
    let lab = Lab::with_node("2026-06-01T02:00:00Z").await;
    let kubeconfig = lab.plane.dir().join("admin.kubeconfig");
    lab.plane
        .write_kubeconfig(&kubeconfig, &govcloud_testenv::User::admin())?;
    let started = Instant::now();
    let out = Release::new("govcloud-operator", CHART_NAMESPACE)
        .set("image.repository", image::OPERATOR_REPOSITORY)
        .set("image.tag", image::OPERATOR_TAG)
        // Nothing is pulled: the image was imported into the node.
        .set("image.pullPolicy", "Never")
        // The lab installed the calendars before the chart.
        .set("defaults.workCalendars", "false")
        .install(&kubeconfig, Duration::from_secs(180))?
        .unwrap_or_else(|e| {
            panic!(
                "helm install: {e}\nkubelet:\n{}",
                lab.node.as_ref().unwrap().kubelet_log()
            )
        });
    eprintln!(
        "helm install --wait: {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        out.lines().take(6).collect::<Vec<_>>().join("\n")
    );

    // Two replicas, Ready through their probes, on the node.
    let pods: Api<Pod> = Api::namespaced(lab.admin.clone(), CHART_NAMESPACE);
    let selector = ListParams::default().labels("app.kubernetes.io/component=operator");
    let running = pods.list(&selector).await?.items;
    assert_eq!(running.len(), 2, "two replicas");
    for p in &running {
        let status = p.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        eprintln!(
            "pod {} on {} at {}: {} ready={ready}",
            p.name_any(),
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default(),
            status.pod_ip.unwrap_or_default(),
            status.phase.unwrap_or_default(),
        );
        assert!(ready, "{} is Ready", p.name_any());
    }
    // As the chart's non-root user, on a read-only root filesystem: what
    // the kernel says of the processes themselves.
    let procs = processes_running(OPERATOR_ARGV);
    eprintln!("operator processes (pid, uid, read-only root): {procs:?}");
    assert_eq!(procs.len(), 2, "one operator process per pod: {procs:?}");
    assert!(
        procs.iter().all(|(_, uid, ro)| uid == "65532" && *ro),
        "{procs:?}"
    );

    // In the cluster with its ServiceAccount's token: one replica holds the
    // lease, and requests are reconciled.
    let leases: Api<Lease> = Api::namespaced(lab.admin.clone(), CHART_NAMESPACE);
    let names: Vec<String> = running.iter().map(|p| p.name_any()).collect();
    let leader = eventually("a replica to hold the lease", WAIT, || async {
        let l = leases.get("govcloud-operator").await.ok()?;
        let h = holder(&l);
        names.iter().find(|n| h.starts_with(n.as_str())).cloned()
    })
    .await;
    eprintln!("leader: {leader}");
    let mut lab = lab;
    let unit = lab.unit("finance").await;
    lab.file(
        &unit,
        "config/samples/20-cloudresourcerequest-oa.yaml",
        "oa",
        |_| {},
    )
    .await;
    lab.request_where(&unit.namespace, "oa", "under review", |r| {
        r.status.as_ref().and_then(|s| s.phase) == Some(govcloud::api::RequestPhase::UnderReview)
    })
    .await;

    // Metrics through the Service's cluster IP (kube-proxy's rules).
    let services: Api<Service> = Api::namespaced(lab.admin.clone(), CHART_NAMESPACE);
    let svc = services
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .find(|s| s.name_any().contains("metrics"))
        .expect("the metrics Service");
    let spec = svc.spec.clone().unwrap_or_default();
    let ip = spec.cluster_ip.clone().unwrap_or_default();
    let port = spec.ports.unwrap_or_default()[0].port;
    let metrics = http_get(&ip, port, "/metrics")?;
    assert!(metrics.starts_with("HTTP/1.0 200") || metrics.starts_with("HTTP/1.1 200"));
    assert!(
        metrics.contains("govcloud_"),
        "{}",
        &metrics[..metrics.len().min(400)]
    );
    eprintln!("GET http://{ip}:{port}/metrics: {} bytes", metrics.len());

    // The leader's pod is killed: the standby takes the lease within it.
    let killed = Instant::now();
    pods.delete(&leader, &DeleteParams::default().grace_period(0))
        .await?;
    let next = eventually(
        "another replica to take the lease",
        Duration::from_secs(60),
        || async {
            let l = leases.get("govcloud-operator").await.ok()?;
            let h = holder(&l);
            (!h.is_empty() && !h.starts_with(leader.as_str())).then_some(h)
        },
    )
    .await;
    within_the_lease(
        &format!("lease handed over to {next}, after the leader's pod was killed,"),
        killed,
    );
    // The new leader's process is killed outright (as the OOM killer
    // would): it releases nothing. kubelet restarts the container, which
    // resumes under the same identity (`<pod>-1`), or the standby takes the
    // lease once it expires.
    let new_leader = pods
        .list(&selector)
        .await?
        .items
        .into_iter()
        .find(|p| next.starts_with(p.name_any().as_str()))
        .expect("the new leader's pod");
    let uid = new_leader.uid().unwrap_or_default();
    let pid = processes_running(OPERATOR_ARGV)
        .into_iter()
        .map(|(pid, _, _)| pid)
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.contains(&uid) || c.contains(&uid.replace('-', "_")))
        })
        .expect("the new leader's process");
    let killed = Instant::now();
    let killed_at = jiff::Timestamp::now();
    // SAFETY: a signal to the operator process found above.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    // Renewed after the kill: by a process that lives.
    let third = eventually(
        "the lease to be held again",
        Duration::from_secs(60),
        || async {
            let l = leases.get("govcloud-operator").await.ok()?;
            let renewed = l.spec.as_ref()?.renew_time.as_ref()?.0;
            (renewed > killed_at + jiff::SignedDuration::from_secs(1)).then(|| holder(&l))
        },
    )
    .await;
    within_the_lease(
        &format!("after SIGKILL of pid {pid} ({next}), {third} held the lease"),
        killed,
    );
    lab.file(
        &unit,
        "config/samples/20-cloudresourcerequest-oa.yaml",
        "oa-2",
        |_| {},
    )
    .await;
    lab.request_where(
        &unit.namespace,
        "oa-2",
        "under review by the new leader",
        |r| {
            r.status.as_ref().and_then(|s| s.phase)
                == Some(govcloud::api::RequestPhase::UnderReview)
        },
    )
    .await;
    Ok(())
}

/// What a unit writes to its volumes before they are released: a line that
/// occurs nowhere else on these files.
const KNOWN: &str = "govcloud-known-bytes-of-the-unit:0123456789";

/// A request for one VM (system disk) and one volume: two Filesystem
/// claims of class `standard`, bound by the controller-manager to local
/// volumes backed by files here; the unit adds a Block claim of its backup
/// allowance.
fn small(v: &mut serde_json::Value) {
    v["spec"]["resources"]["vmGroups"] = serde_json::json!([{
        "name": "app", "count": 1, "vcpu": 2, "memoryGiB": 4, "systemDiskGiB": 40,
        "image": "kylin-server-v10-sp3", "architecture": "arm64",
    }]);
    v["spec"]["resources"]["cloudStorage"] =
        serde_json::json!([{ "name": "files", "sizeGiB": 100, "class": "standard" }]);
}

/// A tenancy delivered on the node, its volumes real and filled with
/// [`KNOWN`] by a pod of the unit's own.
struct Filled {
    unit: crate::support::Unit,
    tns: String,
    backings: Vec<govcloud_testenv::node::Backing>,
}

/// Delivers a small tenancy on the node and fills its volumes. `level` is
/// the Pod Security level the operator enforces in tenancy namespaces.
async fn deliver_and_fill(lab: &mut Lab, unit_id: &str, used: bool, level: &str) -> Filled {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    use kube::api::PostParams;
    use serde_json::json;

    // Three local volumes, backed by files: two formatted (Filesystem),
    // one raw (Block).
    let mut backings = Vec::new();
    let pvs: Api<PersistentVolume> = Api::all(lab.admin.clone());
    for (i, (class, block)) in [("standard", false), ("standard", false), ("backup", true)]
        .into_iter()
        .enumerate()
    {
        let b = govcloud_testenv::node::Backing::create(&format!("{unit_id}-{i}"), 24, block)
            .unwrap_or_else(|e| panic!("{e}"));
        let pv = serde_json::from_value(b.persistent_volume(class, "2Ti")).unwrap();
        pvs.create(&PostParams::default(), &pv).await.unwrap();
        backings.push(b);
    }

    let unit = lab.unit(unit_id).await;
    let ns = unit.namespace.clone();
    lab.file(
        &unit,
        "config/samples/20-cloudresourcerequest-oa.yaml",
        "oa",
        small,
    )
    .await;
    lab.approve(&ns, "oa").await;
    lab.deliver(&ns, "oa", unit_id).await;
    let tns = govcloud::provisioning::namespace_name(&format!("unit-{unit_id}"), unit_id, "oa");
    lab.kubevirt_runs(&tns, "app-1", used)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Pod Security as the namespace enforces it, tried by the unit.
    let namespace = Api::<k8s_openapi::api::core::v1::Namespace>::all(lab.admin.clone())
        .get(&tns)
        .await
        .unwrap();
    assert_eq!(
        namespace
            .labels()
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some(level)
    );
    let member = lab.plane.client(&unit.member("zhang")).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(member.clone(), &tns);
    let privileged = serde_json::from_value(json!({
        "metadata": { "name": "privileged" },
        "spec": { "containers": [{
            "name": "c", "image": image::WIPE, "command": ["sleep", "3600"],
            "securityContext": { "privileged": true },
        }] },
    }))
    .unwrap();
    match pods.create(&PostParams::default(), &privileged).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403, "{s:?}");
            assert!(
                s.message
                    .contains(&format!("violates PodSecurity \"{level}")),
                "{}",
                s.message
            );
            eprintln!("a privileged pod of the unit's: refused: {}", s.message);
        }
        other => panic!("a privileged pod is refused by Pod Security: {other:?}"),
    }

    // The unit's own Block claim, of its backup allowance.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(member.clone(), &tns);
    let raw = serde_json::from_value(json!({
        "metadata": { "name": "backup-raw" },
        "spec": {
            "accessModes": ["ReadWriteOnce"], "volumeMode": "Block",
            "storageClassName": "backup",
            "resources": { "requests": { "storage": "1Gi" } },
        },
    }))
    .unwrap();
    claims.create(&PostParams::default(), &raw).await.unwrap();
    let bound = eventually("three claims bound", WAIT, || async {
        let all = claims.list(&ListParams::default()).await.ok()?.items;
        (all.len() == 3
            && all
                .iter()
                .all(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")))
        .then_some(all)
    })
    .await;
    let (mut volumes, mut mounts) = (Vec::new(), Vec::new());
    for (i, c) in bound.iter().enumerate() {
        volumes.push(json!({ "name": format!("v{i}"), "persistentVolumeClaim": { "claimName": c.name_any() } }));
        let block = c.spec.as_ref().and_then(|s| s.volume_mode.as_deref()) == Some("Block");
        if block {
            mounts.push((
                true,
                json!({ "name": format!("v{i}"), "devicePath": "/dev/raw" }),
            ));
        } else {
            mounts.push((
                false,
                json!({ "name": format!("v{i}"), "mountPath": format!("/data/{i}") }),
            ));
        }
    }
    let writer = serde_json::from_value(json!({
        "metadata": { "name": "writer" },
        "spec": {
            "restartPolicy": "Never",
            // Admissible under restricted as under baseline.
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [{
                "name": "write", "image": image::WIPE, "imagePullPolicy": "IfNotPresent",
                "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] },
                },
                "env": [{ "name": "KNOWN", "value": KNOWN }],
                "command": ["sh", "-c", "set -e; for d in /data/*; do yes \"$KNOWN\" | head -c 4194304 > $d/known; done; yes \"$KNOWN\" | head -c 4194304 > /dev/raw; sync"],
                "volumeMounts": mounts.iter().filter(|(b, _)| !b).map(|(_, m)| m.clone()).collect::<Vec<_>>(),
                "volumeDevices": mounts.iter().filter(|(b, _)| *b).map(|(_, m)| m.clone()).collect::<Vec<_>>(),
            }],
            "volumes": volumes,
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &writer).await.unwrap();
    let phase = eventually(
        "the unit's writer pod to end",
        Duration::from_secs(90),
        || async {
            let p = pods.get("writer").await.ok()?;
            let phase = p.status?.phase?;
            ["Succeeded", "Failed"]
                .contains(&phase.as_str())
                .then_some(phase)
        },
    )
    .await;
    let log = pods
        .logs("writer", &Default::default())
        .await
        .unwrap_or_default();
    assert_eq!(
        phase, "Succeeded",
        "an ordinary pod of the unit's runs: {log}"
    );
    pods.delete("writer", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the writer pod to go", WAIT, || async {
        pods.get_opt("writer").await.ok()?.is_none().then_some(())
    })
    .await;
    for b in &backings {
        let n = b.occurrences(KNOWN.as_bytes()).unwrap();
        eprintln!(
            "{}: {n} copies of the known bytes before the release",
            b.file.display()
        );
        assert!(n > 1000, "the unit's bytes reached {}", b.file.display());
    }
    Filled {
        unit,
        tns,
        backings,
    }
}

/// Plays KubeVirt while the release runs (halted VMs stop); the Job
/// controller, the scheduler and kubelet run the wipe Jobs for real.
/// Returns the tenancy once `done`, and the wipe Jobs seen to succeed.
async fn released(
    lab: &Lab,
    f: &Filled,
    done: impl Fn(&govcloud::api::Tenancy) -> bool,
) -> (govcloud::api::Tenancy, std::collections::BTreeSet<String>) {
    use k8s_openapi::api::batch::v1::Job;
    let jobs: Api<Job> = Api::namespaced(lab.admin.clone(), &f.tns);
    let pods: Api<Pod> = Api::namespaced(lab.admin.clone(), &f.tns);
    let mut succeeded = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        lab.kubevirt_stops_halted(&f.tns).await.ok();
        let mut seen = Vec::new();
        if let Ok(list) = jobs.list(&ListParams::default()).await {
            for j in list.items {
                if j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0 {
                    succeeded.insert(j.name_any());
                }
                seen.push(format!("Job {}: {:?}", j.name_any(), j.status));
            }
        }
        if let Ok(list) = pods.list(&ListParams::default()).await {
            for p in list.items {
                seen.push(format!("Pod {}: {:?}", p.name_any(), p.status));
            }
        }
        let t = lab.tenancies(&f.unit.namespace).get("oa").await.ok();
        if let Some(t) = t.as_ref().filter(|t| done(t)) {
            return (t.clone(), succeeded);
        }
        if Instant::now() > deadline {
            panic!(
                "the release did not end: {:#?}\n{}\nkubelet:\n{}",
                t.and_then(|t| t.status).map(|s| (s.phase, s.conditions)),
                seen.join("\n"),
                lab.node.as_ref().unwrap().kubelet_log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads the files that backed the volumes once they are let go: none of
/// the unit's bytes are left, and the raw one is zeros throughout.
fn none_left(f: &mut Filled) -> TestResult {
    for b in &mut f.backings {
        b.release();
        let n = b.occurrences(KNOWN.as_bytes())?;
        eprintln!(
            "{}: {n} copies of the known bytes after the wipe",
            b.file.display()
        );
        assert_eq!(n, 0, "{} still holds the unit's bytes", b.file.display());
        if b.block {
            assert!(b.all_zero()?, "the raw volume is zeros throughout");
        }
    }
    Ok(())
}

fn operator_config() -> govcloud::config::Config {
    let mut cfg = govcloud::config::Config::default();
    cfg.wipe.image = image::WIPE.into();
    cfg
}

pub async fn art19_a_retired_tenancys_volumes_are_overwritten_on_the_node_filesystem_and_block(
    _: Ctx,
) -> TestResult {
    use govcloud::api::tenancy::WipeResult;
    use govcloud::api::{ChangePhase, TenancyPhase};
    let mut lab = Lab::with_node("2026-06-01T02:00:00Z").await;
    lab.run_operator(operator_config());
    let mut f = deliver_and_fill(&mut lab, "finance", true, "baseline").await;
    let ns = f.unit.namespace.clone();
    lab.tenancy_where(&ns, "oa", "usage", |t| {
        t.status.as_ref().is_some_and(|s| s.usage.is_some())
    })
    .await;
    lab.advance_days(31);
    lab.tenancy_in(&ns, "oa", TenancyPhase::Active).await;

    crate::changes::file_change(&lab, &ns, crate::changes::TERMINATE, "stop", "oa", |v| {
        v["spec"]["effectiveDate"] = serde_json::json!("2026-07-16")
    })
    .await;
    crate::changes::change_in(&lab, &ns, "stop", ChangePhase::UnderReview).await;
    crate::changes::decide_change(&lab, &ns, "stop", "approve", None).await;
    lab.set_clock("2026-07-15T16:00:00Z");
    let started = Instant::now();
    let (t, succeeded) = released(&lab, &f, |t| {
        t.status.as_ref().and_then(|s| s.phase) == Some(TenancyPhase::Retired)
    })
    .await;
    eprintln!(
        "retired, three volumes wiped on the node, in {:.1} s; the wipe Jobs that ran: {succeeded:?}",
        started.elapsed().as_secs_f64()
    );
    let status = t.status.unwrap();
    assert_eq!(status.wipe_records.len(), 3, "{:?}", status.wipe_records);
    for r in &status.wipe_records {
        assert_eq!(r.result, WipeResult::Succeeded, "{r:?}");
        let job = status
            .wipe_jobs
            .iter()
            .find(|j| j.pvc == r.name)
            .unwrap_or_else(|| panic!("the Job of {}", r.name));
        assert_eq!(
            r.job.as_deref(),
            Some(format!("{} (uid {})", job.job, job.uid).as_str())
        );
        assert!(
            succeeded.contains(&job.job),
            "{} ran to success on the node: {succeeded:?}",
            job.job
        );
    }
    eventually("the tenancy's namespace to go", WAIT, || async {
        Api::<k8s_openapi::api::core::v1::Namespace>::all(lab.admin.clone())
            .get_opt(&f.tns)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // The volumes are released (kept by their reclaim policy for the
    // vendor to reuse) and, on the files that backed them, none of the
    // unit's bytes are left.
    for b in &f.backings {
        let pv = Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(lab.admin.clone())
            .get(&b.name)
            .await?;
        assert_eq!(
            pv.status.and_then(|s| s.phase).as_deref(),
            Some("Released"),
            "{}",
            b.name
        );
    }
    none_left(&mut f)?;
    Ok(())
}

pub async fn art15_an_unused_trial_is_reclaimed_and_a_failed_wipe_keeps_the_bytes_until_one_succeeds(
    _: Ctx,
) -> TestResult {
    use govcloud::api::TenancyPhase;
    use govcloud::api::tenancy::WipeResult;
    use govcloud::provisioning::PodSecurity;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;

    let mut lab = Lab::with_node("2026-11-27T02:00:00Z").await;
    // Tenancy namespaces at restricted: the wipe Jobs run as a non-root user
    // that owns the volumes through fsGroup (and the raw device through the
    // runtime's device ownership).
    let mut cfg = operator_config();
    cfg.provisioning.pod_security = PodSecurity::Restricted;
    // A vendor's own wipe command, written for another mount path.
    let mut wrong = cfg.clone();
    wrong.wipe.command = vec![
        "sh".into(),
        "-c".into(),
        "set -e; find /data -type f -exec rm {} +".into(),
    ];
    lab.run_operator(wrong);
    let mut f = deliver_and_fill(&mut lab, "finance", false, "restricted").await;
    let ns = f.unit.namespace.clone();

    // The trial ends unused: the tenancy is reclaimed, its volumes wiped,
    // and the wipe fails.
    lab.advance_days(31);
    lab.tenancy_in(&ns, "oa", TenancyPhase::Reclaimed).await;
    let (t, _) = released(&lab, &f, |t| {
        t.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "WipeFailed" && c.status == "True")
        })
    })
    .await;
    let status = t.status.unwrap();
    let failed: Vec<_> = status
        .wipe_records
        .iter()
        .filter(|r| r.result == WipeResult::Failed)
        .collect();
    assert!(!failed.is_empty());
    for r in &failed {
        let why = r.message.clone().unwrap_or_default();
        eprintln!("wipe of {} failed: {why}", r.name);
        assert!(
            why.contains("No such file or directory") && why.contains("exit code 1"),
            "the record says why: {why}"
        );
    }
    // Nothing was deleted: the claims are there, bound, and the bytes too.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(lab.admin.clone(), &f.tns);
    let left = claims.list(&ListParams::default()).await?.items;
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|c| c.metadata.deletion_timestamp.is_none()));
    for b in &f.backings {
        assert!(
            b.occurrences(KNOWN.as_bytes())? > 1000,
            "{} is kept",
            b.file.display()
        );
    }

    // The vendor puts the default command back and deletes the failed Jobs:
    // the wipes run again and succeed.
    lab.stop_operator().await;
    lab.run_operator(cfg);
    let jobs: Api<Job> = Api::namespaced(lab.admin.clone(), &f.tns);
    jobs.delete_collection(&DeleteParams::background(), &ListParams::default())
        .await?;
    let (t, succeeded) = released(&lab, &f, |t| {
        t.status.as_ref().is_some_and(|s| s.retired_at.is_some())
    })
    .await;
    let status = t.status.unwrap();
    assert_eq!(status.phase, Some(TenancyPhase::Reclaimed));
    let wiped: Vec<_> = status
        .wipe_records
        .iter()
        .filter(|r| r.result == WipeResult::Succeeded)
        .collect();
    assert_eq!(wiped.len(), 3, "{:?}", status.wipe_records);
    for r in &wiped {
        let job = status.wipe_jobs.iter().find(|j| j.pvc == r.name).unwrap();
        assert!(succeeded.contains(&job.job), "{} ran on the node", job.job);
    }
    none_left(&mut f)?;
    Ok(())
}

/// Set in the environment of the e2e binary run as a node that a test
/// crashes (see `a_node_left_by_a_crashed_run_...`).
pub const CRASH_CHILD: &str = "GOVCLOUD_E2E_NODE_TO_CRASH";

/// The e2e binary as a child to be crashed: a node with a pod running (a
/// shim, mounts, a network namespace, cgroups), `ready` printed, then waits.
pub async fn child_to_crash() {
    use kube::api::PostParams;
    let lab = Lab::with_node_holding("2026-06-01T02:00:00Z", Lab::node_lock().await).await;
    let pods: Api<Pod> = Api::namespaced(lab.admin.clone(), "default");
    let pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "left-running" },
        "spec": {
            "containers": [{
                "name": "c", "image": image::WIPE, "command": ["sleep", "3600"],
                "volumeMounts": [{ "name": "scratch", "mountPath": "/scratch" }],
            }],
            "volumes": [{ "name": "scratch", "emptyDir": {} }],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("the pod to run", Duration::from_secs(60), || async {
        let p = pods.get("left-running").await.ok()?;
        (p.status?.phase? == "Running").then_some(())
    })
    .await;
    let b = govcloud_testenv::node::Backing::create("left-mounted", 16, false).unwrap();
    eprintln!("child: a pod running, {} mounted", b.local_path());
    println!("ready");
    std::future::pending::<()>().await;
}

pub async fn a_node_left_by_a_crashed_run_is_cleaned_before_the_next_starts_and_after_it_stops(
    _: Ctx,
) -> TestResult {
    use govcloud_testenv::node::leftovers;
    use std::io::BufRead;
    let lock = Lab::node_lock().await;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .env(CRASH_CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l == "ready")
    });
    let ready = tokio::time::timeout(Duration::from_secs(300), ready).await;
    if !matches!(ready, Ok(Ok(true))) {
        govcloud_testenv::kill(&mut child);
        panic!("the child node did not get ready: {ready:?}");
    }
    // The run crashes: no destructor, no cleanup.
    govcloud_testenv::kill(&mut child);
    let left = eventually("the child's own processes to go", WAIT, || async {
        let left = leftovers();
        let node_itself = |l: &String| {
            l.starts_with("process ") && (l.ends_with("/kubelet") || l.ends_with("/containerd"))
        };
        (!left.iter().any(node_itself)).then_some(left)
    })
    .await;
    eprintln!("left by the crashed run:\n  {}", left.join("\n  "));
    for what in [
        "containerd-shim-runc-v2",
        "mount /var/lib/govcloud-node/volumes/left-mounted",
        "loop device",
        "network device govcloud0",
        "cgroup",
        "chain KUBE-",
    ] {
        assert!(
            left.iter().any(|l| l.contains(what)),
            "the crash left {what}: {left:?}"
        );
    }

    // The next node starts on a clean machine, and leaves none of it.
    let lab = Lab::with_node_holding("2026-06-01T02:00:00Z", lock).await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(lab.admin.clone());
    assert_eq!(nodes.list(&ListParams::default()).await?.items.len(), 1);
    drop(lab);
    let left = leftovers();
    assert!(left.is_empty(), "a stopped node leaves nothing: {left:?}");
    eprintln!("after the next node stopped: nothing left");
    Ok(())
}
