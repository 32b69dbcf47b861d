//! The operator at district scale, against a local control plane: how fast
//! it provisions compared with the apiserver's own floor, how long an
//! approval takes to become a delivered tenancy, how quiet it is once
//! settled, its memory, and a cold start over many settled tenancies.
//!
//!   cargo xtask bench                            # 200 and 1000, 10000 for memory
//!   cargo xtask bench --sizes 200 --memory 10000 --batch 1000
//!   cargo xtask bench --sizes 200 --memory 0 --quiet-minutes 1
//!   GOVCLOUD_BENCH_WRAPPER='heaptrack -o /tmp/operator' cargo xtask bench --sizes 1000 --memory 0
//!
//!   cargo xtask bench --sizes 0 --memory 3000 --cold-also musl=target/x86_64-unknown-linux-musl/release/govcloud-operator
//!
//! `--cold-also name=path,...` starts other builds of the operator cold too,
//! each in turn over the same settled tenancies, after the bench's own.
//! `GOVCLOUD_BENCH_TARGET=x86_64-unknown-linux-musl` builds the bench's own
//! for that target (the image's static binary).
//! `GOVCLOUD_BENCH_PROFILE=profiling` builds the operator with the
//! `profiling` profile (release with line tables), so that a profiler under
//! `GOVCLOUD_BENCH_WRAPPER` names the code that holds or spends.
//!
//! Each size is measured against two floors, both taken before the operator
//! starts: the *floor* (one client applying a tenancy's objects, nothing
//! between them) and the *guarded floor* (the same client doing the least
//! the lifecycle's guarantees need: the approval, the Tenancy and two
//! statuses more, and the waits on kube-controller-manager's quota and on
//! KubeVirt's VMs; see `guarded_floor`).
//!
//! Prints a table and writes `bench/results/<UTC time>.json`. The operator
//! runs as its release binary, in its own process (its peak RSS is read
//! from /proc), with the real clock. KubeVirt's part (a VM is created) is
//! played by a watcher here, as in the tests; the quota controller is the
//! real kube-controller-manager's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use govcloud::api::request::CloudResourceRequestStatus;
use govcloud::api::tenancy::{InventoryItem, TenancyStatus};
use govcloud::api::{CloudResourceRequest, RequestPhase, Tenancy, TenancyPhase, TenancySpec};
use govcloud::provisioning::{self, Desired};
use govcloud_testenv::fleet::{self, Fleet};
use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

const UNITS: usize = 40;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    sizes: Vec<usize>,
    memory: Vec<usize>,
    quiet_minutes: u64,
    idle: usize,
    batch: usize,
    /// Other builds of the operator to start cold too, each after the
    /// bench's own at every memory size: `name=path`.
    cold_also: Vec<(String, PathBuf)>,
}

fn args(given: Vec<String>) -> Result<Args, Error> {
    let mut a = Args {
        sizes: vec![200, 1000],
        memory: vec![10_000],
        quiet_minutes: 5,
        idle: 50,
        batch: 1000,
        cold_also: Vec::new(),
    };
    let mut it = given.into_iter();
    let list = |v: Option<String>| -> Result<Vec<usize>, Error> {
        let v = v.ok_or("a value is missing")?;
        Ok(v.split(',')
            .filter(|s| !s.is_empty() && *s != "0")
            .map(str::parse)
            .collect::<Result<_, _>>()?)
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--sizes" => a.sizes = list(it.next())?,
            "--memory" => a.memory = list(it.next())?,
            "--quiet-minutes" => a.quiet_minutes = it.next().ok_or("minutes")?.parse()?,
            "--idle" => a.idle = it.next().ok_or("count")?.parse()?,
            "--batch" => a.batch = it.next().ok_or("count")?.parse::<usize>()?.max(1),
            "--cold-also" => {
                for each in it.next().ok_or("name=path,...")?.split(',') {
                    let (name, path) = each
                        .split_once('=')
                        .ok_or_else(|| format!("--cold-also wants name=path, not {each}"))?;
                    a.cold_also.push((name.to_owned(), PathBuf::from(path)));
                }
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

fn unit_ns(i: usize) -> String {
    format!("unit-u{}", i % UNITS)
}

/// Delivery times of tenancies, as seen by a watch: name -> when.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn watch_deliveries(client: Client, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Tenancy> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            // A watch error is retried by the watcher's backoff; go on.
            let Ok(t) = item else { continue };
            if t.status
                .as_ref()
                .and_then(|s| s.delivered_at.as_ref())
                .is_some()
            {
                let key = format!("{}/{}", t.namespace().unwrap_or_default(), t.name_any());
                seen.lock().unwrap().entry(key).or_insert_with(Instant::now);
            }
        }
    })
}

