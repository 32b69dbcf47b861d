//! The utilisation evaluator (Art. 18): on a schedule, and after each month
//! closes, four range queries to Prometheus for all tenancies together, the
//! rules of `rightsizing` per tenancy, and the result in each tenancy's
//! status under a field manager of its own. A tenancy is written only when its
//! figures or recommendations changed; events only when its recommendations
//! did. When Prometheus cannot be reached, the last recommendations stay and
//! `MetricsAvailable` says why.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp, ToSpan};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::Context;
use crate::api::change::{ChangeAction, ChangePhase};
use crate::api::tenancy::{
    RectificationProposal, RectificationTrigger, TenancyStatus, Utilisation,
};
use crate::api::{Resources, Tenancy, TenancyPhase};
use crate::calendar;
use crate::conditions::{self, Wanted};
use crate::prometheus::{Answers, Client};
use crate::review::Note;
use crate::rightsizing::{self, Direction};

/// The field manager of what the evaluator writes.
pub const MANAGER: &str = "govcloud-operator-utilisation";

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

fn in_service(t: &Tenancy) -> bool {
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

/// Runs until the operator stops.
pub async fn run(ctx: Arc<Context>) {
    let config = &ctx.config.prometheus;
    let Some(url) = config.url.clone() else {
        info!("no Prometheus configured (prometheus.url): utilisation is not evaluated");
        return;
    };
    let client = match Client::new(&url, config) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "utilisation is not evaluated");
            return;
        }
    };
    let every = SignedDuration::from_hours(i64::from(config.every_hours.max(1)));
    // After a restart, go on from the last evaluation the statuses record.
    let mut last: Option<Timestamp> = ctx
        .caches
        .tenancies
        .state()
        .iter()
        .filter_map(|t| {
            t.0.as_ref()
                .ok()?
                .status
                .as_ref()?
                .utilisation
                .as_ref()
                .map(|u| u.evaluated_at.0)
        })
        .max();
    let mut moved = ctx.clock.subscribe();
    loop {
        let now = ctx.clock.now();
        let due = last.map_or(now, |l| next_due(l, every));
        if now >= due {
            let started = std::time::Instant::now();
            let outcome = evaluate_all(&ctx, &client, now).await;
            let seconds = started.elapsed().as_secs_f64();
            ctx.metrics.evaluation_took(seconds);
            match outcome {
                Ok(n) => {
                    info!(tenancies = n, seconds, at = %now, "utilisation evaluated");
                    last = Some(now);
                }
                // Try again in a while; what was known stays.
                Err(()) => {
                    last = Some(
                        now.checked_sub(every)
                            .unwrap_or(now)
                            .checked_add(SignedDuration::from_mins(10))
                            .unwrap_or(now),
                    )
                }
            }
            continue;
        }
        let wait = due.duration_since(now).as_secs().clamp(1, 3600) as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            _ = moved.changed() => {}
        }
    }
}

/// Evaluates every tenancy in service; returns how many, or `Err` when
/// Prometheus could not answer (the tenancies then say so).
pub async fn evaluate_all(ctx: &Context, client: &Client, now: Timestamp) -> Result<usize, ()> {
    let config = &ctx.config.prometheus;
    let t = &ctx.config.rightsizing;
    let today = calendar::local_date(now);
    let sent = client.queries_sent();
    let answers = Answers::fetch(client, config, today, t.months, t.scale_up_days).await;
    ctx.metrics.evaluation_queried(client.queries_sent() - sent);
    let tenancies: Vec<_> = ctx
        .caches
        .tenancies
        .state()
        .iter()
        .filter_map(|t| t.0.as_ref().ok().cloned())
        .filter(in_service)
        .collect();
    let answers = match answers {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "Prometheus unavailable: recommendations kept");
            // A query Prometheus (or the operator) cannot read is the
            // configuration's to fix, not the network's.
            let reason = match e {
                crate::prometheus::Error::Query { .. } => "QueryRejected",
                _ => "Unreachable",
            };
            for tenancy in &tenancies {
                let mut status = tenancy.status.clone().unwrap_or_default();
                // Already said: a retry that fails again, perhaps in other
                // words (a cut connection, then a refused one), writes nothing.
                if conditions::get(&status.conditions, condition::METRICS_AVAILABLE)
                    .is_some_and(|c| c.status == "False" && c.reason == reason)
                {
                    continue;
                }
                let message =
                    format!("utilisation could not be read: {e}; the last recommendations stand");
                let flipped = set(
                    &mut status.conditions,
                    condition::METRICS_AVAILABLE,
                    false,
                    reason,
                    message.clone(),
                    tenancy,
                    now,
                );
                let notes = if flipped {
                    vec![Note {
                        warning: true,
                        reason: "MetricsUnavailable",
                        message,
                        related: None,
                    }]
                } else {
                    vec![]
                };
                write(ctx, tenancy, status, &notes).await;
            }
            return Err(());
        }
    };
    let namespace_of = |tenancy: &Tenancy| {
        tenancy
            .status
            .as_ref()
            .and_then(|s| s.namespace.clone())
            .unwrap_or_else(|| {
                crate::provisioning::namespace_name(
                    &tenancy.namespace().unwrap_or_default(),
                    &tenancy.spec.unit,
                    &tenancy.name_any(),
                )
            })
    };
    let known = tenancies.iter().map(namespace_of).collect();
    let unmatched = answers.unmatched(&known);
    ctx.metrics.unmatched_namespaces(unmatched.len());
    if !unmatched.is_empty() {
        info!(
            count = unmatched.len(),
            first = %unmatched.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            label = %config.namespace_label,
            "series of namespaces that hold no tenancy in service were ignored"
        );
    }
    for tenancy in &tenancies {
        let ns = namespace_of(tenancy);
        let usage = answers.usage(&ns);
        let evaluation = rightsizing::evaluate(&usage, &tenancy.spec.allocation, today, t);
        let (status, notes) = outcome(ctx, tenancy, evaluation, now);
        write(ctx, tenancy, status, &notes).await;
    }
    Ok(tenancies.len())
}

fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    t: &Tenancy,
    now: Timestamp,
) -> bool {
    conditions::set(
        conditions,
        Wanted::new(type_, status, reason, message),
        t.metadata.generation.unwrap_or_default(),
        now,
    )
}

fn totals(r: &Resources) -> (u32, u32) {
    (
        r.vm_groups.iter().map(|g| g.count * g.vcpu).sum(),
        r.vm_groups.iter().map(|g| g.count * g.memory_gib).sum(),
    )
}

/// When the tenancy's CPU or memory was last scaled down by an applied change.
fn last_scale_down(ctx: &Context, tenancy: &Tenancy) -> Option<Timestamp> {
    let ns = tenancy.namespace();
    ctx.caches
        .changes
        .state()
        .iter()
        .filter_map(|c| c.0.as_ref().ok())
        .filter(|c| c.namespace() == ns && c.spec.tenancy.as_str() == tenancy.name_any())
        .filter(|c| c.spec.action == ChangeAction::Modify)
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

/// The status the evaluation gives, and the events its changes deserve.
fn outcome(
    ctx: &Context,
    tenancy: &Tenancy,
    e: rightsizing::Evaluation,
    now: Timestamp,
) -> (TenancyStatus, Vec<Note>) {
    let before = tenancy.status.clone().unwrap_or_default();
    let mut status = before.clone();
    let mut notes = Vec::new();
    status.utilisation = Some(Utilisation {
        evaluated_at: Time(now),
        summary: e.summary.clone(),
        insufficient: e.insufficient.clone(),
    });
    status.recommendations = e.recommendations.clone();
    set(
        &mut status.conditions,
        condition::METRICS_AVAILABLE,
        true,
        "Evaluated",
        "utilisation read from Prometheus".into(),
        tenancy,
        now,
    );
    let key =
        |rs: &[rightsizing::Recommendation]| -> BTreeSet<(String, Direction, rightsizing::Metric)> {
            rs.iter()
                .map(|r| (r.rule.clone(), r.direction, r.metric))
                .collect()
        };
    for (type_, direction, reason) in [
        (
            condition::SCALE_UP,
            Direction::ScaleUp,
            "ScaleUpRecommended",
        ),
        (
            condition::SCALE_DOWN,
            Direction::ScaleDown,
            "ScaleDownRecommended",
        ),
    ] {
        let of: Vec<&rightsizing::Recommendation> = e
            .recommendations
            .iter()
            .filter(|r| r.direction == direction)
            .collect();
        let message = if of.is_empty() {
            "no rule of Art. 18 applies".to_owned()
        } else {
            of.iter()
                .map(|r| {
                    format!(
                        "{} {:?}: {} -> {}",
                        r.rule, r.metric, r.current, r.suggested
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        // The message names the outcome only, so that it changes with it.
        let outcome_only = if of.is_empty() {
            message.clone()
        } else {
            of.iter()
                .map(|r| format!("{} {:?}", r.rule, r.metric))
                .collect::<Vec<_>>()
                .join(", ")
        };
        set(
            &mut status.conditions,
            type_,
            !of.is_empty(),
            if of.is_empty() { "NoneApplies" } else { reason },
            outcome_only,
            tenancy,
            now,
        );
        if key(&before
            .recommendations
            .iter()
            .filter(|r| r.direction == direction)
            .cloned()
            .collect::<Vec<_>>())
            != key(&of.iter().map(|r| (*r).clone()).collect::<Vec<_>>())
            && !of.is_empty()
        {
            notes.push(Note {
                warning: false,
                reason,
                message,
                related: None,
            });
        }
    }
    if e.insufficient.is_empty() {
        set(
            &mut status.conditions,
            condition::INSUFFICIENT_DATA,
            false,
            "Enough",
            "every rule had the data it needs".into(),
            tenancy,
            now,
        );
    } else {
        let rules: BTreeSet<String> = e
            .insufficient
            .iter()
            .map(|i| format!("{} {:?}", i.rule, i.metric))
            .collect();
        set(
            &mut status.conditions,
            condition::INSUFFICIENT_DATA,
            true,
            "InsufficientData",
            format!(
                "not evaluated for want of data: {}",
                rules.into_iter().collect::<Vec<_>>().join(", ")
            ),
            tenancy,
            now,
        );
    }

    // Art. 20 (1): still low 3 months after a scale-down: propose a case.
    let scaled_down = last_scale_down(ctx, tenancy);
    let case_since = status.rectification.as_ref().map(|r| r.opened_at.0);
    let propose = rightsizing::low_after_scale_down(&e, scaled_down, case_since);
    if propose {
        let reason = format!(
            "usage stayed low in each of the {} months after the scale-down of {} (Art. 20 (1)); a reviewer may open the case with govcloud.dev/rectification=1",
            e.summary.cpu.months.len(),
            calendar::local_date(scaled_down.unwrap_or(now))
        );
        if status.rectification_proposal.is_none() {
            status.rectification_proposal = Some(RectificationProposal {
                trigger: RectificationTrigger::LowUsageAfterScaleDown,
                proposed_at: Time(now),
                reason: reason.clone(),
            });
            notes.push(Note {
                warning: true,
                reason: "RectificationProposed",
                message: reason.clone(),
                related: None,
            });
        }
        set(
            &mut status.conditions,
            condition::RECTIFICATION_PROPOSED,
            true,
            "LowUsageAfterScaleDown",
            reason,
            tenancy,
            now,
        );
    } else {
        status.rectification_proposal = None;
        conditions::remove(&mut status.conditions, condition::RECTIFICATION_PROPOSED);
    }
    (status, notes)
}

/// Writes what the evaluator owns, if it changed (the evaluation time aside).
async fn write(ctx: &Context, tenancy: &Tenancy, status: TenancyStatus, notes: &[Note]) {
    let current = tenancy.status.clone().unwrap_or_default();
    let comparable = |s: &TenancyStatus| {
        let mut s = s.clone();
        if let Some(u) = s.utilisation.as_mut() {
            u.evaluated_at = Time(Timestamp::UNIX_EPOCH);
        }
        s
    };
    let owned_conditions = |s: &TenancyStatus| -> Vec<Condition> {
        s.conditions
            .iter()
            .filter(|c| condition::ALL.contains(&c.type_.as_str()))
            .cloned()
            .collect()
    };
    let same = {
        let (a, b) = (comparable(&current), comparable(&status));
        a.utilisation == b.utilisation
            && a.recommendations == b.recommendations
            && a.rectification_proposal == b.rectification_proposal
            && conditions::same(&owned_conditions(&a), &owned_conditions(&b))
    };
    if !same {
        let patch = json!({
            "apiVersion": "govcloud.dev/v1alpha1",
            "kind": "Tenancy",
            "status": {
                "utilisation": status.utilisation,
                "recommendations": status.recommendations,
                "rectificationProposal": status.rectification_proposal,
                "conditions": owned_conditions(&status),
            },
        });
        let api: Api<Tenancy> =
            Api::namespaced(ctx.client.clone(), &tenancy.namespace().unwrap_or_default());
        match api
            .patch_status(
                &tenancy.name_any(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => ctx.metrics.wrote("Tenancy", "status"),
            Err(e) => {
                warn!(tenancy = %tenancy.name_any(), error = %e, "cannot write the utilisation")
            }
        }
    }
    ctx.publish(tenancy, notes).await;
}

#[cfg(test)]
mod tests {
    use super::*;

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
        status.recommendations.push(rightsizing::Recommendation {
            rule: "art18-1".into(),
            direction: Direction::ScaleUp,
            metric: rightsizing::Metric::Cpu,
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
}
