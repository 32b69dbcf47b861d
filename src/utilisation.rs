//! What an evaluation of Art. 18 makes of a tenancy's status: the figures,
//! the recommendations and their conditions, the data missing, and the
//! rectification proposed under Art. 20 (1). Pure: the evaluation (see
//! [`crate::rightsizing::evaluate`]), the scale-down history and `now` are
//! given; the operator's evaluator reads Prometheus and writes the result.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp, ToSpan};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::change::{ChangeAction, ChangePhase};
use crate::api::tenancy::{
    RectificationProposal, RectificationTrigger, TenancyStatus, Utilisation,
};
use crate::api::utilisation::{Direction, Recommendation};
use crate::api::{ChangeRequest, Resources, Tenancy, TenancyPhase};
use crate::calendar;
use crate::conditions::Wanted;
use crate::record::{Note, Recorder};
use crate::rightsizing::{self, Evaluation};

pub mod condition {
    pub const METRICS_AVAILABLE: &str = "MetricsAvailable";
    pub const INSUFFICIENT_DATA: &str = "InsufficientData";
    pub const SCALE_UP: &str = "ScaleUpRecommended";
    pub const SCALE_DOWN: &str = "ScaleDownRecommended";
    pub const RECTIFICATION_PROPOSED: &str = "RectificationProposed";
    /// The condition types the evaluator owns.
    pub const ALL: [&str; 5] = [
        METRICS_AVAILABLE,
        INSUFFICIENT_DATA,
        SCALE_UP,
        SCALE_DOWN,
        RECTIFICATION_PROPOSED,
    ];
}

/// Strips from a tenancy status what the evaluator owns, so that the tenancy
/// controller neither writes nor removes it.
pub fn strip(status: &mut TenancyStatus) {
    status.utilisation = None;
    status.recommendations.clear();
    status.rectification_proposal = None;
    status
        .conditions
        .retain(|c| !condition::ALL.contains(&c.type_.as_str()));
}

/// When the next evaluation is due after one at `last`: `every` later, or
/// just after the Beijing month that `last` falls in closes.
pub fn next_due(last: Timestamp, every: SignedDuration) -> Timestamp {
    let periodic = last.checked_add(every).unwrap_or(Timestamp::MAX);
    let month_end = calendar::local_date(last)
        .first_of_month()
        .checked_add(1.month())
        .map(calendar::start_of_day)
        .unwrap_or(Timestamp::MAX);
    periodic.min(
        month_end
            .checked_add(SignedDuration::from_mins(5))
            .unwrap_or(Timestamp::MAX),
    )
}

/// Whether a tenancy is evaluated: it holds resources in service.
pub fn in_service(t: &Tenancy) -> bool {
    matches!(
        t.status.as_ref().and_then(|s| s.phase),
        Some(
            TenancyPhase::Trial
                | TenancyPhase::Active
                | TenancyPhase::Rectifying
                | TenancyPhase::ForceStopped
        )
    )
}

fn totals(r: &Resources) -> (u32, u32) {
    (
        r.vm_groups.iter().map(|g| g.count * g.vcpu).sum(),
        r.vm_groups.iter().map(|g| g.count * g.memory_gib).sum(),
    )
}

/// When the tenancy `tenancy` (of the unit namespace its changes are in) was
/// last scaled down in CPU or memory by an applied change.
pub fn last_scale_down<'a>(
    changes: impl IntoIterator<Item = &'a ChangeRequest>,
    tenancy: &str,
) -> Option<Timestamp> {
    changes
        .into_iter()
        .filter(|c| c.spec.tenancy.as_str() == tenancy && c.spec.action == ChangeAction::Modify)
        .filter_map(|c| {
            let s = c.status.as_ref()?;
            if s.phase != Some(ChangePhase::Applied) {
                return None;
            }
            let (before, after) = (totals(s.before.as_ref()?), totals(s.applied.as_ref()?));
            (after.0 < before.0 || after.1 < before.1)
                .then(|| s.applied_at.as_ref().map(|t| t.0))?
        })
        .max()
}

/// Prometheus could not answer: `MetricsAvailable` says why and the last
/// recommendations stand. `None` when that is said already (a retry that
/// fails again, perhaps in other words, writes nothing).
pub fn unavailable(
    before: &TenancyStatus,
    generation: i64,
    reason: &'static str,
    error: &str,
    now: Timestamp,
) -> Option<(TenancyStatus, Vec<Note>)> {
    if crate::conditions::get(&before.conditions, condition::METRICS_AVAILABLE)
        .is_some_and(|c| c.status == "False" && c.reason == reason)
    {
        return None;
    }
    let mut rec = Recorder::new(before.clone(), generation, now);
    let message = format!("utilisation could not be read: {error}; the last recommendations stand");
    rec.flag(
        Wanted::new(condition::METRICS_AVAILABLE, false, reason, message),
        true,
        "MetricsUnavailable",
    );
    Some((rec.status, rec.events))
}

