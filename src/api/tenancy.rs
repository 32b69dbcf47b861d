//! Tenancy: one system's residence on the cloud, created by the operator from an
//! approved (or emergency-opened) request.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Compliance, ObjectName, Resources, ServiceType, text};

/// The approved allocation of one system. The operator writes the spec from the
/// approved request; afterwards it changes only through approved ChangeRequests
/// and approved extension requests.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "govcloud.dev",
    version = "v1alpha1",
    kind = "Tenancy",
    plural = "tenancies",
    namespaced,
    status = "TenancyStatus",
    shortname = "tny",
    category = "govcloud",
    doc = "A system's residence on the government cloud: what was approved and what is provisioned.",
    printcolumn(name = "Unit", type_ = "string", json_path = ".spec.unitName"),
    printcolumn(name = "System", type_ = "string", json_path = ".spec.systemName"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Trial-Ends",
        type_ = "string",
        json_path = ".status.shown.trialEnds",
        description = "End of the 30-day trial (Art. 15)"
    ),
    printcolumn(
        name = "Billing-Since",
        type_ = "string",
        json_path = ".status.shown.billingSince",
        description = "Start of billing (Art. 16)"
    ),
    printcolumn(
        name = "Namespace",
        type_ = "string",
        json_path = ".status.namespace",
        priority = 1
    ),
    printcolumn(
        name = "Month",
        type_ = "string",
        json_path = ".status.accrual.month",
        priority = 1
    ),
    printcolumn(
        name = "Charge",
        type_ = "string",
        json_path = ".status.accrual.amount",
        description = "The month's charge in yuan at the allocation and prices in force (Art. 6, 16)",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.unit == oldSelf.unit")
    .message("spec.unit cannot change").field_path(".unit"))]
#[x_kube(validation = Rule::new("self.request == oldSelf.request")
    .message("spec.request cannot change").field_path(".request"))]
pub struct TenancySpec {
    /// The unit id: the `govcloud.dev/unit` label of the unit's namespace.
    #[schemars(schema_with = "text::<63>")]
    pub unit: String,
    /// The unit's name as printed on the forms.
    #[schemars(schema_with = "text::<100>")]
    pub unit_name: String,
    /// The system's name as printed on the forms.
    #[schemars(schema_with = "text::<100>")]
    pub system_name: String,
    /// What the system is used for (主要用途).
    #[schemars(schema_with = "text::<2000>")]
    pub purpose: String,
    /// The CloudResourceRequest this tenancy was created from.
    pub request: ObjectName,
    /// The generation of that request whose approval (or emergency opening)
    /// this allocation carries.
    pub request_generation: i64,
    /// The approved service types.
    #[schemars(length(max = 32))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub service_types: Vec<ServiceType>,
    /// The approved allocation.
    pub allocation: Resources,
    /// Compliance evidence carried over from the request.
    #[serde(default)]
    pub compliance: Compliance,
    /// Approved extension requests that grew this allocation, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub extensions: Vec<ObjectName>,
    /// Approved ChangeRequests applied to this allocation, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub changes: Vec<ObjectName>,
    /// Set while the tenancy runs on an emergency opening (Art. 13 ¶2), until
    /// the full application is approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<EmergencyOpening>,
    /// Set when the tenancy is to be retired: its resources are released and
    /// its volumes wiped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement: Option<Retirement>,
}

/// An opening before the full review (Art. 13 ¶2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmergencyOpening {
    pub opened_at: Time,
    /// The end of the 10th working day after the opening.
    pub paperwork_due_at: Time,
}

/// Why and on whose decision a tenancy is retired.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retirement {
    pub reason: RetirementReason,
    /// The object carrying the decision (a request or a ChangeRequest).
    pub reference: String,
    pub decided_at: Time,
    /// When the release may begin (a termination's effective date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<Time>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RetirementReason {
    /// The request opened in an emergency was rejected in the full review.
    EmergencyRejected,
    /// An approved termination (Art. 19).
    Terminated,
    /// A reviewer's deregistration after failed rectification (Art. 20).
    Deregistered,
}

/// Where a tenancy stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum TenancyPhase {
    Provisioning,
    Trial,
    Active,
    Rectifying,
    ForceStopped,
    Reclaimed,
    Terminating,
    Retired,
}

