//! The CloudResourceRequest controller: reads the request, its unit and its
//! tenancies from the caches, asks the review planner, and carries out the
//! plan: tenancy orders first, then the status, then events.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::Stream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::info;

use super::caches::{Guarded, RequestRef};
use super::metrics::ControllerName;
use super::packed::Packed;
use super::{Context, Error, MANAGER, drive, recheck, timed};
use crate::api::tenancy::{Retirement, RetirementReason};
use crate::api::{CloudResourceRequest, Tenancy, TenancySpec, keys};
use crate::calendar::Calendar;
use crate::review::{self, Order};

pub fn controller(
    ctx: Arc<Context>,
    triggers: impl Stream<Item = RequestRef> + Send + 'static,
    clock_moves: impl Stream<Item = ()> + Send + 'static,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    drive(
        ctx.caches.requests.clone(),
        triggers,
        clock_moves,
        stop,
        reconcile,
        ctx,
    )
}

/// The calendar from the WorkCalendars in the cache.
pub fn calendar(ctx: &Context) -> Calendar {
    let specs: Vec<_> = ctx
        .caches
        .calendars
        .state()
        .iter()
        // One that cannot be read is left out (and logged by its watch).
        .filter_map(|c| Some(c.0.as_ref().ok()?.spec.clone()))
        .collect();
    match Calendar::from_specs(&specs) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "conflicting WorkCalendars; using those that agree");
            let mut c = Calendar::new();
            for s in &specs {
                let _ = c.add_year(
                    s.year,
                    s.holidays.iter().map(|d| d.date),
                    s.working_days.iter().map(|d| d.date),
                );
            }
            c
        }
    }
}

fn unit(ctx: &Context, namespace: &str) -> review::Unit {
    let Some(ns) = ctx.caches.units.get(&ObjectRef::new(namespace)) else {
        return review::Unit::default();
    };
    let labels = ns.labels();
    let annotations = ns.annotations();
    let suspended = (labels.get(keys::SUSPENDED).map(String::as_str) == Some("true")).then(|| {
        let since = annotations
            .get(keys::SUSPENDED_AT)
            .cloned()
            .unwrap_or_default();
        let why = annotations
            .get(keys::SUSPENDED_REASON)
            .cloned()
            .unwrap_or_default();
        format!("since {since}: {why}")
    });
    review::Unit {
        id: labels.get(keys::UNIT).cloned(),
        suspended,
    }
}

fn tenancy(ctx: &Context, namespace: &str, name: &str) -> Option<Guarded<Tenancy>> {
    ctx.caches
        .tenancies
        .get(&ObjectRef::new(name).within(namespace))
        .map(|t| t.unpack())
}

async fn reconcile(
    obj: Arc<Packed<CloudResourceRequest>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let obj = obj.unpack();
    timed(
        &ctx,
        ControllerName::Requests,
        &obj,
        reconcile_request(&obj, &ctx),
    )
    .await
}

