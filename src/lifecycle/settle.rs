//! After a tenancy's plan is carried out: what the executor reports, and the
//! status, events and next look that follow from it. Pure: the executor
//! applies, this decides.

use std::time::Duration;

use jiff::Timestamp;

use super::{Plan, condition, oversight_condition, settled};
use crate::api::tenancy::{Accrual, TenancyStatus, WipeJob};
use crate::conditions::Wanted;
use crate::record::{Note, Recorder};

/// How soon to look again while something the operator does not watch is
/// in progress (the unit's own VMs, policies, wipe Jobs).
pub const POLL: Duration = Duration::from_secs(2);
/// How soon to try again a pause KubeVirt did not carry out.
pub const PAUSE_RETRY: Duration = Duration::from_secs(30);
/// The first retry of a refused object, doubled on each refusal in a row up
/// to [`REFUSED_MAX`]: a spec, quota or name fixed meanwhile is seen by its
/// watch at once; the retry is for what no watch tells.
pub const REFUSED_FIRST: Duration = Duration::from_secs(2);
pub const REFUSED_MAX: Duration = Duration::from_secs(300);

/// An object the apiserver refused: invalid (422), over the quota or
/// forbidden (403), or a name taken by someone else (409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: String,
    pub name: String,
    pub message: String,
}

impl Refusal {
    /// Refused by a ResourceQuota: the quota controller may still count
    /// creates that a restart cut off.
    pub fn over_quota(&self) -> bool {
        self.message.contains("exceeded quota")
    }
}

/// What the executor reports from the steps before the status is written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub refused: Vec<Refusal>,
    /// The quota controller was asked to count the namespace's usage again.
    pub quota_recounted: bool,
    /// Pauses and unpauses KubeVirt did not carry out: `pausing vm: error`.
    pub not_paused: Vec<String>,
    /// Reconciles in a row, this one included, that had an object refused.
    pub refusals_in_a_row: u32,
    /// Wipe Jobs created (see [`super::wipe_record`]), already written to
    /// the status on their own.
    pub wipe_jobs: Vec<WipeJob>,
    /// The month's charge for the planned status (see
    /// [`crate::billing::tenancy_accrual`]).
    pub accrual: Option<Accrual>,
}

/// When to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// After this long on the real clock: something is in flight that no
    /// watch reports.
    After(Duration),
    /// At `at` on the operator's clock if given, and within the resync period
    /// (`settled`) or the in-progress bound at the latest.
    At {
        at: Option<Timestamp>,
        settled: bool,
    },
}

/// The status to write, the events to publish and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub status: TenancyStatus,
    pub events: Vec<Note>,
    pub wake: Wake,
}

/// The retry of a refused object after `in_a_row` refusals.
pub fn refused_backoff(in_a_row: u32) -> Duration {
    let doublings = in_a_row.saturating_sub(1).min(16);
    REFUSED_FIRST
        .saturating_mul(1 << doublings)
        .min(REFUSED_MAX)
}

/// Settles a plan with what carrying it out reported.
pub fn settle(
    plan: &Plan,
    outcome: &Outcome,
    generation: i64,
    deleting: bool,
    now: Timestamp,
) -> Settled {
    let mut rec = Recorder {
        status: plan.status.clone(),
        events: plan.events.clone(),
        requeue_at: plan.requeue_at,
        generation,
        now,
    };
    rec.status.accrual = outcome.accrual.clone();
    for record in &outcome.wipe_jobs {
        rec.status.wipe_jobs.retain(|j| j.pvc != record.pvc);
        rec.status.wipe_jobs.push(record.clone());
    }
    refusals(&mut rec, outcome);
    pauses(&mut rec, outcome);
    // The month's charge turns over with the month while billing runs.
    if rec.status.billing_started_at.is_some() && rec.status.billing_ended_at.is_none() {
        rec.wake_at(crate::billing::next_month(now));
    }
    let wake = if !outcome.not_paused.is_empty() {
        Wake::After(PAUSE_RETRY)
    } else if plan.actions.poll && rec.status.retired_at.is_none() {
        Wake::After(POLL)
    } else if !outcome.refused.is_empty() {
        Wake::After(refused_backoff(outcome.refusals_in_a_row))
    } else {
        Wake::At {
            at: rec.requeue_at,
            settled: settled(&rec.status, deleting),
        }
    };
    Settled {
        status: rec.status,
        events: rec.events,
        wake,
    }
}

