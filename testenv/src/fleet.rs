//! A district's worth of tenancies against a local control plane, for the
//! benchmark and the fault runs: the operator as its own process (so that it
//! can be killed and measured), units, requests filed and approved by the
//! hundred, KubeVirt's part played for every VM, and what a run checks at its
//! end: exactly the objects the approved tenancies call for, no other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::standins::vms;
use govcloud::api::{CloudResourceRequest, RequestPhase, Tenancy, TenancyPhase, keys};
use govcloud::provisioning;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How many requests one client keeps in flight.
pub const CONCURRENCY: usize = 32;

/// Builds the operator's release binary (cargo's own incremental build) and
/// returns its path. `GOVCLOUD_BENCH_PROFILE=profiling` builds it with the
/// `profiling` profile instead: release, with symbols and line tables, for a
/// heap profiler to name what holds the memory.
/// `GOVCLOUD_BENCH_TARGET=x86_64-unknown-linux-musl` builds it for that
/// target: the static binary the image ships (see the Dockerfile), whose
/// allocator is not the machine's C library's.
pub fn release_binary() -> Result<PathBuf, Error> {
    let root = Path::new(crate::SOURCE_TREE);
    let profile = std::env::var("GOVCLOUD_BENCH_PROFILE").unwrap_or_else(|_| "release".into());
    let target = std::env::var("GOVCLOUD_BENCH_TARGET").ok();
    let mut cargo = crate::cargo();
    cargo.args([
        "build",
        "--profile",
        &profile,
        "--locked",
        "-p",
        "govcloud-operator",
        "--bin",
        "govcloud-operator",
    ]);
    if let Some(target) = &target {
        cargo.args(["--target", target]);
    }
    let status = cargo.current_dir(root).status()?;
    if !status.success() {
        return Err(format!(
            "cargo build --profile {profile} --locked --bin govcloud-operator{} failed",
            target
                .as_ref()
                .map_or(String::new(), |t| format!(" --target {t}"))
        )
        .into());
    }
    let dir = match &target {
        Some(t) => root.join("target").join(t),
        None => root.join("target"),
    };
    Ok(dir.join(&profile).join("govcloud-operator"))
}

/// What a run stands on: the operator's release binary, a local control
/// plane with the CRDs and calendars, `units` unit namespaces, a kubeconfig
/// and log file for the operator, and KubeVirt's part played.
pub struct Fleet {
    pub binary: PathBuf,
    pub plane: super::ControlPlane,
    pub admin: Client,
    pub kubeconfig: PathBuf,
    pub log: PathBuf,
    _kubevirt: tokio::task::JoinHandle<()>,
}

impl Fleet {
    /// `GOVCLOUD_KEEP_CONTROL_PLANE=1` keeps the control plane's directory
    /// (the operator's log among its files).
    pub async fn start(field_manager: &str, units: usize) -> Result<Self, Error> {
        eprintln!("building the operator (release)...");
        let binary = release_binary()?;
        let plane = super::ControlPlane::start(super::Options {
            keep_dir: std::env::var_os("GOVCLOUD_KEEP_CONTROL_PLANE").is_some(),
            ..super::Options::default()
        })
        .await?;
        eprintln!(
            "control plane: kube-apiserver {} at {} (in {})",
            plane.version(),
            plane.server(),
            plane.dir().display()
        );
        let admin = plane.admin().await?;
        super::install_basics(&admin, field_manager).await?;
        create_units(&admin, units).await?;
        let kubeconfig = plane.dir().join("operator.kubeconfig");
        plane.write_kubeconfig(&kubeconfig, &super::User::admin())?;
        let log = plane.dir().join("operator.log");
        let kubevirt = kubevirt(admin.clone());
        Ok(Self {
            binary,
            log,
            kubeconfig,
            admin,
            plane,
            _kubevirt: kubevirt,
        })
    }

    /// Starts the operator against this fleet's control plane.
    pub fn operator(&self) -> Result<OperatorProcess, Error> {
        OperatorProcess::start(&self.binary, &self.kubeconfig, &self.log, None)
    }

    /// Starts another build of the operator, at `binary`, against this
    /// fleet's control plane.
    pub fn operator_of(&self, binary: &Path) -> Result<OperatorProcess, Error> {
        OperatorProcess::start(binary, &self.kubeconfig, &self.log, None)
    }