/// An object the operator created for the tenancy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryItem {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Whether the object is in the state the tenancy needs.
    pub ready: bool,
    /// Being removed (a reduction): its volumes are wiped, then it is deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removing: bool,
    /// What removes it, e.g. `ChangeRequest/finance-oa-shrink`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A service that is not a Kubernetes object (database, e-seal, SMS ...): the
/// vendor fulfils it and acknowledges with `govcloud.dev/fulfilled`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entitlement {
    pub service: ServiceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilled_at: Option<Time>,
}

/// Evidence that the unit used its resources during the trial (Art. 15).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageEvidence {
    /// The first VM seen running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at: Option<Time>,
    /// When the monitoring probe (the guest agent) first reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_reported_at: Option<Time>,
}

/// How a volume's contents were destroyed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum WipeMethod {
    /// A Job overwrote the volume before it was deleted.
    Overwrite,
    /// The volume was deleted, trusting the storage class to erase it.
    Delete,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum WipeResult {
    Succeeded,
    Failed,
}

/// Evidence that one volume was wiped (Art. 19: 数据清除).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WipeRecord {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "sizeGiB")]
    pub size_gib: u32,
    pub method: WipeMethod,
    pub at: Time,
    pub result: WipeResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the volume was wiped for: a ChangeRequest, the emergency
    /// request rejected, a deregistration, or `Reclaim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The wipe Job that overwrote it, as `<name> (uid <uid>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// A wipe Job the operator created, known by its UID: only such a Job's
/// success is a wipe record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WipeJob {
    /// The volume it overwrites.
    pub pvc: String,
    pub job: String,
    pub uid: String,
}

/// A volume of the tenancy that disappeared without being wiped (deleted by
/// someone else, or with its namespace).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LostVolume {
    pub name: String,
    /// When the operator found it gone.
    pub noticed_at: Time,
    /// The note of the vendor or reviewer who acknowledged the loss (what
    /// was done about it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenancyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TenancyPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The namespace holding the tenancy's workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What the operator created, and whether each is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<InventoryItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<Entitlement>,
    /// When every resource was in place (资源发放日, Art. 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Time>,
    /// Delivery + 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_ends_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageEvidence>,
    /// When formal operation and billing started (Art. 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_started_at: Option<Time>,
    /// When billing stopped: the effective date of a termination, or the
    /// start of a release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_ended_at: Option<Time>,
    /// When the unit confirmed delivery (the reply of Attachment 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_confirmed_at: Option<Time>,
    /// The unit's confirmation as it wrote it in the
    /// `govcloud.dev/delivery-confirmed` annotation (its reply's date or
    /// reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_confirmation: Option<String>,
    /// Approved extensions and when their resources were delivered (they are
    /// billed from then, with no trial of their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension_deliveries: Vec<ExtensionDelivery>,
    /// When the unit's further applications were suspended because this
    /// tenancy's trial went unused (Art. 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_suspended_at: Option<Time>,
    /// Utilisation from Prometheus and the figures of Art. 18 (written by the
    /// utilisation evaluator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilisation: Option<Utilisation>,
    /// Rightsizing recommendations of Art. 18 (written by the evaluator).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<crate::api::utilisation::Recommendation>,
    /// A rectification case proposed by the evaluator (Art. 20 (1)), for a
    /// reviewer to confirm by opening it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectification_proposal: Option<RectificationProposal>,
    /// The rectification case (Art. 20), if one was opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectification: Option<Rectification>,
    /// Isolation by the vendor or a reviewer (Art. 25), while in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// What a force-stop or isolation holds, to restore when it is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// Compliance evidence missing past its deadline (Art. 12 ¶2, 24).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compliance_gaps: Vec<String>,
    /// One record per volume wiped (or failing to be), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wipe_records: Vec<WipeRecord>,
    /// The wipe Jobs the operator created, by UID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wipe_jobs: Vec<WipeJob>,
    /// Volumes that disappeared without a wipe; the tenancy is not Ready
    /// until a vendor or reviewer acknowledges each loss with a note of its
    /// own (`govcloud.dev/loss-acknowledged`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_volumes: Vec<LostVolume>,
    /// When every resource was released (Reclaimed or Retired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Time>,
    /// What the current month costs (Art. 6, 16), once billing has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accrual: Option<Accrual>,
    /// Its times in Beijing time, as people read them.
    #[serde(default, skip_serializing_if = "crate::api::common::Shown::is_empty")]
    pub shown: crate::api::common::Shown,
}

