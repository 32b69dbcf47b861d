//! The `govcloud.dev/v1alpha1` API: the five kinds, their building blocks, and
//! the annotations through which people decide.
//!
//! These types are the source of truth for the CRDs: `govcloud-operator crds`
//! prints them, `crds/` holds the committed output.

// `printcolumn(...)` repeats `type_ = ...` by design; the lint reads it as a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

pub mod calendar;
pub mod catalog;
pub mod change;
pub mod common;
pub mod request;
pub mod tenancy;
pub mod utilisation;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use kube::CustomResourceExt;

pub use calendar::{CalendarDay, WorkCalendar, WorkCalendarSpec};
pub use catalog::{PricePeriod, ServiceCatalog, ServiceCatalogSpec};
pub use change::{ChangeAction, ChangePhase, ChangeRequest, ChangeRequestSpec, TerminationReason};
pub use common::{Contact, Decision, DocumentRef, Resources, ServiceType, StorageVolume, VmGroup};
pub use request::{CloudResourceRequest, CloudResourceRequestSpec, RequestPhase};
pub use tenancy::{Tenancy, TenancyPhase, TenancySpec};

pub const GROUP: &str = "govcloud.dev";

/// Labels and annotations of the API.
pub mod keys {
    /// On a unit's namespace: the unit id.
    pub const UNIT: &str = "govcloud.dev/unit";
    /// On a unit's namespace (annotation): the Kubernetes group of the unit's people.
    pub const UNIT_GROUP: &str = "govcloud.dev/unit-group";
    /// On a unit's namespace (annotation): the unit's display name.
    pub const UNIT_NAME: &str = "govcloud.dev/unit-name";
    /// On a unit's namespace (label): new requests are suspended (Art. 15).
    pub const SUSPENDED: &str = "govcloud.dev/suspended";
    /// On a suspended unit's namespace (annotations): why and since when.
    pub const SUSPENDED_REASON: &str = "govcloud.dev/suspended-reason";
    pub const SUSPENDED_AT: &str = "govcloud.dev/suspended-at";
    pub const SUSPENSION_LIFTED: &str = "govcloud.dev/suspension-lifted";
    /// On a unit namespace, written by the operator: how many of its
    /// tenancies still hold resources. While not 0 the namespace and its
    /// unit label stay (admission).
    pub const TENANCIES_IN_SERVICE: &str = "govcloud.dev/tenancies-in-service";

    pub const DECISION: &str = "govcloud.dev/decision";
    pub const DECIDED_GENERATION: &str = "govcloud.dev/decided-generation";
    pub const DECIDED_BY: &str = "govcloud.dev/decided-by";
    pub const OPINION: &str = "govcloud.dev/opinion";
    pub const EXPERT_OPINION: &str = "govcloud.dev/expert-opinion";
    pub const DELIVERY_CONFIRMED: &str = "govcloud.dev/delivery-confirmed";
    pub const RECTIFICATION: &str = "govcloud.dev/rectification";
    pub const RECTIFIED: &str = "govcloud.dev/rectified";
    pub const DEREGISTER: &str = "govcloud.dev/deregister";
    pub const ISOLATE: &str = "govcloud.dev/isolate";
    pub const PROCURED: &str = "govcloud.dev/procured";
    pub const FULFILLED: &str = "govcloud.dev/fulfilled";
    /// On a tenancy: a vendor or reviewer has seen that volumes were lost
    /// without a wipe (what was done about it).
    pub const LOSS_ACKNOWLEDGED: &str = "govcloud.dev/loss-acknowledged";

    /// On every object the operator creates: the tenancy it belongs to.
    pub const TENANCY: &str = "govcloud.dev/tenancy";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
}

/// The CRDs of the API, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        CloudResourceRequest::crd(),
        Tenancy::crd(),
        ChangeRequest::crd(),
        WorkCalendar::crd(),
        ServiceCatalog::crd(),
    ];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                tidy_schema(schema);
            }
        }
    }
    crds
}

/// Adjusts what schemars emits to what the apiserver understands: integer
/// formats it knows (`int32`/`int64`) instead of Rust's unsigned ones, no
/// titles, and `conditions` lists merged by `type` under server-side apply.
fn tidy_schema(schema: &mut JSONSchemaProps) {
    schema.title = None;
    if schema.type_.as_deref() == Some("integer") {
        schema.format = match schema.format.as_deref() {
            Some("int64" | "uint64" | "uint32") => Some("int64".into()),
            _ => Some("int32".into()),
        };
    }
    if let Some(properties) = schema.properties.as_mut() {
        for (name, property) in properties.iter_mut() {
            if name == "conditions" && property.type_.as_deref() == Some("array") {
                property.x_kubernetes_list_type = Some("map".into());
                property.x_kubernetes_list_map_keys = Some(vec!["type".into()]);
            }
            tidy_schema(property);
        }
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        tidy_schema(items);
    }
}

/// The CRDs as one multi-document YAML stream, as committed under `crds/`.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).expect("a CRD serialises to YAML"));
    }
    out
}
