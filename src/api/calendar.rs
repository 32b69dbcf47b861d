//! WorkCalendar: one year of the State Council's holiday arrangements.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{opt_text, text};

/// The holidays and adjusted working days of one year, as published by the
/// General Office of the State Council each November. Days not listed follow
/// the normal week: Monday to Friday work, Saturday and Sunday off.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "govcloud.dev",
    version = "v1alpha1",
    kind = "WorkCalendar",
    status = "WorkCalendarStatus",
    shortname = "wcal",
    category = "govcloud",
    doc = "The State Council's holiday arrangements for one year, for deadlines in working days.",
    printcolumn(name = "Year", type_ = "integer", json_path = ".spec.year"),
    printcolumn(name = "Notice", type_ = "string", json_path = ".spec.notice"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "self.holidays.all(d, d.date.getFullYear() == self.year) && (!has(self.workingDays) || self.workingDays.all(d, d.date.getFullYear() == self.year))"
).message("every date must fall in spec.year"))]
#[x_kube(validation = Rule::new(
    "!has(self.workingDays) || self.workingDays.all(w, !self.holidays.exists(h, h.date == w.date))"
).message("a date cannot be both a holiday and an adjusted working day"))]
pub struct WorkCalendarSpec {
    /// The year these dates belong to.
    #[schemars(range(min = 2000, max = 2100))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.year cannot change; create a calendar for the other year"))]
    pub year: i32,
    /// The notice the dates come from, e.g. 国办发明电〔2024〕12号.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opt_text::<200>")]
    pub notice: Option<String>,
    /// Days off (放假), weekends within a holiday included.
    #[schemars(length(max = 60))]
    #[x_kube(validation = Rule::new("self.all(d, self.exists_one(o, o.date == d.date))")
        .message("each date may be listed only once in spec.holidays"))]
    pub holidays: Vec<CalendarDay>,
    /// Weekend days that are worked (调休上班).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    #[x_kube(validation = Rule::new("self.all(d, self.exists_one(o, o.date == d.date))")
        .message("each date may be listed only once in spec.workingDays"))]
    #[x_kube(validation = Rule::new("self.all(d, d.date.getDayOfWeek() == 0 || d.date.getDayOfWeek() == 6)")
        .message("an adjusted working day (调休上班) must be a Saturday or Sunday; weekdays are working days already"))]
    pub working_days: Vec<CalendarDay>,
}

/// A date and the holiday it belongs to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarDay {
    pub date: jiff::civil::Date,
    /// The holiday, e.g. 春节.
    #[schemars(schema_with = "text::<40>")]
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkCalendarStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
