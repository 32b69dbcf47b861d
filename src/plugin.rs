//! What the kubectl plugin (`kubectl govcloud`) computes, apart from talking
//! to the cluster: what waits for review and by when, and the annotations a
//! decision sets. Pure: objects, the calendar and `now` are arguments.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{
    ChangeAction, ChangePhase, ChangeRequest, CloudResourceRequest, Decision, RequestPhase,
    Tenancy, keys,
};
use crate::calendar::{Calendar, display, local_date};

/// One thing waiting for a reviewer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The system (a request) or the change and its tenancy.
    pub what: String,
    pub phase: String,
    pub filed: Option<Timestamp>,
    /// The deadline: a change's review (Art. 17, 19), an emergency opening's
    /// paperwork (Art. 13 ¶2); requests have none.
    pub due: Option<Timestamp>,
    /// Working days from today to the due day (0: due today), negative when
    /// overdue (working days since).
    pub working_days_left: Option<i64>,
    pub overdue: bool,
    /// The operator counted the due date without the State Council's
    /// calendar for a year it spans (Monday to Friday): it may move.
    pub due_uncertain: bool,
}

/// Whether the operator says it counted without a year's calendar.
fn uncertain(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> bool {
    crate::conditions::get(conditions, crate::review::condition::CALENDAR_COMPLETE)
        .is_some_and(|c| c.status == "False")
}

/// Rejecting and returning need an opinion (what is wrong, what to
/// supplement).
pub fn needs_opinion(decision: Decision) -> bool {
    matches!(decision, Decision::Reject | Decision::Return)
}

/// The merge patch that records `decision` by `user` on the object as it was
/// read: its generation, and its resourceVersion so that the patch fails
/// (409) if the object changed since, rather than approving something unread.
pub fn decision_patch(
    decision: Decision,
    user: &str,
    generation: i64,
    resource_version: &str,
    opinion: Option<&str>,
) -> Value {
    let mut annotations = json!({
        keys::DECISION: decision.as_str(),
        keys::DECIDED_GENERATION: generation.to_string(),
        keys::DECIDED_BY: user,
    });
    // An opinion left from an earlier decision does not carry over.
    annotations[keys::OPINION] = json!(opinion);
    json!({ "metadata": { "resourceVersion": resource_version, "annotations": annotations } })
}

/// What `rectify` writes and says: opening a case for a trigger (Art. 20),
/// or closing the open one as rectified.
pub fn rectification(trigger: Option<u8>, rectified: Option<&str>) -> Option<(Value, String)> {
    match (trigger, rectified) {
        (Some(code), _) => Some((
            json!({ keys::RECTIFICATION: code.to_string() }),
            format!("rectification case opened (trigger {code})"),
        )),
        (None, Some(note)) => Some((
            json!({ keys::RECTIFIED: note }),
            format!("rectification case closed as rectified: {note}"),
        )),
        (None, None) => None,
    }
}

fn working_days_left(calendar: &Calendar, now: Timestamp, due: Timestamp) -> i64 {
    let (today, day) = (local_date(now), local_date(due));
    if day >= today {
        i64::from(calendar.working_days_between(today, day))
    } else {
        -i64::from(calendar.working_days_between(day, today))
    }
}

/// What waits for review, overdue first (most overdue first), then by due
/// date, then oldest filed first.
pub fn pending(
    requests: &[CloudResourceRequest],
    changes: &[ChangeRequest],
    calendar: &Calendar,
    now: Timestamp,
) -> Vec<Pending> {
    let mut out = Vec::new();
    for r in requests {
        let status = r.status.clone().unwrap_or_default();
        let phase = status.phase.unwrap_or(RequestPhase::Submitted);
        let due = match phase {
            RequestPhase::Submitted | RequestPhase::UnderReview | RequestPhase::ExpertReview => {
                None
            }
            RequestPhase::EmergencyOpened => status.paperwork_due_at.map(|t| t.0),
            _ => continue,
        };
        out.push(Pending {
            kind: "CloudResourceRequest",
            namespace: r.metadata.namespace.clone().unwrap_or_default(),
            name: r.metadata.name.clone().unwrap_or_default(),
            what: format!("{} / {}", r.spec.unit.name, r.spec.system.name),
            phase: format!("{phase:?}"),
            // When it was filed (the operator's record), not when the object was made.
            filed: status.submitted_at.map(|t| t.0).or(r
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)),
            due,
            working_days_left: due.map(|d| working_days_left(calendar, now, d)),
            overdue: due.is_some_and(|d| d < now),
            due_uncertain: due.is_some() && uncertain(&status.conditions),
        });
    }
    for c in changes {
        let status = c.status.clone().unwrap_or_default();
        let phase = status.phase.unwrap_or(ChangePhase::Submitted);
        if !matches!(phase, ChangePhase::Submitted | ChangePhase::UnderReview) {
            continue;
        }
        let due = status.review_due_at.map(|t| t.0);
        let action = match c.spec.action {
            ChangeAction::Modify => "Modify",
            ChangeAction::Terminate => "Terminate",
        };
        out.push(Pending {
            kind: "ChangeRequest",
            namespace: c.metadata.namespace.clone().unwrap_or_default(),
            name: c.metadata.name.clone().unwrap_or_default(),
            what: format!("{action} tenancy {}", c.spec.tenancy),
            phase: format!("{phase:?}"),
            filed: status.submitted_at.map(|t| t.0).or(c
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0)),
            due,
            working_days_left: due.map(|d| working_days_left(calendar, now, d)),
            overdue: due.is_some_and(|d| d < now),
            due_uncertain: due.is_some() && uncertain(&status.conditions),
        });
    }
    out.sort_by(|a, b| {
        (
            !a.overdue,
            a.due.is_none(),
            a.due,
            a.filed,
            &a.namespace,
            &a.name,
        )
            .cmp(&(
                !b.overdue,
                b.due.is_none(),
                b.due,
                b.filed,
                &b.namespace,
                &b.name,
            ))
    });
    out
}

