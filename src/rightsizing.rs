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

use std::collections::{BTreeMap, BTreeSet};

use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::api::Resources;
use crate::api::utilisation::{
    Direction, DiskSummary, GrowthSums, Insufficient, Metric, MetricSummary, Month, Recommendation,
    Summary,
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
    /// The first day read of CPU, memory and the data disk's capacity (and so
    /// of its utilisation); `None`: all there is.
    pub from: Option<Date>,
    /// The first day from which data-disk bytes used were read without a
    /// gap (a week a year back may be read besides); `None`: all there is.
    pub used_from: Option<Date>,
}

/// The first day of 18(1)'s window on `today`: `scale_up_days` back.
fn recent_start(today: Date, t: &Thresholds) -> Date {
    today
        .checked_sub((t.scale_up_days as i64).days())
        .unwrap_or(today)
}

/// The first day of the data-disk history an evaluation on `today` can use:
/// the week before the day a year before yesterday, for a year-on-year value.
fn history_start(today: Date) -> Date {
    today.checked_sub(373.days()).unwrap_or(today)
}

/// Above this many namespaces a read back in time is asked for all of them:
/// Prometheus matches a set of up to 256 names by lookup, more by regex.
pub const MOST_NAMED: usize = 256;

/// Whose series a read takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    All,
    Only(BTreeSet<String>),
}

/// A read of days before the recent ones, for some namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Back {
    /// The first day read; the last is the day before [`Plan::recent`].
    pub from: Date,
    pub namespaces: Namespaces,
}

impl Back {
    pub fn covers(&self, ns: &str) -> bool {
        match &self.namespaces {
            Namespaces::All => true,
            Namespaces::Only(set) => set.contains(ns),
        }
    }
}

/// The days an evaluation on `today` reads from Prometheus, for all
/// tenancies at once, given what their statuses carry ([`Before`]): every
/// series over the last `scale_up_days` (18(1)); before that, the complete
/// months that some tenancies have no final figures of, and the data-disk
/// history of those without growth sums, for those tenancies only; and a
/// week of bytes used a year before the latest day read, when some tenancy
/// can have data then ([`Plan::year_ago`]). Nothing carried: everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Yesterday: the last day read.
    pub last: Date,
    /// Every series of every namespace is read from this day.
    pub recent: Date,
    /// CPU, memory and both disk series of complete months.
    pub months: Option<Back>,
    /// Data-disk bytes used, for a growth line.
    pub history: Option<Back>,
    /// The first day a tenancy not in `history` can have bytes used.
    pub data_from: Date,
}

impl Plan {
    /// Everything the rules can use, for every namespace.
    pub fn full(today: Date, t: &Thresholds) -> Self {
        Self::new(today, t, [("", Before::default())])
    }

    /// What the tenancies in service (by namespace) need read on `today`.
    pub fn new<'a>(
        today: Date,
        t: &Thresholds,
        tenancies: impl IntoIterator<Item = (&'a str, Before<'a>)>,
    ) -> Self {
        let last = today.yesterday().unwrap_or(today);
        let recent = recent_start(today, t).min(last);
        let months: Vec<Date> = (1..=t.months as i32)
            .map(|back| month_start(today, back))
            .collect();
        let tenancies: Vec<(&str, Before)> = tenancies.into_iter().collect();
        let mut back_from = recent;
        let mut lacking = BTreeSet::new();
        for (ns, b) in &tenancies {
            for start in &months {
                if *start < recent && !b.has_month(*start) {
                    back_from = back_from.min(*start);
                    lacking.insert(*ns);
                }
            }
        }
        let mut no_sums = BTreeSet::new();
        let mut data_from = Date::MAX;
        for (ns, b) in &tenancies {
            let from = if lacking.contains(ns) {
                back_from
            } else {
                recent
            };
            if b.growth_through(from).is_none() {
                no_sums.insert(*ns);
            } else {
                data_from = data_from.min(b.first_data());
            }
        }
        let back = |from: Date, set: BTreeSet<&str>| {
            (!set.is_empty()).then(|| Back {
                from,
                namespaces: if set.len() == tenancies.len() || set.len() > MOST_NAMED {
                    Namespaces::All
                } else {
                    Namespaces::Only(set.into_iter().map(str::to_owned).collect())
                },
            })
        };
        Self {
            last,
            recent,
            months: back(back_from, lacking),
            history: back(history_start(today), no_sums),
            data_from,
        }
    }

    /// The first day read of CPU, memory and the disk's capacity for `ns`.
    pub fn from(&self, ns: &str) -> Date {
        match &self.months {
            Some(b) if b.covers(ns) => b.from,
            _ => self.recent,
        }
    }

    /// The first day from which bytes used of `ns` are read without a gap.
    pub fn used_from(&self, ns: &str) -> Date {
        match &self.history {
            Some(b) if b.covers(ns) => b.from.min(self.from(ns)),
            _ => self.from(ns),
        }
    }

    /// The days a year back that a year-on-year value of one of the
    /// `latest` days with bytes used (since `recent`) may be on, and that
    /// no read of the plan covers for every namespace.
    pub fn year_ago(&self, latest: impl IntoIterator<Item = Date>) -> Option<(Date, Date)> {
        let (low, high) = latest
            .into_iter()
            .fold(None, |span: Option<(Date, Date)>, d| {
                Some(span.map_or((d, d), |(a, b)| (a.min(d), b.max(d))))
            })?;
        let first = low.checked_sub(372.days()).ok()?.max(self.data_from);
        let mut last = high.checked_sub(365.days()).ok()?;
        // What is read of every namespace need not be asked again.
        let read = [&self.months, &self.history]
            .into_iter()
            .flatten()
            .filter(|b| b.namespaces == Namespaces::All)
            .map(|b| b.from)
            .fold(self.recent, Date::min);
        last = last.min(read.yesterday().ok()?);
        (first <= last).then_some((first, last))
    }
}

