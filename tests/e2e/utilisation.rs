//! Utilisation and rightsizing (Art. 18) against a real Prometheus (Debian's
//! package) filled by `promtool` with months of KubeVirt metrics, and the real
//! control plane.

use std::collections::BTreeSet;

use govcloud::api::TenancyPhase;
use govcloud::api::utilisation::{Direction, Metric};
use govcloud::prometheus::{Client, PrometheusConfig, Queries, recording_rules};
use govcloud::rightsizing::GIB;
use govcloud_testenv::prometheus::{
    LocalPrometheus, Samples, Tenant, Vm, backfill, backfill_rules,
};
use jiff::civil::{Date, date};
use jiff::{SignedDuration, Timestamp};

use crate::support::lab::{Lab, WAIT};
use crate::support::{Ctx, TestResult, eventually};

const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";

fn day(at: Timestamp) -> Date {
    govcloud::calendar::local_date(at)
}

fn vm(
    name: &str,
    cpu: impl Fn(Timestamp) -> Option<f64> + Send + Sync + 'static,
    memory: impl Fn(Timestamp) -> Option<f64> + Send + Sync + 'static,
    disk: impl Fn(Timestamp) -> Option<f64> + Send + Sync + 'static,
) -> Vm {
    Vm {
        name: name.into(),
        vcpus: 2,
        memory_bytes: 8.0 * GIB,
        disk_capacity_bytes: 2048.0 * GIB,
        cpu: Box::new(cpu),
        memory: Box::new(memory),
        disk_used_bytes: Box::new(disk),
    }
}

/// Three tenancies' worth of metrics, 2026-07-01 .. 2026-11-14, every 15 minutes:
/// * `busy`: CPU at 80% for the last 30 days (18(1));
/// * `idle`: CPU at 10%, memory at 15% since August, a data disk of
///   2 TiB with 1 TiB used growing 1 GiB a day (18(2), 18(3), 18(4));
/// * `new`: ten days of data only (InsufficientData).
///
/// `busy` also has a memory spike at 23:45 Beijing on 2026-11-05, the
/// last 15-minute step of that day.
fn tenants() -> Vec<Tenant> {
    let spike = "2026-11-05T15:45:00Z".parse::<Timestamp>().unwrap();
    vec![
        Tenant {
            namespace: tenancy_namespace("busy"),
            phase: SignedDuration::ZERO,
            // A 1 TiB disk 68% full: neither above 75% nor 400 GiB free.
            vms: vec![Vm {
                disk_capacity_bytes: 1024.0 * GIB,
                ..vm(
                    "app-1",
                    |t| {
                        Some(if day(t) >= date(2026, 10, 15) {
                            0.80
                        } else {
                            0.50
                        })
                    },
                    move |t| Some(if t == spike { 0.95 } else { 0.40 }),
                    |_| Some(700.0 * GIB),
                )
            }],
        },
        Tenant {
            namespace: tenancy_namespace("idle"),
            phase: SignedDuration::ZERO,
            vms: vec![vm(
                "app-1",
                |_| Some(0.10),
                |_| Some(0.15),
                |t| Some((1000.0 + f64::from((day(t) - date(2026, 7, 1)).get_days())) * GIB),
            )],
        },
        Tenant {
            namespace: tenancy_namespace("new"),
            phase: SignedDuration::ZERO,
            vms: vec![vm(
                "app-1",
                |t| (day(t) >= date(2026, 11, 5)).then_some(0.5),
                |t| (day(t) >= date(2026, 11, 5)).then_some(0.5),
                |t| (day(t) >= date(2026, 11, 5)).then_some(10.0 * GIB),
            )],
        },
    ]
}

/// The namespace of unit finance's tenancy `name`, where its series are.
fn tenancy_namespace(name: &str) -> String {
    govcloud::provisioning::namespace_name("unit-finance", "finance", name)
}

/// The configuration the test data calls for: 15-minute samples.
fn prometheus_config(url: &str) -> PrometheusConfig {
    let mut config = PrometheusConfig {
        url: Some(url.into()),
        resolution_seconds: 900,
        ..PrometheusConfig::default()
    };
    // A rate needs two samples in its window: 30 minutes for 15-minute samples.
    config.queries.cpu = config.queries.cpu.replace("[5m]", "[30m]");
    config
}

/// One Prometheus for every test of the run, filled once (promtool takes
/// a while over months of samples).
struct Shared {
    dir: std::path::PathBuf,
    prometheus: LocalPrometheus,
}