/// `ApplyFailed` says what the apiserver refused; it goes once nothing is
/// (also when nothing was left to apply: the last refused object went in on
/// a reconcile whose status was not written).
fn refusals(rec: &mut Recorder<TenancyStatus>, outcome: &Outcome) {
    if outcome.refused.is_empty() {
        if outcome.quota_recounted {
            rec.event(
                false,
                "QuotaRecount",
                "the quota does not count the tenancy's volumes yet: the quota controller was \
                 asked to count the namespace's usage again; the unit is given access once it does",
            );
        }
        rec.clear(condition::APPLY_FAILED);
        return;
    }
    let listed: Vec<String> = outcome
        .refused
        .iter()
        .map(|r| format!("{} {}: {}", r.kind, r.name, r.message))
        .collect();
    let mut message = format!("the apiserver refused {}", listed.join("; "));
    if outcome.refused.iter().any(Refusal::over_quota) {
        if outcome.quota_recounted {
            rec.event(
                false,
                "QuotaRecount",
                "the quota refused a create: the quota controller was asked to count the \
                 namespace's usage again (creates cut off by a restart stay charged until it does)",
            );
        }
        message.push_str(
            " (the quota controller was asked to count the namespace's usage again: creates \
             cut off by a restart stay charged until it does; if the namespace's objects fit \
             the quota, this is then applied)",
        );
    }
    rec.flag(
        Wanted::new(condition::APPLY_FAILED, true, "Refused", message),
        true,
        "ApplyFailed",
    );
}

/// `HoldIncomplete` says which pauses KubeVirt did not carry out: the
/// network stays cut meanwhile.
fn pauses(rec: &mut Recorder<TenancyStatus>, outcome: &Outcome) {
    if outcome.not_paused.is_empty() {
        rec.clear(oversight_condition::HOLD_INCOMPLETE);
        return;
    }
    let message = format!(
        "KubeVirt did not carry out {}",
        outcome.not_paused.join("; ")
    );
    rec.flag(
        Wanted::new(
            oversight_condition::HOLD_INCOMPLETE,
            true,
            "PauseFailed",
            message,
        ),
        true,
        "HoldIncomplete",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TenancyPhase;
    use crate::conditions::get;
    use crate::lifecycle::Actions;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn delivered() -> Plan {
        Plan {
            status: TenancyStatus {
                phase: Some(TenancyPhase::Trial),
                ..Default::default()
            },
            events: Vec::new(),
            requeue_at: Some(at("2026-12-31T16:00:00Z")),
            actions: Actions::default(),
        }
    }

    fn refused(message: &str) -> Refusal {
        Refusal {
            kind: "VirtualMachine".into(),
            name: "app-1".into(),
            message: message.into(),
        }
    }

    #[test]
    fn art14_a_refused_object_is_reported_once_and_retried_with_backoff() {
        let now = at("2026-12-07T02:00:00Z");
        let outcome = Outcome {
            refused: vec![refused("spec.template: Invalid value")],
            refusals_in_a_row: 1,
            ..Default::default()
        };
        let first = settle(&delivered(), &outcome, 3, false, now);
        let c = get(&first.status.conditions, condition::APPLY_FAILED).unwrap();
        assert_eq!(c.status, "True");
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(
            c.message,
            "the apiserver refused VirtualMachine app-1: spec.template: Invalid value"
        );
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.events[0].reason, "ApplyFailed");
        assert_eq!(first.wake, Wake::After(Duration::from_secs(2)));

        // Refused again: no second event; the retry waits longer each time.
        let mut again = delivered();
        again.status = first.status.clone();
        let later = Outcome {
            refusals_in_a_row: 4,
            ..outcome.clone()
        };
        let second = settle(&again, &later, 3, false, now);
        assert!(second.events.is_empty());
        assert_eq!(second.wake, Wake::After(Duration::from_secs(16)));
        assert_eq!(refused_backoff(40), REFUSED_MAX);

        // Applied at last: the condition goes, the deadline is kept.
        let mut fixed = delivered();
        fixed.status = second.status;
        let third = settle(&fixed, &Outcome::default(), 4, false, now);
        assert!(get(&third.status.conditions, condition::APPLY_FAILED).is_none());
        assert_eq!(
            third.wake,
            Wake::At {
                at: Some(at("2026-12-31T16:00:00Z")),
                settled: true
            }
        );
    }

    #[test]
    fn art14_over_the_quota_says_the_usage_is_counted_again() {
        let outcome = Outcome {
            refused: vec![refused(
                "exceeded quota: govcloud, requested: requests.storage=100Gi",
            )],
            quota_recounted: true,
            refusals_in_a_row: 1,
            ..Default::default()
        };
        let s = settle(&delivered(), &outcome, 1, false, at("2026-12-07T02:00:00Z"));
        let reasons: Vec<_> = s.events.iter().map(|e| (e.reason, e.warning)).collect();
        assert_eq!(reasons, [("QuotaRecount", false), ("ApplyFailed", true)]);
        let c = get(&s.status.conditions, condition::APPLY_FAILED).unwrap();
        assert!(c.message.contains("count the namespace's usage again"));
    }

    #[test]
    fn art24_a_pause_not_carried_out_is_held_incomplete_and_retried_in_30_s() {
        let mut plan = delivered();
        plan.actions.poll = true;
        let outcome = Outcome {
            not_paused: vec!["pausing app-1: 503 Service Unavailable".into()],
            ..Default::default()
        };
        let s = settle(&plan, &outcome, 2, false, at("2026-12-07T02:00:00Z"));
        let c = get(&s.status.conditions, oversight_condition::HOLD_INCOMPLETE).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "PauseFailed")
        );
        assert_eq!(s.events[0].reason, "HoldIncomplete");
        assert_eq!(s.wake, Wake::After(PAUSE_RETRY));
        // Carried out: the condition goes; the hold still polls.
        plan.status = s.status;
        let s = settle(
            &plan,
            &Outcome::default(),
            2,
            false,
            at("2026-12-07T02:01:00Z"),
        );
        assert!(get(&s.status.conditions, oversight_condition::HOLD_INCOMPLETE).is_none());
        assert_eq!(s.wake, Wake::After(POLL));
    }

    #[test]
    fn art16_billing_wakes_the_tenancy_when_the_beijing_month_turns() {
        let mut plan = delivered();
        plan.requeue_at = None;
        plan.status.billing_started_at = Some(Time(at("2026-11-10T02:00:00Z")));
        let s = settle(
            &plan,
            &Outcome::default(),
            1,
            false,
            at("2026-12-07T02:00:00Z"),
        );
        // 1 January 2027 00:00 in Beijing.
        assert_eq!(
            s.wake,
            Wake::At {
                at: Some(at("2026-12-31T16:00:00Z")),
                settled: true
            }
        );
    }

    #[test]
    fn art19_a_wipe_job_created_is_recorded_in_place_of_the_volumes_earlier_one() {
        let job = |pvc: &str, uid: &str| WipeJob {
            pvc: pvc.into(),
            job: format!("wipe-{pvc}"),
            uid: uid.into(),
        };
        let mut plan = delivered();
        plan.status.wipe_jobs = vec![job("app-1-system", "old"), job("db-1-data", "kept")];
        let outcome = Outcome {
            wipe_jobs: vec![job("app-1-system", "new")],
            ..Default::default()
        };
        let s = settle(&plan, &outcome, 1, false, at("2026-12-07T02:00:00Z"));
        let uids: Vec<(&str, &str)> = s
            .status
            .wipe_jobs
            .iter()
            .map(|j| (j.pvc.as_str(), j.uid.as_str()))
            .collect();
        assert_eq!(uids, [("db-1-data", "kept"), ("app-1-system", "new")]);
    }

    #[test]
    fn a_retired_tenancy_stops_polling() {
        let mut plan = delivered();
        plan.actions.poll = true;
        plan.status.retired_at = Some(Time(at("2026-12-01T02:00:00Z")));
        plan.requeue_at = None;
        let s = settle(
            &plan,
            &Outcome::default(),
            1,
            false,
            at("2026-12-07T02:00:00Z"),
        );
        assert!(matches!(s.wake, Wake::At { at: None, .. }));
    }
}

