//! ChangeRequest: the change or cancellation form of Attachment 3
//! (济南政务云计算中心云服务资源变更/注销申请表).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Contact, ObjectName, Resources, ReviewRecord, text};
use super::tenancy::WipeRecord;

/// A request to change a tenancy's configuration (Art. 17) or to stop using the
/// cloud (Art. 19). The fields that the operator knows from the tenancy (unit,
/// system, purpose, the configuration before) are filled into the status, so the
/// form can never disagree with what is provisioned.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "govcloud.dev",
    version = "v1alpha1",
    kind = "ChangeRequest",
    namespaced,
    status = "ChangeRequestStatus",
    shortname = "chr",
    category = "govcloud",
    doc = "A change or termination of a tenancy (Attachment 3 of the measures).",
    printcolumn(name = "Tenancy", type_ = "string", json_path = ".spec.tenancy"),
    printcolumn(name = "Action", type_ = "string", json_path = ".spec.action"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Review-Due",
        type_ = "string",
        json_path = ".status.shown.reviewDue",
        description = "End of the 10th working day after submission (Art. 17)"
    ),
    printcolumn(
        name = "Effective",
        type_ = "string",
        json_path = ".spec.effectiveDate",
        description = "When a termination takes effect (Art. 19)"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.action != 'Terminate' || has(self.reasonCode)").message(
    "Art. 19: a termination needs spec.reasonCode: PolicyChange, SuperiorPlatform, DistrictConsolidation, BusinessUpgrade or OtherPolicy"
).field_path(".reasonCode"))]
#[x_kube(validation = Rule::new("self.action != 'Terminate' || has(self.effectiveDate)").message(
    "Art. 19: a termination needs spec.effectiveDate, at least 10 working days after it is filed"
).field_path(".effectiveDate"))]
#[x_kube(validation = Rule::new("self.action != 'Terminate' || !has(self.after)").message(
    "a termination releases everything: leave spec.after empty (the form says 注销)"
).field_path(".after"))]
#[x_kube(validation = Rule::new("self.action != 'Modify' || has(self.after)").message(
    "a Modify needs spec.after: the configuration after the change"
).field_path(".after"))]
#[x_kube(validation = Rule::new("self.action != 'Modify' || !has(self.reasonCode)").message(
    "spec.reasonCode is for terminations only; explain a change in spec.reason"
).field_path(".reasonCode"))]
#[x_kube(validation = Rule::new("self.action != 'Modify' || !has(self.effectiveDate)").message(
    "spec.effectiveDate is for terminations only; a change applies once approved"
).field_path(".effectiveDate"))]
pub struct ChangeRequestSpec {
    /// The tenancy (in this namespace) to change or terminate.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.tenancy cannot change; file a new ChangeRequest"))]
    pub tenancy: ObjectName,
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.action cannot change; file a new ChangeRequest"))]
    pub action: ChangeAction,
    /// The unit's head of informatisation (信息化负责人).
    pub it_lead: Contact,
    /// The technical contact (技术联系人).
    pub technical_contact: Contact,
    /// Why the change or termination is needed (变更/注销原因).
    #[schemars(schema_with = "text::<4000>")]
    pub reason: String,
    /// For a termination: which of the five cases of Art. 19 applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<TerminationReason>,
    /// For a Modify: the configuration after the change (变更后配置).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Resources>,
    /// For a termination: the day it takes effect, at least 10 working days
    /// after it is filed (checked by the operator, which keeps a change it
    /// refuses open to correction or withdrawal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "self >= timestamp('2025-01-02T00:00:00Z') && self < timestamp('2100-01-01T00:00:00Z')"
    ).message(
        "spec.effectiveDate is a day from 2025-01-02 to 2099-12-31, at least 10 working days after the termination is filed (Art. 19)"
    ))]
    pub effective_date: Option<jiff::civil::Date>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ChangeAction {
    /// Resize existing items or reduce anything (Art. 17).
    Modify,
    /// Stop using the cloud (Art. 19).
    Terminate,
}

/// The five admissible reasons to stop using the cloud (Art. 19).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum TerminationReason {
    /// (一) 上级政策发生改变，有关业务工作进行了取消或调整
    PolicyChange,
    /// (二) 上级单位统建了平台，要求依托上级统一平台进行业务处置
    SuperiorPlatform,
    /// (三) 区级建设统一系统平台，云资源合并使用另行配置
    DistrictConsolidation,
    /// (四) 业务内容升级，原有信息化系统功能滞后
    BusinessUpgrade,
    /// (五) 国家与省市政策规定的其他情形
    OtherPolicy,
}

impl TerminationReason {
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::PolicyChange => {
                "因上级政策发生改变，有关业务工作进行了取消或调整，导致区级建设系统确需停用"
            }
            Self::SuperiorPlatform => {
                "上级单位统建了平台，要求各区县依托上级统一平台进行业务处置，导致区级建设系统不能继续使用"
            }
            Self::DistrictConsolidation => "区级建设统一系统平台，导致云资源合并使用另行配置",
            Self::BusinessUpgrade => {
                "业务内容升级，原有信息化系统功能滞后，不满足当前使用需要，导致系统停用"
            }
            Self::OtherPolicy => "国家与省市政策规定的停用政务云服务的其他情形",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ChangePhase {
    Submitted,
    UnderReview,
    Approved,
    Applied,
    Rejected,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRequestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ChangePhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// 单位名称, from the tenancy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_name: Option<String>,
    /// 系统名称, from the tenancy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_name: Option<String>,
    /// 主要用途, from the tenancy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The configuration before the change (变更/注销前配置).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Time>,
    /// The end of the 10th working day after submission (Art. 17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_due_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<ReviewRecord>,
    /// When the change took effect on the tenancy (a termination: when its
    /// resources were all released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<Time>,
    /// The tenancy's allocation once this change was applied on top of
    /// whatever was approved before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Resources>,
    /// VMs and volumes this change removes; their volumes are wiped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removes: Vec<String>,
    /// The wiping of what this change removed or released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wipe_records: Vec<WipeRecord>,
    /// Its times in Beijing time, as people read them.
    #[serde(default, skip_serializing_if = "crate::api::common::Shown::is_empty")]
    pub shown: crate::api::common::Shown,
}

impl ChangeRequestStatus {
    /// Fills [`ChangeRequestStatus::shown`] from the machine fields.
    pub fn show(&mut self) {
        self.shown = crate::api::common::Shown {
            review_due: crate::api::common::shown(self.review_due_at.as_ref()),
            ..Default::default()
        };
    }
}