async fn reconcile_request(
    obj: &Guarded<CloudResourceRequest>,
    ctx: &Context,
) -> Result<Action, Error> {
    let request = match &obj.0 {
        Ok(r) => r,
        Err(invalid) => {
            ctx.unreadable(invalid, "govcloud.dev/v1alpha1", "CloudResourceRequest")
                .await;
            return Ok(Action::await_change());
        }
    };
    let ns = request.namespace().unwrap_or_default();
    let name = request.name_any();
    let now = ctx.clock.now();
    let unit = unit(ctx, &ns);
    let target = request
        .spec
        .extends
        .as_ref()
        .and_then(|t| tenancy(ctx, &ns, t.as_str()));
    let target = target.as_ref().and_then(|t| t.0.as_ref().ok());
    let cached = tenancy(ctx, &ns, &name);
    let key = (ns.clone(), name.clone());
    // The tenancy this request created, until the cache shows it.
    let fresh = {
        let mut provisioned = ctx.provisioned.lock().unwrap_or_else(|e| e.into_inner());
        if cached.is_some() {
            provisioned.remove(&key);
            None
        } else {
            provisioned.get(&key).cloned()
        }
    };
    let own = cached
        .as_ref()
        .and_then(|t| t.0.as_ref().ok())
        .or(fresh.as_deref());
    let status = request.status.clone().unwrap_or_default();
    let calendar = calendar(ctx);
    let storage_classes = ctx.storage_classes();
    let annotations: BTreeMap<String, String> = request.annotations().clone();
    let input = review::Input {
        name: &name,
        generation: request.metadata.generation.unwrap_or_default(),
        spec: &request.spec,
        status: &status,
        annotations: &annotations,
        unit: &unit,
        target: target.map(|t| review::Target {
            spec: &t.spec,
            phase: t.status.as_ref().and_then(|s| s.phase),
        }),
        own_tenancy: own.map(|t| &t.spec),
        storage_classes: &storage_classes,
        calendar: &calendar,
        now,
    };
    let plan = review::plan(&input);
    for order in &plan.orders {
        if let Some(t) = execute(ctx, request, &ns, order, now).await?
            && cached.is_none()
        {
            ctx.provisioned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone(), Arc::new(t));
        }
    }
    let own = own.is_some();
    if !review::same_status(&status, &plan.status) {
        ctx.apply_status(request, MANAGER, &plan.status, None)
            .await?;
        info!(request = %format!("{ns}/{name}"), phase = ?plan.status.phase, "status updated");
    }
    if plan.events.iter().any(|e| e.reason == "YearNotLoaded") {
        ctx.metrics.calendar_fallback();
    }
    ctx.publish(request, &plan.events).await;
    // Extension requests waiting for their tenancy, and approved requests
    // whose tenancy is not seen yet, look again soon.
    let settled = review::settled(&plan.status, own);
    Ok(recheck(ctx, plan.requeue_at, settled))
}

fn tenancy_object(ns: &str, name: &str, spec: &TenancySpec) -> serde_json::Value {
    json!({
        "apiVersion": "govcloud.dev/v1alpha1",
        "kind": "Tenancy",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                keys::MANAGED_BY: MANAGER,
                "govcloud.dev/request": name,
            },
            "finalizers": [crate::lifecycle::FINALIZER],
        },
        "spec": spec,
    })
}

async fn execute(
    ctx: &Context,
    request: &CloudResourceRequest,
    ns: &str,
    order: &Order,
    now: jiff::Timestamp,
) -> Result<Option<Tenancy>, Error> {
    let api: Api<Tenancy> = Api::namespaced(ctx.client.clone(), ns);
    match order {
        Order::Provision(spec) => {
            let name = spec.request.to_string();
            let object = tenancy_object(ns, &name, spec);
            let params = PatchParams::apply(MANAGER).force();
            let created = ctx
                .write(
                    "Tenancy",
                    "apply",
                    api.patch(&name, &params, &Patch::Apply(&object)),
                )
                .await?;
            info!(tenancy = %format!("{ns}/{name}"), "tenancy provisioned from the approved request");
            return Ok(Some(created));
        }
        Order::Extend {
            tenancy,
            request: req,
        } => {
            let mut current = api.get(tenancy).await?;
            if current.spec.extensions.iter().any(|e| e.as_str() == req) {
                return Ok(None);
            }
            current.spec =
                review::extend(&current.spec, req, &request.spec).map_err(Error::Invalid)?;
            // The resourceVersion read above guards against concurrent changes.
            ctx.replace_tenancy(&current).await?;
            info!(tenancy = %format!("{ns}/{tenancy}"), extension = %req, "tenancy extended");
        }
        Order::Regularize { tenancy } => {
            let current = api.get(tenancy).await?;
            if current.spec.emergency.is_some() {
                ctx.patch_tenancy_spec(ns, tenancy, json!({ "emergency": null }))
                    .await?;
            }
        }
        Order::Retire { tenancy } => {
            let current = api.get(tenancy).await?;
            if current.spec.retirement.is_none() {
                let retirement = Retirement {
                    reason: RetirementReason::EmergencyRejected,
                    reference: format!("CloudResourceRequest/{}", request.name_any()),
                    decided_at: Time(now),
                    effective_at: None,
                };
                ctx.patch_tenancy_spec(ns, tenancy, json!({ "retirement": retirement }))
                    .await?;
            }
        }
    }
    Ok(None)
}