    /// Starts the operator under `wrapper` (a command and its arguments
    /// before the operator's, e.g. `heaptrack -o /tmp/operator`).
    pub fn operator_under(&self, wrapper: &str) -> Result<OperatorProcess, Error> {
        OperatorProcess::start(&self.binary, &self.kubeconfig, &self.log, Some(wrapper))
    }
}

/// A small deterministic generator for random moments; print the seed so
/// that a run can be repeated.
pub struct Rng(pub u64);

impl Rng {
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// The operator binary running in its own process, tied to this one.
pub struct OperatorProcess {
    child: Child,
    /// Where its metrics, /healthz and /readyz are served, on loopback.
    pub port: u16,
}

impl OperatorProcess {
    /// Starts `binary run` with `kubeconfig`, appending its output to `log`,
    /// under `wrapper` if given. `RUST_LOG` is taken from
    /// `GOVCLOUD_BENCH_LOG` (default `warn`).
    pub fn start(
        binary: &Path,
        kubeconfig: &Path,
        log: &Path,
        wrapper: Option<&str>,
    ) -> Result<Self, Error> {
        let port = free_port();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut words = wrapper.unwrap_or_default().split_whitespace();
        let mut cmd = match words.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(words).arg(binary);
                cmd
            }
            None => Command::new(binary),
        };
        cmd.args(["run", "--metrics-address", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("GOVCLOUD_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null());
        let child = super::spawn_tied(cmd)?;
        Ok(Self { child, port })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Time until /readyz answers 200.
    pub async fn ready(&self) -> Duration {
        let started = Instant::now();
        while http_get(self.port, "/readyz").await.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed()
    }

    /// A counter of the operator's metrics (summed over its labels):
    /// `writes` or `reconciles`.
    pub async fn counter(&self, name: &str) -> Option<u64> {
        let body = http_get(self.port, "/metrics").await?;
        let prefix = format!("govcloud_{name}_total{{");
        Some(
            body.lines()
                .filter(|l| l.starts_with(&prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64,
        )
    }

    /// A counter of the operator's metrics by its labels (`kind="Tenancy",verb="status"`).
    pub async fn counters(&self, name: &str) -> std::collections::BTreeMap<String, u64> {
        let body = http_get(self.port, "/metrics").await.unwrap_or_default();
        let prefix = format!("govcloud_{name}_total{{");
        body.lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|l| {
                let (labels, value) = l.rsplit_once("} ")?;
                Some((labels.to_owned(), value.parse::<f64>().ok()? as u64))
            })
            .collect()
    }

    /// SIGKILL, as the kernel's OOM killer or a node failure would.
    pub fn kill(mut self) {
        crate::kill(&mut self.child);
    }

    /// SIGTERM, and waits for it to exit. Under a wrapper, the operator (the
    /// wrapper's child) is sent it first, so that the wrapper ends as it
    /// would when the program does.
    pub fn stop(mut self) {
        let _ = Command::new("pkill")
            .args(["-TERM", "-P", &self.child.id().to_string()])
            .status();
        crate::terminate(&self.child);
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET on loopback: the body if 200.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200")).then(|| body.to_owned())
}

/// Peak and current resident memory of a process, in KiB.
pub fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU seconds a process has used (user + system).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (in parentheses), utime and stime are the 12th
    // and 13th fields.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

/// The machine's CPU time so far, from /proc/stat: (busy, all) in seconds
/// summed over every CPU. Idle and waiting on I/O are not busy.
pub fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let all: f64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ((all - idle) / hz.max(1.0), all / hz.max(1.0))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

/// The apiserver's count of mutating requests served, from its metrics
/// (a server-side apply is counted under its own verb, `APPLY`).
pub async fn apiserver_writes(client: &Client) -> Result<u64, Error> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with("apiserver_request_total{")
            && [
                "\"POST\"",
                "\"PUT\"",
                "\"PATCH\"",
                "\"APPLY\"",
                "\"DELETE\"",
            ]
            .iter()
            .any(|v| line.contains(&format!("verb={v}")))
        {
            total += line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        }
    }
    Ok(total as u64)
}

/// KubeVirt's part: every VM the operator creates is created at once. The
/// watch survives an apiserver restart (it backs off and lists again).
pub fn kubevirt(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &vms());
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        stream
            .for_each_concurrent(16, |vm| {
                let client = client.clone();
                async move {
                    let Ok(vm) = vm else { return };
                    if vm.data["status"]["created"] == json!(true) {
                        return;
                    }
                    let ns = vm.namespace().unwrap_or_default();
                    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &vms());
                    let _ = api
                        .patch_status(
                            &vm.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(json!({ "status": {
                                "created": true, "printableStatus": "Starting" } })),
                        )
                        .await;
                }
            })
            .await;
    })
}

