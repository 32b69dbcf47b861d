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
    let procs = processes_running(&["/usr/local/bin/govcloud-operator", "run"]);
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
    let handover = killed.elapsed();
    eprintln!(
        "lease handed over to {next} {:.1} s after the leader's pod was killed",
        handover.as_secs_f64()
    );
    assert!(
        handover < Duration::from_secs(15 + 3),
        "within the 15 s lease (and a retry): {handover:?}"
    );
    // The new leader's process is killed outright (as the OOM killer
    // would): it releases nothing, and another takes the lease once it
    // expires.
    let new_leader = pods
        .list(&selector)
        .await?
        .items
        .into_iter()
        .find(|p| next.starts_with(p.name_any().as_str()))
        .expect("the new leader's pod");
    let uid = new_leader.uid().unwrap_or_default();
    let pid = processes_running(&["/usr/local/bin/govcloud-operator", "run"])
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
    // Held again by a live process: the standby once the lease expired, or
    // the killed container restarted by kubelet (same pod, same identity).
    let third = eventually(
        "the lease to be held again",
        Duration::from_secs(60),
        || async {
            let l = leases.get("govcloud-operator").await.ok()?;
            let renewed = l.spec.as_ref()?.renew_time.as_ref()?.0;
            let alive = processes_running(&["/usr/local/bin/govcloud-operator", "run"])
                .iter()
                .all(|(p, _, _)| *p != pid);
            (alive && renewed > killed_at + jiff::SignedDuration::from_secs(1)).then(|| holder(&l))
        },
    )
    .await;
    let takeover = killed.elapsed();
    eprintln!(
        "after SIGKILL of pid {pid} ({next}), {third} held the lease again in {:.1} s",
        takeover.as_secs_f64()
    );
    assert!(
        takeover < Duration::from_secs(15 + 3),
        "within the 15 s lease (and a retry): {takeover:?}"
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