static SHARED: tokio::sync::OnceCell<Shared> = tokio::sync::OnceCell::const_new();

async fn prometheus() -> &'static LocalPrometheus {
    &SHARED
        .get_or_init(|| async {
            let dir = tempfile::Builder::new()
                .prefix("govcloud-prometheus-")
                .tempdir()
                .unwrap_or_else(|e| panic!("{e}"))
                .keep();
            let started = std::time::Instant::now();
            let data = dir.clone();
            let samples = tokio::task::spawn_blocking(move || {
                backfill(&data, &tenants(), date(2026, 7, 1), date(2026, 11, 14), SignedDuration::from_mins(15), Samples::Raw)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("backfilling: {e}"));
            let prometheus = LocalPrometheus::start(&dir).await.unwrap_or_else(|e| panic!("{e}"));
            let blocks = prometheus.compacted(&dir).await.unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "prometheus: {samples} samples over 137 days backfilled, compacted to {blocks} blocks and served in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Shared { dir, prometheus }
        })
        .await
        .prometheus
}

/// Stops the shared Prometheus and removes its data, if a test started it.
pub fn shutdown() {
    if let Some(shared) = SHARED.get() {
        shared.prometheus.stop();
        let _ = std::fs::remove_dir_all(&shared.dir);
    }
}

pub async fn art18_daily_peaks_follow_beijing_days_in_a_real_prometheus(_: Ctx) -> TestResult {
    let prometheus = prometheus().await;
    let config = prometheus_config(prometheus.url());
    let client = Client::new(prometheus.url(), &config)?;
    let memory = client
        .daily(
            &config.queries.memory,
            date(2026, 11, 1),
            date(2026, 11, 10),
            &config,
            govcloud::prometheus::Combine::Max,
        )
        .await?;
    let busy = &memory[&tenancy_namespace("busy")];
    // The spike at 23:45 Beijing belongs to 5 November (in UTC it is 15:45 the same day,
    // but the next step, 00:00 Beijing, is 16:00 UTC on the 5th, and belongs to the 6th).
    assert_eq!(busy[&date(2026, 11, 5)], 0.95);
    assert_eq!(busy[&date(2026, 11, 6)], 0.40);
    assert_eq!(busy[&date(2026, 11, 4)], 0.40);
    assert_eq!(busy.len(), 10);
    let cpu = client
        .daily(
            &config.queries.cpu,
            date(2026, 11, 1),
            date(2026, 11, 3),
            &config,
            govcloud::prometheus::Combine::Max,
        )
        .await?;
    let idle = cpu[&tenancy_namespace("idle")][&date(2026, 11, 2)];
    assert!((idle - 0.10).abs() < 1e-6, "{idle}");
    assert_eq!(client.queries_sent(), 2);
    Ok(())
}

/// Two VMs of one namespace scraped every minute at 17 s and 43.25 s past
/// it, and a third namespace scraped on the minute:
/// * `edge` app-1 at 90% memory in its last sample of 3 November (23:59:17
///   Beijing), app-2 in its sample at 00:01:43.250 on 5 November;
/// * `midnight` at 90% in its sample at exactly 00:00 on 4 November.
///
/// Everything else at 40% memory and 30% CPU.
fn boundary_tenants() -> Vec<Tenant> {
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    let spiky = |spike: Timestamp| {
        vm(
            "",
            |_| Some(0.30),
            move |t| Some(if t == spike { 0.90 } else { 0.40 }),
            |_| Some(100.0 * GIB),
        )
    };
    vec![
        Tenant {
            namespace: tenancy_namespace("edge"),
            vms: vec![Vm {
                name: "app-1".into(),
                ..spiky(at("2026-11-03T23:59:17+08:00"))
            }],
            phase: SignedDuration::from_secs(17),
        },
        Tenant {
            namespace: tenancy_namespace("edge"),
            vms: vec![Vm {
                name: "app-2".into(),
                ..spiky(at("2026-11-05T00:01:43.250+08:00"))
            }],
            phase: SignedDuration::from_millis(43_250),
        },
        Tenant {
            namespace: tenancy_namespace("midnight"),
            vms: vec![Vm {
                name: "app-1".into(),
                ..spiky(at("2026-11-04T00:00:00+08:00"))
            }],
            phase: SignedDuration::ZERO,
        },
    ]
}