/// The table `kubectl govcloud pending` prints.
pub fn pending_table(items: &[Pending], all_namespaces: bool) -> String {
    let mut rows = vec![{
        let mut h = vec!["KIND", "NAME", "WHAT", "PHASE", "FILED", "DUE", "LEFT"];
        if all_namespaces {
            h.insert(0, "NAMESPACE");
        }
        h.into_iter().map(str::to_owned).collect::<Vec<_>>()
    }];
    for p in items {
        let left = match p.working_days_left {
            None => "-".to_owned(),
            Some(n) if p.overdue => format!("OVERDUE {} wd", -n.min(0)),
            Some(n) => format!("{n} wd"),
        };
        let mut row = vec![
            match p.kind {
                "CloudResourceRequest" => "crr".to_owned(),
                _ => "chr".to_owned(),
            },
            p.name.clone(),
            p.what.clone(),
            p.phase.clone(),
            p.filed
                .map(|t| local_date(t).to_string())
                .unwrap_or_default(),
            match p.due {
                Some(d) if p.due_uncertain => {
                    format!("{} (Mon-Fri, no calendar)", display(d))
                }
                Some(d) => display(d),
                None => "-".into(),
            },
            left,
        ];
        if all_namespaces {
            row.insert(0, p.namespace.clone());
        }
        rows.push(row);
    }
    table(&rows)
}

/// One tenancy in a unit's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenancyReport {
    pub name: String,
    pub phase: String,
    /// What it holds; none once reclaimed or retired (released, wiped).
    pub vcpu: Option<u64>,
    pub memory_gib: Option<u64>,
    pub storage_gib: Option<u64>,
    /// Rightsizing recommendations (Art. 18), as `art18-1 Cpu ScaleUp 16 -> 22`.
    pub recommendations: Vec<String>,
    /// Compliance evidence missing past its deadline (Art. 12 ¶2, 24).
    pub compliance_gaps: Vec<String>,
    /// An open rectification case (Art. 20): its trigger and deadline.
    pub rectification: Option<String>,
    pub isolated: bool,
}

/// One unit's report: its tenancies and what of it is overdue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitReport {
    pub namespace: String,
    pub unit: String,
    pub tenancies: Vec<TenancyReport>,
    pub overdue: Vec<Pending>,
}

