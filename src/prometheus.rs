//! Utilisation from the Prometheus HTTP API: a handful of range queries for
//! all tenancies together, their series grouped by namespace into daily peaks
//! per Asia/Shanghai day.
//!
//! A daily peak is the largest value of the day, each value counted on the
//! Beijing day of the samples it reads, whatever the scrape offsets:
//!
//! * A query that is a bare series selector (a raw or recorded series, see
//!   [`recording_rules`]) is read as stored: `max_over_time(<series>[1d])` at
//!   the last millisecond of each Beijing day takes exactly that day's
//!   samples. At thousands of tenancies that is the difference between
//!   minutes and seconds (docs/performance.md).
//! * An expression has no stored samples: it is evaluated every
//!   `resolutionSeconds` (set it to the scrape interval or less, so that no
//!   sample is stepped over) and at the last millisecond of the day, and a
//!   value read within Prometheus' lookback after midnight is kept only when
//!   one of its inputs has a sample since midnight ([`daily_peak`]). A step
//!   at 00:00:30 that still reads 23:59:45's samples shows yesterday's value
//!   and is not counted today.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::calendar;
use crate::rightsizing::{Daily, Usage};

mod client;
mod inputs;

pub use client::Client;

/// Where Prometheus is and what to ask it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`; unset, utilisation
    /// is not evaluated.
    pub url: Option<String>,
    /// A file holding a bearer token, for a Prometheus behind authentication.
    pub bearer_token_file: Option<PathBuf>,
    /// The label that names a series' namespace.
    pub namespace_label: String,
    /// How often an expression is read for its daily peaks, in seconds: the
    /// scrape interval or less, and a divisor of 28,800 (8 hours) so that
    /// Beijing's midnight is a step. Also the recording rules' interval.
    pub resolution_seconds: u32,
    /// Prometheus' lookback (`--query.lookback-delta`), in seconds: how
    /// long after midnight a value may still read yesterday's samples.
    pub lookback_seconds: u32,
    /// Per-query timeout, in seconds.
    pub timeout_seconds: u32,
    /// Hours between evaluations; one also runs after each month closes.
    pub every_hours: u32,
    pub queries: Queries,
}

/// The PromQL of each metric, one series per namespace. The defaults read
/// KubeVirt's VM metrics (virt-handler) and the guest agent's filesystems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Queries {
    /// CPU utilisation, 0..1 of the VMs' vCPUs.
    pub cpu: String,
    /// Memory utilisation, 0..1.
    pub memory: String,
    /// Data-disk bytes used.
    pub disk_used: String,
    /// Data-disk capacity in bytes.
    pub disk_capacity: String,
}

impl Default for Queries {
    fn default() -> Self {
        Self {
            cpu: r#"sum by (namespace) (rate(kubevirt_vmi_vcpu_seconds_total{state="running"}[5m])) / count by (namespace) (kubevirt_vmi_vcpu_seconds_total{state="running"})"#.into(),
            memory: "sum by (namespace) (kubevirt_vmi_memory_used_bytes) / sum by (namespace) (kubevirt_vmi_memory_domain_bytes)".into(),
            disk_used: r#"sum by (namespace) (kubevirt_vmi_filesystem_used_bytes{mount_point!~"/|/boot.*"})"#.into(),
            disk_capacity: r#"sum by (namespace) (kubevirt_vmi_filesystem_capacity_bytes{mount_point!~"/|/boot.*"})"#.into(),
        }
    }
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            url: None,
            bearer_token_file: None,
            namespace_label: "namespace".into(),
            resolution_seconds: 60,
            lookback_seconds: 300,
            timeout_seconds: 120,
            every_hours: 24,
            queries: Queries::default(),
        }
    }
}

