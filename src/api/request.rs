//! CloudResourceRequest: the application of Attachment 1 (关于XX项目入驻政务云的申请
//! and 济南政务云计算中心云服务资源需求表), with the materials of Art. 12.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    Compliance, Contact, DocumentRef, ObjectName, Resources, ReviewRecord, ServiceType, opt_text,
    text,
};

/// An application to move a system onto the government cloud, or to add to one
/// that is already there (`extends`). Filed by a unit in its own namespace;
/// reviewed by the Digital City Department; provisioned only once approved.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "govcloud.dev",
    version = "v1alpha1",
    kind = "CloudResourceRequest",
    namespaced,
    status = "CloudResourceRequestStatus",
    shortname = "crr",
    category = "govcloud",
    doc = "An application for government-cloud resources (Attachment 1 of the measures).",
    printcolumn(name = "Unit", type_ = "string", json_path = ".spec.unit.name"),
    printcolumn(name = "System", type_ = "string", json_path = ".spec.system.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Tenancy", type_ = "string", json_path = ".status.tenancy"),
    printcolumn(
        name = "Paperwork-Due",
        type_ = "string",
        json_path = ".status.shown.paperworkDue",
        description = "Emergency openings: when the full paperwork is due (Art. 13)"
    ),
    printcolumn(
        name = "Extends",
        type_ = "string",
        json_path = ".spec.extends",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "has(self.dataPlatformAccess) && size(self.dataPlatformAccess) > 0"
).message(
    "Art. 5: declare how the system connects to the city big-data platform in spec.dataPlatformAccess (File, Interface or Database)"
).field_path(".dataPlatformAccess"))]
#[x_kube(validation = Rule::new(
    "has(self.informationResources) && size(self.informationResources) > 0"
).message(
    "Art. 5: list the system's information-resource catalogue in spec.informationResources (at least one entry)"
).field_path(".informationResources"))]
#[x_kube(validation = Rule::new(
    "!self.serviceTypes.exists(t, t.startsWith('Other')) || has(self.otherServices)"
).message(
    "describe the services ticked as 'Other' in spec.otherServices"
))]
#[x_kube(validation = Rule::new(
    "self.serviceTypes.exists(t, t == 'CloudServer') == (has(self.resources.vmGroups) && size(self.resources.vmGroups) > 0)"
).message(
    "tick CloudServer in spec.serviceTypes exactly when spec.resources.vmGroups lists virtual servers"
))]
#[x_kube(validation = Rule::new(
    "self.serviceTypes.exists(t, t == 'CloudBackup') == (has(self.resources.backupStorageGiB) && self.resources.backupStorageGiB > 0)"
).message(
    "tick CloudBackup in spec.serviceTypes exactly when spec.resources.backupStorageGiB is more than 0"
))]
#[x_kube(validation = Rule::new(
    "!((has(self.resources.vmGroups) && self.resources.vmGroups.exists(g, has(g.highEnd) && g.highEnd)) || (has(self.resources.cloudStorage) && self.resources.cloudStorage.exists(v, has(v.highEnd) && v.highEnd))) || has(self.highEndNote)"
).message(
    "high-end VMs or storage need an explanation in spec.highEndNote (若有高端虚拟机和存储，做特殊说明)"
))]
#[x_kube(validation = Rule::new(
    "has(self.emergency) || (has(self.documents) && has(self.documents.requestLetter) && has(self.documents.projectApproval) && has(self.documents.constructionPlan) && has(self.documents.securityAssessment) && has(self.documents.procurementContract))"
).message(
    "Art. 12: attach the request letter, project approval, construction plan, security assessment and procurement contract under spec.documents; only an urgent request (spec.emergency) may file them afterwards"
).field_path(".documents"))]
#[x_kube(validation = Rule::new(
    "has(self.extends) == has(oldSelf.extends) && (!has(self.extends) || self.extends == oldSelf.extends)"
).message(
    "spec.extends cannot change once filed; file a new request instead"
).field_path(".extends"))]
pub struct CloudResourceRequestSpec {
    /// The applying unit (单位名称). The unit's identity is the namespace's
    /// `govcloud.dev/unit` label; this is its name as printed on the form.
    pub unit: UnitInfo,
    /// The unit's head of informatisation (信息化负责人).
    pub it_lead: Contact,
    /// The contact person for this application (联系人).
    pub contact: Contact,
    /// The system moving onto the cloud.
    pub system: SystemInfo,
    /// The basis for building the system (建设依据): the requirement or policy it implements.
    #[schemars(schema_with = "text::<4000>")]
    pub basis: String,
    /// The functions and modules the system provides (主要实现功能及模块).
    #[schemars(schema_with = "text::<4000>")]
    pub functions: String,
    /// Why the system is built (建设意义).
    #[schemars(schema_with = "text::<4000>")]
    pub significance: String,
    /// When the unit plans to start using the resources (计划使用时间), from
    /// the measures' entry into force (2025-01-02) on.
    #[x_kube(validation = Rule::new(
        "self >= timestamp('2025-01-02T00:00:00Z') && self < timestamp('2100-01-01T00:00:00Z')"
    ).message(
        "spec.plannedStart is when the unit starts using the resources: a date from 2025-01-02 (the measures are in force from then) to 2099-12-31"
    ))]
    pub planned_start: jiff::civil::Date,
    /// The services ticked on the demand form (申请业务类型).
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub service_types: Vec<ServiceType>,
    /// What the services ticked as "Other" (其他) are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opt_text::<2000>")]
    pub other_services: Option<String>,
    /// How the system connects to the city big-data platform (接入城市大数据平台方式); Art. 5.
    #[serde(default)]
    #[schemars(length(max = 3))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub data_platform_access: Vec<DataPlatformAccess>,
    /// The system's information-resource catalogue (信息资源目录); Art. 5.
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub information_resources: Vec<InformationResource>,
    /// Detailed requirements (需求说明): types, configuration and quantities, the
    /// plan for joining the big-data platform, business volume and how the
    /// resources were estimated.
    #[schemars(schema_with = "text::<8000>")]
    pub requirements: String,
    /// The computing resources asked for.
    pub resources: Resources,
    /// Explanation required when any VM or volume is high-end (Art. 14 ¶2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opt_text::<2000>")]
    pub high_end_note: Option<String>,
    /// Security requirements (另对安全等有……需求).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opt_text::<4000>")]
    pub security_needs: Option<String>,
    /// The materials of Art. 12.
    #[serde(default)]
    pub documents: Documents,
    /// Compliance evidence (Art. 12 ¶2, Art. 24).
    #[serde(default)]
    pub compliance: Compliance,
    /// Marks the request urgent (Art. 13 ¶2). Only a reviewer's
    /// `emergency-open` decision opens it before the full review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<Emergency>,
    /// The tenancy in this namespace that this request adds to (Art. 17: new
    /// service types or quantities go through the application process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<ObjectName>,
}