/// Through the default queries (expressions) and the default resolution: a
/// sample's value counts on its own Beijing day, whatever the scrapes'
/// offsets. Read five-minutely from the step (as before), the 23:59 spike
/// was the 4th's and the 00:01 one fell between two steps.
pub async fn art18_spikes_at_23_59_and_00_01_count_on_their_own_days_through_the_default_queries(
    _: Ctx,
) -> TestResult {
    let dir = tempfile::Builder::new()
        .prefix("govcloud-prometheus-boundary-")
        .tempdir()?;
    let data = dir.path().join("data");
    let (first, last) = (date(2026, 11, 1), date(2026, 11, 6));
    let into = data.clone();
    tokio::task::spawn_blocking(move || {
        backfill(
            &into,
            &boundary_tenants(),
            first,
            last,
            SignedDuration::from_mins(1),
            Samples::Raw,
        )
    })
    .await??;
    let prometheus = LocalPrometheus::start(&data).await?;
    let config = PrometheusConfig {
        url: Some(prometheus.url().into()),
        ..PrometheusConfig::default()
    };
    assert_eq!(config.resolution_seconds, 60, "the default resolution");
    let client = Client::new(prometheus.url(), &config)?;
    use govcloud::prometheus::Combine;
    let memory = client
        .daily(&config.queries.memory, first, last, &config, Combine::Max)
        .await?;
    let close = |got: f64, want: f64| (got - want).abs() < 1e-9;
    let edge = &memory[&tenancy_namespace("edge")];
    let mid = &memory[&tenancy_namespace("midnight")];
    for (day, want) in [(2, 0.40), (3, 0.65), (4, 0.40), (5, 0.65), (6, 0.40)] {
        let got = edge[&date(2026, 11, day)];
        assert!(close(got, want), "edge, {day} November: {got}, not {want}");
    }
    for (day, want) in [(3, 0.40), (4, 0.90), (5, 0.40)] {
        let got = mid[&date(2026, 11, day)];
        assert!(
            close(got, want),
            "midnight, {day} November: {got}, not {want}"
        );
    }
    let cpu = client
        .daily(&config.queries.cpu, first, last, &config, Combine::Max)
        .await?;
    for (day, got) in &cpu[&tenancy_namespace("edge")] {
        assert!((got - 0.30).abs() < 1e-6, "edge CPU on {day}: {got}");
    }
    assert_eq!(client.queries_sent(), 2);
    prometheus.stop();

    // The same data, too large for one query: asked for half the days at
    // a time, the same answer.
    let limited = LocalPrometheus::start_limited(&data, 60_000).await?;
    let config = PrometheusConfig {
        url: Some(limited.url().into()),
        ..config
    };
    let client = Client::new(limited.url(), &config)?;
    let halves = client
        .daily(&config.queries.memory, first, last, &config, Combine::Max)
        .await?;
    eprintln!(
        "a week of daily peaks under --query.max-samples=60000: {} queries",
        client.queries_sent()
    );
    assert!(client.queries_sent() > 1, "the limit did not bite");
    assert_eq!(halves, memory);
    limited.stop();
    Ok(())
}