impl PrometheusConfig {
    /// What is wrong with the configuration, if anything: a resolution that
    /// does not put a step at Beijing's midnight, a lookback outside a day,
    /// a query that cannot be read by day.
    pub fn check(&self) -> Result<(), String> {
        let r = self.resolution_seconds;
        if r == 0 || 28_800 % r != 0 {
            return Err(format!(
                "resolutionSeconds {r} must divide 28800 (8 hours), e.g. 15, 30, 60 or 300, \
                 so that Beijing's midnight is a step"
            ));
        }
        if !(1..=86_400).contains(&self.lookback_seconds) {
            return Err(format!(
                "lookbackSeconds {} must be 1 to 86400",
                self.lookback_seconds
            ));
        }
        for (name, query) in [
            ("cpu", &self.queries.cpu),
            ("memory", &self.queries.memory),
            ("diskUsed", &self.queries.disk_used),
            ("diskCapacity", &self.queries.disk_capacity),
        ] {
            daily_peak(query, r, self.lookback_seconds)
                .map_err(|e| format!("queries.{name}: {e}"))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("prometheus at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("prometheus rejected {query:?}: {message}")]
    Query { query: String, message: String },
    #[error("prometheus answered what is not a matrix: {0}")]
    Response(String),
}

/// One series of a range query: its labels and `(time, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(Timestamp, f64)>,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// The Beijing day a point of a daily-peak query belongs to.
pub fn day_of(at: Timestamp) -> Date {
    calendar::local_date(at)
}

/// The last millisecond of a Beijing day: where a daily peak is evaluated.
pub fn day_end(day: Date) -> Timestamp {
    calendar::end_of_day(day)
        .checked_add(SignedDuration::from_millis(999))
        .unwrap_or_else(|_| calendar::end_of_day(day))
}

/// Seconds since Beijing's midnight at each evaluation instant, as PromQL.
/// Asia/Shanghai has kept +08:00 all year since 1991.
const SINCE_MIDNIGHT: &str = "((time() + 28800) % 86400)";

/// The daily-peak query of `inner`, evaluated at the last millisecond of
/// each Beijing day ([`day_end`]).
///
/// A stored series is read as stored. An expression is read at every step of
/// `resolution_seconds` from the day's midnight (which must be a step:
/// [`PrometheusConfig::check`]) and at the day's last millisecond. A value
/// read more than `lookback_seconds` (Prometheus' lookback) after midnight
/// reads only the day's samples; one read earlier counts only when an input
/// has a sample since midnight. At midnight itself that is a sample of
/// exactly midnight, looked for in the last millisecond. The last value
/// reads only the day's samples. An error says why `inner` cannot be read
/// so.
pub fn daily_peak(
    inner: &str,
    resolution_seconds: u32,
    lookback_seconds: u32,
) -> Result<String, String> {
    let inner = inner.trim();
    if is_selector(inner) {
        return Ok(format!("max_over_time({inner}[1d])"));
    }
    let expr = inputs::parse(inner)?;
    let r = resolution_seconds.max(1);
    let mut fresh = Vec::new();
    for k in 0..=lookback_seconds / r {
        let since = k * r;
        let window = if since == 0 {
            Duration::from_millis(1)
        } else {
            Duration::from_secs(u64::from(since))
        };
        let Some(count) = inputs::samples_in(&expr, window)? else {
            // Reads no series: its value is the same at every step.
            return Ok(format!("max_over_time(({inner})[1d:{r}s])"));
        };
        fresh.push(format!(
            "(({count}) > 0 and on () vector({SINCE_MIDNIGHT}) == {since})"
        ));
    }
    let steps = format!(
        "max_over_time(((({inner}) and on () (vector({SINCE_MIDNIGHT}) > {lookback_seconds})) \
         or (({inner}) and ({fresh})))[1d:{r}s])",
        fresh = fresh.join(" or ")
    );
    Ok(format!(
        "max without (govcloud_part) (\
         label_replace({steps}, \"govcloud_part\", \"steps\", \"\", \"\") \
         or label_replace(({inner}), \"govcloud_part\", \"last\", \"\", \"\"))"
    ))
}

/// Whether `query` is a bare series selector, `name` or `name{matchers}`
/// (no function, operator or range). Anything else, a label value holding a
/// brace included, counts as an expression: a subquery is always right,
/// only slower.
fn is_selector(query: &str) -> bool {
    let (name, matchers) = match query.find('{') {
        Some(i) => (&query[..i], Some(&query[i..])),
        None => (query, None),
    };
    let mut chars = name.chars();
    let name_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let matchers_ok = matchers.is_none_or(|m| {
        m.ends_with('}') && m.matches('{').count() == 1 && m.matches('}').count() == 1
    });
    name_ok && matchers_ok && !is_keyword(name)
}

/// `query` for the namespaces `only` (the value of `label`), when it is a
/// series selector: the names are added as a matcher Prometheus looks up
/// as a set. An expression, or `All`, is asked as it is, of every namespace.
pub fn naming(query: &str, label: &str, only: &crate::rightsizing::Namespaces) -> String {
    let query = query.trim();
    let crate::rightsizing::Namespaces::Only(names) = only else {
        return query.to_owned();
    };
    if !is_selector(query) || names.is_empty() {
        return query.to_owned();
    }
    // Namespace names are DNS labels: nothing in them needs escaping in a
    // regex or a PromQL string. Any other name is not matched by name.
    let plain = |n: &String| {
        n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !names.iter().all(plain) {
        return query.to_owned();
    }
    let alternatives = names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("|");
    let matcher = format!("{label}=~\"{alternatives}\"");
    match query.strip_suffix('}') {
        Some(open) if open.trim_end().ends_with('{') => format!("{open}{matcher}}}"),
        Some(open) => format!("{open}, {matcher}}}"),
        None => format!("{query}{{{matcher}}}"),
    }
}

/// PromQL words that parse as a name but are not series.
fn is_keyword(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "sum"
            | "min"
            | "max"
            | "avg"
            | "count"
            | "by"
            | "without"
            | "on"
            | "ignoring"
            | "bool"
            | "and"
            | "or"
            | "unless"
            | "offset"
            | "inf"
            | "nan"
    )
}

impl Queries {
    /// The series the rules of [`recording_rules`] write: set these as the
    /// queries once Prometheus records them.
    pub fn recorded() -> Self {
        Self {
            cpu: "namespace:govcloud_vcpu_utilisation:ratio".into(),
            memory: "namespace:govcloud_memory_utilisation:ratio".into(),
            disk_used: "namespace:govcloud_data_disk_used:bytes".into(),
            disk_capacity: "namespace:govcloud_data_disk_capacity:bytes".into(),
        }
    }
}

#[derive(Serialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Serialize)]
struct RuleGroup {
    name: String,
    interval: String,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
struct Rule {
    record: String,
    expr: String,
}

/// A Prometheus rules file that records each query of `raw` under its name in
/// [`Queries::recorded`], every `interval_seconds` (the resolution of the
/// daily peaks: each day's peak then reads `86400 / interval_seconds`
/// samples per namespace).
pub fn recording_rules(raw: &Queries, interval_seconds: u32) -> String {
    let names = Queries::recorded();
    let rules = [
        (names.cpu, &raw.cpu),
        (names.memory, &raw.memory),
        (names.disk_used, &raw.disk_used),
        (names.disk_capacity, &raw.disk_capacity),
    ]
    .into_iter()
    .map(|(record, expr)| Rule {
        record,
        expr: expr.trim().to_owned(),
    })
    .collect();
    let file = RuleFile {
        groups: vec![RuleGroup {
            name: "govcloud-utilisation".into(),
            interval: format!("{interval_seconds}s"),
            rules,
        }],
    };
    let yaml = serde_saphyr::to_string(&file).unwrap_or_default();
    format!(
        "# Recording rules for govcloud-operator's utilisation queries (Art. 18).\n\
         # Load them into Prometheus (rule_files, or a PrometheusRule), then set\n\
         # prometheus.queries in the operator's configuration to the recorded names.\n\
         # Generated by `govcloud-operator recording-rules`.\n{yaml}"
    )
}

/// How the series that answer for one namespace make its daily value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// The largest: utilisation ratios, where the busiest answers.
    Max,
    /// Their sum: bytes used and capacity of several disks add up.
    Sum,
}

/// Groups points into daily values by the value of `label`: each series'
/// largest point per Beijing day (points are one per day; the max guards
/// against more), then the series of one value combined by `combine`.
pub fn by_label(series: &[Series], label: &str, combine: Combine) -> BTreeMap<String, Daily> {
    let mut out: BTreeMap<String, Daily> = BTreeMap::new();
    for s in series {
        let Some(key) = s.labels.get(label) else {
            continue;
        };
        let mut own = Daily::new();
        for (at, v) in &s.points {
            if v.is_finite() {
                let e = own.entry(day_of(*at)).or_insert(*v);
                *e = e.max(*v);
            }
        }
        let daily = out.entry(key.clone()).or_default();
        for (day, v) in own {
            daily
                .entry(day)
                .and_modify(|e| {
                    *e = match combine {
                        Combine::Max => e.max(v),
                        Combine::Sum => *e + v,
                    }
                })
                .or_insert(v);
        }
    }
    out
}

/// The form of a `/api/v1/query_range` request (sent by POST, so that long
/// queries fit): times to the millisecond, the step in seconds.
pub fn range_form(query: &str, start: Timestamp, end: Timestamp, step: SignedDuration) -> String {
    let seconds = |t: Timestamp| format!("{:.3}", t.as_millisecond() as f64 / 1000.0);
    form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .append_pair("start", &seconds(start))
        .append_pair("end", &seconds(end))
        .append_pair("step", &format!("{}s", step.as_secs()))
        .finish()
}

/// Reads the answer of Prometheus at `url` to a range query: the series of
/// its matrix, or what went wrong (`status` is the HTTP status code).
pub fn parse_matrix(
    url: &str,
    query: &str,
    status: u16,
    body: &[u8],
) -> Result<Vec<Series>, Error> {
    let ok = (200..300).contains(&status);
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        if ok {
            Error::Response(e.to_string())
        } else {
            Error::Unreachable {
                url: url.to_owned(),
                message: format!("HTTP {status}"),
            }
        }
    })?;
    if envelope.status != "success" {
        return Err(Error::Query {
            query: query.to_owned(),
            message: envelope.error.unwrap_or_else(|| format!("HTTP {status}")),
        });
    }
    let data = envelope
        .data
        .ok_or_else(|| Error::Response("no data".into()))?;
    if data.result_type != "matrix" {
        return Err(Error::Response(format!("result type {}", data.result_type)));
    }
    Ok(data
        .result
        .into_iter()
        .map(|s| Series {
            labels: s.metric,
            points: s
                .values
                .into_iter()
                .filter_map(|(t, v)| {
                    let at = Timestamp::from_millisecond((t * 1000.0).round() as i64).ok()?;
                    Some((at, v.parse::<f64>().ok()?))
                })
                .collect(),
        })
        .collect())
}

/// The two halves of the days `[first, last]`, asked for separately when
/// Prometheus refuses them together; `None` for a single day.
pub fn halves(first: Date, last: Date) -> Option<((Date, Date), (Date, Date))> {
    if first >= last {
        return None;
    }
    let days = (last - first).get_days();
    let middle = first
        .checked_add(jiff::Span::new().days(days / 2))
        .unwrap_or(first);
    Some(((first, middle), (middle.tomorrow().unwrap_or(last), last)))
}

/// Whether Prometheus refused a query for its size rather than its text.
pub(crate) fn too_large(message: &str) -> bool {
    message.contains("too many samples") || message.contains("timed out")
}

/// The four answers one evaluation needs, for every namespace at once.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// What was read; `None`: everything there is.
    pub plan: Option<crate::rightsizing::Plan>,
    pub cpu: BTreeMap<String, Daily>,
    pub memory: BTreeMap<String, Daily>,
    pub disk_used: BTreeMap<String, Daily>,
    pub disk_capacity: BTreeMap<String, Daily>,
}

