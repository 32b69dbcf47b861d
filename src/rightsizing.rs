//! The four rightsizing rules of Art. 18, as `regulation/MAP.md` decides them,
//! over daily peaks per Asia/Shanghai day. Pure: the series and `today` are
//! arguments.
//!
//! * 18(1): any of CPU, memory, data disk: the mean of the daily peaks of the
//!   last 30 days above 75% -> scale up;
//! * 18(2): CPU: in **each** of the last 3 complete months, the mean daily peak
//!   under 15% and the largest daily peak under 50% -> scale down;
//! * 18(3): memory: the same with 20% and 50%;
//! * 18(4): data disk: free space beyond one year's growth above 400 GiB ->
//!   scale down. One year's growth is used bytes now minus a year ago when that
//!   history exists, otherwise a least-squares line over at least 30 days
//!   extrapolated to 365 days; never negative.
//!
//! Days without data do not count; a window with fewer than 20 days of data
//! gives `InsufficientData` for that rule, never a guess.

use std::collections::BTreeMap;

use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::api::Resources;
use crate::api::utilisation::{
    Direction, DiskSummary, Insufficient, Metric, MetricSummary, Month, Recommendation, Summary,
};

pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Thresholds and windows; the defaults are the measures'.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Thresholds {
    /// 18(1): mean of daily peaks above which to scale up.
    pub scale_up: f64,
    /// 18(1): the window, in days.
    pub scale_up_days: u32,
    /// 18(2): CPU monthly mean peak and monthly peak below which to scale down.
    pub cpu_mean_peak: f64,
    pub cpu_peak: f64,
    /// 18(3): the same for memory.
    pub memory_mean_peak: f64,
    pub memory_peak: f64,
    /// 18(2)/(3): how many complete months must each hold.
    pub months: u32,
    /// 18(4): free data disk beyond one year's growth above which to scale down.
    #[serde(rename = "diskFreeGiB")]
    pub disk_free_gib: f64,
    /// Fewer days with data than this in a window: `InsufficientData`.
    pub min_days: u32,
    /// 18(4): the least history for a growth line, in days.
    pub min_growth_days: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            scale_up: 0.75,
            scale_up_days: 30,
            cpu_mean_peak: 0.15,
            cpu_peak: 0.50,
            memory_mean_peak: 0.20,
            memory_peak: 0.50,
            months: 3,
            disk_free_gib: 400.0,
            min_days: 20,
            min_growth_days: 30,
        }
    }
}

/// Daily peaks by Asia/Shanghai day.
pub type Daily = BTreeMap<Date, f64>;

/// What Prometheus says about one tenancy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Daily peak of CPU utilisation (0..1 of the allocated vCPUs).
    pub cpu: Daily,
    /// Daily peak of memory utilisation (0..1).
    pub memory: Daily,
    /// Daily peak of data-disk utilisation (0..1).
    pub disk: Daily,
    /// Daily peak of data-disk bytes used.
    pub disk_used: Daily,
    /// Data-disk capacity in bytes, as last reported.
    pub disk_capacity: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    pub summary: Summary,
    pub recommendations: Vec<Recommendation>,
    pub insufficient: Vec<Insufficient>,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A fraction as the percentage shown, to a hundredth of a point (the rules
/// compare the fraction itself, unrounded).
fn pct(x: f64) -> f64 {
    (x * 10_000.0).round() / 100.0
}

/// The days of `series` within `[from, to]`; none when the window is empty
/// (a zero-day window ends before it starts).
fn window(series: &Daily, from: Date, to: Date) -> Vec<f64> {
    if from > to {
        return Vec::new();
    }
    series.range(from..=to).map(|(_, v)| *v).collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::MIN, f64::max)
}

/// The first day of the month `n` months before `day`'s month.
fn month_start(day: Date, back: i32) -> Date {
    let first = day.first_of_month();
    first.checked_sub((back as i64).months()).unwrap_or(first)
}

/// One metric's figures as fractions, unrounded: what the rules compare.
/// The percentages shown are rounded from these.
#[derive(Debug, Clone, Default)]
struct Exact {
    last30_mean: Option<f64>,
    /// (mean of the daily peaks, largest daily peak) of each month counted,
    /// oldest first; `None` for a month without data.
    months: Vec<Option<(f64, f64)>>,
}