/// The units' namespaces `unit-u0` .. `unit-u{n-1}`, each with its group.
pub async fn create_units(client: &Client, n: usize) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    for i in 0..n {
        let id = format!("u{i}");
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {
                "name": format!("unit-{id}"),
                "labels": { keys::UNIT: id },
                "annotations": {
                    keys::UNIT_GROUP: format!("govcloud:unit:u{i}"),
                    keys::UNIT_NAME: format!("单位{i}"),
                },
            },
        }))?;
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The request every tenancy of a run is made from: namespace, quota, limit
/// range, network policies, role binding, two VMs (their system disks are
/// PVCs) and one cloud storage volume.
pub fn request(unit_namespace: &str, name: &str) -> Result<CloudResourceRequest, Error> {
    let text = std::fs::read_to_string(
        Path::new(crate::SOURCE_TREE).join("config/samples/20-cloudresourcerequest-oa.yaml"),
    )?;
    let mut r: CloudResourceRequest = serde_saphyr::from_str(&text)?;
    r.metadata = kube::api::ObjectMeta {
        name: Some(name.into()),
        namespace: Some(unit_namespace.into()),
        ..Default::default()
    };
    r.spec.service_types = vec![govcloud::api::ServiceType::CloudServer];
    r.spec.resources = serde_json::from_value(json!({
        "vmGroups": [{ "name": "app", "count": 2, "vcpu": 2, "memoryGiB": 4,
            "systemDiskGiB": 40, "image": "kylin-server-v10-sp3", "architecture": "arm64" }],
        "cloudStorage": [{ "name": "files", "sizeGiB": 100, "class": "standard" }],
    }))?;
    Ok(r)
}

