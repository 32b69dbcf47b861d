//! The operator process: watches the API and acts on it.

use std::fmt::Debug;
use std::future::Future;

use futures::{StreamExt, stream};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::api::{ChangeRequest, CloudResourceRequest, ServiceCatalog, Tenancy, WorkCalendar};
use crate::config::Config;

/// One line per observed change of a watched kind.
fn observe<K>(client: &Client) -> impl futures::Stream<Item = ()> + Send + use<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let kind = K::kind(&());
    let plural = K::plural(&());
    info!(resource = %format!("{plural}.{}", K::group(&())), "watching (all namespaces)");
    watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(move |event| match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => info!(
                kind = %kind,
                object = %key(&obj),
                generation = obj.meta().generation.unwrap_or_default(),
                "observed"
            ),
            Ok(Event::Delete(obj)) => info!(kind = %kind, object = %key(&obj), "deleted"),
            Ok(Event::Init | Event::InitDone) => {}
            Err(e) => warn!(kind = %kind, error = %e, "watch failed; retrying"),
        })
}

fn key<K: Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

/// Runs until `shutdown` completes.
pub async fn run(client: Client, config: Config, shutdown: impl Future<Output = ()>) {
    info!(
        reviewers = %config.reviewer_group,
        vendors = %config.vendor_group,
        auditors = %config.auditor_group,
        catalog = %config.catalog,
        "govcloud-operator starting"
    );
    let watches = stream::select_all([
        observe::<CloudResourceRequest>(&client).boxed(),
        observe::<Tenancy>(&client).boxed(),
        observe::<ChangeRequest>(&client).boxed(),
        observe::<WorkCalendar>(&client).boxed(),
        observe::<ServiceCatalog>(&client).boxed(),
    ]);
    tokio::select! {
        () = watches.for_each(|()| async {}) => {}
        () = shutdown => info!("shutting down"),
    }
}
