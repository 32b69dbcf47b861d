//! Two operator processes on one Lease: one writer at a time, a takeover
//! within the lease duration when the leader dies, and a replica that loses
//! the lease stopping at once.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use govcloud::api::request::RequestPhase;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::lab::{Lab, WAIT};
use crate::support::{Ctx, TestResult, eventually};

const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";
const LEASE_SECONDS: u64 = 6;

fn free_port() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"))
}

struct Replica {
    name: &'static str,
    metrics: SocketAddr,
    child: Child,
}

impl Replica {
    fn start(name: &'static str, dir: &Path, kubeconfig: &Path, clock: &Path) -> Self {
        let metrics = free_port();
        let log = std::fs::File::create(dir.join(format!("{name}.log")))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_govcloud-operator"));
        cmd.args([
            "run",
            "--leader-elect",
            "--lease-namespace",
            "govcloud-system",
        ])
        .args(["--lease-seconds", &LEASE_SECONDS.to_string()])
        .arg("--metrics-address")
        .arg(metrics.to_string())
        .arg("--dev-clock-file")
        .arg(clock)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", name)
        .stdout(log.try_clone().unwrap_or_else(|e| panic!("{e}")))
        .stderr(log)
        .stdin(Stdio::null());
        let child = govcloud_testenv::spawn_tied(cmd).unwrap_or_else(|e| panic!("{e}"));
        Self {
            name,
            metrics,
            child,
        }
    }

    /// A sample of its own metrics (0 when absent).
    async fn metric(&self, name: &str) -> Option<f64> {
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await.ok()?;
        stream
            .write_all(
                format!("GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", self.metrics).as_bytes(),
            )
            .await
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        let body = text.split("\r\n\r\n").nth(1)?;
        Some(
            body.lines()
                .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// What Kubernetes does to a pod it stops.
    fn terminate(&self) {
        govcloud_testenv::terminate(&self.child);
    }

    fn kill(&mut self) {
        govcloud_testenv::kill(&mut self.child);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("govcloud-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

pub async fn two_replicas_have_one_writer_and_a_takeover_within_the_lease_duration(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::cluster("2026-11-27T02:00:00Z").await;
    let dir = lab.plane.dir().to_path_buf();
    let kubeconfig = lab.operator_kubeconfig("govcloud-system").await;
    let clock = dir.join("now");
    std::fs::write(&clock, "2026-11-27T02:00:00Z")?;
    let leases: Api<Lease> = Api::namespaced(lab.admin.clone(), "govcloud-system");

    let mut a = Replica::start("replica-a", &dir, &kubeconfig, &clock);
    eventually("replica-a to lead", WAIT, || async {
        (holder(&leases).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let mut b = Replica::start("replica-b", &dir, &kubeconfig, &clock);
    eventually("replica-b to stand by, its caches listed", WAIT, || async {
        (b.metric("govcloud_leader").await == Some(0.0)).then_some(())
    })
    .await;

    // The leader does the work; the other writes nothing.
    let unit = lab.unit("finance").await;
    let ns = unit.namespace.clone();
    lab.file(&unit, OA, "oa", |_| {}).await;
    lab.request_where(&ns, "oa", "UnderReview", |r| {
        r.status.as_ref().and_then(|s| s.phase) == Some(RequestPhase::UnderReview)
    })
    .await;
    assert!(a.metric("govcloud_writes_total").await.unwrap_or_default() > 0.0);
    assert_eq!(
        b.metric("govcloud_writes_total").await,
        Some(0.0),
        "a standby writes nothing"
    );
    assert_eq!(a.metric("govcloud_leader").await, Some(1.0));

    // The leader dies: the other takes over within the lease duration.
    a.kill();
    let died = Instant::now();
    eventually(
        "replica-b to take over",
        Duration::from_secs(LEASE_SECONDS * 3),
        || async { (holder(&leases).await.as_deref() == Some("replica-b")).then_some(()) },
    )
    .await;
    let takeover = died.elapsed();
    eprintln!(
        "  takeover {:.1} s after the leader died (lease {LEASE_SECONDS} s)",
        takeover.as_secs_f64()
    );
    // One retry period (1 s here) may pass before the standby looks again.
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 1),
        "{takeover:?}"
    );
    lab.decide(&ns, "oa", "approve", 1, None).await;
    lab.request_where(&ns, "oa", "Approved by the new leader", |r| {
        r.status.as_ref().and_then(|s| s.phase) == Some(RequestPhase::Approved)
    })
    .await;
    assert!(b.metric("govcloud_writes_total").await.unwrap_or_default() > 0.0);

    // A leader shut down cleanly hands the lease over at once, not after it
    // expires.
    let mut c = Replica::start("replica-c", &dir, &kubeconfig, &clock);
    eventually("replica-c to stand by", WAIT, || async {
        (c.metric("govcloud_leader").await == Some(0.0)).then_some(())
    })
    .await;
    b.terminate();
    let stopped = Instant::now();
    eventually("replica-c to take over", WAIT, || async {
        (holder(&leases).await.as_deref() == Some("replica-c")).then_some(())
    })
    .await;
    let handover = stopped.elapsed();
    eprintln!(
        "  handover {:.1} s after a clean shutdown",
        handover.as_secs_f64()
    );
    assert!(handover < Duration::from_secs(3), "{handover:?}");
    assert!(b.child.wait()?.success(), "a clean shutdown exits 0");

    // A replica whose lease is taken stops at once: its process ends.
    let mut lease = leases.get("govcloud-operator").await?;
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = Some("replica-d".into());
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            jiff::Timestamp::now(),
        ));
    }
    leases
        .replace("govcloud-operator", &PostParams::default(), &lease)
        .await?;
    let taken = Instant::now();
    let status = loop {
        if let Some(status) = c.child.try_wait()? {
            break status;
        }
        assert!(taken.elapsed() < WAIT, "replica-c still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "  {} stopped {:.1} s after losing the lease",
        c.name,
        taken.elapsed().as_secs_f64()
    );
    assert!(!status.success(), "{status}");
    assert!(
        taken.elapsed() < Duration::from_secs(LEASE_SECONDS),
        "{:?}",
        taken.elapsed()
    );
    Ok(())
}
