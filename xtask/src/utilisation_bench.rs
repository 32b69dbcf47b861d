//! How long one utilisation evaluation (Art. 18) takes for many tenancies
//! against a real Prometheus: backfills months of samples with `promtool`
//! (kept under `~/.cache` for the next run), starts Prometheus on them, then
//! times the range queries of an evaluation and the rules for every tenancy,
//! the same code the operator runs: first with nothing carried (the first
//! evaluation after an install), then with what each evaluation wrote into
//! the statuses carried to the next (the same day, the next day, the first
//! of the next month).
//!
//! By default the samples are the per-namespace series the recording rules
//! write (`govcloud-operator recording-rules`) and the queries read them;
//! `--raw` backfills the raw KubeVirt metrics and queries them with the
//! default queries (subqueries) instead.
//!
//!   cargo xtask utilisation                      # 1000 tenancies, hourly
//!   cargo xtask utilisation 10000             # 10,000 tenancies
//!   cargo xtask utilisation 1000 60 --raw     # raw metrics, subqueries
//!
//! Prints what it measures and writes `bench/results/utilisation-<UTC time>.json`.
//! Writing the statuses is not included: that is one server-side apply per
//! tenancy whose figures changed, measured by the operator's own benchmarks.

use std::path::PathBuf;
use std::time::Instant;

use govcloud::api::Resources;
use govcloud::prometheus::{Client, PrometheusConfig, Queries};
use govcloud::rightsizing::{self, GIB, Thresholds};
use govcloud_testenv::prometheus::{LocalPrometheus, Samples, Tenant, Vm, backfill, blocks};
use jiff::civil::{Date, date};
use jiff::{SignedDuration, Timestamp};

const FIRST: Date = date(2026, 7, 15);
const LAST: Date = date(2026, 11, 14);
const TODAY: Date = date(2026, 11, 15);

/// A deterministic spread of tenancies: busy, idle and in between.
fn tenants(n: usize) -> Vec<Tenant> {
    (0..n)
        .map(|i| {
            let base = 0.05 + (i % 19) as f64 * 0.05;
            let wave = move |t: Timestamp| {
                let hour = (t.as_second() / 3600 % 24) as f64;
                (base * (0.6 + 0.4 * (hour / 24.0 * std::f64::consts::TAU).sin().abs())).min(1.0)
            };
            let start = FIRST
                .checked_add(jiff::Span::new().days((i % 7) as i64))
                .unwrap_or(FIRST);
            Tenant {
                namespace: format!("unit{}-system{i}", i % 40),
                phase: SignedDuration::ZERO,
                vms: vec![Vm {
                    name: "app-1".into(),
                    vcpus: 2,
                    memory_bytes: 8.0 * GIB,
                    disk_capacity_bytes: 1024.0 * GIB,
                    cpu: Box::new(move |t| {
                        (govcloud::calendar::local_date(t) >= start).then(|| wave(t))
                    }),
                    memory: Box::new(move |t| {
                        (govcloud::calendar::local_date(t) >= start)
                            .then(|| (wave(t) + 0.1).min(1.0))
                    }),
                    disk_used_bytes: Box::new(move |t| {
                        let day = govcloud::calendar::local_date(t);
                        (day >= start).then(|| {
                            (200.0 + (i % 50) as f64 * 10.0 + (day - FIRST).get_days() as f64) * GIB
                        })
                    }),
                }],
            }
        })
        .collect()
}

fn cache_dir(n: usize, minutes: i64, samples: Samples) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/govcloud-operator/bench-prometheus")
        .join(match samples {
            Samples::Raw => format!("v1-{n}-tenancies-{minutes}m-{FIRST}-{LAST}"),
            Samples::Recorded => format!("v2-recorded-{n}-tenancies-{minutes}m-{FIRST}-{LAST}"),
        })
}

