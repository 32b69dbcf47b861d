//! Applying YAML manifests (CRDs, calendars, samples, fixtures) by server-side
//! apply, as `kubectl apply --server-side` would.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client, ResourceExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{source_name}: not a YAML stream of Kubernetes objects: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: document {index} has no apiVersion/kind")]
    Untyped { source_name: String, index: usize },
    #[error("{kind} {name}: {source}")]
    Api {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{name}: {message}")]
    BadApiVersion { name: String, message: String },
    #[error("CustomResourceDefinition {0} was not Established within the timeout")]
    NotEstablished(String),
}

/// The objects of a multi-document YAML stream, with empty documents skipped.
pub fn parse(source_name: &str, yaml: &str) -> Result<Vec<DynamicObject>, Error> {
    let docs: Vec<Option<serde_json::Value>> =
        serde_saphyr::from_multiple(yaml).map_err(|e| Error::Parse {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
    docs.into_iter()
        .flatten()
        .filter(|v| !v.is_null())
        .enumerate()
        .map(|(index, value)| {
            let obj: DynamicObject = serde_json::from_value(value).map_err(|e| Error::Parse {
                source_name: source_name.to_owned(),
                message: e.to_string(),
            })?;
            if obj.types.is_none() {
                return Err(Error::Untyped {
                    source_name: source_name.to_owned(),
                    index,
                });
            }
            Ok(obj)
        })
        .collect()
}

/// Applies objects with one field manager, resolving each kind through
/// discovery. Objects without a namespace that need one go to `default_ns`.
pub struct Applier {
    client: Client,
    params: PatchParams,
    kinds: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>,
}

impl Applier {
    pub fn new(client: Client, field_manager: &str) -> Self {
        Self {
            client,
            params: PatchParams::apply(field_manager).force(),
            kinds: HashMap::new(),
        }
    }

    pub async fn apply(
        &mut self,
        obj: &DynamicObject,
        default_ns: Option<&str>,
    ) -> Result<DynamicObject, Error> {
        let api_err = |source| Error::Api {
            kind: obj
                .types
                .as_ref()
                .map(|t| t.kind.clone())
                .unwrap_or_default(),
            name: obj.name_any(),
            source,
        };
        let types = obj.types.clone().unwrap_or_default();
        let gvk = GroupVersionKind::try_from(&types).map_err(|e| Error::BadApiVersion {
            name: obj.name_any(),
            message: e.to_string(),
        })?;
        let (resource, caps) = match self.kinds.get(&gvk) {
            Some(found) => found.clone(),
            None => {
                let found = kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .map_err(api_err)?;
                self.kinds.insert(gvk.clone(), found.clone());
                found
            }
        };
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                let ns = obj
                    .namespace()
                    .or_else(|| default_ns.map(str::to_owned))
                    .unwrap_or_else(|| "default".to_owned());
                Api::namespaced_with(self.client.clone(), &ns, &resource)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        };
        api.patch(&obj.name_any(), &self.params, &Patch::Apply(obj))
            .await
            .map_err(api_err)
    }

    pub async fn apply_all(
        &mut self,
        objs: &[DynamicObject],
        default_ns: Option<&str>,
    ) -> Result<Vec<DynamicObject>, Error> {
        let mut applied = Vec::with_capacity(objs.len());
        for obj in objs {
            applied.push(self.apply(obj, default_ns).await?);
        }
        Ok(applied)
    }
}

/// Applies CRDs and waits until each is Established.
pub async fn install_crds(
    client: &Client,
    crds: &[CustomResourceDefinition],
    field_manager: &str,
) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(field_manager).force();
    for crd in crds {
        api.patch(&crd.name_any(), &params, &Patch::Apply(crd))
            .await
            .map_err(|source| Error::Api {
                kind: "CustomResourceDefinition".into(),
                name: crd.name_any(),
                source,
            })?;
    }
    for crd in crds {
        let name = crd.name_any();
        let established = kube::runtime::wait::await_condition(
            api.clone(),
            &name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        match tokio::time::timeout(Duration::from_secs(30), established).await {
            Ok(Ok(_)) => {}
            _ => return Err(Error::NotEstablished(name)),
        }
    }
    Ok(())
}