/// The recording rules the operator prints, given history by promtool from
/// the raw samples, give the same daily peaks as the raw queries: the cheap
/// way to query at scale answers what the expensive one does.
pub async fn art18_recorded_series_give_the_daily_peaks_of_the_raw_queries(_: Ctx) -> TestResult {
    let raw = prometheus().await;
    let config = prometheus_config(raw.url());
    let dir = tempfile::Builder::new()
        .prefix("govcloud-prometheus-recorded-")
        .tempdir()?;
    // Beijing 1 November 00:00 to 10 November 00:00.
    let (start, end) = (
        govcloud::calendar::start_of_day(date(2026, 11, 1)),
        govcloud::calendar::start_of_day(date(2026, 11, 10)),
    );
    let (data, url, rules) = (
        dir.path().to_owned(),
        raw.url().to_owned(),
        recording_rules(&config.queries, 60),
    );
    // Evaluated every minute, off the samples' grid (Prometheus offsets a
    // group's evaluations): each sees the last sample within the 5-minute
    // lookback.
    tokio::task::spawn_blocking(move || {
        backfill_rules(
            &data,
            &url,
            &rules,
            start,
            end,
            SignedDuration::from_mins(1),
        )
    })
    .await??;
    let recorded = LocalPrometheus::start(dir.path()).await?;
    let raw_client = Client::new(raw.url(), &config)?;
    let recorded_client = Client::new(recorded.url(), &config)?;
    let names = Queries::recorded();
    let (first, last) = (date(2026, 11, 1), date(2026, 11, 9));
    use govcloud::prometheus::Combine;
    for (query, name, combine) in [
        (&config.queries.cpu, &names.cpu, Combine::Max),
        (&config.queries.memory, &names.memory, Combine::Max),
        (&config.queries.disk_used, &names.disk_used, Combine::Sum),
        (
            &config.queries.disk_capacity,
            &names.disk_capacity,
            Combine::Sum,
        ),
    ] {
        let want = raw_client
            .daily(query, first, last, &config, combine)
            .await?;
        let got = recorded_client
            .daily(name, first, last, &config, combine)
            .await?;
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(
            want[&tenancy_namespace("new")].len(),
            5,
            "{name}: 5 to 9 November"
        );
        for (ns, days) in &want {
            assert_eq!(
                days.keys().collect::<Vec<_>>(),
                got[ns].keys().collect::<Vec<_>>()
            );
            for (day, value) in days {
                let other = got[ns][day];
                assert!(
                    (value - other).abs() <= 1e-9 * value.abs().max(1.0),
                    "{name} {ns} {day}: raw {value}, recorded {other}"
                );
            }
        }
    }
    // The spike at 23:45 Beijing is in the recorded series too, on its day.
    let memory = recorded_client
        .daily(&names.memory, first, last, &config, Combine::Max)
        .await?;
    assert_eq!(memory[&tenancy_namespace("busy")][&date(2026, 11, 5)], 0.95);
    assert_eq!(memory[&tenancy_namespace("busy")][&date(2026, 11, 6)], 0.40);
    // A read back for a few tenancies names them: Prometheus answers for
    // those namespaces alone, with the same daily peaks.
    let busy = tenancy_namespace("busy");
    let only = govcloud::rightsizing::Namespaces::Only([busy.clone()].into());
    let named = govcloud::prometheus::naming(&names.memory, &config.namespace_label, &only);
    let alone = recorded_client
        .daily(&named, first, last, &config, Combine::Max)
        .await?;
    assert_eq!(alone.keys().collect::<Vec<_>>(), [&busy], "{named}");
    assert_eq!(alone[&busy], memory[&busy]);
    recorded.stop();
    Ok(())
}