/// Files each (unit namespace, name) and waits until the operator has every
/// one under review.
pub async fn file(client: &Client, names: &[(String, String)]) -> Result<(), Error> {
    stream::iter(names.iter().cloned())
        .map(|(ns, name)| {
            let client = client.clone();
            async move {
                let r = request(&ns, &name)?;
                match Api::<CloudResourceRequest>::namespaced(client, &ns)
                    .create(&PostParams::default(), &r)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    Err(e) => Err(Error::from(e)),
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    loop {
        // A poll, served from the apiserver's cache rather than etcd.
        let all = Api::<CloudResourceRequest>::all(client.clone())
            .list(&ListParams::default().match_any())
            .await?;
        let under_review: BTreeSet<(String, String)> = all
            .items
            .iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(RequestPhase::UnderReview))
            .map(|r| (r.namespace().unwrap_or_default(), r.name_any()))
            .collect();
        if names.iter().all(|n| under_review.contains(n)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A reviewer's approval of generation 1, as the plugin writes it; returns
/// when it was accepted.
pub async fn approve(client: &Client, ns: &str, name: &str) -> Result<Instant, Error> {
    let patch = json!({ "metadata": { "annotations": {
        keys::DECISION: "approve",
        keys::DECIDED_GENERATION: "1",
        keys::DECIDED_BY: "fleet.reviewer",
    } } });
    Api::<CloudResourceRequest>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(Instant::now())
}

/// Approves each request, `CONCURRENCY` at a time; returns "ns/name" and
/// when each approval was accepted.
pub async fn approve_all(
    client: &Client,
    names: &[(String, String)],
) -> Result<Vec<(String, Instant)>, Error> {
    stream::iter(names.iter().cloned())
        .map(|(ns, name)| {
            let client = client.clone();
            async move {
                let at = approve(&client, &ns, &name).await?;
                Ok::<_, Error>((format!("{ns}/{name}"), at))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await
}

/// How many tenancies are delivered (in their trial, every item ready).
pub async fn delivered(client: &Client) -> Result<usize, Error> {
    Ok(Api::<Tenancy>::all(client.clone())
        .list(&ListParams::default().match_any())
        .await?
        .items
        .iter()
        .filter(|t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.phase == Some(TenancyPhase::Trial) && s.delivered_at.is_some())
        })
        .count())
}

/// What a fleet holds, checked against what its approvals call for.
#[derive(Debug, Default)]
pub struct Audit {
    pub requests_approved: usize,
    pub tenancies: usize,
    pub delivered: usize,
    /// Objects of the operator's kinds labelled as managed by it.
    pub objects: usize,
    /// Objects a delivered tenancy calls for and the cluster lacks.
    pub missing: Vec<String>,
    /// Objects the operator manages that no tenancy calls for.
    pub orphans: Vec<String>,
    /// Requests with more than one tenancy, or tenancies of no request.
    pub duplicates: Vec<String>,
}

impl Audit {
    /// Every approved request has exactly one delivered tenancy, and the
    /// cluster holds exactly the objects those tenancies call for.
    pub fn exact(&self) -> bool {
        self.requests_approved == self.tenancies
            && self.tenancies == self.delivered
            && self.missing.is_empty()
            && self.orphans.is_empty()
            && self.duplicates.is_empty()
    }
}

/// Lists every request, tenancy and object of the kinds the operator
/// provisions, and compares them with what `provisioning::desired` says the
/// tenancies call for (by kind, namespace and name).
pub async fn audit(client: &Client, config: &govcloud::config::Config) -> Result<Audit, Error> {
    let requests = Api::<CloudResourceRequest>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let tenancies = Api::<Tenancy>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let mut audit = Audit {
        requests_approved: requests
            .iter()
            .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(RequestPhase::Approved))
            .count(),
        tenancies: tenancies.len(),
        ..Audit::default()
    };
    // The unit's group, which the role binding names, is on the unit's
    // namespace; what is in a tenancy's namespace is known once it exists.
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let groups: BTreeMap<String, String> = namespaces
        .iter()
        .filter_map(|n| Some((n.name_any(), n.annotations().get(keys::UNIT_GROUP)?.clone())))
        .collect();
    let uids: BTreeMap<String, String> = namespaces
        .iter()
        .filter_map(|n| Some((n.name_any(), n.uid()?)))
        .collect();
    let mut per_request: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut wanted: BTreeSet<(String, Option<String>, String)> = BTreeSet::new();
    let mut kinds: BTreeSet<(&'static str, &'static str)> = BTreeSet::new();
    for t in &tenancies {
        let unit_ns = t.namespace().unwrap_or_default();
        *per_request
            .entry((unit_ns.clone(), t.spec.request.to_string()))
            .or_default() += 1;
        let status = t.status.clone().unwrap_or_default();
        if status.phase == Some(TenancyPhase::Trial) && status.delivered_at.is_some() {
            audit.delivered += 1;
        }
        let name = t.name_any();
        let ns = status
            .namespace
            .clone()
            .unwrap_or_else(|| provisioning::namespace_name(&unit_ns, &t.spec.unit, &name));
        let objects = provisioning::desired(
            &provisioning::Tenancy {
                unit_namespace: &unit_ns,
                name: &name,
                namespace: &ns,
                spec: &t.spec,
                unit_group: groups.get(&unit_ns).map(String::as_str),
                namespace_uid: uids.get(&ns).map(String::as_str),
                procured: true,
                halted: false,
                isolated: false,
                storage_in_removal: BTreeMap::new(),
                // Which classes are pinned changes the quota, not the objects.
                storage_classes: &BTreeSet::new(),
            },
            &config.provisioning,
        );
        for d in objects {
            kinds.insert((d.api_version, d.kind));
            wanted.insert((d.kind.to_owned(), d.namespace.clone(), d.name.clone()));
        }
    }
    for ((ns, request), n) in &per_request {
        if *n > 1 {
            audit
                .duplicates
                .push(format!("{n} tenancies of request {ns}/{request}"));
        }
        if !requests
            .iter()
            .any(|r| r.namespace().as_deref() == Some(ns) && r.name_any() == *request)
        {
            audit
                .duplicates
                .push(format!("a tenancy of no request: {ns}/{request}"));
        }
    }
    let managed = ListParams::default().labels("app.kubernetes.io/managed-by=govcloud-operator");
    let mut found: BTreeSet<(String, Option<String>, String)> = BTreeSet::new();
    for (api_version, kind) in kinds {
        let ar = provisioning::api_resource(api_version, kind);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        for o in api.list(&managed).await?.items {
            found.insert((kind.to_owned(), o.namespace(), o.name_any()));
        }
    }
    audit.objects = found.len();
    let show = |(k, ns, n): &(String, Option<String>, String)| match ns {
        Some(ns) => format!("{k} {ns}/{n}"),
        None => format!("{k} {n}"),
    };
    audit.missing = wanted.difference(&found).map(show).collect();
    audit.orphans = found.difference(&wanted).map(show).collect();
    Ok(audit)
}