/// Per unit (namespace): tenancies with their size, recommendations,
/// compliance gaps, open cases and isolation, and the unit's overdue items.
pub fn report(
    tenancies: &[Tenancy],
    requests: &[CloudResourceRequest],
    changes: &[ChangeRequest],
    calendar: &Calendar,
    now: Timestamp,
) -> Vec<UnitReport> {
    let mut units: BTreeMap<String, UnitReport> = BTreeMap::new();
    fn unit<'a>(
        units: &'a mut BTreeMap<String, UnitReport>,
        ns: &str,
        name: &str,
    ) -> &'a mut UnitReport {
        units.entry(ns.to_owned()).or_insert_with(|| UnitReport {
            namespace: ns.to_owned(),
            unit: name.to_owned(),
            tenancies: Vec::new(),
            overdue: Vec::new(),
        })
    }
    for t in tenancies {
        let ns = t.metadata.namespace.clone().unwrap_or_default();
        let status = t.status.clone().unwrap_or_default();
        let a = &t.spec.allocation;
        let sum = |f: &dyn Fn(&crate::api::VmGroup) -> u64| -> u64 {
            a.vm_groups.iter().map(|g| u64::from(g.count) * f(g)).sum()
        };
        // Reclaimed and retired tenancies hold nothing any more.
        let holds = !matches!(
            status.phase,
            Some(crate::api::TenancyPhase::Reclaimed | crate::api::TenancyPhase::Retired)
        );
        let held = |n: u64| holds.then_some(n);
        let report = TenancyReport {
            name: t.metadata.name.clone().unwrap_or_default(),
            phase: status
                .phase
                .map(|p| format!("{p:?}"))
                .unwrap_or_else(|| "Provisioning".into()),
            vcpu: held(sum(&|g| g.vcpu.into())),
            memory_gib: held(sum(&|g| g.memory_gib.into())),
            storage_gib: held(a.cloud_storage.iter().map(|v| u64::from(v.size_gib)).sum()),
            recommendations: status
                .recommendations
                .iter()
                .map(|r| {
                    format!(
                        "{} {:?} {:?} {} -> {}",
                        r.rule, r.metric, r.direction, r.current, r.suggested
                    )
                })
                .collect(),
            compliance_gaps: status.compliance_gaps.clone(),
            rectification: status
                .rectification
                .filter(|c| c.closed_at.is_none())
                .map(|c| format!("trigger {} due {}", c.trigger.code(), display(c.due_at.0))),
            isolated: status.isolation.is_some(),
        };
        unit(&mut units, &ns, &t.spec.unit_name)
            .tenancies
            .push(report);
    }
    for p in pending(requests, changes, calendar, now) {
        if p.overdue {
            let name = requests
                .iter()
                .find(|r| r.metadata.namespace.as_deref() == Some(p.namespace.as_str()))
                .map(|r| r.spec.unit.name.clone())
                .unwrap_or_default();
            unit(&mut units, &p.namespace.clone(), &name)
                .overdue
                .push(p);
        }
    }
    units.into_values().collect()
}