/// The status an evaluation gives, and the events its changes deserve: one
/// per new set of recommendations, one per rectification proposed.
pub fn outcome(
    before: &TenancyStatus,
    generation: i64,
    e: &Evaluation,
    scaled_down: Option<Timestamp>,
    now: Timestamp,
) -> (TenancyStatus, Vec<Note>) {
    let mut rec = Recorder::new(before.clone(), generation, now);
    rec.status.utilisation = Some(Utilisation {
        evaluated_at: Time(now),
        summary: e.summary.clone(),
        insufficient: e.insufficient.clone(),
    });
    rec.status.recommendations = e.recommendations.clone();
    rec.cond(Wanted::new(
        condition::METRICS_AVAILABLE,
        true,
        "Evaluated",
        "utilisation read from Prometheus",
    ));
    recommendations(&mut rec, before, e, Direction::ScaleUp);
    recommendations(&mut rec, before, e, Direction::ScaleDown);
    insufficient(&mut rec, e);
    proposal(&mut rec, e, scaled_down);
    (rec.status, rec.events)
}

/// `ScaleUpRecommended` or `ScaleDownRecommended`, and an event when the
/// recommendations of that direction changed.
fn recommendations(
    rec: &mut Recorder<TenancyStatus>,
    before: &TenancyStatus,
    e: &Evaluation,
    direction: Direction,
) {
    let (type_, reason) = match direction {
        Direction::ScaleUp => (condition::SCALE_UP, "ScaleUpRecommended"),
        Direction::ScaleDown => (condition::SCALE_DOWN, "ScaleDownRecommended"),
    };
    let of = |rs: &[Recommendation]| -> Vec<Recommendation> {
        rs.iter()
            .filter(|r| r.direction == direction)
            .cloned()
            .collect()
    };
    let (now, was) = (of(&e.recommendations), of(&before.recommendations));
    if now.is_empty() {
        let none = "no rule of Art. 18 applies";
        rec.cond(Wanted::new(type_, false, "NoneApplies", none));
        return;
    }
    // The condition names the outcome only, so that it changes with it.
    let named = |r: &Recommendation| format!("{} {:?}", r.rule, r.metric);
    let outcome: Vec<String> = now.iter().map(named).collect();
    rec.cond(Wanted::new(type_, true, reason, outcome.join(", ")));
    let key = |rs: &[Recommendation]| -> BTreeSet<String> { rs.iter().map(named).collect() };
    if key(&was) != key(&now) {
        let message: Vec<String> = now
            .iter()
            .map(|r| {
                format!(
                    "{} {:?}: {} -> {}",
                    r.rule, r.metric, r.current, r.suggested
                )
            })
            .collect();
        rec.event(false, reason, message.join("; "));
    }
}

/// `InsufficientData` names the rules not evaluated for want of data.
fn insufficient(rec: &mut Recorder<TenancyStatus>, e: &Evaluation) {
    if e.insufficient.is_empty() {
        rec.cond(Wanted::new(
            condition::INSUFFICIENT_DATA,
            false,
            "Enough",
            "every rule had the data it needs",
        ));
        return;
    }
    let rules: BTreeSet<String> = e
        .insufficient
        .iter()
        .map(|i| format!("{} {:?}", i.rule, i.metric))
        .collect();
    let message = format!(
        "not evaluated for want of data: {}",
        rules.into_iter().collect::<Vec<_>>().join(", ")
    );
    rec.cond(Wanted::new(
        condition::INSUFFICIENT_DATA,
        true,
        "InsufficientData",
        message,
    ));
}