pub async fn art18_each_rule_recommends_on_a_tenancy_from_four_queries(_: Ctx) -> TestResult {
    let prometheus = prometheus().await;
    let config = govcloud::config::Config {
        prometheus: prometheus_config(prometheus.url()),
        ..Default::default()
    };
    let mut lab = Lab::start_with("2026-10-14T02:00:00Z", config).await;
    let unit = lab.unit("finance").await;
    let ns = unit.namespace.clone();
    for name in ["busy", "idle", "new"] {
        lab.file(&unit, OA, name, |_| {}).await;
        lab.approve(&ns, name).await;
        lab.deliver(&ns, name, "finance").await;
        // In use during the trial, so in formal operation after it.
        let tns = govcloud::provisioning::namespace_name("unit-finance", "finance", name);
        lab.kubevirt_runs(&tns, "app-1", true).await?;
        lab.tenancy_where(&ns, name, "usage", |t| {
            t.status.as_ref().is_some_and(|s| s.usage.is_some())
        })
        .await;
    }
    // The 15th of November: the last 30 days and August to October complete.
    let (queries, evaluations) = (
        lab.metrics.prometheus_queries_sent(),
        lab.metrics.evaluations(),
    );
    lab.set_clock("2026-11-15T02:00:00Z");
    let evaluated = |name: &'static str| {
        lab.tenancy_where(&ns, name, "the evaluation of 15 November", |t| {
            t.status
                .as_ref()
                .and_then(|s| s.utilisation.as_ref())
                .is_some_and(|u| u.evaluated_at.0.to_string() == "2026-11-15T02:00:00Z")
        })
    };
    let busy = evaluated("busy").await;
    let idle = evaluated("idle").await.status.unwrap();
    let new = evaluated("new").await.status.unwrap();
    // One evaluation may still have been under way at the start of the
    // trial clock. However many ran, each asked for all three tenancies
    // together: each series over the last 30 days and, before them, what
    // the statuses do not carry yet (the complete months of the four
    // series, the year of bytes used), at most nine queries.
    let sent = lab.metrics.prometheus_queries_sent() - queries;
    let ran = lab.metrics.evaluations() - evaluations;
    assert!(ran >= 1);
    assert!(
        (4 * ran..=9 * ran).contains(&sent),
        "one evaluation of every tenancy takes 4 to 9 range queries: {sent} for {ran}"
    );

    let status = busy.status.unwrap();
    let rules: BTreeSet<(String, Direction, Metric)> = status
        .recommendations
        .iter()
        .map(|r| (r.rule.clone(), r.direction, r.metric))
        .collect();
    assert_eq!(
        rules,
        BTreeSet::from([("art18-1".into(), Direction::ScaleUp, Metric::Cpu)]),
        "{:#?}",
        status.utilisation
    );
    let r = &status.recommendations[0];
    assert!(r.figures.contains("80% (> 75%)"), "{}", r.figures);
    assert_eq!(
        (r.current.as_str(), r.suggested.as_str()),
        ("16 vCPU", "22 vCPU")
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "ScaleUpRecommended" && c.status == "True")
    );

    let rules = |s: &govcloud::api::tenancy::TenancyStatus| -> BTreeSet<String> {
        s.recommendations.iter().map(|r| r.rule.clone()).collect()
    };
    let scale_downs = BTreeSet::from(["art18-2", "art18-3", "art18-4"].map(String::from));
    assert_eq!(rules(&idle), scale_downs);
    let idle_months = idle
        .utilisation
        .as_ref()
        .unwrap()
        .summary
        .cpu
        .months
        .clone();
    let months: Vec<&str> = idle_months.iter().map(|m| m.month.as_str()).collect();
    assert_eq!(months, ["2026-08", "2026-09", "2026-10"]);
    let disk = idle
        .utilisation
        .as_ref()
        .unwrap()
        .summary
        .disk
        .clone()
        .unwrap();
    // 1136 GiB of 2 TiB used on 14 November, growing 1 GiB a day: 912 GiB free,
    // 547 GiB beyond a year's growth.
    assert_eq!(
        (
            disk.used_gib,
            disk.year_growth_gib,
            disk.growth_method.as_str()
        ),
        (1136.0, 365.0, "least-squares")
    );
    assert_eq!(disk.free_beyond_growth_gib, 547.0);

    assert!(
        new.recommendations.is_empty(),
        "no guess on ten days of data: {:?}",
        new.recommendations
    );
    let insufficient = new
        .conditions
        .iter()
        .find(|c| c.type_ == "InsufficientData")
        .unwrap();
    assert_eq!(insufficient.status, "True");
    assert!(
        insufficient.message.contains("art18-1"),
        "{}",
        insufficient.message
    );

    let events = lab.reasons_with(&ns, "busy", "ScaleUpRecommended").await;
    assert!(
        events.contains(&"ScaleUpRecommended".to_owned()),
        "{events:?}"
    );

    // The next day's evaluation changes figures, not the outcome: no new event.
    // The months and the growth line are carried in the statuses: it reads
    // the last 30 days only, four queries.
    assert!(idle_months.iter().all(|m| m.complete), "{idle_months:?}");
    let sent = lab.metrics.prometheus_queries_sent();
    lab.advance_days(1);
    eventually("the next evaluation", WAIT, || async {
        let t = lab.tenancies(&ns).get("busy").await.ok()?;
        (t.status?.utilisation?.evaluated_at.0.to_string() == "2026-11-16T02:00:00Z").then_some(())
    })
    .await;
    assert_eq!(lab.metrics.prometheus_queries_sent() - sent, 4);
    let idle_next = lab.tenancies(&ns).get("idle").await?.status.unwrap();
    assert_eq!(rules(&idle_next), scale_downs);
    let summary = idle_next.utilisation.unwrap().summary;
    assert_eq!(
        summary.cpu.months, idle_months,
        "the months are carried as they were"
    );
    let disk = summary.disk.unwrap();
    // The samples end on 14 November: the line from the carried sums is the
    // line of the history read the day before.
    assert_eq!(
        (
            disk.used_gib,
            disk.year_growth_gib,
            disk.growth_method.as_str()
        ),
        (1136.0, 365.0, "least-squares")
    );
    let again: Vec<String> = lab
        .events(&ns, "busy")
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(
        again.iter().filter(|r| *r == "ScaleUpRecommended").count(),
        1,
        "the recommendation is announced once: {again:?}"
    );
    assert_eq!(
        lab.tenancies(&ns).get("busy").await?.status.unwrap().phase,
        Some(TenancyPhase::Active)
    );
    Ok(())
}