#[cfg(test)]
mod step_tests {
    use crate::lifecycle::{Actions, Step};
    use crate::release::Deletion;

    #[test]
    fn art19_the_status_is_written_before_anything_it_records_is_deleted() {
        let actions = Actions {
            finalizer: Some(true),
            halt: vec!["app-1".into()],
            pause: vec!["app-2".into()],
            delete: vec![Deletion {
                api_version: "v1",
                kind: "PersistentVolumeClaim",
                namespace: Some("finance-oa".into()),
                name: "app-1-system".into(),
            }],
            suspend_unit: Some("Art. 15".into()),
            ..Default::default()
        };
        let steps = actions.steps();
        let names: Vec<&str> = steps
            .iter()
            .map(|s| match s {
                Step::SuspendUnit(_) => "suspend",
                Step::Finalizer(_) => "finalizer",
                Step::Halt(_) => "halt",
                Step::Pause(_, true) => "pause",
                Step::WriteStatus => "status",
                Step::Delete(_) => "delete",
                _ => "other",
            })
            .collect();
        assert_eq!(
            names,
            ["suspend", "finalizer", "halt", "pause", "status", "delete"]
        );
        // Nothing to do still writes the status.
        assert_eq!(Actions::default().steps(), [Step::WriteStatus]);
    }
}
