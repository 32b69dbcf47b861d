//! A real Prometheus (Debian's package) for the tests, the demo and the
//! benchmarks, filled with months of samples by `promtool`: one OpenMetrics
//! file per day, or per two hours when a day is large, each turned into
//! blocks on its own (promtool re-reads its whole input for every 2-hour
//! block, so one big file takes hours). Each file's blocks go into a
//! directory of their own and are then moved into the data directory:
//! promtool opens every block already in its output directory, so writing
//! months into one directory slows each file down.
//!
//! The samples are the raw KubeVirt metrics the operator's default queries
//! read, generated from utilisation curves, so that the whole path (PromQL,
//! subqueries, Beijing days) is exercised; or the per-namespace series the
//! recording rules write from them ([`Samples::Recorded`]).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {message}")]
    Failed { what: String, message: String },
}

fn failed(what: impl Into<String>, message: impl ToString) -> Error {
    Error::Failed {
        what: what.into(),
        message: message.to_string(),
    }
}

/// One VM's utilisation curves, as fractions (disk in bytes).
pub struct Vm {
    pub name: String,
    pub vcpus: u32,
    pub memory_bytes: f64,
    pub disk_capacity_bytes: f64,
    /// Utilisation at an instant; `None` for no sample (a gap).
    pub cpu: Box<dyn Fn(Timestamp) -> Option<f64> + Send + Sync>,
    pub memory: Box<dyn Fn(Timestamp) -> Option<f64> + Send + Sync>,
    pub disk_used_bytes: Box<dyn Fn(Timestamp) -> Option<f64> + Send + Sync>,
}

/// The VMs of one namespace.
pub struct Tenant {
    pub namespace: String,
    pub vms: Vec<Vm>,
    /// How long after each step its samples are taken: scrapes are offset
    /// from any grid of the operator's (whole milliseconds).
    pub phase: SignedDuration,
}

/// What a backfill writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Samples {
    /// The raw KubeVirt metrics, one series per vCPU, VM and disk: what the
    /// default queries read.
    Raw,
    /// The four series per namespace that the recording rules
    /// (`govcloud-operator recording-rules`) write from the raw metrics,
    /// as Prometheus would have recorded them at each step: what
    /// [`govcloud::prometheus::Queries::recorded`] reads.
    Recorded,
}

/// The instants of `[start, end)`, every `interval`.
fn steps(start: Timestamp, end: Timestamp, interval: SignedDuration) -> Vec<Timestamp> {
    let mut t = start;
    let mut out = Vec::new();
    while t < end {
        out.push(t);
        t = t.checked_add(interval).unwrap_or(end);
    }
    out
}

/// Writes the samples at `times` (`interval` apart) as an OpenMetrics file.
/// `counters` carries each VM's CPU counter from the window before (they
/// start at zero).
fn window_file(
    tenants: &[Tenant],
    times: &[Timestamp],
    counters: &mut Vec<f64>,
    interval: SignedDuration,
    samples: Samples,
) -> String {
    let mut out = String::new();
    match samples {
        Samples::Raw => raw_samples(&mut out, tenants, times, counters, interval),
        Samples::Recorded => recorded_samples(&mut out, tenants, times),
    }
    out.push_str("# EOF\n");
    out
}

fn phased(at: Timestamp, phase: SignedDuration) -> Timestamp {
    at.checked_add(phase).unwrap_or(at)
}