/// What a previous evaluation of a tenancy found final.
#[derive(Debug, Clone, Copy, Default)]
pub struct Before<'a> {
    /// The summary the last evaluation wrote: its complete months and growth
    /// sums are carried instead of read again.
    pub summary: Option<&'a Summary>,
}

impl Before<'_> {
    /// The month starting `start` of `metric`, if a previous evaluation found
    /// it final.
    fn month(&self, metric: Metric, start: Date) -> Option<&Month> {
        let s = self.summary?;
        let months = match metric {
            Metric::Cpu => &s.cpu.months,
            Metric::Memory => &s.memory.months,
            Metric::DataDisk => &s.data_disk.months,
        };
        let name = month_name(start);
        months.iter().find(|m| m.complete && m.month == name)
    }

    /// Whether every metric's figures of the month starting `start` are final.
    fn has_month(&self, start: Date) -> bool {
        [Metric::Cpu, Metric::Memory, Metric::DataDisk]
            .into_iter()
            .all(|m| self.month(m, start).is_some())
    }

    /// The first day its namespace can have bytes used, by its growth sums:
    /// their first day with data, or the day after them when they have none.
    fn first_data(&self) -> Date {
        let day = |s: &str| s.parse::<Date>().ok();
        self.summary
            .and_then(|s| s.disk_growth.as_ref())
            .and_then(|g| match g.from.as_deref() {
                Some(from) => day(from),
                None => day(&g.through).and_then(|d| d.tomorrow().ok()),
            })
            .unwrap_or(Date::MIN)
    }

    /// The growth sums carried, if they reach the day before `from` (the
    /// first day read without a gap), so that adding what was read continues
    /// them exactly; or if they have no day yet (a namespace without bytes
    /// used: its line starts with the first day read that has them).
    fn growth_through(&self, from: Date) -> Option<&GrowthSums> {
        let g = self.summary?.disk_growth.as_ref()?;
        let through: Date = g.through.parse().ok()?;
        (g.days == 0 || through >= from.yesterday().ok()?).then_some(g)
    }
}