fn summarise(series: &Daily, today: Date, t: &Thresholds) -> (MetricSummary, Exact) {
    let yesterday = today.yesterday().unwrap_or(today);
    let from = today
        .checked_sub((t.scale_up_days as i64).days())
        .unwrap_or(today);
    let last = window(series, from, yesterday);
    let mut exact = Exact {
        last30_mean: (!last.is_empty()).then(|| mean(&last)),
        months: Vec::new(),
    };
    let months = (1..=t.months as i32)
        .rev()
        .map(|back| {
            let start = month_start(today, back);
            let end = start.last_of_month();
            let days = window(series, start, end);
            let figures = (!days.is_empty()).then(|| (mean(&days), max(&days)));
            exact.months.push(figures);
            let (mean_peak, peak) = figures.unwrap_or((0.0, 0.0));
            Month {
                month: format!("{:04}-{:02}", start.year(), start.month()),
                days_with_data: days.len() as u32,
                mean_peak_percent: pct(mean_peak),
                peak_percent: pct(peak),
            }
        })
        .collect();
    let summary = MetricSummary {
        last30_mean_peak_percent: exact.last30_mean.map(pct),
        last30_days_with_data: last.len() as u32,
        months,
    };
    (summary, exact)
}

/// The least-squares slope of `series` in units per day.
fn slope(series: &[(f64, f64)]) -> f64 {
    let n = series.len() as f64;
    let mx = series.iter().map(|p| p.0).sum::<f64>() / n;
    let my = series.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = series.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = series.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// One year's growth of `used` (bytes) up to `latest`: year-on-year when a
/// value from 365 days before exists (within a week), otherwise a line.
fn year_growth(used: &Daily, latest: Date, t: &Thresholds) -> Option<(f64, &'static str)> {
    let now = *used.get(&latest)?;
    let year_ago = latest.checked_sub(365.days()).ok()?;
    let week_before = year_ago.checked_sub(7.days()).ok()?;
    if let Some((_, then)) = used.range(week_before..=year_ago).next_back() {
        return Some(((now - then).max(0.0), "year-on-year"));
    }
    let first = *used.keys().next()?;
    if (latest - first).get_days() + 1 < t.min_growth_days as i32 {
        return None;
    }
    let points: Vec<(f64, f64)> = used
        .iter()
        .map(|(d, v)| (f64::from((*d - first).get_days()), *v))
        .collect();
    if points.len() < t.min_growth_days as usize {
        return None;
    }
    Some(((slope(&points) * 365.0).max(0.0), "least-squares"))
}

/// Sizes of a tenancy's allocation, for suggestions.
fn totals(a: &Resources) -> (u32, u32) {
    let sum = |per: fn(&crate::api::VmGroup) -> u32| {
        a.vm_groups.iter().fold(0u32, |n, g| {
            n.saturating_add(g.count.saturating_mul(per(g)))
        })
    };
    (sum(|g| g.vcpu), sum(|g| g.memory_gib))
}

/// Evaluates the four rules for one tenancy on `today` (the days counted end
/// yesterday; complete months end before today's month).
pub fn evaluate(usage: &Usage, allocation: &Resources, today: Date, t: &Thresholds) -> Evaluation {
    let (cpu, cpu_exact) = summarise(&usage.cpu, today, t);
    let (memory, memory_exact) = summarise(&usage.memory, today, t);
    let (data_disk, disk_exact) = summarise(&usage.disk, today, t);
    let (vcpu, mem_gib) = totals(allocation);
    let measured = [
        Measured {
            metric: Metric::Cpu,
            summary: cpu.clone(),
            exact: cpu_exact,
            size: f64::from(vcpu),
            unit: "vCPU",
        },
        Measured {
            metric: Metric::Memory,
            summary: memory.clone(),
            exact: memory_exact,
            size: f64::from(mem_gib),
            unit: "GiB of memory",
        },
        Measured {
            metric: Metric::DataDisk,
            summary: data_disk.clone(),
            exact: disk_exact,
            size: usage.disk_capacity.unwrap_or(0.0) / GIB,
            unit: "GiB of data disk",
        },
    ];
    let mut e = Evaluation {
        summary: Summary {
            cpu,
            memory,
            data_disk,
            disk: None,
        },
        ..Evaluation::default()
    };
    rule_18_1(&mut e, &measured, t);
    let [cpu, memory, _] = &measured;
    rule_18_2_3(&mut e, "art18-2", cpu, t.cpu_mean_peak, t.cpu_peak, t);
    rule_18_2_3(
        &mut e,
        "art18-3",
        memory,
        t.memory_mean_peak,
        t.memory_peak,
        t,
    );
    rule_18_4(&mut e, usage, t);
    e
}

/// One metric's figures, and the size it is of.
struct Measured {
    metric: Metric,
    summary: MetricSummary,
    exact: Exact,
    size: f64,
    unit: &'static str,
}

/// 18(1): the last 30 days, compared unrounded.
fn rule_18_1(e: &mut Evaluation, measured: &[Measured], t: &Thresholds) {
    for m in measured {
        let (metric, summary, exact, size, unit) = (m.metric, &m.summary, &m.exact, m.size, m.unit);
        match (exact.last30_mean, summary.last30_mean_peak_percent) {
            (Some(mean), Some(m)) if summary.last30_days_with_data >= t.min_days => {
                if mean > t.scale_up {
                    // Enough that the mean peak would come to about 60%.
                    let suggested = (size * mean / 0.60).ceil();
                    e.recommendations.push(Recommendation {
                        rule: "art18-1".into(),
                        direction: Direction::ScaleUp,
                        metric,
                        figures: format!(
                            "mean of daily peaks over the last {} days {m}% (> {}%), {} days with data",
                            t.scale_up_days,
                            pct(t.scale_up),
                            summary.last30_days_with_data
                        ),
                        current: format!("{} {unit}", size.round()),
                        suggested: format!("{suggested} {unit}"),
                    });
                }
            }
            _ => e.insufficient.push(Insufficient {
                rule: "art18-1".into(),
                metric,
                reason: format!(
                    "{} days with data in the last {} (at least {} needed)",
                    summary.last30_days_with_data, t.scale_up_days, t.min_days
                ),
            }),
        }
    }
}

/// 18(2), 18(3): each of the last complete months under both bounds.
fn rule_18_2_3(
    e: &mut Evaluation,
    rule: &str,
    m: &Measured,
    mean_limit: f64,
    peak_limit: f64,
    t: &Thresholds,
) {
    let (metric, summary, exact, size, unit) = (m.metric, &m.summary, &m.exact, m.size, m.unit);
    let short: Vec<&Month> = summary
        .months
        .iter()
        .filter(|m| m.days_with_data < t.min_days)
        .collect();
    if !short.is_empty() {
        e.insufficient.push(Insufficient {
            rule: rule.into(),
            metric,
            reason: format!(
                "too few days with data in {} (at least {} a month needed)",
                short
                    .iter()
                    .map(|m| format!("{} ({})", m.month, m.days_with_data))
                    .collect::<Vec<_>>()
                    .join(", "),
                t.min_days
            ),
        });
        return;
    }
    // Compared unrounded: 14.96% is under 15%, though shown as 15.0%.
    let low = exact
        .months
        .iter()
        .all(|m| m.is_some_and(|(mean, peak)| mean < mean_limit && peak < peak_limit));
    if low && !exact.months.is_empty() {
        let highest = exact
            .months
            .iter()
            .flatten()
            .map(|(_, peak)| *peak)
            .fold(0.0, f64::max);
        // Enough that the highest peak would stay under the peak bound.
        let suggested = (size * highest / peak_limit).ceil().max(1.0);
        let figures = summary
            .months
            .iter()
            .map(|m| {
                format!(
                    "{}: mean peak {}%, peak {}%",
                    m.month, m.mean_peak_percent, m.peak_percent
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        e.recommendations.push(Recommendation {
            rule: rule.into(),
            direction: Direction::ScaleDown,
            metric,
            figures: format!(
                "{figures} (each month under {}% and {}%)",
                pct(mean_limit),
                pct(peak_limit)
            ),
            current: format!("{} {unit}", size.round()),
            suggested: format!("{suggested} {unit}"),
        });
    }
}

/// 18(4): free space beyond a year's growth.
fn rule_18_4(e: &mut Evaluation, usage: &Usage, t: &Thresholds) {
    let latest = usage.disk_used.keys().next_back().copied();
    match (latest, usage.disk_capacity) {
        (Some(latest), Some(capacity)) => match year_growth(&usage.disk_used, latest, t) {
            Some((growth, method)) => {
                let used = usage.disk_used[&latest];
                let free_beyond = capacity - used - growth;
                e.summary.disk = Some(DiskSummary {
                    used_gib: round1(used / GIB),
                    capacity_gib: round1(capacity / GIB),
                    year_growth_gib: round1(growth / GIB),
                    growth_method: method.into(),
                    free_beyond_growth_gib: round1(free_beyond / GIB),
                });
                if free_beyond > t.disk_free_gib * GIB {
                    let suggested = ((used + growth) / GIB + t.disk_free_gib).ceil();
                    e.recommendations.push(Recommendation {
                        rule: "art18-4".into(),
                        direction: Direction::ScaleDown,
                        metric: Metric::DataDisk,
                        figures: format!(
                            "free {} GiB beyond one year's growth ({} GiB, {method}) > {} GiB",
                            round1(free_beyond / GIB),
                            round1(growth / GIB),
                            t.disk_free_gib
                        ),
                        current: format!("{} GiB of data disk", round1(capacity / GIB)),
                        suggested: format!(
                            "{suggested} GiB of data disk (a volume shrinks only by moving its data)"
                        ),
                    });
                }
            }
            None => e.insufficient.push(Insufficient {
                rule: "art18-4".into(),
                metric: Metric::DataDisk,
                reason: format!(
                    "neither a value from a year ago nor {} days of history for a growth line",
                    t.min_growth_days
                ),
            }),
        },
        _ => e.insufficient.push(Insufficient {
            rule: "art18-4".into(),
            metric: Metric::DataDisk,
            reason: "no data-disk usage or capacity reported".into(),
        }),
    }
}

/// Art. 20 (1): whether usage stayed low (a CPU or memory scale-down rule
/// holds) in every month counted, all of which began after the last applied
/// scale-down, and no case was opened since that scale-down.
pub fn low_after_scale_down(
    e: &Evaluation,
    scaled_down: Option<jiff::Timestamp>,
    case_opened: Option<jiff::Timestamp>,
) -> bool {
    let low = e.recommendations.iter().any(|r| {
        r.direction == Direction::ScaleDown && (r.rule == "art18-2" || r.rule == "art18-3")
    });
    let first_month = e.summary.cpu.months.first().and_then(|m| {
        let (y, mo) = m.month.split_once('-')?;
        Date::new(y.parse().ok()?, mo.parse().ok()?, 1).ok()
    });
    match (low, scaled_down, first_month) {
        (true, Some(at), Some(first)) => {
            crate::calendar::start_of_day(first) > at && case_opened.is_none_or(|c| c < at)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn allocation() -> Resources {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/samples/20-cloudresourcerequest-oa.yaml"
        ))
        .unwrap();
        let crr: crate::api::CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        crr.spec.resources
    }

    /// `value(day)` for every day from `from` to `to`.
    fn days(from: Date, to: Date, value: impl Fn(Date) -> Option<f64>) -> Daily {
        let mut out = Daily::new();
        let mut d = from;
        while d <= to {
            if let Some(v) = value(d) {
                out.insert(d, v);
            }
            d = d.tomorrow().unwrap();
        }
        out
    }

    fn rules(e: &Evaluation) -> Vec<(&str, Metric)> {
        e.recommendations
            .iter()
            .map(|r| (r.rule.as_str(), r.metric))
            .collect()
    }

    const TODAY: Date = date(2026, 11, 15);

    #[test]
    fn art18_1_scales_up_above_75_percent_and_not_at_74_9() {
        let t = Thresholds::default();
        let from = date(2026, 10, 16);
        let to = date(2026, 11, 14);
        let at = |v: f64| Usage {
            cpu: days(from, to, |_| Some(v)),
            ..Usage::default()
        };
        let e = evaluate(&at(0.751), &allocation(), TODAY, &t);
        assert_eq!(rules(&e), [("art18-1", Metric::Cpu)]);
        let r = &e.recommendations[0];
        assert_eq!(r.direction, Direction::ScaleUp);
        assert!(
            r.figures.contains("75.1% (> 75%), 30 days with data"),
            "{}",
            r.figures
        );
        // 16 vCPU at a 75.1% mean peak -> 21 vCPU for about 60%.
        assert_eq!(
            (r.current.as_str(), r.suggested.as_str()),
            ("16 vCPU", "21 vCPU")
        );
        assert!(
            evaluate(&at(0.749), &allocation(), TODAY, &t)
                .recommendations
                .is_empty()
        );
    }

    /// Every day of the three months before TODAY at `value`, and the 15th
    /// of each at `peak`.
    fn months(value: f64, peak: f64) -> Daily {
        days(date(2026, 8, 1), date(2026, 11, 14), |d| {
            Some(if d.day() == 15 { peak } else { value })
        })
    }

    #[test]
    fn art18_thresholds_are_compared_on_exact_values_0_04_points_either_side() {
        let t = Thresholds::default();
        let fires = |usage: Usage, rule: &str, metric: Metric| {
            evaluate(&usage, &allocation(), TODAY, &t)
                .recommendations
                .iter()
                .any(|r| r.rule == rule && r.metric == metric)
        };
        let busy = months(0.60, 0.60);
        // 18(1): above 75% over the last 30 days.
        let cpu = |v: f64| Usage {
            cpu: months(v, v),
            memory: busy.clone(),
            ..Usage::default()
        };
        assert!(fires(cpu(0.7504), "art18-1", Metric::Cpu), "75.04%");
        assert!(!fires(cpu(0.7496), "art18-1", Metric::Cpu), "74.96%");
        let e = evaluate(&cpu(0.7504), &allocation(), TODAY, &t);
        let r = e
            .recommendations
            .iter()
            .find(|r| r.rule == "art18-1")
            .unwrap();
        assert!(r.figures.contains("75.04% (> 75%)"), "{}", r.figures);
        // 18(2): CPU under 15% mean peak and under 50% peak in each month.
        let cpu_low = |value: f64, peak: f64| Usage {
            cpu: months(value, peak),
            memory: busy.clone(),
            ..Usage::default()
        };
        assert!(
            fires(cpu_low(0.1496, 0.1496), "art18-2", Metric::Cpu),
            "14.96%"
        );
        assert!(
            !fires(cpu_low(0.1504, 0.1504), "art18-2", Metric::Cpu),
            "15.04%"
        );
        assert!(
            fires(cpu_low(0.05, 0.4996), "art18-2", Metric::Cpu),
            "peak 49.96%"
        );
        assert!(
            !fires(cpu_low(0.05, 0.5004), "art18-2", Metric::Cpu),
            "peak 50.04%"
        );
        let e = evaluate(&cpu_low(0.1496, 0.1496), &allocation(), TODAY, &t);
        let r = e
            .recommendations
            .iter()
            .find(|r| r.rule == "art18-2")
            .unwrap();
        assert!(r.figures.contains("mean peak 14.96%"), "{}", r.figures);
        // 18(3): memory under 20% mean peak and under 50% peak.
        let memory_low = |value: f64, peak: f64| Usage {
            cpu: busy.clone(),
            memory: months(value, peak),
            ..Usage::default()
        };
        assert!(
            fires(memory_low(0.1996, 0.1996), "art18-3", Metric::Memory),
            "19.96%"
        );
        assert!(
            !fires(memory_low(0.2004, 0.2004), "art18-3", Metric::Memory),
            "20.04%"
        );
        assert!(
            fires(memory_low(0.05, 0.4996), "art18-3", Metric::Memory),
            "peak 49.96%"
        );
        assert!(
            !fires(memory_low(0.05, 0.5004), "art18-3", Metric::Memory),
            "peak 50.04%"
        );
    }

    /// A daily peak: anywhere, or within a few hundredths of a point of a
    /// threshold, or missing.
    fn peak() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            3 => (0.0f64..1.0).prop_map(Some),
            3 => (prop_oneof![Just(0.15), Just(0.20), Just(0.50), Just(0.75)], -0.0005f64..0.0005)
                .prop_map(|(t, d)| Some(t + d)),
            1 => Just(None),
        ]
    }

    /// The rules read directly off the days: which fire.
    fn by_the_rules(usage: &Usage, t: &Thresholds) -> Vec<(String, Metric)> {
        let in_range = |s: &Daily, from: Date, to: Date| -> Vec<f64> {
            s.iter()
                .filter(|(d, _)| **d >= from && **d <= to)
                .map(|(_, v)| *v)
                .collect()
        };
        let mut fired = Vec::new();
        for (metric, s) in [(Metric::Cpu, &usage.cpu), (Metric::Memory, &usage.memory)] {
            let last = in_range(s, date(2026, 10, 16), date(2026, 11, 14));
            if last.len() >= 20 && last.iter().sum::<f64>() / last.len() as f64 > t.scale_up {
                fired.push(("art18-1".to_owned(), metric));
            }
        }
        for (rule, metric, s, mean_limit, peak_limit) in [
            (
                "art18-2",
                Metric::Cpu,
                &usage.cpu,
                t.cpu_mean_peak,
                t.cpu_peak,
            ),
            (
                "art18-3",
                Metric::Memory,
                &usage.memory,
                t.memory_mean_peak,
                t.memory_peak,
            ),
        ] {
            let low = [(8, 31), (9, 30), (10, 31)].iter().all(|(m, last)| {
                let days = in_range(s, date(2026, *m, 1), date(2026, *m, *last));
                days.len() >= 20
                    && days.iter().sum::<f64>() / (days.len() as f64) < mean_limit
                    && days.iter().all(|v| *v < peak_limit)
            });
            if low {
                fired.push((rule.to_owned(), metric));
            }
        }
        fired.sort_by_key(|(r, m)| (r.clone(), format!("{m:?}")));
        fired
    }

    proptest::proptest! {
        #[test]
        fn art18_verdicts_are_a_direct_reading_of_the_rules(
            cpu in proptest::collection::vec(peak(), 106),
            memory in proptest::collection::vec(peak(), 106),
            scale in prop_oneof![Just(1.0f64), Just(0.2), Just(0.3)],
        ) {
            let t = Thresholds::default();
            let series = |values: &[Option<f64>]| -> Daily {
                values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        let day = date(2026, 8, 1).checked_add((i as i64).days()).ok()?;
                        Some((day, (*v)? * scale))
                    })
                    .collect()
            };
            let usage = Usage { cpu: series(&cpu), memory: series(&memory), ..Usage::default() };
            let e = evaluate(&usage, &allocation(), TODAY, &t);
            let mut got: Vec<(String, Metric)> = e
                .recommendations
                .iter()
                .filter(|r| r.metric != Metric::DataDisk)
                .map(|r| (r.rule.clone(), r.metric))
                .collect();
            got.sort_by_key(|(r, m)| (r.clone(), format!("{m:?}")));
            proptest::prop_assert_eq!(got, by_the_rules(&usage, &t));
        }
    }

    #[test]
    fn a_zero_day_window_and_oversized_groups_evaluate_without_panicking() {
        // Found by the rightsizing fuzz target: a window of 0 days ended
        // before it started, and count x vCPU could overflow.
        let t = Thresholds {
            scale_up_days: 0,
            ..Thresholds::default()
        };
        let usage = Usage {
            cpu: days(date(2026, 10, 1), date(2026, 11, 14), |_| Some(0.9)),
            ..Usage::default()
        };
        let mut huge = allocation();
        huge.vm_groups[0].count = u32::MAX;
        huge.vm_groups[0].vcpu = u32::MAX;
        let e = evaluate(&usage, &huge, TODAY, &t);
        assert_eq!(e.summary.cpu.last30_days_with_data, 0);
        assert!(e.recommendations.iter().all(|r| r.rule != "art18-1"));
    }

    #[test]
    fn art18_1_with_a_missing_week_counts_the_days_there_are() {
        let t = Thresholds::default();
        let (from, to) = (date(2026, 10, 16), date(2026, 11, 14));
        let gap = date(2026, 10, 20)..=date(2026, 10, 26);
        let usage = Usage {
            memory: days(from, to, |d| (!gap.contains(&d)).then_some(0.8)),
            ..Usage::default()
        };
        let e = evaluate(&usage, &allocation(), TODAY, &t);
        assert_eq!(rules(&e), [("art18-1", Metric::Memory)]);
        assert!(e.recommendations[0].figures.contains("23 days with data"));
        // Two missing weeks leave 16 days: too few to judge.
        let gap = date(2026, 10, 17)..=date(2026, 10, 30);
        let usage = Usage {
            memory: days(from, to, |d| (!gap.contains(&d)).then_some(0.8)),
            ..Usage::default()
        };
        let e = evaluate(&usage, &allocation(), TODAY, &t);
        assert!(e.recommendations.is_empty());
        assert!(e.insufficient.iter().any(|i| i.rule == "art18-1"
            && i.metric == Metric::Memory
            && i.reason.starts_with("16 days")));
    }

    #[test]
    fn art18_2_needs_each_of_three_months_low_and_one_spike_stops_it() {
        let t = Thresholds::default();
        let (from, to) = (date(2026, 8, 1), date(2026, 11, 14));
        let low = Usage {
            cpu: days(from, to, |_| Some(0.10)),
            ..Usage::default()
        };
        let e = evaluate(&low, &allocation(), TODAY, &t);
        assert_eq!(rules(&e), [("art18-2", Metric::Cpu)]);
        let r = &e.recommendations[0];
        assert!(
            r.figures.contains("2026-08: mean peak 10%, peak 10%"),
            "{}",
            r.figures
        );
        assert!(r.figures.contains("2026-10"), "{}", r.figures);
        // 16 vCPU peaking at 10% -> 4 vCPU keep the peak under 50%.
        assert_eq!(r.suggested, "4 vCPU");
        // One day at 55% in September: that month's peak is over 50%.
        let spike = Usage {
            cpu: days(from, to, |d| {
                Some(if d == date(2026, 9, 9) { 0.55 } else { 0.10 })
            }),
            ..Usage::default()
        };
        assert!(
            evaluate(&spike, &allocation(), TODAY, &t)
                .recommendations
                .is_empty()
        );
        // The current month does not count: a spike in November changes nothing.
        let now_spike = Usage {
            cpu: days(from, to, |d| {
                Some(if d == date(2026, 11, 3) { 0.9 } else { 0.10 })
            }),
            ..Usage::default()
        };
        assert_eq!(
            rules(&evaluate(&now_spike, &allocation(), TODAY, &t)),
            [("art18-2", Metric::Cpu)]
        );
    }

    #[test]
    fn art18_3_memory_bounds_are_20_and_50_percent() {
        let t = Thresholds::default();
        let (from, to) = (date(2026, 8, 1), date(2026, 11, 14));
        let at = |v: f64| Usage {
            memory: days(from, to, |_| Some(v)),
            ..Usage::default()
        };
        assert_eq!(
            rules(&evaluate(&at(0.199), &allocation(), TODAY, &t)),
            [("art18-3", Metric::Memory)]
        );
        assert!(
            evaluate(&at(0.20), &allocation(), TODAY, &t)
                .recommendations
                .is_empty()
        );
        // A month with too few days of data: InsufficientData, not a guess.
        let sparse = Usage {
            memory: days(from, to, |d| {
                (d.month() != 9 || d.day() <= 10).then_some(0.1)
            }),
            ..Usage::default()
        };
        let e = evaluate(&sparse, &allocation(), TODAY, &t);
        assert!(e.recommendations.is_empty());
        let i = e.insufficient.iter().find(|i| i.rule == "art18-3").unwrap();
        assert!(i.reason.contains("2026-09 (10)"), "{}", i.reason);
    }

    #[test]
    fn art18_4_free_space_beyond_a_years_growth() {
        let t = Thresholds::default();
        let capacity = 2048.0 * GIB;
        // 500 GiB used a year ago, 800 GiB now: 300 GiB growth, 948 GiB free beyond it.
        let yoy = Usage {
            disk_used: days(date(2025, 11, 1), date(2026, 11, 14), |d| {
                let n = f64::from((d - date(2025, 11, 14)).get_days().max(0));
                Some((500.0 + 300.0 * n / 365.0) * GIB)
            }),
            disk_capacity: Some(capacity),
            ..Usage::default()
        };
        let e = evaluate(&yoy, &allocation(), TODAY, &t);
        let d = e.summary.disk.as_ref().unwrap();
        assert_eq!(
            (d.growth_method.as_str(), d.year_growth_gib, d.used_gib),
            ("year-on-year", 300.0, 800.0)
        );
        assert_eq!(d.free_beyond_growth_gib, 948.0);
        assert_eq!(rules(&e), [("art18-4", Metric::DataDisk)]);
        assert!(e.recommendations[0].suggested.starts_with("1500 GiB"));
        // Only 60 days of history: a line, 1 GiB a day -> 365 GiB a year.
        let line = Usage {
            disk_used: days(date(2026, 9, 16), date(2026, 11, 14), |d| {
                Some((1000.0 + f64::from((d - date(2026, 9, 16)).get_days())) * GIB)
            }),
            disk_capacity: Some(capacity),
            ..Usage::default()
        };
        let e = evaluate(&line, &allocation(), TODAY, &t);
        let d = e.summary.disk.as_ref().unwrap();
        assert_eq!(
            (d.growth_method.as_str(), d.year_growth_gib),
            ("least-squares", 365.0)
        );
        // 2048 - 1059 - 365 = 624 > 400.
        assert_eq!(d.free_beyond_growth_gib, 624.0);
        // Shrinking usage is no negative growth.
        let shrinking = Usage {
            disk_used: days(date(2026, 9, 16), date(2026, 11, 14), |d| {
                Some((1900.0 - f64::from((d - date(2026, 9, 16)).get_days())) * GIB)
            }),
            disk_capacity: Some(capacity),
            ..Usage::default()
        };
        let d = evaluate(&shrinking, &allocation(), TODAY, &t)
            .summary
            .disk
            .unwrap();
        assert_eq!(d.year_growth_gib, 0.0);
        // Ten days of history: not enough for a line.
        let short = Usage {
            disk_used: days(date(2026, 11, 5), date(2026, 11, 14), |_| Some(100.0 * GIB)),
            disk_capacity: Some(capacity),
            ..Usage::default()
        };
        let e = evaluate(&short, &allocation(), TODAY, &t);
        assert!(e.summary.disk.is_none());
        assert!(e.insufficient.iter().any(|i| i.rule == "art18-4"));
    }

    #[test]
    fn no_data_is_insufficient_data_for_every_rule() {
        let e = evaluate(
            &Usage::default(),
            &allocation(),
            TODAY,
            &Thresholds::default(),
        );
        assert!(e.recommendations.is_empty());
        let mut rules: Vec<&str> = e.insufficient.iter().map(|i| i.rule.as_str()).collect();
        rules.dedup();
        assert_eq!(rules, ["art18-1", "art18-2", "art18-3", "art18-4"]);
    }

    #[test]
    fn art20_low_usage_in_three_months_after_a_scale_down_proposes_a_case() {
        let t = Thresholds::default();
        let (from, to) = (date(2026, 7, 1), date(2026, 11, 14));
        let low = Usage {
            cpu: days(from, to, |_| Some(0.10)),
            ..Usage::default()
        };
        let e = evaluate(&low, &allocation(), TODAY, &t);
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        // Scaled down on 20 July: August, September and October all came after.
        assert!(low_after_scale_down(
            &e,
            Some(at("2026-07-20T02:00:00Z")),
            None
        ));
        // Scaled down on 5 August: August does not count as "after"; not yet.
        assert!(!low_after_scale_down(
            &e,
            Some(at("2026-08-05T02:00:00Z")),
            None
        ));
        // Never scaled down: rule 18(2) recommends, but no case of Art. 20 (1).
        assert!(!low_after_scale_down(&e, None, None));
        // A case was opened since the scale-down: not proposed again.
        assert!(!low_after_scale_down(
            &e,
            Some(at("2026-07-20T02:00:00Z")),
            Some(at("2026-11-01T02:00:00Z"))
        ));
        // A case from before the scale-down does not count.
        assert!(low_after_scale_down(
            &e,
            Some(at("2026-07-20T02:00:00Z")),
            Some(at("2026-03-01T02:00:00Z"))
        ));
        // Usage not low (a spike in September): nothing to propose.
        let spike = Usage {
            cpu: days(from, to, |d| {
                Some(if d == date(2026, 9, 9) { 0.55 } else { 0.10 })
            }),
            ..Usage::default()
        };
        let e = evaluate(&spike, &allocation(), TODAY, &t);
        assert!(!low_after_scale_down(
            &e,
            Some(at("2026-07-20T02:00:00Z")),
            None
        ));
    }
}