/// The text `kubectl govcloud report` prints: per unit, its tenancies, then
/// what is overdue.
pub fn report_text(units: &[UnitReport]) -> String {
    let mut out = String::new();
    for u in units {
        out.push_str(&format!("UNIT {} ({})\n", u.unit, u.namespace));
        let mut rows = vec![
            [
                "TENANCY",
                "PHASE",
                "VCPU",
                "MEM-GIB",
                "STORAGE-GIB",
                "RECOMMENDATIONS",
                "GAPS",
                "CASE",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for t in &u.tenancies {
            let mut phase = t.phase.clone();
            if t.isolated {
                phase.push_str(",Isolated");
            }
            rows.push(vec![
                t.name.clone(),
                phase,
                t.vcpu.map_or("-".into(), |n| n.to_string()),
                t.memory_gib.map_or("-".into(), |n| n.to_string()),
                t.storage_gib.map_or("-".into(), |n| n.to_string()),
                if t.recommendations.is_empty() {
                    "-".into()
                } else {
                    t.recommendations.join("; ")
                },
                if t.compliance_gaps.is_empty() {
                    "-".into()
                } else {
                    t.compliance_gaps.join("; ")
                },
                t.rectification.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        if u.tenancies.is_empty() {
            out.push_str("  no tenancies\n");
        } else {
            for line in table(&rows).lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
        for p in &u.overdue {
            out.push_str(&format!(
                "  OVERDUE {} {}: {} (due {})\n",
                if p.kind == "ChangeRequest" {
                    "chr"
                } else {
                    "crr"
                },
                p.name,
                p.what,
                p.due.map(display).unwrap_or_default()
            ));
        }
        out.push('\n');
    }
    out
}

/// One moment in an object's history: an event, or a condition changing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moment {
    pub at: Timestamp,
    /// `Event` or `Condition`.
    pub source: &'static str,
    /// An event's reason, or `Type=Status Reason` for a condition.
    pub what: String,
    pub message: String,
}

/// An object's events and conditions in time order (events first at equal
/// times, since a condition reports what an event announced).
pub fn timeline(mut moments: Vec<Moment>) -> Vec<Moment> {
    moments.sort_by_key(|m| (m.at, m.source != "Event"));
    moments
}

/// The table `kubectl govcloud timeline` prints.
pub fn timeline_table(moments: &[Moment]) -> String {
    let mut rows = vec![vec![
        "TIME".to_owned(),
        "SOURCE".to_owned(),
        "WHAT".to_owned(),
        "MESSAGE".to_owned(),
    ]];
    for m in moments {
        rows.push(vec![
            display(m.at),
            m.source.to_owned(),
            m.what.clone(),
            m.message.clone(),
        ]);
    }
    table(&rows)
}

/// Columns padded to their widest cell (counting characters, so that Chinese
/// text lines up as well as a terminal allows), as kubectl prints them.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| width(c))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - width(cell) + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Display width: CJK characters take two columns.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> Calendar {
        let mut c = Calendar::new();
        // 2025: National Day holidays 1-8 October, 28 September and
        // 11 October worked (the State Council notice).
        let holidays = (1..=8).map(|d| jiff::civil::date(2025, 10, d));
        c.add_year(
            2025,
            holidays,
            [
                jiff::civil::date(2025, 9, 28),
                jiff::civil::date(2025, 10, 11),
            ],
        )
        .unwrap();
        c
    }

    fn change(name: &str, filed: &str, due: Option<&str>, phase: ChangePhase) -> ChangeRequest {
        serde_json::from_value(json!({
            "apiVersion": "govcloud.dev/v1alpha1", "kind": "ChangeRequest",
            "metadata": { "name": name, "namespace": "unit-finance", "creationTimestamp": filed },
            "spec": {
                "tenancy": "oa", "action": "Modify",
                "itLead": { "name": "王建国", "phone": "13905310001", "email": "w@x.gov.cn" },
                "technicalContact": { "name": "陈磊", "phone": "13705310003", "email": "c@x.gov.cn" },
                "reason": "扩容",
            },
            "status": { "phase": phase, "reviewDueAt": due },
        }))
        .unwrap()
    }

    fn request(name: &str, filed: &str) -> CloudResourceRequest {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/samples/20-cloudresourcerequest-oa.yaml"
        ))
        .unwrap();
        let mut r: CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        r.metadata.name = Some(name.into());
        r.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            filed.parse().unwrap(),
        ));
        r.status = serde_json::from_value(json!({ "phase": "UnderReview" })).unwrap();
        r
    }

    #[test]
    fn art17_pending_shows_when_filed_and_marks_a_due_date_counted_without_a_calendar() {
        let now: Timestamp = "2025-10-20T02:00:00Z".parse().unwrap();
        // Made on 1 October, filed (status.submittedAt) on 10 October, Beijing time.
        let mut c = change(
            "resized",
            "2025-10-01T02:00:00Z",
            Some("2025-10-24T15:59:59Z"),
            ChangePhase::UnderReview,
        );
        let status = c.status.as_mut().unwrap();
        status.submitted_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2025-10-09T17:00:00Z".parse().unwrap(),
        ));
        let sure = pending(&[], std::slice::from_ref(&c), &calendar(), now);
        assert!(!sure[0].due_uncertain);
        let table = pending_table(&sure, false);
        assert!(
            table.contains("2025-10-10"),
            "filed on the 10th in Beijing: {table}"
        );
        assert!(!table.contains("no calendar"), "{table}");

        c.status.as_mut().unwrap().conditions = serde_json::from_value(json!([{
            "type": "CalendarComplete", "status": "False", "reason": "YearNotLoaded",
            "message": "no WorkCalendar for 2025", "lastTransitionTime": "2025-10-09T17:00:00Z",
        }]))
        .unwrap();
        let unsure = pending(&[], &[c], &calendar(), now);
        assert!(unsure[0].due_uncertain);
        let table = pending_table(&unsure, false);
        assert!(
            table.contains("2025-10-24 23:59:59 +08:00 (Mon-Fri, no calendar)"),
            "{table}"
        );
    }

    #[test]
    fn art16_a_report_shows_no_size_for_what_was_released() {
        let now: Timestamp = "2026-12-20T02:00:00Z".parse().unwrap();
        let tenancy = |name: &str, phase: &str| {
            let mut t = Tenancy::new(name, crate::lifecycle::tests_support::spec());
            t.metadata.namespace = Some("unit-finance".into());
            t.status = serde_json::from_value(json!({ "phase": phase })).unwrap();
            t
        };
        let units = report(
            &[
                tenancy("oa", "Active"),
                tenancy("old", "Retired"),
                tenancy("idle", "Reclaimed"),
            ],
            &[],
            &[],
            &calendar(),
            now,
        );
        let sizes: Vec<(&str, Option<u64>)> = units[0]
            .tenancies
            .iter()
            .map(|t| (t.name.as_str(), t.vcpu))
            .collect();
        assert_eq!(sizes, [("oa", Some(16)), ("old", None), ("idle", None)]);
        let text = report_text(&units);
        let old = text.lines().find(|l| l.contains("old")).unwrap();
        assert!(old.contains("Retired") && !old.contains("16"), "{old}");
    }

    #[test]
    fn art20_rectify_says_whether_it_opened_or_closed_a_case() {
        let (opened, said) = rectification(Some(3), None).unwrap();
        assert_eq!(opened[keys::RECTIFICATION], "3");
        assert_eq!(said, "rectification case opened (trigger 3)");
        let (closed, said) = rectification(None, Some("漏洞已修复")).unwrap();
        assert_eq!(closed[keys::RECTIFIED], "漏洞已修复");
        assert_eq!(said, "rectification case closed as rectified: 漏洞已修复");
        assert!(rectification(None, None).is_none());
    }

    #[test]
    fn art17_an_overdue_change_comes_first_with_working_days_counted() {
        let now: Timestamp = "2025-10-20T02:00:00Z".parse().unwrap();
        let items = pending(
            &[request("oldest", "2025-09-01T02:00:00Z")],
            &[
                // Due the end of 2025-10-24: 4 working days after Monday the 20th.
                change(
                    "soon",
                    "2025-10-10T02:00:00Z",
                    Some("2025-10-24T15:59:59Z"),
                    ChangePhase::UnderReview,
                ),
                // Filed 2025-09-26, due the end of 2025-10-16: overdue by 2
                // working days (17 and 20 October).
                change(
                    "late",
                    "2025-09-26T02:00:00Z",
                    Some("2025-10-16T15:59:59Z"),
                    ChangePhase::UnderReview,
                ),
                change(
                    "done",
                    "2025-09-01T02:00:00Z",
                    Some("2025-09-15T15:59:59Z"),
                    ChangePhase::Applied,
                ),
            ],
            &calendar(),
            now,
        );
        let names: Vec<&str> = items.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["late", "soon", "oldest"]);
        assert!(items[0].overdue);
        assert_eq!(items[0].working_days_left, Some(-2));
        assert_eq!(items[1].working_days_left, Some(4));
        assert_eq!(items[2].working_days_left, None);
        let table = pending_table(&items, false);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("KIND"), "{table}");
        assert!(
            lines[1].starts_with("chr") && lines[1].contains("OVERDUE 2 wd"),
            "{table}"
        );
        assert!(lines[2].contains("4 wd"), "{table}");
        assert!(
            lines[3].starts_with("crr") && lines[3].contains("UnderReview"),
            "{table}"
        );
    }

    #[test]
    fn art13_a_decision_names_the_generation_read_and_the_user() {
        let p = decision_patch(Decision::Approve, "wang.reviewer", 3, "4711", Some("同意"));
        assert_eq!(p["metadata"]["resourceVersion"], "4711");
        let a = &p["metadata"]["annotations"];
        assert_eq!(a[keys::DECISION], "approve");
        assert_eq!(a[keys::DECIDED_GENERATION], "3");
        assert_eq!(a[keys::DECIDED_BY], "wang.reviewer");
        assert_eq!(a[keys::OPINION], "同意");
        let p = decision_patch(Decision::EmergencyOpen, "wang.reviewer", 1, "1", None);
        assert_eq!(
            p["metadata"]["annotations"][keys::DECISION],
            "emergency-open"
        );
        assert!(p["metadata"]["annotations"][keys::OPINION].is_null());
        assert!(needs_opinion(Decision::Reject) && !needs_opinion(Decision::Approve));
    }

    #[test]
    fn a_timeline_is_in_time_order_events_before_conditions() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let m = |t: &str, source, what: &str| Moment {
            at: at(t),
            source,
            what: what.into(),
            message: String::new(),
        };
        let t = timeline(vec![
            m(
                "2026-11-28T02:00:00Z",
                "Condition",
                "Delivered=True Delivered",
            ),
            m("2026-11-27T02:00:00Z", "Event", "UnderReview"),
            m("2026-11-28T02:00:00Z", "Event", "Delivered"),
            m("2026-11-27T03:00:00Z", "Event", "Approved"),
        ]);
        let what: Vec<&str> = t.iter().map(|m| m.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "UnderReview",
                "Approved",
                "Delivered",
                "Delivered=True Delivered"
            ]
        );
        assert!(
            timeline_table(&t)
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("2026-11-27 10:00:00 +08:00")
        );
    }

    #[test]
    fn tables_line_up_chinese_text() {
        let t = table(&[
            vec!["NAME".into(), "SYSTEM".into()],
            vec!["oa".into(), "办公系统".into()],
        ]);
        assert_eq!(t, "NAME   SYSTEM\noa     办公系统\n");
    }
}
