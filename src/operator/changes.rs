//! The ChangeRequest controller: reads the change, its tenancy and the other
//! changes of that tenancy from the caches, asks the change planner, and
//! carries out the plan: the tenancy first (guarded by its resourceVersion, so
//! a plan made on a stale tenancy is made again), then the status.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::Stream;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::info;

use super::caches::{ChangeRef, Guarded};
use super::metrics::ControllerName;
use super::{Context, Error, MANAGER, drive, recheck, timed};
use crate::api::change::{ChangeAction, ChangePhase};
use crate::api::tenancy::{Retirement, RetirementReason};
use crate::api::{ChangeRequest, Tenancy};
use crate::change::{self, Order};

pub fn controller(
    ctx: Arc<Context>,
    triggers: impl Stream<Item = ChangeRef> + Send + 'static,
    clock_moves: impl Stream<Item = ()> + Send + 'static,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    drive(
        ctx.caches.changes.clone(),
        triggers,
        clock_moves,
        stop,
        reconcile,
        ctx,
    )
}

async fn reconcile(obj: Arc<Guarded<ChangeRequest>>, ctx: Arc<Context>) -> Result<Action, Error> {
    timed(
        &ctx,
        ControllerName::Changes,
        &*obj,
        reconcile_change(&obj, &ctx),
    )
    .await
}

/// When a change was approved, for ordering: when the apiserver recorded
/// the decision (so that approvals the operator sees together, after a
/// restart, keep the order they were made in), else when the operator saw
/// it; ties go by name. A change under review whose annotations approve its
/// current generation counts too: the operator may not have recorded it yet.
fn approval(c: &ChangeRequest, now: Timestamp) -> Option<(Timestamp, String)> {
    let status = c.status.as_ref();
    let recorded = status
        .filter(|s| s.phase == Some(ChangePhase::Approved))
        .and_then(|s| {
            s.reviews
                .iter()
                .rev()
                .find(|r| r.decision == crate::api::Decision::Approve)
        })
        .map(|r| r.decided_at.0);
    let pending = status.and_then(|s| s.phase) == Some(ChangePhase::UnderReview)
        && crate::decision::read_decision(c.annotations()).is_ok_and(|w| {
            w.is_some_and(|w| {
                w.decision == crate::api::Decision::Approve
                    && Some(w.generation) == c.metadata.generation
            })
        });
    if recorded.is_none() && !pending {
        return None;
    }
    let at = crate::decision::decision_written_at(&c.metadata)
        .or(recorded)
        .unwrap_or(now);
    Some((at, c.name_any()))
}

/// Modifies of the same tenancy approved before `own` and not yet applied.
fn earlier_approved(
    ctx: &Context,
    change: &ChangeRequest,
    own: (Timestamp, String),
    now: Timestamp,
) -> Vec<String> {
    let ns = change.namespace();
    let mut waiting: Vec<(Timestamp, String)> = ctx
        .caches
        .changes
        .state()
        .iter()
        .filter_map(|c| c.0.as_ref().ok())
        .filter(|c| c.namespace() == ns && c.spec.tenancy == change.spec.tenancy)
        .filter(|c| c.spec.action == ChangeAction::Modify && c.name_any() != own.1)
        .filter_map(|c| approval(c, now))
        .filter(|a| *a < own)
        .collect();
    waiting.sort();
    waiting.into_iter().map(|(_, name)| name).collect()
}

async fn reconcile_change(obj: &Guarded<ChangeRequest>, ctx: &Context) -> Result<Action, Error> {
    let change = match &obj.0 {
        Ok(c) => c,
        Err(invalid) => {
            ctx.unreadable(invalid, "govcloud.dev/v1alpha1", "ChangeRequest")
                .await;
            return Ok(Action::await_change());
        }
    };
    let ns = change.namespace().unwrap_or_default();
    let name = change.name_any();
    let now = ctx.clock.now();
    let status = change.status.clone().unwrap_or_default();
    let tenancy = ctx
        .caches
        .tenancies
        .get(&ObjectRef::new(change.spec.tenancy.as_str()).within(&ns));
    let tenancy = tenancy.map(|t| t.unpack());
    let tenancy = tenancy.as_ref().and_then(|t| t.0.as_ref().ok());
    let tenancy_status = tenancy.and_then(|t| t.status.clone()).unwrap_or_default();
    let own_approval = approval(change, now).unwrap_or((now, name.clone()));
    let calendar = super::requests::calendar(ctx);
    let annotations: BTreeMap<String, String> = change.annotations().clone();
    let input = change::Input {
        name: &name,
        generation: change.metadata.generation.unwrap_or_default(),
        spec: &change.spec,
        status: &status,
        annotations: &annotations,
        tenancy: tenancy.map(|t| change::Target {
            spec: &t.spec,
            status: &tenancy_status,
        }),
        waiting_for: earlier_approved(ctx, change, own_approval, now),
        calendar: &calendar,
        now,
    };
    let plan = change::plan(&input);

    for order in &plan.orders {
        execute(ctx, &ns, order, now).await?;
    }
    if !change::same_status(&status, &plan.status) {
        ctx.apply_status(change, MANAGER, &plan.status, None)
            .await?;
        info!(change = %format!("{ns}/{name}"), phase = ?plan.status.phase, "status updated");
    }
    if plan.events.iter().any(|e| e.reason == "YearNotLoaded") {
        ctx.metrics.calendar_fallback();
    }
    ctx.publish(change, &plan.events).await;
    Ok(recheck(ctx, plan.requeue_at, change::settled(&plan.status)))
}

async fn execute(ctx: &Context, ns: &str, order: &Order, now: Timestamp) -> Result<(), Error> {
    let api: Api<Tenancy> = Api::namespaced(ctx.client.clone(), ns);
    match order {
        Order::Modify {
            tenancy,
            change,
            base,
            allocation,
        } => {
            let mut current = api.get(tenancy).await?;
            if current.spec.changes.iter().any(|c| c.as_str() == change) {
                return Ok(());
            }
            if current.spec.allocation != **base {
                // Another change landed since the plan was made: plan again.
                return Err(Error::Conflict(format!(
                    "tenancy {tenancy} changed while {change} was being applied"
                )));
            }
            current.spec.allocation = (**allocation).clone();
            current.spec.changes.push(change.as_str().into());
            ctx.replace_tenancy(&current).await?;
            info!(tenancy = %format!("{ns}/{tenancy}"), %change, "change applied");
        }
        Order::Terminate {
            tenancy,
            change,
            effective_at,
        } => {
            let current = api.get(tenancy).await?;
            if current.spec.retirement.is_none() {
                let retirement = Retirement {
                    reason: RetirementReason::Terminated,
                    reference: change.clone(),
                    decided_at: Time(now),
                    effective_at: Some(Time(*effective_at)),
                };
                ctx.patch_tenancy_spec(ns, tenancy, json!({ "retirement": retirement }))
                    .await?;
                info!(tenancy = %format!("{ns}/{tenancy}"), %change, "termination scheduled");
            }
        }
    }
    Ok(())
}