async fn approve_all(
    client: &Client,
    names: &[(String, String)],
    seen: &Seen,
) -> Result<(Duration, Vec<Duration>), Error> {
    let started = Instant::now();
    let approved = fleet::approve_all(client, names).await?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let done = {
            let seen = seen.lock().unwrap();
            approved.iter().all(|(k, _)| seen.contains_key(k))
        };
        if done {
            break;
        }
        if Instant::now() > deadline {
            return Err("not every tenancy was delivered within 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let seen = seen.lock().unwrap();
    let latencies = approved
        .iter()
        .map(|(k, at)| seen[k].saturating_duration_since(*at))
        .collect();
    Ok((elapsed, latencies))
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// What the floors apply for tenancy `i`: the spec the operator would make
/// of the bench's request, under the unit `prefix` + `i`.
fn floor_spec(prefix: &str, i: usize, request: &str) -> Result<TenancySpec, Error> {
    let r = fleet::request(&unit_ns(i), "x")?;
    Ok(TenancySpec {
        unit: format!("{prefix}{i}"),
        unit_name: "floor".into(),
        system_name: "floor".into(),
        purpose: "floor".into(),
        request: request.into(),
        request_generation: 1,
        service_types: r.spec.service_types.clone(),
        allocation: r.spec.resources.clone(),
        compliance: Default::default(),
        extensions: vec![],
        changes: vec![],
        emergency: None,
        retirement: None,
    })
}

/// The objects of a tenancy of `spec`, as the operator renders them; the
/// namespace first. Owned by `floor/t`, which no unit is, so that the
/// operator leaves them alone.
fn floor_desired(spec: &TenancySpec, uid: Option<&str>) -> Vec<Desired> {
    let config = govcloud::config::Config::default().provisioning;
    let classes = std::collections::BTreeSet::new();
    let namespace = provisioning::namespace_name("floor", &spec.unit, "t");
    provisioning::desired(
        &provisioning::Tenancy {
            unit_namespace: "floor",
            name: "t",
            namespace: &namespace,
            spec,
            unit_group: Some("govcloud:unit:floor"),
            namespace_uid: uid,
            procured: true,
            halted: false,
            isolated: false,
            storage_in_removal: BTreeMap::new(),
            storage_classes: &classes,
        },
        &config,
    )
}

/// Requests the floors keep in flight: 32, or `GOVCLOUD_BENCH_FLOOR_CONCURRENCY`.
fn floor_concurrency() -> usize {
    std::env::var("GOVCLOUD_BENCH_FLOOR_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(fleet::CONCURRENCY)
}

/// The floor: the same objects the operator creates for `n` tenancies,
/// applied by one client with server-side apply, 32 requests in flight, the
/// namespace of each first (the rest is owned by it).
async fn floor(client: &Client, n: usize, prefix: &str) -> Result<(Duration, usize), Error> {
    let specs: Vec<TenancySpec> = (0..n)
        .map(|i| floor_spec(prefix, i, "x"))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let objects: Vec<usize> = stream::iter(specs.iter())
        .map(|spec| {
            let client = client.clone();
            async move {
                let ns = floor_desired(spec, None).remove(0);
                let created = apply(&client, &ns).await?;
                let uid = created.uid().unwrap_or_default();
                let rest = floor_desired(spec, Some(&uid));
                let count = rest.len();
                for d in rest.iter().skip(1) {
                    apply(&client, d).await?;
                }
                Ok::<_, Error>(count)
            }
        })
        .buffer_unordered(floor_concurrency())
        .try_collect()
        .await?;
    Ok((started.elapsed(), objects.iter().sum()))
}

/// Keys seen by a watch, and the one waiter each may have.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<String, Slot>>>);

enum Slot {
    Arrived,
    Waiting(Arc<tokio::sync::Notify>),
}

impl Arrivals {
    fn arrive(&self, key: String) {
        let mut slots = self.0.lock().unwrap();
        if let Some(Slot::Waiting(waiter)) = slots.insert(key, Slot::Arrived) {
            // Kept as a permit when the waiter has not started waiting yet.
            waiter.notify_one();
        }
    }

    /// Until `key` has arrived; an error after 10 minutes, so that a
    /// controller that stopped fails the run instead of hanging it.
    async fn wait(&self, key: &str) -> Result<(), Error> {
        let waiter = {
            let mut slots = self.0.lock().unwrap();
            match slots
                .entry(key.to_owned())
                .or_insert_with(|| Slot::Waiting(Arc::default()))
            {
                Slot::Arrived => return Ok(()),
                Slot::Waiting(w) => w.clone(),
            }
        };
        tokio::time::timeout(Duration::from_secs(600), waiter.notified())
            .await
            .map_err(|_| format!("{key} did not arrive within 10 minutes").into())
    }
}

/// What the guarded floor waits for: quotas kube-controller-manager has
/// taken up (every hard limit of the spec in the status: quota admission
/// refuses what they limit until then), by namespace; and VMs KubeVirt has
/// created, by namespace/name.
fn watch_arrivals(client: Client, quotas: Arrivals, vms: Arrivals) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let quota_api: Api<ResourceQuota> = Api::all(client.clone());
        let quota_stream = watcher(quota_api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .for_each(|q| {
                if let Ok(q) = q {
                    let spec = q.spec.as_ref().and_then(|s| s.hard.as_ref());
                    let status = q.status.as_ref().and_then(|s| s.hard.as_ref());
                    if let (Some(spec), Some(status)) = (spec, status)
                        && spec.keys().all(|k| status.contains_key(k))
                    {
                        quotas.arrive(q.namespace().unwrap_or_default());
                    }
                }
                futures::future::ready(())
            });
        let vm_api: Api<DynamicObject> = Api::all_with(client, &govcloud_testenv::standins::vms());
        let vm_stream = watcher(vm_api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .for_each(|vm| {
                if let Ok(vm) = vm
                    && vm.data["status"]["created"] == json!(true)
                {
                    vms.arrive(format!(
                        "{}/{}",
                        vm.namespace().unwrap_or_default(),
                        vm.name_any()
                    ));
                }
                futures::future::ready(())
            });
        futures::join!(quota_stream, vm_stream);
    })
}

/// The guarded floor: the least any design keeping the lifecycle's
/// guarantees asks of the apiserver, done by one client with nothing
/// between its steps. For each tenancy, 32 at a time as the floor: the
/// reviewer's approval; the Tenancy made of it and the request's status
/// naming it; the namespace, then its quota, limits and policies; a wait
/// until kube-controller-manager has the quota in force; the VMs and
/// volumes (charged by quota admission as they are made); a wait until
/// KubeVirt has created the VMs; the unit's RoleBinding last; the
/// Tenancy's status, delivered. 32 requests in flight, as the floor; a
/// tenancy waiting holds none of them. The floor's objects and four writes more,
/// with statuses smaller than the operator's (one condition, the
/// inventory): a lower bound of what the operator can do.
///
/// The requests are filed before the clock starts, and the requests and
/// Tenancies are deleted after it stops (the namespaces and what is in them
/// stay, owned by no unit, as the floor's), so that the operator never
/// sees them: it must not be running.
async fn guarded_floor(
    client: &Client,
    n: usize,
    prefix: &str,
) -> Result<(Duration, u64, f64), Error> {
    let names: Vec<(String, String)> = (0..n)
        .map(|i| (unit_ns(i), format!("{prefix}{i}")))
        .collect();
    stream::iter(names.iter())
        .map(|(ns, name)| {
            let client = client.clone();
            async move {
                let r = fleet::request(ns, name)?;
                Api::<CloudResourceRequest>::namespaced(client, ns)
                    .create(&PostParams::default(), &r)
                    .await?;
                Ok::<_, Error>(())
            }
        })
        .buffer_unordered(fleet::CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let (quotas, vms) = (Arrivals::default(), Arrivals::default());
    let watches = watch_arrivals(client.clone(), quotas.clone(), vms.clone());
    let params = PatchParams::apply("bench-floor").force();
    let writes_before = fleet::apiserver_writes(client).await?;
    let cpu_before = fleet::machine_cpu();
    // 32 requests in flight, as the floor; a tenancy waiting holds none.
    let slots = Arc::new(tokio::sync::Semaphore::new(floor_concurrency()));
    let specs: Vec<TenancySpec> = names
        .iter()
        .enumerate()
        .map(|(i, (_, name))| floor_spec(prefix, i, name))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    stream::iter(names.iter().zip(&specs))
        .map(|((unit_ns, name), spec)| {
            let (client, quotas, vms, params, slots) = (
                client.clone(),
                quotas.clone(),
                vms.clone(),
                params.clone(),
                slots.clone(),
            );
            async move {
                in_slot(&slots, fleet::approve(&client, unit_ns, name)).await?;
                let tenancies: Api<Tenancy> = Api::namespaced(client.clone(), unit_ns);
                let tenancy = json!({
                    "apiVersion": "govcloud.dev/v1alpha1",
                    "kind": "Tenancy",
                    "metadata": { "name": name, "namespace": unit_ns,
                        "labels": { "govcloud.dev/request": name } },
                    "spec": spec,
                });
                in_slot(
                    &slots,
                    tenancies.patch(name, &params, &Patch::Apply(&tenancy)),
                )
                .await?;
                let now =
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
                let request_status = CloudResourceRequestStatus {
                    phase: Some(RequestPhase::Approved),
                    observed_generation: Some(1),
                    approved: Some(spec.allocation.clone()),
                    approved_generation: Some(1),
                    tenancy: Some(name.clone()),
                    ..Default::default()
                };
                let requests = Api::<CloudResourceRequest>::namespaced(client.clone(), unit_ns);
                let patch = status_apply(
                    "CloudResourceRequest",
                    serde_json::to_value(request_status)?,
                );
                in_slot(&slots, requests.patch_status(name, &params, &patch)).await?;
                let ns = floor_desired(spec, None).remove(0);
                let uid = in_slot(&slots, apply(&client, &ns))
                    .await?
                    .uid()
                    .unwrap_or_default();
                let desired = floor_desired(spec, Some(&uid));
                let of = |kinds: &'static [&str]| {
                    desired
                        .iter()
                        .skip(1)
                        .filter(move |d| kinds.contains(&d.kind))
                };
                // The envelope: all but what waits for the quota in force.
                let after_quota = ["VirtualMachine", "PersistentVolumeClaim", "RoleBinding"];
                let envelope = desired.iter().skip(1);
                for d in envelope.filter(|d| !after_quota.contains(&d.kind)) {
                    in_slot(&slots, apply(&client, d)).await?;
                }
                quotas.wait(&ns.name).await?;
                for d in of(&["VirtualMachine", "PersistentVolumeClaim"]) {
                    in_slot(&slots, apply(&client, d)).await?;
                }
                for d in of(&["VirtualMachine"]) {
                    vms.wait(&format!("{}/{}", ns.name, d.name)).await?;
                }
                for d in of(&["RoleBinding"]) {
                    in_slot(&slots, apply(&client, d)).await?;
                }
                let ready = Condition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    reason: "Delivered".into(),
                    message: "every resource is in place".into(),
                    last_transition_time: now.clone(),
                    observed_generation: Some(1),
                };
                let status = TenancyStatus {
                    phase: Some(TenancyPhase::Trial),
                    observed_generation: Some(1),
                    conditions: vec![ready],
                    namespace: Some(ns.name.clone()),
                    inventory: desired
                        .iter()
                        .map(|d| InventoryItem {
                            api_version: d.api_version.into(),
                            kind: d.kind.into(),
                            name: d.name.clone(),
                            namespace: d.namespace.clone(),
                            ready: true,
                            removing: false,
                            cause: None,
                        })
                        .collect(),
                    delivered_at: Some(now.clone()),
                    trial_ends_at: Some(now),
                    ..Default::default()
                };
                let patch = status_apply("Tenancy", serde_json::to_value(status)?);
                in_slot(&slots, tenancies.patch_status(name, &params, &patch)).await?;
                Ok::<_, Error>(())
            }
        })
        .buffer_unordered(names.len().max(1))
        .try_collect::<Vec<_>>()
        .await?;
    let elapsed = started.elapsed();
    let machine_busy = busy(cpu_before, fleet::machine_cpu());
    let writes = fleet::apiserver_writes(client).await? - writes_before;
    watches.abort();
    stream::iter(names.iter())
        .map(|(ns, name)| {
            let client = client.clone();
            async move {
                let dp = DeleteParams::default();
                Api::<Tenancy>::namespaced(client.clone(), ns)
                    .delete(name, &dp)
                    .await?;
                Api::<CloudResourceRequest>::namespaced(client, ns)
                    .delete(name, &dp)
                    .await?;
                Ok::<_, Error>(())
            }
        })
        .buffer_unordered(fleet::CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok((elapsed, writes, machine_busy))
}

/// How busy the machine's CPUs were between two readings of
/// `fleet::machine_cpu`, in percent of all of them.
fn busy((busy0, all0): (f64, f64), (busy1, all1): (f64, f64)) -> f64 {
    if all1 > all0 {
        100.0 * (busy1 - busy0) / (all1 - all0)
    } else {
        0.0
    }
}

/// A server-side apply of `status` to an object of `kind` of govcloud.dev.
fn status_apply(kind: &str, status: Value) -> Patch<Value> {
    Patch::Apply(json!({
        "apiVersion": "govcloud.dev/v1alpha1",
        "kind": kind,
        "status": status,
    }))
}

/// `request`, once one of `slots` is free.
async fn in_slot<T>(slots: &tokio::sync::Semaphore, request: impl Future<Output = T>) -> T {
    let _slot = slots.acquire().await;
    request.await
}

async fn apply(client: &Client, d: &Desired) -> Result<DynamicObject, Error> {
    let ar = provisioning::api_resource(d.api_version, d.kind);
    let api: Api<DynamicObject> = match &d.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    Ok(api
        .patch(
            &d.name,
            &PatchParams::apply("bench-floor").force(),
            &Patch::Apply(&d.object),
        )
        .await?)
}

/// The figures so far: each row is printed as soon as it is measured and the
/// JSON rewritten, so an interrupted run keeps what it measured.
struct Report {
    results: Value,
    file: PathBuf,
}

impl Report {
    fn row(&mut self, what: String, figure: String) {
        println!("{what:<52}  {figure}");
        self.save();
    }

    fn save(&self) {
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let text = serde_json::to_string_pretty(&self.results).unwrap_or_default() + "\n";
        let _ = std::fs::write(&self.file, text);
    }
}

/// The operator, under `GOVCLOUD_BENCH_WRAPPER` if set (a heap profiler:
/// `heaptrack -o /tmp/operator`; the RSS read is then the wrapper's).
fn start_operator(fleet: &Fleet) -> Result<fleet::OperatorProcess, Error> {
    Ok(match std::env::var("GOVCLOUD_BENCH_WRAPPER") {
        Ok(w) => fleet.operator_under(&w)?,
        Err(_) => fleet.operator()?,
    })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

pub async fn main(given: Vec<String>) -> Result<(), Error> {
    let args = args(given)?;
    let machine = format!(
        "{} CPUs, {} MiB",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m
                .lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok())
            .unwrap_or(0)
            / 1024
    );
    let fleet = Fleet::start("bench", UNITS).await?;
    let (plane, admin) = (&fleet.plane, fleet.admin.clone());
    let seen: Seen = Arc::default();
    let _deliveries = watch_deliveries(admin.clone(), seen.clone());

    let mut report = Report {
        results: json!({
            "machine": machine,
            "kubernetes": plane.version(),
            "when": jiff::Timestamp::now().to_string(),
        }),
        file: PathBuf::from(govcloud_testenv::SOURCE_TREE).join(format!(
            "bench/results/{}.json",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        )),
    };
    println!("\n{machine}, Kubernetes {}", plane.version());
    // The floors first, before the operator runs: the apiserver's work
    // alone (the guarded floor's requests and Tenancies must not be seen
    // by an operator).
    let mut floors = BTreeMap::new();
    for &n in &args.sizes {
        let w0 = fleet::apiserver_writes(&admin).await?;
        let c0 = fleet::machine_cpu();
        let (floor_time, objects) = floor(&admin, n, &format!("floor{n}x")).await?;
        let c1 = fleet::machine_cpu();
        let w1 = fleet::apiserver_writes(&admin).await?;
        let (guarded, guarded_writes, guarded_busy) =
            guarded_floor(&admin, n, &format!("guard{n}x")).await?;
        let floor_busy = busy(c0, c1);
        report.row(
            format!("floor {n}; guarded floor {n}"),
            format!(
                "{:.1} s, {} apiserver writes, {floor_busy:.0}% busy; {:.1} s ({:.2}x the floor), {} apiserver writes, {guarded_busy:.0}% busy",
                floor_time.as_secs_f64(),
                w1 - w0,
                guarded.as_secs_f64(),
                guarded.as_secs_f64() / floor_time.as_secs_f64(),
                guarded_writes,
            ),
        );
        floors.insert(
            n,
            (
                floor_time,
                objects,
                w1 - w0,
                floor_busy,
                guarded,
                guarded_writes,
                guarded_busy,
            ),
        );
    }
    let mut operator = start_operator(&fleet)?;
    operator.ready().await;

    // Idle latency: one approval at a time.
    let idle: Vec<(String, String)> = (0..args.idle)
        .map(|i| (unit_ns(i), format!("idle-{i}")))
        .collect();
    if !idle.is_empty() {
        fleet::file(&admin, &idle).await?;
        let mut latencies = Vec::new();
        for (ns, name) in &idle {
            let (_, l) = approve_all(&admin, &[(ns.clone(), name.clone())], &seen).await?;
            latencies.extend(l);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (p50, p99) = (
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99),
        );
        report.results["latencyIdle"] =
            json!({ "n": args.idle, "p50Ms": ms(p50), "p99Ms": ms(p99) });
        report.row(
            format!("approval -> delivered, idle ({} one by one)", args.idle),
            format!("p50 {:.0} ms, p99 {:.0} ms", ms(p50), ms(p99)),
        );
    }

    let mut total = args.idle;
    for &n in &args.sizes {
        let (floor_time, objects, floor_writes, floor_busy, guarded, guarded_writes, guarded_busy) =
            floors[&n];
        let names: Vec<(String, String)> = (0..n)
            .map(|i| (unit_ns(i), format!("load{n}-{i}")))
            .collect();
        fleet::file(&admin, &names).await?;
        let writes_before = fleet::apiserver_writes(&admin).await?;
        let cpu_before = fleet::cpu_seconds(operator.pid());
        let machine_before = fleet::machine_cpu();
        let reconciles_before = operator.counter("reconciles").await.unwrap_or(0);
        let writes_by_kind_before = operator.counters("writes").await;
        let (elapsed, latencies) = approve_all(&admin, &names, &seen).await?;
        let operator_busy = busy(machine_before, fleet::machine_cpu());
        let by_kind: BTreeMap<String, u64> = operator
            .counters("writes")
            .await
            .into_iter()
            .map(|(k, v)| {
                let before = writes_by_kind_before.get(&k).copied().unwrap_or(0);
                (k, v - before)
            })
            .filter(|(_, v)| *v > 0)
            .collect();
        let writes = fleet::apiserver_writes(&admin).await? - writes_before;
        let cpu = fleet::cpu_seconds(operator.pid()) - cpu_before;
        let reconciles = operator.counter("reconciles").await.unwrap_or(0) - reconciles_before;
        total += n;
        let ratio = elapsed.as_secs_f64() / floor_time.as_secs_f64();
        let (p50, p99) = (
            percentile(latencies.clone(), 0.5),
            percentile(latencies, 0.99),
        );
        let (peak, _) = fleet::rss(operator.pid());
        report.results[format!("provisioning{n}")] = json!({
            "n": n,
            "floorSeconds": floor_time.as_secs_f64(),
            "floorObjects": objects,
            "floorApiserverWrites": floor_writes,
            "guardedFloorSeconds": guarded.as_secs_f64(),
            "guardedFloorApiserverWrites": guarded_writes,
            "ratioToGuardedFloor": elapsed.as_secs_f64() / guarded.as_secs_f64(),
            "floorMachineBusyPercent": floor_busy,
            "guardedFloorMachineBusyPercent": guarded_busy,
            "operatorMachineBusyPercent": operator_busy,
            "operatorSeconds": elapsed.as_secs_f64(),
            "ratio": ratio,
            "apiserverWrites": writes,
            "latencyP50Ms": ms(p50),
            "latencyP99Ms": ms(p99),
            "operatorPeakRssKiB": peak,
            "operatorCpuSeconds": cpu,
            "operatorReconciles": reconciles,
            "operatorWritesByKind": by_kind,
            "tenanciesInCluster": total,
        });
        report.row(
            format!("operator writes under {n}, by kind and verb"),
            by_kind
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; "),
        );
        report.row(
            format!("provisioning {n} (floor: {objects} objects by SSA)"),
            format!(
                "{:.1} s vs floor {:.1} s: {ratio:.2}x (guarded floor {:.1} s: {:.2}x); {writes} apiserver writes; operator {cpu:.1} CPU s, {reconciles} reconciles; machine {operator_busy:.0}% busy",
                elapsed.as_secs_f64(),
                floor_time.as_secs_f64(),
                guarded.as_secs_f64(),
                elapsed.as_secs_f64() / guarded.as_secs_f64(),
            ),
        );
        report.row(
            format!("approval -> delivered under {n}"),
            format!("p50 {:.0} ms, p99 {:.0} ms", ms(p50), ms(p99)),
        );
        report.row(
            format!("operator peak RSS, {total} tenancies"),
            format!("{:.1} MiB", peak as f64 / 1024.0),
        );
    }

    // Quiet: nothing to do, nothing written.
    if args.quiet_minutes > 0 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (a0, o0, r0) = (
            fleet::apiserver_writes(&admin).await?,
            operator.counter("writes").await,
            operator.counter("reconciles").await,
        );
        tokio::time::sleep(Duration::from_secs(60 * args.quiet_minutes)).await;
        let (a1, o1, r1) = (
            fleet::apiserver_writes(&admin).await?,
            operator.counter("writes").await,
            operator.counter("reconciles").await,
        );
        let per_minute = (a1 - a0) as f64 / args.quiet_minutes as f64;
        let sent = o1.zip(o0).map(|(b, a)| b - a);
        // The safety net's looks at settled objects (GOVCLOUD_RESYNC_SECONDS
        // shorter than the window to see them).
        let looked = r1.zip(r0).map(|(b, a)| b - a);
        report.results["quiet"] = json!({
            "tenancies": total,
            "minutes": args.quiet_minutes,
            "resyncSeconds": std::env::var("GOVCLOUD_RESYNC_SECONDS").ok(),
            "apiserverWritesPerMinute": per_minute,
            "operatorWrites": sent,
            "operatorReconciles": looked,
        });
        report.row(
            format!("settled, {total} tenancies, {} min", args.quiet_minutes),
            format!(
                "{per_minute:.1} apiserver writes/min (all clients); operator reconciled {} times and sent {} writes",
                looked.map_or("?".into(), |s| s.to_string()),
                sent.map_or("?".into(), |s| s.to_string())
            ),
        );
    }

    // Memory and cold start at larger counts.
    for &n in &args.memory {
        if n > total {
            let more: Vec<(String, String)> = (total..n)
                .map(|i| (unit_ns(i), format!("mem-{i}")))
                .collect();
            eprintln!("provisioning {} more tenancies for {n}...", more.len());
            let started = Instant::now();
            // In rounds, as a district's requests come: all at once would
            // measure a backlog of thousands, not the tenancies.
            for batch in more.chunks(args.batch) {
                fleet::file(&admin, batch).await?;
                approve_all(&admin, batch, &seen).await?;
                total += batch.len();
                eprintln!(
                    "  {total} delivered at {:.0} s; operator RSS {:.1} MiB",
                    started.elapsed().as_secs_f64(),
                    fleet::rss(operator.pid()).1 as f64 / 1024.0
                );
            }
        }
        let (peak, current) = fleet::rss(operator.pid());
        operator.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let a0 = fleet::apiserver_writes(&admin).await?;
        operator = start_operator(&fleet)?;
        let ready = operator.ready().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        let a1 = fleet::apiserver_writes(&admin).await?;
        let sent = operator.counter("writes").await;
        let (cold_peak, _) = fleet::rss(operator.pid());
        report.results[format!("memory{n}")] = json!({
            "tenancies": n,
            "peakRssKiB": peak,
            "rssKiB": current,
            "coldStartReadySeconds": ready.as_secs_f64(),
            "coldStartOperatorWrites": sent,
            "coldStartApiserverWrites": a1 - a0,
            "coldStartPeakRssKiB": cold_peak,
        });
        report.row(
            format!("operator RSS, {n} tenancies"),
            format!(
                "peak {:.1} MiB, now {:.1} MiB; after a cold start {:.1} MiB",
                peak as f64 / 1024.0,
                current as f64 / 1024.0,
                cold_peak as f64 / 1024.0
            ),
        );
        // The other builds, each started cold in turn over the same
        // tenancies; then the bench's own again, for the next size.
        let mut others = serde_json::Map::new();
        for (name, binary) in &args.cold_also {
            operator.stop();
            tokio::time::sleep(Duration::from_secs(2)).await;
            let other = fleet.operator_of(binary)?;
            let ready = other.ready().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            let sent = other.counter("writes").await;
            let (peak, current) = fleet::rss(other.pid());
            eprintln!(
                "  cold start of {name}: ready in {:.1} s, peak {:.1} MiB, now {:.1} MiB, {} writes",
                ready.as_secs_f64(),
                peak as f64 / 1024.0,
                current as f64 / 1024.0,
                sent.map_or("?".into(), |s| s.to_string())
            );
            others.insert(
                name.clone(),
                json!({
                    "binary": binary,
                    "coldStartReadySeconds": ready.as_secs_f64(),
                    "coldStartPeakRssKiB": peak,
                    "coldStartRssKiB": current,
                    "coldStartOperatorWrites": sent,
                }),
            );
            report.row(
                format!("operator RSS, {n} tenancies, {name}"),
                format!(
                    "after a cold start {:.1} MiB (peak), ready in {:.1} s",
                    peak as f64 / 1024.0,
                    ready.as_secs_f64()
                ),
            );
            operator = other;
        }
        if !others.is_empty() {
            report.results[format!("memory{n}")]["coldStartOthers"] = others.into();
            operator.stop();
            tokio::time::sleep(Duration::from_secs(2)).await;
            operator = start_operator(&fleet)?;
            operator.ready().await;
        }
        report.row(
            format!("cold start, {n} settled tenancies"),
            format!(
                "ready in {:.1} s; operator sent {} writes in 30 s ({} apiserver writes, all clients)",
                ready.as_secs_f64(),
                sent.map_or("?".into(), |s| s.to_string()),
                a1 - a0
            ),
        );
    }
    operator.stop();

    report.save();
    println!("\nwritten to {}", report.file.display());
    Ok(())
}
