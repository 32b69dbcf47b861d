//! The utilisation evaluator (Art. 18): on a schedule, and after each month
//! closes, range queries to Prometheus for all tenancies together (what
//! [`rightsizing::Plan`] says the statuses do not carry), the rules of
//! `rightsizing` per tenancy, and the result in each tenancy's status under a
//! field manager of its own. A tenancy is written only when its
//! figures or recommendations changed; events only when its recommendations
//! did. When Prometheus cannot be reached, the last recommendations stay and
//! `MetricsAvailable` says why.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use serde_json::json;
use tracing::{info, warn};

use super::Context;
use crate::api::Tenancy;
use crate::api::tenancy::TenancyStatus;
use crate::calendar;
use crate::conditions;
use crate::prometheus::Client;
use crate::record::Note;
use crate::rightsizing;
use crate::utilisation::{self as law, condition, next_due};

/// The field manager of what the evaluator writes.
pub const MANAGER: &str = "govcloud-operator-utilisation";

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
            t.unpack()
                .0
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
    let tenancies: Vec<_> = ctx
        .caches
        .tenancies
        .state()
        .iter()
        .filter_map(|t| t.unpack().0.ok())
        .filter(law::in_service)
        .collect();
    let namespaces: Vec<String> = tenancies.iter().map(namespace_of).collect();
    let plan = plan(today, t, &tenancies, &namespaces);
    let sent = client.queries_sent();
    let answers = client.answers(config, &plan).await;
    ctx.metrics.evaluation_queried(client.queries_sent() - sent);
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
                let before = tenancy.status.clone().unwrap_or_default();
                let generation = tenancy.metadata.generation.unwrap_or_default();
                let error = e.to_string();
                if let Some((status, notes)) =
                    law::unavailable(&before, generation, reason, &error, now)
                {
                    write(ctx, tenancy, status, &notes).await;
                }
            }
            return Err(());
        }
    };
    let known = namespaces.iter().cloned().collect();
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
    for (i, tenancy) in tenancies.iter().enumerate() {
        let usage = answers.usage(&namespaces[i]);
        let evaluation = rightsizing::evaluate_after(
            &usage,
            before(tenancy),
            &tenancy.spec.allocation,
            today,
            t,
        );
        let ns = tenancy.namespace();
        let changes = ctx.caches.changes.state();
        let of_unit = changes
            .iter()
            .filter_map(|c| c.0.as_ref().ok())
            .filter(|c| c.namespace() == ns);
        let scaled_down = law::last_scale_down(of_unit, &tenancy.name_any());
        let before = tenancy.status.clone().unwrap_or_default();
        let generation = tenancy.metadata.generation.unwrap_or_default();
        let (status, notes) = law::outcome(&before, generation, &evaluation, scaled_down, now);
        write(ctx, tenancy, status, &notes).await;
    }
    Ok(tenancies.len())
}

/// What the tenancies (with their namespaces) need read on `today`.
fn plan(
    today: jiff::civil::Date,
    t: &rightsizing::Thresholds,
    tenancies: &[Tenancy],
    namespaces: &[String],
) -> rightsizing::Plan {
    let known = namespaces
        .iter()
        .map(String::as_str)
        .zip(tenancies.iter().map(before));
    rightsizing::Plan::new(today, t, known)
}

/// What a tenancy's status carries from the last evaluation.
fn before(tenancy: &Tenancy) -> rightsizing::Before<'_> {
    rightsizing::Before {
        summary: tenancy
            .status
            .as_ref()
            .and_then(|s| s.utilisation.as_ref())
            .map(|u| &u.summary),
    }
}

/// The namespace a tenancy's series are labelled with.
fn namespace_of(tenancy: &Tenancy) -> String {
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
        let owned = json!({
            "utilisation": status.utilisation,
            "recommendations": status.recommendations,
            "rectificationProposal": status.rectification_proposal,
            "conditions": owned_conditions(&status),
        });
        if let Err(e) = ctx.apply_status(tenancy, MANAGER, &owned, None).await {
            warn!(tenancy = %tenancy.name_any(), error = %e, "cannot write the utilisation");
        }
    }
    ctx.publish(tenancy, notes).await;
}