/// An OpenMetrics timestamp: seconds, to the millisecond.
fn seconds(at: Timestamp) -> String {
    let ms = at.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn raw_samples(
    out: &mut String,
    tenants: &[Tenant],
    times: &[Timestamp],
    counters: &mut Vec<f64>,
    interval: SignedDuration,
) {
    let step = interval.as_secs_f64();
    let _ = writeln!(out, "# TYPE kubevirt_vmi_vcpu_seconds counter");
    let mut index = 0;
    for tenant in tenants {
        for vm in &tenant.vms {
            if counters.len() <= index {
                counters.push(0.0);
            }
            // Each vCPU's counter at each step (only where the VM reports).
            let mut total = counters[index];
            let samples: Vec<(Timestamp, f64)> = times
                .iter()
                .map(|at| phased(*at, tenant.phase))
                .filter_map(|at| {
                    let used = (vm.cpu)(at);
                    total += used.unwrap_or(0.0) * step;
                    used.map(|_| (at, total))
                })
                .collect();
            counters[index] = total;
            index += 1;
            for id in 0..vm.vcpus {
                for (at, value) in &samples {
                    let _ = writeln!(
                        out,
                        "kubevirt_vmi_vcpu_seconds_total{{namespace=\"{}\",name=\"{}\",id=\"{id}\",state=\"running\"}} {value:.3} {}",
                        tenant.namespace,
                        vm.name,
                        seconds(*at)
                    );
                }
            }
        }
    }
    let gauge = |out: &mut String,
                 family: &str,
                 labels: &str,
                 value: &dyn Fn(&Vm, Timestamp) -> Option<f64>| {
        let _ = writeln!(out, "# TYPE {family} gauge");
        for tenant in tenants {
            for vm in &tenant.vms {
                for at in times.iter().map(|at| phased(*at, tenant.phase)) {
                    if let Some(v) = value(vm, at) {
                        let _ = writeln!(
                            out,
                            "{family}{{namespace=\"{}\",name=\"{}\"{labels}}} {v:.1} {}",
                            tenant.namespace,
                            vm.name,
                            seconds(at)
                        );
                    }
                }
            }
        }
    };
    gauge(out, "kubevirt_vmi_memory_used_bytes", "", &|vm, at| {
        (vm.memory)(at).map(|u| u * vm.memory_bytes)
    });
    gauge(out, "kubevirt_vmi_memory_domain_bytes", "", &|vm, at| {
        (vm.memory)(at).map(|_| vm.memory_bytes)
    });
    let disk = ",mount_point=\"/data\",disk_name=\"data\"";
    gauge(
        out,
        "kubevirt_vmi_filesystem_used_bytes",
        disk,
        &|vm, at| (vm.disk_used_bytes)(at),
    );
    gauge(
        out,
        "kubevirt_vmi_filesystem_capacity_bytes",
        disk,
        &|vm, at| (vm.disk_used_bytes)(at).map(|_| vm.disk_capacity_bytes),
    );
}

/// Per namespace and step, what the recording rules compute from the raw
/// metrics: the vCPU-weighted mean CPU utilisation, memory used over memory,
/// data-disk bytes used and capacity, each over the VMs reporting then.
fn recorded_samples(out: &mut String, tenants: &[Tenant], times: &[Timestamp]) {
    let names = govcloud::prometheus::Queries::recorded();
    // (numerator, denominator) of a VM at an instant, if it reports.
    type Part = dyn Fn(&Vm, Timestamp) -> Option<(f64, f64)>;
    let family = |out: &mut String, name: &str, part: &Part, ratio: bool| {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for tenant in tenants {
            for at in times.iter().map(|at| phased(*at, tenant.phase)) {
                let (mut top, mut bottom, mut any) = (0.0, 0.0, false);
                for vm in &tenant.vms {
                    if let Some((t, b)) = part(vm, at) {
                        (top, bottom, any) = (top + t, bottom + b, true);
                    }
                }
                if !any || (ratio && bottom <= 0.0) {
                    continue;
                }
                let value = if ratio { top / bottom } else { top };
                let _ = writeln!(
                    out,
                    "{name}{{namespace=\"{}\"}} {value} {}",
                    tenant.namespace,
                    seconds(at)
                );
            }
        }
    };
    family(
        out,
        &names.cpu,
        &|vm, at| (vm.cpu)(at).map(|u| (u * f64::from(vm.vcpus), f64::from(vm.vcpus))),
        true,
    );
    family(
        out,
        &names.memory,
        &|vm, at| (vm.memory)(at).map(|u| (u * vm.memory_bytes, vm.memory_bytes)),
        true,
    );
    family(
        out,
        &names.disk_used,
        &|vm, at| (vm.disk_used_bytes)(at).map(|u| (u, 0.0)),
        false,
    );
    family(
        out,
        &names.disk_capacity,
        &|vm, at| (vm.disk_used_bytes)(at).map(|_| (vm.disk_capacity_bytes, 0.0)),
        false,
    );
}

/// Sample lines per file above which a day is written as twelve two-hour
/// files: promtool re-reads its whole input for each two-hour block it
/// writes, so a day in one file is read twelve times.
const SPLIT_ABOVE: u64 = 20_000;

/// Fills `data` with the samples of `tenants` for the Beijing days
/// `[first, last]`, every `interval`, two promtool processes at a time.
/// Returns how many samples were written.
pub fn backfill(
    data: &Path,
    tenants: &[Tenant],
    first: Date,
    last: Date,
    interval: SignedDuration,
    samples: Samples,
) -> Result<u64, Error> {
    let work = data.join("openmetrics");
    std::fs::create_dir_all(&work).map_err(|e| failed(work.display().to_string(), e))?;
    let per_step: u64 = match samples {
        Samples::Raw => tenants
            .iter()
            .flat_map(|t| &t.vms)
            .map(|vm| u64::from(vm.vcpus) + 4)
            .sum(),
        Samples::Recorded => 4 * tenants.len() as u64,
    };
    let steps_per_day = (86_400 / interval.as_secs().max(1)) as u64;
    let window = if per_step * steps_per_day > SPLIT_ABOVE {
        SignedDuration::from_hours(2)
    } else {
        SignedDuration::from_hours(24)
    };
    let mut written = 0u64;
    let mut running: Vec<(Child, PathBuf)> = Vec::new();
    let mut counters = Vec::new();
    let wait = |(mut child, file): (Child, PathBuf)| -> Result<(), Error> {
        let status = child.wait().map_err(|e| failed("promtool", e))?;
        if !status.success() {
            return Err(failed(format!("promtool on {}", file.display()), status));
        }
        let blocks = file.with_extension("blocks");
        for entry in
            std::fs::read_dir(&blocks).map_err(|e| failed(blocks.display().to_string(), e))?
        {
            let entry = entry.map_err(|e| failed(blocks.display().to_string(), e))?;
            let to = data.join(entry.file_name());
            std::fs::rename(entry.path(), &to).map_err(|e| failed(to.display().to_string(), e))?;
        }
        let _ = std::fs::remove_dir_all(&blocks);
        let _ = std::fs::remove_file(&file);
        Ok(())
    };
    let mut start = govcloud::calendar::start_of_day(first);
    let end = govcloud::calendar::start_of_day(last.tomorrow().unwrap_or(last));
    while start < end {
        let until = start.checked_add(window).unwrap_or(end).min(end);
        let times = steps(start, until, interval);
        let text = window_file(tenants, &times, &mut counters, interval, samples);
        written += text.lines().filter(|l| !l.starts_with('#')).count() as u64;
        let file = work.join(format!("{}.om", start.as_second()));
        std::fs::write(&file, text).map_err(|e| failed(file.display().to_string(), e))?;
        if running.len() >= 2 {
            wait(running.remove(0))?;
        }
        let child = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&file)
            .arg(file.with_extension("blocks"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed("running promtool (install Debian's prometheus package)", e))?;
        running.push((child, file));
        start = until;
    }
    for r in running {
        wait(r)?;
    }
    let _ = std::fs::remove_dir(&work);
    Ok(written)
}

/// Records the rules file `rules` over `[start, end]` from the samples of
/// the Prometheus at `url`, evaluated every `interval`, into blocks in
/// `data`: `promtool tsdb create-blocks-from rules`, the way a rule added
/// today gets its history.
pub fn backfill_rules(
    data: &Path,
    url: &str,
    rules: &str,
    start: Timestamp,
    end: Timestamp,
    interval: SignedDuration,
) -> Result<(), Error> {
    std::fs::create_dir_all(data).map_err(|e| failed(data.display().to_string(), e))?;
    let file = data.join("rules.yaml");
    std::fs::write(&file, rules).map_err(|e| failed(file.display().to_string(), e))?;
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "rules", "--quiet"])
        .arg(format!("--url={url}"))
        .arg(format!("--start={}", start.as_second()))
        .arg(format!("--end={}", end.as_second()))
        .arg(format!("--eval-interval={}s", interval.as_secs()))
        .arg(format!("--output-dir={}", data.display()))
        .arg(&file)
        .output()
        .map_err(|e| failed("running promtool (install Debian's prometheus package)", e))?;
    if !out.status.success() {
        return Err(failed(
            "promtool tsdb create-blocks-from rules",
            String::from_utf8_lossy(&out.stderr),
        ));
    }
    Ok(())
}