impl Answers {
    /// The namespaces answered for that are not among `known` (the tenancy
    /// namespaces in service): their series are ignored.
    pub fn unmatched(&self, known: &std::collections::BTreeSet<String>) -> Vec<String> {
        let answered: std::collections::BTreeSet<&String> = self
            .cpu
            .keys()
            .chain(self.memory.keys())
            .chain(self.disk_used.keys())
            .chain(self.disk_capacity.keys())
            .collect();
        answered
            .into_iter()
            .filter(|ns| !known.contains(*ns))
            .cloned()
            .collect()
    }

    /// What they say about the tenancy namespace `ns`.
    pub fn usage(&self, ns: &str) -> Usage {
        let empty = Daily::new();
        let used = self.disk_used.get(ns).unwrap_or(&empty);
        let capacity = self.disk_capacity.get(ns).unwrap_or(&empty);
        Usage {
            cpu: self.cpu.get(ns).cloned().unwrap_or_default(),
            memory: self.memory.get(ns).cloned().unwrap_or_default(),
            disk: used
                .iter()
                .filter_map(|(d, u)| capacity.get(d).filter(|c| **c > 0.0).map(|c| (*d, u / c)))
                .collect(),
            disk_capacity: capacity.values().next_back().copied(),
            disk_used: used.clone(),
            from: self.plan.as_ref().map(|p| p.from(ns)),
            used_from: self.plan.as_ref().map(|p| p.used_from(ns)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn art18_an_answer_is_read_as_series_or_says_why_not() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"namespace":"finance-oa"},"values":[[1764518400,"0.5"],[1764604800.25,"NaN"],[1764691200,"x"]]}]}}"#;
        let series = parse_matrix("http://p", "q", 200, body).unwrap();
        assert_eq!(series[0].labels["namespace"], "finance-oa");
        let points: Vec<String> = series[0]
            .points
            .iter()
            .map(|(t, v)| format!("{t} {v}"))
            .collect();
        assert_eq!(
            points,
            ["2025-11-30T16:00:00Z 0.5", "2025-12-01T16:00:00.25Z NaN"]
        );
        let refused = br#"{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}"#;
        match parse_matrix("http://p", "q", 422, refused) {
            Err(e @ Error::Query { .. }) => assert!(too_large(&e.to_string())),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_matrix("http://p", "q", 502, b"<html>bad gateway</html>"),
            Err(Error::Unreachable { message, .. }) if message == "HTTP 502"
        ));
        assert!(matches!(
            parse_matrix("http://p", "q", 200, br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            Err(Error::Response(m)) if m == "result type vector"
        ));
    }

    #[test]
    fn art18_days_refused_together_are_asked_for_in_halves_down_to_one() {
        let d = |s: &str| -> Date { s.parse().unwrap() };
        assert_eq!(
            halves(d("2026-09-01"), d("2026-11-30")),
            Some((
                (d("2026-09-01"), d("2026-10-16")),
                (d("2026-10-17"), d("2026-11-30"))
            ))
        );
        assert_eq!(
            halves(d("2026-11-29"), d("2026-11-30")),
            Some((
                (d("2026-11-29"), d("2026-11-29")),
                (d("2026-11-30"), d("2026-11-30"))
            ))
        );
        assert_eq!(halves(d("2026-11-30"), d("2026-11-30")), None);
    }
    use jiff::civil::date;

    #[test]
    fn a_sample_at_23_59_counts_for_its_day_and_00_01_for_the_next() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        // 23:59 and 00:01 Beijing, a minute either side of midnight.
        assert_eq!(day_of(at("2026-03-05T15:59:00Z")), date(2026, 3, 5));
        assert_eq!(day_of(at("2026-03-05T16:01:00Z")), date(2026, 3, 6));
        // The daily peak of 2026-03-05 is evaluated at 23:59:59.999 Beijing,
        // whose one-day window holds the 5-minute steps 00:00 .. 23:55.
        assert_eq!(
            day_end(date(2026, 3, 5)).to_string(),
            "2026-03-05T15:59:59.999Z"
        );
        assert_eq!(day_of(day_end(date(2026, 3, 5))), date(2026, 3, 5));
    }

    #[test]
    fn art18_namespaces_answered_that_hold_no_tenancy_are_named() {
        let one = |ns: &str| BTreeMap::from([(ns.to_owned(), Daily::new())]);
        let answers = Answers {
            cpu: one("finance-oa-ed59c856e4"),
            memory: one("kube-system"),
            disk_used: one("finance-oa-ed59c856e4"),
            disk_capacity: one("monitoring"),
            plan: None,
        };
        let known = std::collections::BTreeSet::from(["finance-oa-ed59c856e4".to_owned()]);
        assert_eq!(answers.unmatched(&known), ["kube-system", "monitoring"]);
    }

    #[test]
    fn points_group_by_namespace_and_day() {
        let s = |ns: &str, points: &[(&str, f64)]| Series {
            labels: BTreeMap::from([("namespace".to_owned(), ns.to_owned())]),
            points: points
                .iter()
                .map(|(t, v)| (t.parse().unwrap(), *v))
                .collect(),
        };
        let grouped = by_label(
            &[
                s(
                    "finance-oa",
                    &[
                        ("2026-03-05T15:59:59.999Z", 0.4),
                        ("2026-03-06T15:59:59.999Z", f64::NAN),
                    ],
                ),
                s("education-exam", &[("2026-03-05T15:59:59.999Z", 0.9)]),
            ],
            "namespace",
            Combine::Max,
        );
        assert_eq!(
            grouped["finance-oa"],
            Daily::from([(date(2026, 3, 5), 0.4)])
        );
        assert_eq!(grouped["education-exam"][&date(2026, 3, 5)], 0.9);

        // Two series answer for one namespace (two VMs, two disks): the
        // busier ratio, but the bytes of both disks.
        let gib = 1024.0 * 1024.0 * 1024.0;
        let two = [
            s("finance-oa", &[("2026-03-05T15:59:59.999Z", 100.0 * gib)]),
            s("finance-oa", &[("2026-03-05T15:59:59.999Z", 300.0 * gib)]),
        ];
        let day = date(2026, 3, 5);
        assert_eq!(
            by_label(&two, "namespace", Combine::Max)["finance-oa"][&day],
            300.0 * gib
        );
        assert_eq!(
            by_label(&two, "namespace", Combine::Sum)["finance-oa"][&day],
            400.0 * gib,
            "disk bytes add up"
        );
    }

    #[test]
    fn a_stored_series_is_read_as_a_range_and_an_expression_at_each_step_of_its_day() {
        assert_eq!(
            daily_peak("namespace:govcloud_vcpu_utilisation:ratio", 300, 300).unwrap(),
            "max_over_time(namespace:govcloud_vcpu_utilisation:ratio[1d])"
        );
        assert_eq!(
            daily_peak(r#" up{job="kubevirt",namespace!=""} "#, 60, 300).unwrap(),
            r#"max_over_time(up{job="kubevirt",namespace!=""}[1d])"#
        );
        for expression in [
            Queries::default().cpu,
            Queries::default().disk_used,
            "sum(up)".into(),
            "up offset 1h".into(),
            "up / 2".into(),
            r#"up{a="}"}"#.into(),
        ] {
            let query = daily_peak(&expression, 60, 300).unwrap();
            assert!(query.contains("[1d:60s])"), "{expression}: {query}");
            // Midnight, each minute of the lookback, and after it.
            for since in [0, 60, 120, 180, 240, 300] {
                assert!(
                    query.contains(&format!("vector({SINCE_MIDNIGHT}) == {since})")),
                    "{expression}: {since}"
                );
            }
            assert!(query.contains(&format!("vector({SINCE_MIDNIGHT}) > 300)")));
            assert!(!query.contains("== 360"), "{expression}");
        }
        assert_eq!(
            daily_peak("vector(1)", 60, 300).unwrap(),
            "max_over_time((vector(1))[1d:60s])"
        );
        for bad in ["up[5m]", "sum(", "scalar(up)", "count_values(\"v\", up)"] {
            assert!(daily_peak(bad, 60, 300).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_resolution_that_steps_over_midnight_or_a_query_that_cannot_be_read_is_refused() {
        let ok = PrometheusConfig::default();
        assert_eq!(ok.check(), Ok(()));
        for r in [15, 30, 60, 300, 900, 3600] {
            let c = PrometheusConfig {
                resolution_seconds: r,
                ..ok.clone()
            };
            assert_eq!(c.check(), Ok(()), "{r}");
        }
        for r in [0, 7, 70, 86400] {
            let c = PrometheusConfig {
                resolution_seconds: r,
                ..ok.clone()
            };
            assert!(c.check().unwrap_err().contains("28800"), "{r}");
        }
        let mut c = ok.clone();
        c.queries.memory = "sum(".into();
        assert!(c.check().unwrap_err().starts_with("queries.memory: "));
        let c = PrometheusConfig {
            lookback_seconds: 0,
            ..ok
        };
        assert!(c.check().is_err());
    }

    #[test]
    fn seconds_since_midnight_in_promql_are_beijing_seconds() {
        // The expression's arithmetic on the instants a subquery steps through.
        let since = |t: f64| (t + 28800.0).rem_euclid(86400.0);
        for day in [date(2026, 3, 5), date(2026, 12, 31), date(2027, 1, 1)] {
            let start = calendar::start_of_day(day).as_second() as f64;
            assert_eq!(since(start), 0.0);
            assert_eq!(since(start + 300.0), 300.0);
            assert_eq!(since(start - 60.0), 86340.0);
        }
    }

    #[test]
    fn the_recording_rules_record_each_query_under_its_recorded_name() {
        let raw = Queries::default();
        let text = recording_rules(&raw, 300);
        let file: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(file["groups"][0]["interval"], "300s");
        let rules = file["groups"][0]["rules"].as_array().unwrap();
        let recorded = Queries::recorded();
        let pairs: Vec<(&str, &str)> = rules
            .iter()
            .map(|r| (r["record"].as_str().unwrap(), r["expr"].as_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                (recorded.cpu.as_str(), raw.cpu.as_str()),
                (recorded.memory.as_str(), raw.memory.as_str()),
                (recorded.disk_used.as_str(), raw.disk_used.as_str()),
                (recorded.disk_capacity.as_str(), raw.disk_capacity.as_str()),
            ]
        );
        for name in [
            recorded.cpu,
            recorded.memory,
            recorded.disk_used,
            recorded.disk_capacity,
        ] {
            assert!(is_selector(&name), "{name}");
        }
    }

    #[test]
    fn art18_a_read_of_some_namespaces_names_them_in_a_selector_only() {
        use crate::rightsizing::Namespaces;
        let only = Namespaces::Only(["finance-oa-1".to_owned(), "hr-2".to_owned()].into());
        assert_eq!(
            naming(
                "namespace:govcloud_data_disk_used:bytes",
                "namespace",
                &only
            ),
            r#"namespace:govcloud_data_disk_used:bytes{namespace=~"finance-oa-1|hr-2"}"#
        );
        assert_eq!(
            naming(r#"used{mount_point!="/"}"#, "ns", &only),
            r#"used{mount_point!="/", ns=~"finance-oa-1|hr-2"}"#
        );
        assert_eq!(
            naming("used{}", "ns", &only),
            r#"used{ns=~"finance-oa-1|hr-2"}"#
        );
        // An expression, every namespace, or a name that is no DNS label:
        // asked as it is.
        let expression = "sum by (namespace) (used)";
        assert_eq!(naming(expression, "namespace", &only), expression);
        assert_eq!(naming("used", "namespace", &Namespaces::All), "used");
        let odd = Namespaces::Only(["a|b".to_owned()].into());
        assert_eq!(naming("used", "namespace", &odd), "used");
    }
}