/// Art. 20 (1): still low 3 months after a scale-down: a case is proposed
/// (a reviewer opens it).
fn proposal(rec: &mut Recorder<TenancyStatus>, e: &Evaluation, scaled_down: Option<Timestamp>) {
    let case_since = rec.status.rectification.as_ref().map(|r| r.opened_at.0);
    if !rightsizing::low_after_scale_down(e, scaled_down, case_since) {
        rec.status.rectification_proposal = None;
        rec.clear(condition::RECTIFICATION_PROPOSED);
        return;
    }
    let reason = format!(
        "usage stayed low in each of the {} months after the scale-down of {} (Art. 20 (1)); a reviewer may open the case with govcloud.dev/rectification=1",
        e.summary.cpu.months.len(),
        calendar::local_date(scaled_down.unwrap_or(rec.now))
    );
    if rec.status.rectification_proposal.is_none() {
        rec.status.rectification_proposal = Some(RectificationProposal {
            trigger: RectificationTrigger::LowUsageAfterScaleDown,
            proposed_at: Time(rec.now),
            reason: reason.clone(),
        });
        rec.event(true, "RectificationProposed", reason.clone());
    }
    rec.cond(Wanted::new(
        condition::RECTIFICATION_PROPOSED,
        true,
        "LowUsageAfterScaleDown",
        reason,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::utilisation::Metric;
    use crate::conditions;

    #[test]
    fn an_evaluation_is_due_daily_and_after_each_month_closes() {
        let day = SignedDuration::from_hours(24);
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            next_due(at("2026-11-15T02:00:00Z"), day),
            at("2026-11-16T02:00:00Z")
        );
        // 30 November 20:00 Beijing: the month closes at midnight, before a day passes.
        assert_eq!(
            next_due(at("2026-11-30T12:00:00Z"), day),
            at("2026-11-30T16:05:00Z")
        );
        let week = SignedDuration::from_hours(24 * 7);
        assert_eq!(
            next_due(at("2026-11-27T02:00:00Z"), week),
            at("2026-11-30T16:05:00Z")
        );
    }

    #[test]
    fn the_evaluators_fields_are_stripped_for_the_tenancy_controller() {
        let mut status = TenancyStatus::default();
        status.recommendations.push(Recommendation {
            rule: "art18-1".into(),
            direction: Direction::ScaleUp,
            metric: Metric::Cpu,
            figures: String::new(),
            current: String::new(),
            suggested: String::new(),
        });
        conditions::set(
            &mut status.conditions,
            Wanted::new(condition::SCALE_UP, true, "x", "y"),
            1,
            Timestamp::UNIX_EPOCH,
        );
        conditions::set(
            &mut status.conditions,
            Wanted::new("Ready", true, "x", "y"),
            1,
            Timestamp::UNIX_EPOCH,
        );
        strip(&mut status);
        assert!(status.recommendations.is_empty());
        assert_eq!(status.conditions.len(), 1);
        assert_eq!(status.conditions[0].type_, "Ready");
    }

    fn recommendation(direction: Direction) -> Recommendation {
        Recommendation {
            rule: "art18-1".into(),
            direction,
            metric: Metric::Cpu,
            figures: "mean daily peak 82% over 30 days".into(),
            current: "4 vCPU".into(),
            suggested: "6 vCPU".into(),
        }
    }

    #[test]
    fn art18_a_recommendation_is_announced_once_and_its_condition_names_the_rule() {
        let now: Timestamp = "2026-12-07T02:00:00Z".parse().unwrap();
        let e = Evaluation {
            recommendations: vec![recommendation(Direction::ScaleUp)],
            ..Default::default()
        };
        let (first, events) = outcome(&TenancyStatus::default(), 2, &e, None, now);
        let reasons: Vec<_> = events.iter().map(|n| n.reason).collect();
        assert_eq!(reasons, ["ScaleUpRecommended"]);
        assert_eq!(events[0].message, "art18-1 Cpu: 4 vCPU -> 6 vCPU");
        let up = conditions::get(&first.conditions, condition::SCALE_UP).unwrap();
        assert_eq!(
            (up.status.as_str(), up.message.as_str()),
            ("True", "art18-1 Cpu")
        );
        assert_eq!(up.observed_generation, Some(2));
        let down = conditions::get(&first.conditions, condition::SCALE_DOWN).unwrap();
        assert_eq!(down.reason, "NoneApplies");
        // The same again a day later: no event; the figures may be newer.
        let (_, again) = outcome(&first, 2, &e, None, now + SignedDuration::from_hours(24));
        assert!(again.is_empty());
    }

    #[test]
    fn art18_prometheus_unavailable_is_said_once_and_keeps_the_recommendations() {
        let now: Timestamp = "2026-12-07T02:00:00Z".parse().unwrap();
        let e = Evaluation {
            recommendations: vec![recommendation(Direction::ScaleDown)],
            ..Default::default()
        };
        let (evaluated, _) = outcome(&TenancyStatus::default(), 1, &e, None, now);
        let (down, notes) =
            unavailable(&evaluated, 1, "Unreachable", "connection refused", now).unwrap();
        assert_eq!(down.recommendations, evaluated.recommendations);
        assert_eq!(notes[0].reason, "MetricsUnavailable");
        let c = conditions::get(&down.conditions, condition::METRICS_AVAILABLE).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "Unreachable")
        );
        assert!(unavailable(&down, 1, "Unreachable", "timed out", now).is_none());
        assert!(unavailable(&down, 1, "QueryRejected", "bad query", now).is_some());
    }
}