/// The applying unit as printed on the form.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitInfo {
    /// 单位名称, e.g. 起步区财政金融部.
    #[schemars(schema_with = "text::<100>")]
    pub name: String,
    /// For an institution under a department: the supervising department,
    /// which seals the form as well (所属事业单位同时须由主管部门盖章).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opt_text::<100>")]
    pub supervising_department: Option<String>,
}

/// The system as named on the form.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    /// 系统名称, e.g. xx局OA办公系统.
    #[schemars(schema_with = "text::<100>")]
    pub name: String,
    /// 主要用途: what the system is used for.
    #[schemars(schema_with = "text::<2000>")]
    pub purpose: String,
}

/// How a system connects to the city big-data platform.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum DataPlatformAccess {
    /// 文件接入
    File,
    /// 接口接入
    Interface,
    /// 数据库接入
    Database,
}

/// How an information resource may be shared (共享类型).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Sharing {
    /// 无条件共享
    Unconditional,
    /// 有条件共享
    Conditional,
    /// 不予共享
    NotShared,
}

/// One entry of the information-resource catalogue.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct InformationResource {
    /// 信息资源名称.
    #[schemars(schema_with = "text::<200>")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opt_text::<1000>")]
    pub description: Option<String>,
    pub sharing: Sharing,
}

/// The application materials of Art. 12. All five are required unless the
/// request is urgent, in which case they follow within 10 working days.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Documents {
    /// The sealed application letter (云资源申请函).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_letter: Option<DocumentRef>,
    /// 项目批复文件.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_approval: Option<DocumentRef>,
    /// 建设方案.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub construction_plan: Option<DocumentRef>,
    /// 系统安全评估.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_assessment: Option<DocumentRef>,
    /// 采购合同.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procurement_contract: Option<DocumentRef>,
    /// 政务云上云业务系统需求说明 (attachment 2 of the letter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements_statement: Option<DocumentRef>,
    /// 技术部署方案, required for large applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_plan: Option<DocumentRef>,
    /// Other materials required by the province or city (其他材料).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub other: Vec<DocumentRef>,
}

impl Documents {
    /// The materials of Art. 12 that are still missing.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("requestLetter", self.request_letter.is_none()),
            ("projectApproval", self.project_approval.is_none()),
            ("constructionPlan", self.construction_plan.is_none()),
            ("securityAssessment", self.security_assessment.is_none()),
            ("procurementContract", self.procurement_contract.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect()
    }
}

/// Why a request is urgent (Art. 13 ¶2).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Emergency {
    #[schemars(schema_with = "text::<2000>")]
    pub reason: String,
}

/// Where a request stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RequestPhase {
    Submitted,
    UnderReview,
    ExpertReview,
    Returned,
    EmergencyOpened,
    Approved,
    Rejected,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudResourceRequestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RequestPhase>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the operator first saw the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Time>,
    /// The resources as the unit first asked for them, kept beside `approved`
    /// so that a reviewer's amendment stays visible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<Resources>,
    /// The resources approved (the spec of the approved generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Resources>,
    /// The generation that was approved or emergency-opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_generation: Option<i64>,
    /// Every decision taken on the request, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<ReviewRecord>,
    /// The tenancy this request created or extended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenancy: Option<String>,
    /// When an emergency opening was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Time>,
    /// The end of the 10th working day after an emergency opening (Art. 13 ¶2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paperwork_due_at: Option<Time>,
    /// Its times in Beijing time, as people read them.
    #[serde(default, skip_serializing_if = "crate::api::common::Shown::is_empty")]
    pub shown: crate::api::common::Shown,
}

impl CloudResourceRequestStatus {
    /// Fills [`CloudResourceRequestStatus::shown`] from the machine fields.
    pub fn show(&mut self) {
        self.shown = crate::api::common::Shown {
            paperwork_due: crate::api::common::shown(self.paperwork_due_at.as_ref()),
            ..Default::default()
        };
    }
}
