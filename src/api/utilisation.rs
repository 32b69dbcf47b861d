//! What the utilisation evaluator reports in a tenancy's status: the figures
//! of Art. 18's rules and the recommendations they give (decided by
//! [`crate::rightsizing`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum Metric {
    Cpu,
    Memory,
    DataDisk,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum Direction {
    ScaleUp,
    ScaleDown,
}

/// One month's figures of one metric, in percent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Month {
    /// `2026-08`.
    pub month: String,
    pub days_with_data: u32,
    pub mean_peak_percent: f64,
    pub peak_percent: f64,
    /// The month was read whole after it closed: its figures are final and
    /// later evaluations use them instead of reading the month again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub complete: bool,
    /// The mean of the daily peaks, as a fraction, unrounded: what the rules
    /// compare (the percentages are rounded for reading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_peak: Option<f64>,
    /// The largest daily peak, as a fraction, unrounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<f64>,
}

/// The figures of one metric, in percent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricSummary {
    /// Mean of the daily peaks of the last 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last30_mean_peak_percent: Option<f64>,
    pub last30_days_with_data: u32,
    /// The last complete months, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<Month>,
}

/// The data disk's figures for rule 18(4), in GiB.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskSummary {
    #[serde(rename = "usedGiB")]
    pub used_gib: f64,
    #[serde(rename = "capacityGiB")]
    pub capacity_gib: f64,
    #[serde(rename = "yearGrowthGiB")]
    pub year_growth_gib: f64,
    /// How the growth was found: `year-on-year` or `least-squares`.
    pub growth_method: String,
    #[serde(rename = "freeBeyondGrowthGiB")]
    pub free_beyond_growth_gib: f64,
}

/// The utilisation summary kept in a tenancy's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub cpu: MetricSummary,
    pub memory: MetricSummary,
    pub data_disk: MetricSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskSummary>,
    /// The sums of the growth line of rule 18(4), carried from one evaluation
    /// to the next so that the history is read from Prometheus once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_growth: Option<GrowthSums>,
}

/// The least-squares sums of the daily peaks of data-disk bytes used, day by
/// day from `from` (x, in days since `from`; y, in bytes) through `through`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrowthSums {
    /// The first day with data (x = 0), `2026-07-15`; none yet, unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The last day accounted for, with data or not.
    pub through: String,
    pub days: u32,
    pub sum_x: f64,
    pub sum_y: f64,
    pub sum_xy: f64,
    pub sum_xx: f64,
}

/// A recommendation of Art. 18.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// `art18-1` .. `art18-4`.
    pub rule: String,
    pub direction: Direction,
    pub metric: Metric,
    /// The figures that triggered it.
    pub figures: String,
    /// The size now and the size suggested.
    pub current: String,
    pub suggested: String,
}

/// A rule that could not be evaluated for want of data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Insufficient {
    pub rule: String,
    pub metric: Metric,
    pub reason: String,
}
