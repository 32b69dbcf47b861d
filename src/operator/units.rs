//! Unit namespaces: lifting a suspension (Art. 15) when a reviewer sets
//! `govcloud.dev/suspension-lifted`, and keeping count of the tenancies that
//! still hold resources (`govcloud.dev/tenancies-in-service`), by which
//! admission keeps the namespace and its unit label until they are
//! released.

use std::future::Future;
use std::sync::Arc;

use futures::Stream;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use serde_json::json;
use tracing::info;

use super::caches::UnitRef;
use super::metrics::ControllerName;
use super::{Context, Error, drive, timed};
use crate::api::keys;
use crate::record::Note;

pub fn controller(
    ctx: Arc<Context>,
    triggers: impl Stream<Item = UnitRef> + Send + 'static,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    drive(
        ctx.caches.units.clone(),
        triggers,
        futures::stream::pending(),
        stop,
        reconcile,
        ctx,
    )
}

async fn reconcile(
    ns: Arc<PartialObjectMeta<Namespace>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    timed(&ctx, ControllerName::Units, &*ns, async {
        count(&ns, &ctx).await?;
        lift(&ns, &ctx).await
    })
    .await
}

/// Writes how many of the unit's tenancies hold resources, when it changed.
async fn count(ns: &PartialObjectMeta<Namespace>, ctx: &Context) -> Result<(), Error> {
    let name = ns.name_any();
    let held = ctx
        .caches
        .tenancies
        .state()
        .iter()
        .filter(|t| t.namespace().as_deref() == Some(name.as_str()))
        .filter(|t| match &t.unpack().0 {
            Ok(t) => crate::lifecycle::in_service(t.status.as_ref()),
            // Unreadable: counted, so that nothing is let go unseen.
            Err(_) => true,
        })
        .count()
        .to_string();
    if ns.annotations().get(keys::TENANCIES_IN_SERVICE) == Some(&held) {
        return Ok(());
    }
    ctx.patch_namespace(
        &name,
        json!({ "metadata": { "annotations": { keys::TENANCIES_IN_SERVICE: held } } }),
    )
    .await?;
    info!(unit = %name, tenancies = %held, "tenancies in service counted");
    Ok(())
}

async fn lift(ns: &PartialObjectMeta<Namespace>, ctx: &Context) -> Result<Action, Error> {
    let suspended = ns.labels().get(keys::SUSPENDED).map(String::as_str) == Some("true");
    let lifted = ns.annotations().get(keys::SUSPENSION_LIFTED).cloned();
    let (true, Some(lifted)) = (suspended, lifted) else {
        return Ok(Action::await_change());
    };
    let patch = json!({
        "metadata": {
            "labels": { keys::SUSPENDED: null },
            "annotations": { keys::SUSPENDED_REASON: null, keys::SUSPENDED_AT: null },
        },
    });
    ctx.patch_namespace(&ns.name_any(), patch).await?;
    info!(unit = %ns.name_any(), "suspension lifted");
    let namespace = Namespace {
        metadata: ns.metadata.clone(),
        ..Default::default()
    };
    ctx.publish(
        &namespace,
        &[Note {
            warning: false,
            reason: "SuspensionLifted",
            message: format!("the unit may apply again: {lifted}"),
            related: None,
        }],
    )
    .await;
    Ok(Action::await_change())
}
