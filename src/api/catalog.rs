//! ServiceCatalog: the procurement prices of Art. 6, with the dates they apply from.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Price, ServiceType, ShortName, opt_text};

/// Unit prices (yuan per month) at the city's procurement prices (Art. 6).
/// Prices change by adding a period with a later `effectiveFrom`; published
/// periods cannot be edited or removed, so that every past bill can be
/// reproduced.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "govcloud.dev",
    version = "v1alpha1",
    kind = "ServiceCatalog",
    status = "ServiceCatalogStatus",
    shortname = "svccat",
    category = "govcloud",
    doc = "Unit prices of the government cloud, by the period they apply to (Art. 6).",
    printcolumn(name = "Currency", type_ = "string", json_path = ".spec.currency"),
    printcolumn(name = "Periods", type_ = "integer", json_path = ".status.periods"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "oldSelf.periods.all(o, self.periods.exists(p, p == o))"
).message(
    "published price periods cannot be changed or removed, so that past bills stay reproducible; add a period with a later effectiveFrom"
).field_path(".periods"))]
#[x_kube(validation = Rule::new(
    "self.periods.all(p, oldSelf.periods.exists(o, o.effectiveFrom == p.effectiveFrom) || oldSelf.periods.all(o, o.effectiveFrom < p.effectiveFrom))"
).message(
    "a new price period starts after the latest published one: a period starting earlier would reprice bills already issued; give it a later effectiveFrom"
).field_path(".periods"))]
pub struct ServiceCatalogSpec {
    pub currency: Currency,
    /// Price periods; each applies from its `effectiveFrom` until the next one.
    #[schemars(length(min = 1, max = 40))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(o, o.effectiveFrom == p.effectiveFrom))")
        .message("each price period needs its own effectiveFrom date"))]
    pub periods: Vec<PricePeriod>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Currency {
    #[serde(rename = "CNY")]
    Cny,
}

/// The prices in force from one date, all per month.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricePeriod {
    /// The first day these prices apply.
    pub effective_from: jiff::civil::Date,
    /// The procurement document or notice the prices come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opt_text::<200>")]
    pub reference: Option<String>,
    /// Per vCPU.
    pub vcpu: Price,
    /// Per GiB of memory.
    #[serde(rename = "memoryGiB")]
    pub memory_gib: Price,
    /// Per GiB of VM disk (system and data disks).
    #[serde(rename = "diskGiB")]
    pub disk_gib: Price,
    /// Per GiB of cloud storage, by storage class.
    #[schemars(length(max = 10))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(o, o.class == s.class))")
        .message("each storage class may be priced once per period"))]
    pub storage: Vec<StoragePrice>,
    /// Per GiB of backup storage.
    #[serde(rename = "backupGiB")]
    pub backup_gib: Price,
    /// Per public IP address.
    #[serde(rename = "publicIP")]
    pub public_ip: Price,
    /// Per Mbps of internet bandwidth.
    pub bandwidth_mbps: Price,
    /// Monthly fee per service type, for services billed as a whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(o, o.service == s.service))")
        .message("each service type may be priced once per period"))]
    pub services: Vec<ServicePrice>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoragePrice {
    pub class: ShortName,
    #[serde(rename = "perGiB")]
    pub per_gib: Price,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrice {
    pub service: ServiceType,
    pub monthly: Price,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCatalogStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of price periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