fn month_name(start: Date) -> String {
    format!("{:04}-{:02}", start.year(), start.month())
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

fn summarise(
    series: &Daily,
    metric: Metric,
    today: Date,
    t: &Thresholds,
    from: Option<Date>,
    before: &Before,
) -> (MetricSummary, Exact) {
    let yesterday = today.yesterday().unwrap_or(today);
    let recent = recent_start(today, t);
    let last = window(series, recent, yesterday);
    let mut exact = Exact {
        last30_mean: (!last.is_empty()).then(|| mean(&last)),
        months: Vec::new(),
    };
    let months = (1..=t.months as i32)
        .rev()
        .map(|back| {
            let start = month_start(today, back);
            if let Some(carried) = before.month(metric, start) {
                let figures = carried.mean_peak.zip(carried.peak);
                exact.months.push(figures);
                return carried.clone();
            }
            let end = start.last_of_month();
            let days = window(series, start, end);
            let figures = (!days.is_empty()).then(|| (mean(&days), max(&days)));
            exact.months.push(figures);
            let (mean_peak, peak) = figures.unwrap_or((0.0, 0.0));
            Month {
                month: month_name(start),
                days_with_data: days.len() as u32,
                mean_peak_percent: pct(mean_peak),
                peak_percent: pct(peak),
                // Final only when read whole, from its first day.
                complete: from.is_none_or(|f| f <= start),
                mean_peak: figures.map(|f| f.0),
                peak: figures.map(|f| f.1),
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

/// The growth sums of `used` through `yesterday`: those carried continued
/// with the days read after them, or, when the history was read whole, made
/// from it; `None` when neither (what was read has a gap after the sums).
fn growth_sums(
    used: &Daily,
    before: &Before,
    used_from: Option<Date>,
    today: Date,
) -> Option<GrowthSums> {
    let day = |s: &str| s.parse::<Date>().ok();
    let yesterday = today.yesterday().unwrap_or(today);
    let (mut sums, after) = match used_from.and_then(|f| before.growth_through(f)) {
        Some(g) => (g.clone(), day(&g.through)?),
        None => {
            let history_read = used_from.is_none_or(|f| f <= history_start(today));
            if !history_read {
                return None;
            }
            (GrowthSums::default(), Date::MIN)
        }
    };
    if after < yesterday {
        let start = after.tomorrow().ok()?;
        for (d, y) in used.range(start..=yesterday) {
            let first = match sums.from.as_deref().and_then(day) {
                Some(f) => f,
                None => {
                    sums.from = Some(d.to_string());
                    *d
                }
            };
            let x = f64::from((*d - first).get_days());
            sums.days += 1;
            sums.sum_x += x;
            sums.sum_y += y;
            sums.sum_xy += x * y;
            sums.sum_xx += x * x;
        }
    }
    // Sums of no day stay as they were: a tenancy without samples is not
    // written every day for the day it moved.
    if sums.days > 0 || after == Date::MIN {
        sums.through = after.max(yesterday).to_string();
    }
    Some(sums)
}

/// The least-squares slope of the sums, in units per day.
fn slope(g: &GrowthSums) -> f64 {
    let n = f64::from(g.days);
    let sxx = n * g.sum_xx - g.sum_x * g.sum_x;
    if sxx == 0.0 {
        0.0
    } else {
        (n * g.sum_xy - g.sum_x * g.sum_y) / sxx
    }
}

/// One year's growth of `used` (bytes) up to `latest`: year-on-year when a
/// value from 365 days before exists (within a week), otherwise the line of
/// `sums` (every day with data since the first).
fn year_growth(
    used: &Daily,
    sums: Option<&GrowthSums>,
    latest: Date,
    t: &Thresholds,
) -> Option<(f64, &'static str)> {
    let now = *used.get(&latest)?;
    let year_ago = latest.checked_sub(365.days()).ok()?;
    let week_before = year_ago.checked_sub(7.days()).ok()?;
    if let Some((_, then)) = used.range(week_before..=year_ago).next_back() {
        return Some(((now - then).max(0.0), "year-on-year"));
    }
    let sums = sums?;
    let first: Date = sums.from.as_deref()?.parse().ok()?;
    if (latest - first).get_days() + 1 < t.min_growth_days as i32 || sums.days < t.min_growth_days {
        return None;
    }
    Some(((slope(sums) * 365.0).max(0.0), "least-squares"))
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
    evaluate_after(usage, Before::default(), allocation, today, t)
}

/// [`evaluate`], carrying what `before` knows: a complete month's figures
/// and the growth sums are taken from the last evaluation rather than from
/// `usage`, which then needs only the days read since (see
/// [`Plan`]). The result is the same as from a read of
/// everything.
pub fn evaluate_after(
    usage: &Usage,
    before: Before,
    allocation: &Resources,
    today: Date,
    t: &Thresholds,
) -> Evaluation {
    let from = usage.from;
    let (cpu, cpu_exact) = summarise(&usage.cpu, Metric::Cpu, today, t, from, &before);
    let (memory, memory_exact) = summarise(&usage.memory, Metric::Memory, today, t, from, &before);
    let (data_disk, disk_exact) = summarise(&usage.disk, Metric::DataDisk, today, t, from, &before);
    let growth = growth_sums(&usage.disk_used, &before, usage.used_from, today);
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
            disk_growth: None,
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
    let recent = recent_start(today, t);
    rule_18_4(&mut e, usage, growth.as_ref(), recent, t);
    e.summary.disk_growth = growth;
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

/// 18(4): free space beyond a year's growth. Used bytes "now" are the
/// latest daily peak since `recent` (the first day of 18(1)'s window).
fn rule_18_4(
    e: &mut Evaluation,
    usage: &Usage,
    sums: Option<&GrowthSums>,
    recent: Date,
    t: &Thresholds,
) {
    let latest = usage.disk_used.range(recent..).next_back().map(|(d, _)| *d);
    match (latest, usage.disk_capacity) {
        (Some(latest), Some(capacity)) => match year_growth(&usage.disk_used, sums, latest, t) {
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
            reason: format!(
                "no data-disk usage or capacity reported in the last {} days",
                t.scale_up_days
            ),
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
        // 100 GiB used every day from `from` to `to`.
        let flat = |from: Date, to: Date| Usage {
            disk_used: days(from, to, |_| Some(100.0 * GIB)),
            disk_capacity: Some(capacity),
            ..Usage::default()
        };
        // Ten days of history: not enough for a line.
        let short = flat(date(2026, 11, 5), date(2026, 11, 14));
        let e = evaluate(&short, &allocation(), TODAY, &t);
        assert!(e.summary.disk.is_none());
        assert!(e.insufficient.iter().any(|i| i.rule == "art18-4"));
        // Bytes used "now" are of the last 30 days: a disk silent since
        // 1 October is not measured by what it held then.
        let silent = flat(date(2026, 6, 1), date(2026, 10, 1));
        let e = evaluate(&silent, &allocation(), TODAY, &t);
        assert!(e.summary.disk.is_none());
        assert!(
            e.insufficient.iter().any(|i| i.rule == "art18-4"
                && i.reason == "no data-disk usage or capacity reported in the last 30 days"),
            "{:?}",
            e.insufficient
        );
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

    #[test]
    fn art18_with_nothing_known_the_plan_reads_three_complete_months_and_a_year_of_disk() {
        let t = Thresholds::default();
        let p = Plan::full(date(2026, 11, 15), &t);
        assert_eq!((p.recent, p.last), (date(2026, 10, 16), date(2026, 11, 14)));
        assert_eq!(
            (p.from("any"), p.used_from("any")),
            (date(2026, 8, 1), date(2025, 11, 7))
        );
        assert_eq!(p.months.unwrap().namespaces, Namespaces::All);
        // Early in a month, 30 days reach further back than one month.
        let one = Thresholds { months: 1, ..t };
        let p = Plan::full(date(2026, 3, 2), &one);
        assert_eq!((p.from("any"), p.months), (date(2026, 1, 31), None));
    }

    #[test]
    fn art18_a_tenancy_new_to_the_evaluation_has_its_own_namespace_read_back() {
        let t = Thresholds::default();
        let e = evaluate(&Usage::default(), &allocation(), TODAY, &t);
        let known = Before {
            summary: Some(&e.summary),
        };
        // Everything carried: the last 30 days, and nothing a year back
        // (the sums say the namespace has no data yet).
        let p = Plan::new(TODAY, &t, [("a", known), ("b", known)]);
        assert_eq!((p.months.clone(), p.history.clone()), (None, None));
        assert_eq!(p.year_ago([p.last]), None);
        // One new tenancy: its months and history, by name.
        let p = Plan::new(TODAY, &t, [("a", known), ("new", Before::default())]);
        let only = Namespaces::Only(BTreeSet::from(["new".to_owned()]));
        assert_eq!(
            p.months,
            Some(Back {
                from: date(2026, 8, 1),
                namespaces: only.clone()
            })
        );
        assert_eq!(p.history.as_ref().map(|h| &h.namespaces), Some(&only));
        assert_eq!((p.from("a"), p.used_from("a")), (p.recent, p.recent));
        assert_eq!(p.used_from("new"), date(2025, 11, 7));
        // More than Prometheus matches as a set: every namespace.
        let names: Vec<String> = (0..=MOST_NAMED).map(|i| format!("n{i}")).collect();
        let many = names
            .iter()
            .map(|n| (n.as_str(), Before::default()))
            .chain([("a", known)]);
        let p = Plan::new(TODAY, &t, many);
        assert_eq!(p.from("a"), date(2026, 8, 1));
        assert_eq!(p.months.unwrap().namespaces, Namespaces::All);
    }

    /// Every series of two tenancies, by namespace, over the days given.
    struct Cluster {
        cpu: BTreeMap<String, Daily>,
        memory: BTreeMap<String, Daily>,
        used: BTreeMap<String, Daily>,
        capacity: BTreeMap<String, Daily>,
    }

    impl Cluster {
        /// What the client asks for under `plan`: every series of every
        /// namespace from `recent`, the reads back for the namespaces they
        /// cover, and the week a year back.
        fn read(&self, plan: &Plan) -> crate::prometheus::Answers {
            let cut =
                |all: &BTreeMap<String, Daily>, from: Date, last: Date, back: Option<&Back>| {
                    all.iter()
                        .filter(|(ns, _)| back.is_none_or(|b| b.covers(ns)))
                        .map(|(ns, d)| {
                            (
                                ns.clone(),
                                d.range(from..=last).map(|(k, v)| (*k, *v)).collect(),
                            )
                        })
                        .collect::<BTreeMap<String, Daily>>()
                };
            let merge = |into: &mut BTreeMap<String, Daily>, more: BTreeMap<String, Daily>| {
                for (ns, d) in more {
                    into.entry(ns).or_default().extend(d);
                }
            };
            let before = plan.recent.yesterday().unwrap();
            let span = |all: &BTreeMap<String, Daily>, backs: &[&Option<Back>]| {
                let mut out = cut(all, plan.recent, plan.last, None);
                for b in backs.iter().copied().flatten() {
                    merge(&mut out, cut(all, b.from, before, Some(b)));
                }
                out
            };
            let mut used = span(&self.used, &[&plan.months, &plan.history]);
            let latest: Vec<Date> = used
                .values()
                .filter_map(|d| d.range(plan.recent..).next_back().map(|(d, _)| *d))
                .collect();
            if let Some((first, last)) = plan.year_ago(latest) {
                merge(&mut used, cut(&self.used, first, last, None));
            }
            crate::prometheus::Answers {
                plan: Some(plan.clone()),
                cpu: span(&self.cpu, &[&plan.months]),
                memory: span(&self.memory, &[&plan.months]),
                disk_used: used,
                disk_capacity: span(&self.capacity, &[&plan.months]),
            }
        }
    }

    #[test]
    fn art18_closed_months_and_growth_are_read_once_and_carried_to_the_same_verdicts() {
        let t = Thresholds::default();
        let (first, end) = (date(2025, 6, 1), date(2027, 1, 5));
        let young_since = date(2026, 9, 10);
        let n = |d: Date| (d - first).get_days();
        let mut c = Cluster {
            cpu: BTreeMap::new(),
            memory: BTreeMap::new(),
            used: BTreeMap::new(),
            capacity: BTreeMap::new(),
        };
        for (ns, since) in [("old", first), ("young", young_since)] {
            let on = |f: &dyn Fn(Date) -> Option<f64>| days(since, end, f);
            // Low CPU with a day missing now and then, memory in between,
            // bytes used growing faster and faster, with a weekly wobble.
            c.cpu.insert(
                ns.into(),
                on(&|d| (d.day() % 13 != 0).then(|| 0.08 + f64::from((n(d) * 37) % 10) / 100.0)),
            );
            c.memory
                .insert(ns.into(), on(&|d| Some(0.15 + f64::from(n(d) % 7) / 100.0)));
            c.used.insert(
                ns.into(),
                on(&|d| {
                    let x = f64::from(n(d));
                    Some((100.0 + 0.5 * x + 0.002 * x * x + x % 7.0) * GIB)
                }),
            );
            c.capacity.insert(ns.into(), on(&|_| Some(1024.0 * GIB)));
        }
        let mut carried: BTreeMap<&str, Summary> = BTreeMap::new();
        let (mut evaluations, mut recent_only) = (0, 0);
        let mut today = date(2025, 7, 1);
        let mut verdicts = std::collections::BTreeSet::new();
        while today <= end {
            // The operator is down for four months in between: the months
            // read then start after the growth sums end.
            if (date(2026, 1, 10)..date(2026, 5, 20)).contains(&today) {
                today = today.tomorrow().unwrap();
                continue;
            }
            let before = |ns: &str| Before {
                summary: carried.get(ns),
            };
            let in_service = if today < young_since {
                vec!["old"]
            } else {
                vec!["old", "young"]
            };
            let plan = Plan::new(today, &t, in_service.iter().map(|ns| (*ns, before(ns))));
            recent_only += usize::from(plan.months.is_none() && plan.history.is_none());
            evaluations += 1;
            let little = c.read(&plan);
            let all = c.read(&Plan::full(today, &t));
            let mut next = BTreeMap::new();
            for ns in in_service {
                let a = evaluate_after(&little.usage(ns), before(ns), &allocation(), today, &t);
                let b = evaluate(&all.usage(ns), &allocation(), today, &t);
                let context = format!("{ns} on {today}, {plan:?}");
                assert_eq!(a.recommendations, b.recommendations, "{context}");
                assert_eq!(a.insufficient, b.insufficient, "{context}");
                for (x, y) in [
                    (&a.summary.cpu, &b.summary.cpu),
                    (&a.summary.memory, &b.summary.memory),
                    (&a.summary.data_disk, &b.summary.data_disk),
                ] {
                    assert_eq!(x, y, "{context}");
                }
                assert_eq!(a.summary.disk, b.summary.disk, "{context}");
                verdicts.extend(a.recommendations.iter().map(|r| r.rule.clone()));
                if let Some(d) = &a.summary.disk {
                    verdicts.insert(d.growth_method.clone());
                }
                next.insert(ns, a.summary);
            }
            carried = next;
            today = today.tomorrow().unwrap();
        }
        // Every rule's path was taken, and the line as well as year-on-year.
        for v in ["art18-2", "art18-4", "least-squares", "year-on-year"] {
            assert!(verdicts.contains(v), "{verdicts:?}");
        }
        // A full read at the start and after the gap, of the young tenancy
        // when it arrives, of a closed month not yet read whole; otherwise
        // only the last 30 days.
        assert!(
            recent_only * 100 >= evaluations * 90,
            "{recent_only} of {evaluations}"
        );
    }

    #[test]
    fn art18_a_month_not_read_whole_is_not_carried() {
        let t = Thresholds::default();
        let usage = Usage {
            cpu: days(date(2026, 8, 20), date(2026, 11, 14), |_| Some(0.1)),
            from: Some(date(2026, 8, 20)),
            used_from: Some(date(2026, 8, 20)),
            ..Usage::default()
        };
        let e = evaluate_after(&usage, Before::default(), &allocation(), TODAY, &t);
        let complete: Vec<(&str, bool)> = e
            .summary
            .cpu
            .months
            .iter()
            .map(|m| (m.month.as_str(), m.complete))
            .collect();
        assert_eq!(
            complete,
            [("2026-08", false), ("2026-09", true), ("2026-10", true)]
        );
        // No growth sums either: the history before the 20th was not read.
        assert!(e.summary.disk_growth.is_none());
        // So the next plan reads August again, and the history.
        let before = Before {
            summary: Some(&e.summary),
        };
        let p = Plan::new(TODAY, &t, [("a", before)]);
        assert_eq!(
            (p.from("a"), p.used_from("a")),
            (date(2026, 8, 1), date(2025, 11, 7))
        );
    }

    #[test]
    fn art18_a_tenancy_without_samples_carries_the_same_figures_from_day_to_day() {
        let t = Thresholds::default();
        let (day1, day2) = (date(2026, 11, 15), date(2026, 11, 16));
        let read = |today: Date, before: Before| {
            let plan = Plan::new(today, &t, [("quiet", before)]);
            let usage = Usage {
                from: Some(plan.from("quiet")),
                used_from: Some(plan.used_from("quiet")),
                ..Usage::default()
            };
            evaluate_after(&usage, before, &allocation(), today, &t)
        };
        let first = read(day1, Before::default());
        let before = Before {
            summary: Some(&first.summary),
        };
        // Nothing to read back, and nothing changed: nothing to write.
        let p = Plan::new(day2, &t, [("quiet", before)]);
        assert_eq!((p.months, p.history), (None, None));
        let second = read(day2, before);
        assert_eq!(second.summary, first.summary);
        // Samples that begin later (the 15th, after the first evaluation
        // read none through the 14th) start the line on their first day.
        let usage = Usage {
            disk_used: days(date(2026, 11, 15), date(2026, 11, 16), |_| Some(GIB)),
            from: Some(date(2026, 10, 18)),
            used_from: Some(date(2026, 10, 18)),
            ..Usage::default()
        };
        let later = evaluate_after(&usage, before, &allocation(), date(2026, 11, 17), &t);
        let g = later.summary.disk_growth.unwrap();
        assert_eq!(
            (g.from.as_deref(), g.through.as_str(), g.days),
            (Some("2026-11-15"), "2026-11-16", 2)
        );
    }
}