/// A running Prometheus on a free loopback port.
pub struct LocalPrometheus {
    child: std::sync::Mutex<Child>,
    url: String,
    log: PathBuf,
}

impl LocalPrometheus {
    /// Starts Prometheus on the TSDB in `data` (already backfilled), with no
    /// scrape targets, and waits until it is ready.
    pub async fn start(data: &Path) -> Result<Self, Error> {
        Self::start_limited(data, 200_000_000).await
    }

    /// [`LocalPrometheus::start`], refusing queries that would hold more
    /// than `max_samples` samples at once (`--query.max-samples`).
    pub async fn start_limited(data: &Path, max_samples: u64) -> Result<Self, Error> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| failed("finding a free port", e))?
            .port();
        let config = data.join("prometheus.yml");
        std::fs::write(
            &config,
            "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
        )
        .map_err(|e| failed(config.display().to_string(), e))?;
        let log = data.join("prometheus.log");
        let out = std::fs::File::create(&log).map_err(|e| failed(log.display().to_string(), e))?;
        let err = out.try_clone().map_err(|e| failed("log", e))?;
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=10y")
            .arg(format!("--query.max-samples={max_samples}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = super::spawn_tied(cmd).map_err(|e| {
            failed(
                "starting prometheus (install Debian's prometheus package)",
                e,
            )
        })?;
        let me = Self {
            child: std::sync::Mutex::new(child),
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        me.wait_ready().await?;
        Ok(me)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits until Prometheus has compacted the backfilled blocks in `data`
    /// into larger ones; returns how many are left. promtool writes a block
    /// per two hours, and a query over months of them takes fifty times as
    /// long as over the few blocks of a Prometheus that has been running for
    /// months. Prometheus starts compacting a minute after it starts.
    pub async fn compacted(&self, data: &Path) -> Result<usize, Error> {
        let initial = blocks(data);
        if initial <= 100 {
            return Ok(initial);
        }
        let started = Instant::now();
        let (mut last, mut same) = (initial, 0);
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = blocks(data);
            same = if now == last { same + 1 } else { 0 };
            last = now;
            if now < initial && same >= 3 {
                return Ok(now);
            }
            if started.elapsed() > Duration::from_secs(3600) {
                return Err(failed(
                    "prometheus",
                    format!("{now} of {initial} blocks left after an hour of compaction"),
                ));
            }
        }
    }

    /// Stops it (also done on drop).
    pub fn stop(&self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn wait_ready(&self) -> Result<(), Error> {
        let started = Instant::now();
        let addr = self.url.trim_start_matches("http://").to_owned();
        loop {
            let exited = self
                .child
                .lock()
                .ok()
                .and_then(|mut c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let tail = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(failed("prometheus exited", format!("{status}: {tail}")));
            }
            if let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let _ = stream
                    .write_all(format!("GET /-/ready HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
                    .await;
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer).await;
                if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                    return Ok(());
                }
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(failed("prometheus", "not ready after 120 s"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The TSDB blocks in `data`.
pub fn blocks(data: &Path) -> usize {
    std::fs::read_dir(data)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join("meta.json").exists())
                .count()
        })
        .unwrap_or(0)
}

impl Drop for LocalPrometheus {
    fn drop(&mut self) {
        self.stop();
    }
}