pub async fn main(mut args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let samples = if args.iter().any(|a| a == "--raw") {
        Samples::Raw
    } else {
        Samples::Recorded
    };
    args.retain(|a| a != "--raw");
    let n: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let minutes: i64 = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(60);
    let interval = SignedDuration::from_mins(minutes);
    let dir = cache_dir(n, minutes, samples);
    let file = PathBuf::from(govcloud_testenv::SOURCE_TREE).join(format!(
        "bench/results/utilisation-{}.json",
        Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    ));
    let mut results = serde_json::json!({
        "when": Timestamp::now().to_string(),
        "tenancies": n,
        "samples": format!("{samples:?}"),
        "intervalMinutes": minutes,
        "days": (LAST - FIRST).get_days() + 1,
        "today": TODAY.to_string(),
    });
    let save = |results: &serde_json::Value| {
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(
            &file,
            serde_json::to_string_pretty(results).unwrap_or_default() + "\n",
        );
    };
    let ready = dir.join(".complete");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let started = Instant::now();
        let written = backfill(&dir, &tenants(n), FIRST, LAST, interval, samples)?;
        std::fs::write(&ready, "")?;
        results["backfill"] = serde_json::json!({
            "samples": written,
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!(
            "backfill: {written} {samples:?} samples ({n} tenancies, {} days, every {minutes} min) in {:.1} s",
            (LAST - FIRST).get_days() + 1,
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("backfill: reusing {}", dir.display());
    }
    println!("blocks on disk: {}", blocks(&dir));

    let started = Instant::now();
    let prometheus = LocalPrometheus::start(&dir).await?;
    println!(
        "prometheus ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let left = prometheus.compacted(&dir).await?;
    results["compaction"] = serde_json::json!({
        "blocksLeft": left,
        "seconds": started.elapsed().as_secs_f64(),
    });
    save(&results);
    println!(
        "compacted to {left} blocks in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut config = PrometheusConfig {
        url: Some(prometheus.url().into()),
        resolution_seconds: u32::try_from(interval.as_secs())?,
        ..PrometheusConfig::default()
    };
    match samples {
        // A rate needs two samples in its window.
        Samples::Raw => {
            config.queries.cpu = config
                .queries
                .cpu
                .replace("[5m]", &format!("[{}m]", 2 * minutes))
        }
        Samples::Recorded => config.queries = Queries::recorded(),
    }
    println!("queries: {:?}", config.queries);
    let client = Client::new(prometheus.url(), &config)?;
    let thresholds = Thresholds::default();
    let allocation: Resources = serde_json::from_value(serde_json::json!({
        "vmGroups": [{"name": "app", "count": 1, "vcpu": 2, "memoryGiB": 8, "systemDiskGiB": 40,
                      "dataDiskGiB": 1024, "image": "kylin-server-v10-sp3", "architecture": "arm64"}]
    }))?;
    let namespaces: Vec<String> = tenants(n).into_iter().map(|t| t.namespace).collect();

    // A cold evaluation (nothing carried: the first after an install), then
    // the same day again, the next day and the first of the next month with
    // what the one before wrote into the statuses: the closed months and the
    // growth sums are carried and only the last 30 days (and a week a year
    // back) are read.
    let next_day = TODAY.tomorrow()?;
    let month_close = TODAY
        .first_of_month()
        .checked_add(jiff::Span::new().months(1))?;
    // "100 new": the next day again, with the statuses of 100 tenancies
    // empty, as if they had just come into service.
    let rounds = [
        ("cold", TODAY, false),
        ("carried", TODAY, true),
        ("carried", TODAY, true),
        ("next day", next_day, true),
        ("100 new", next_day, true),
        ("month closed", month_close, true),
    ];
    let back = |b: &Option<rightsizing::Back>| match b {
        None => "-".to_owned(),
        Some(b) => match &b.namespaces {
            rightsizing::Namespaces::All => format!("from {}, all", b.from),
            rightsizing::Namespaces::Only(names) => {
                format!("from {}, {} named", b.from, names.len())
            }
        },
    };
    let mut carried: Vec<Option<govcloud::api::utilisation::Summary>> = vec![None; n];
    let mut evaluations = Vec::new();
    let mut plans = Vec::new();
    for (round, (name, today, carry)) in rounds.into_iter().enumerate() {
        let fresh = if name == "100 new" { 100 } else { 0 };
        let before = |i: usize| rightsizing::Before {
            summary: if carry && i >= fresh {
                carried[i].as_ref()
            } else {
                None
            },
        };
        let plan = rightsizing::Plan::new(
            today,
            &thresholds,
            (0..n).map(|i| (namespaces[i].as_str(), before(i))),
        );
        plans.push((name, plan.clone()));
        let sent = client.queries_sent();
        let started = Instant::now();
        let answers = client.answers(&config, &plan).await?;
        let queried = started.elapsed();
        let mut recommendations = 0;
        let mut insufficient = 0;
        let mut next = Vec::with_capacity(n);
        for (i, ns) in namespaces.iter().enumerate() {
            let e = rightsizing::evaluate_after(
                &answers.usage(ns),
                before(i),
                &allocation,
                today,
                &thresholds,
            );
            recommendations += e.recommendations.len();
            insufficient += usize::from(!e.insufficient.is_empty());
            next.push(Some(e.summary));
        }
        carried = next;
        let total = started.elapsed();
        let queries = client.queries_sent() - sent;
        println!(
            "evaluation {} ({name}, {today}: {} .. {}, months {}, history {}): {} tenancies with data, {queries} queries in {:.2} s, rules in {:.1} ms, total {:.2} s; {recommendations} recommendations, {insufficient} with insufficient data",
            round + 1,
            plan.recent,
            plan.last,
            back(&plan.months),
            back(&plan.history),
            answers.cpu.len(),
            queried.as_secs_f64(),
            (total - queried).as_secs_f64() * 1000.0,
            total.as_secs_f64(),
        );
        evaluations.push(serde_json::json!({
            "kind": name,
            "today": today.to_string(),
            "recent": plan.recent.to_string(),
            "months": back(&plan.months),
            "history": back(&plan.history),
            "tenanciesWithData": answers.cpu.len(),
            "queries": queries,
            "querySeconds": queried.as_secs_f64(),
            "rulesSeconds": (total - queried).as_secs_f64(),
            "totalSeconds": total.as_secs_f64(),
            "recommendations": recommendations,
            "insufficientData": insufficient,
        }));
        save(&results);
    }
    results["evaluations"] = serde_json::Value::from(evaluations);
    save(&results);
    let mut alone = serde_json::Map::new();
    // Each query alone, one after another: which of them the time is.
    let q = &config.queries;
    use govcloud::prometheus::Combine;
    for (kind, plan) in plans.into_iter().take(2) {
        for (name, query, first, combine) in [
            ("cpu", &q.cpu, plan.from("-"), Combine::Max),
            ("memory", &q.memory, plan.from("-"), Combine::Max),
            ("disk used", &q.disk_used, plan.used_from("-"), Combine::Sum),
            (
                "disk capacity",
                &q.disk_capacity,
                plan.from("-"),
                Combine::Sum,
            ),
        ] {
            let last = plan.last;
            let started = Instant::now();
            let daily = client.daily(query, first, last, &config, combine).await?;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "  {kind}, {name}: {} days ({first} .. {last}), {} series in {seconds:.2} s",
                (last - first).get_days() + 1,
                daily.len(),
            );
            alone.insert(
                format!("{kind}: {name}"),
                serde_json::json!({ "query": query, "first": first.to_string(), "seconds": seconds }),
            );
        }
    }
    results["eachAlone"] = serde_json::Value::from(alone);
    save(&results);
    println!("results: {}", file.display());
    prometheus.stop();
    Ok(())
}