/// The month's charges of a tenancy as they stand: the billed days of the
/// month at the ServiceCatalog prices in force on each and the allocation in
/// force at its start, through the month's end or the end of billing. Written
/// when the month turns (Beijing time) and whenever the allocation, billing
/// dates or prices change, never merely because a day passed: what has
/// accrued up to today is `kubectl govcloud show`'s to compute.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accrual {
    /// The month, as `2026-11`.
    pub month: String,
    /// The month's charge in yuan (`632.70`), the sum of the lines `kubectl
    /// govcloud bill` prints for the tenancy; absent when it cannot be priced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// The days of the month billed.
    pub billed_days: u32,
    /// The first and last of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_day: Option<jiff::civil::Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_day: Option<jiff::civil::Date>,
    /// Why the month cannot be priced (a missing catalog or price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The utilisation summary and when it was computed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Utilisation {
    pub evaluated_at: Time,
    #[serde(flatten)]
    pub summary: crate::api::utilisation::Summary,
    /// Rules that could not be evaluated, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insufficient: Vec<crate::api::utilisation::Insufficient>,
}

/// The five cases of Art. 20.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RectificationTrigger {
    /// (一) still low usage within 3 months after a scale-down.
    LowUsageAfterScaleDown,
    /// (二) not meeting the security and cryptography rules.
    SecurityNonCompliance,
    /// (三) information-security vulnerabilities.
    Vulnerabilities,
    /// (四) used other than applied for.
    MisuseOfResources,
    /// (五) other breaches.
    Other,
}

impl RectificationTrigger {
    /// From the code a reviewer writes in `govcloud.dev/rectification`: 1-5.
    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim() {
            "1" => Some(Self::LowUsageAfterScaleDown),
            "2" => Some(Self::SecurityNonCompliance),
            "3" => Some(Self::Vulnerabilities),
            "4" => Some(Self::MisuseOfResources),
            "5" => Some(Self::Other),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Self::LowUsageAfterScaleDown => 1,
            Self::SecurityNonCompliance => 2,
            Self::Vulnerabilities => 3,
            Self::MisuseOfResources => 4,
            Self::Other => 5,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RectificationProposal {
    pub trigger: RectificationTrigger,
    pub proposed_at: Time,
    pub reason: String,
}

/// A rectification case (Art. 20): one calendar month to rectify.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rectification {
    pub trigger: RectificationTrigger,
    pub opened_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_by: Option<String>,
    /// The end of the same day of the next month (Art. 20: one month).
    pub due_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Time>,
    /// Why the case was closed: the reviewer's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_note: Option<String>,
    /// Who closed it (`govcloud.dev/decided-by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// When it was force-stopped for being overdue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_stopped_at: Option<Time>,
}

/// Isolation (Art. 25): who, why and since when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Isolation {
    /// The reason given in `govcloud.dev/isolate`.
    pub reason: String,
    /// Who isolated it (`govcloud.dev/decided-by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub since: Time,
}

/// What a force-stop or an isolation took away, recorded before anything was
/// stopped, so that lifting it restores exactly this.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    pub since: Time,
    /// How `halt` or `pause` (from the operator's configuration when it began).
    pub mode: HoldMode,
    /// Every VM of the namespace and how it ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vms: Vec<HeldVm>,
    /// The unit's own NetworkPolicies, removed while held (a deny-all policy
    /// cannot override another policy's allow rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_policies: Vec<StashedPolicy>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum HoldMode {
    /// VMs set to `runStrategy: Halted`.
    Halt,
    /// VM instances paused through KubeVirt's `pause` subresource.
    Pause,
}

/// A VM of the held namespace, and how it ran before.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldVm {
    pub name: String,
    /// Its `spec.runStrategy`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_strategy: Option<String>,
    /// Its `spec.running`, if it used that instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    /// Whether its instance was already paused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// A NetworkPolicy of the unit, kept while it is removed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StashedPolicy {
    pub name: String,
    /// The policy as JSON: `metadata.labels`, `metadata.annotations` and `spec`.
    pub manifest: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionDelivery {
    pub request: String,
    pub delivered_at: Time,
}

impl TenancyStatus {
    /// Fills [`TenancyStatus::shown`] from the machine fields.
    pub fn show(&mut self) {
        self.shown = crate::api::common::Shown {
            trial_ends: crate::api::common::shown(self.trial_ends_at.as_ref()),
            billing_since: crate::api::common::shown(self.billing_started_at.as_ref()),
            ..Default::default()
        };
    }
}