/// The MetricsAvailable condition of a tenancy: (status, reason).
fn metrics_available(t: &govcloud::api::Tenancy) -> Option<(String, String)> {
    t.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "MetricsAvailable")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

pub async fn art18_an_unreachable_prometheus_keeps_the_last_recommendations_without_flapping(
    _: Ctx,
) -> TestResult {
    let prometheus = prometheus().await;
    // The operator reaches Prometheus through a gate this test can shut.
    let upstream = prometheus.url().trim_start_matches("http://").to_owned();
    let mut gate = crate::support::gate::Gate::open_to(&upstream).await;
    let config = govcloud::config::Config {
        prometheus: prometheus_config(&gate.url()),
        ..Default::default()
    };
    let mut lab = Lab::start_with("2026-10-14T02:00:00Z", config).await;
    let unit = lab.unit("finance").await;
    let ns = unit.namespace.clone();
    lab.file(&unit, OA, "busy", |_| {}).await;
    lab.approve(&ns, "busy").await;
    lab.deliver(&ns, "busy", "finance").await;
    let tns = tenancy_namespace("busy");
    lab.kubevirt_runs(&tns, "app-1", true).await?;
    lab.tenancy_where(&ns, "busy", "usage", |t| {
        t.status.as_ref().is_some_and(|s| s.usage.is_some())
    })
    .await;
    lab.set_clock("2026-11-15T02:00:00Z");
    let known = lab
        .tenancy_where(&ns, "busy", "a recommendation", |t| {
            t.status
                .as_ref()
                .is_some_and(|s| !s.recommendations.is_empty())
                && metrics_available(t).is_some_and(|(s, _)| s == "True")
        })
        .await
        .status
        .unwrap_or_default();

    // Prometheus cannot be reached at the next day's evaluation.
    gate.shut().await;
    lab.advance_days(1);
    let down = lab
        .tenancy_where(&ns, "busy", "MetricsAvailable=False", |t| {
            metrics_available(t) == Some(("False".into(), "Unreachable".into()))
        })
        .await;
    let status = down.status.clone().unwrap_or_default();
    assert_eq!(
        status.recommendations, known.recommendations,
        "the last recommendations stand"
    );
    assert_eq!(
        status.utilisation, known.utilisation,
        "the last figures stand"
    );
    let scale_up = |s: &govcloud::api::tenancy::TenancyStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "ScaleUpRecommended")
            .map(|c| c.status.clone())
    };
    assert_eq!(scale_up(&status), Some("True".into()));

    // It tries again every ten minutes; each failure changes nothing.
    let version = down.metadata.resource_version.clone();
    let evaluations = lab.metrics.evaluations();
    for _ in 0..4 {
        lab.clock.advance(SignedDuration::from_mins(11));
        let before = lab.metrics.evaluations();
        eventually("a retry", WAIT, || async {
            (lab.metrics.evaluations() > before).then_some(())
        })
        .await;
    }
    assert!(lab.metrics.evaluations() - evaluations >= 4);
    let still = lab.tenancies(&ns).get("busy").await?;
    assert_eq!(
        still.metadata.resource_version,
        version,
        "a failed retry wrote the tenancy: {:#?} then {:#?}",
        down.status.map(|s| s.conditions),
        still.status.map(|s| s.conditions)
    );
    let unavailable = |events: &[(String, String)]| {
        events
            .iter()
            .filter(|(r, _)| r == "MetricsUnavailable")
            .count()
    };
    let events = lab.events(&ns, "busy").await;
    assert_eq!(unavailable(&events), 1, "announced once: {events:?}");
    let (_, message) = events
        .iter()
        .find(|(r, _)| r == "MetricsUnavailable")
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("the last recommendations stand"),
        "{message}"
    );

    // Back: the next retry evaluates again, and says so.
    gate.open();
    lab.clock.advance(SignedDuration::from_mins(11));
    let up = lab
        .tenancy_where(&ns, "busy", "MetricsAvailable=True again", |t| {
            metrics_available(t).is_some_and(|(s, _)| s == "True")
        })
        .await
        .status
        .unwrap_or_default();
    assert!(
        up.utilisation.as_ref().map(|u| u.evaluated_at.0)
            > known.utilisation.as_ref().map(|u| u.evaluated_at.0)
    );
    assert_eq!(scale_up(&up), Some("True".into()));
    assert_eq!(unavailable(&lab.events(&ns, "busy").await), 1);
    Ok(())
}
