//! Building blocks shared by the kinds: contacts, documents, resources, service
//! types, review records. Strings that the paper forms constrain (phones, emails,
//! digests, names) are newtypes whose schema carries its own CEL rule, so every
//! field of that type is checked the same way at the API server.

use std::borrow::Cow;

use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A string type whose schema is a bounded string with one CEL rule.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, max = $max:expr, rule = $rule:expr, message = $msg:expr) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "maxLength": $max,
                    "x-kubernetes-validations": [{ "rule": $rule, "message": $msg }],
                })
            }
        }
    };
}

checked_string!(
    /// A telephone number: an 11-digit mobile number, or a landline with an
    /// optional area code and extension (0531-66604285, 66604285-12).
    Phone,
    max = 24,
    rule = r"self.matches('^(1[3-9][0-9]{9}|(0[0-9]{2,3}-?)?[0-9]{7,8}(-[0-9]{1,6})?)$')",
    message = "phone must be an 11-digit mobile number or a landline such as 0531-66604285"
);

checked_string!(
    /// An e-mail address.
    Email,
    max = 254,
    rule = r"self.matches('^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$')",
    message = "email must be an address such as name@example.gov.cn"
);

checked_string!(
    /// The SHA-256 digest of a document, 64 lowercase hexadecimal digits.
    Sha256,
    max = 64,
    rule = "self.matches('^[0-9a-f]{64}$')",
    message = "sha256 must be the 64 lowercase hexadecimal digits of the document's SHA-256 digest"
);

checked_string!(
    /// Where a document can be fetched: an absolute URI with a scheme.
    DocumentUri,
    max = 2048,
    rule = r"self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^\\s]+$')",
    message = "uri must be an absolute address such as https://docs.example.gov.cn/a.pdf"
);

checked_string!(
    /// A short lowercase name usable inside Kubernetes object names
    /// (a DNS label of at most 40 characters).
    ShortName,
    max = 40,
    rule = "self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    message = "must be lowercase letters, digits and '-', start with a letter and end with a letter or digit (at most 40)"
);

checked_string!(
    /// The name of an object in the same namespace (a DNS subdomain).
    ObjectName,
    max = 253,
    rule = r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
    message = "must be the name of an object: lowercase letters, digits, '-' and '.'"
);

checked_string!(
    /// An amount of yuan: a non-negative decimal with at most four places.
    Price,
    max = 16,
    rule = r"self.matches('^[0-9]{1,9}(\\.[0-9]{1,4})?$')",
    message = "a price is a non-negative amount of yuan with at most 4 decimal places, written as a string such as \"35.50\""
);

/// Bounded free text: `max` characters, not blank.
pub(crate) fn text<const MAX: u32>(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX,
        "x-kubernetes-validations": [{
            "rule": "self.trim().size() > 0",
            "message": "must not be blank",
        }],
    })
}

/// Optional bounded free text.
pub(crate) fn opt_text<const MAX: u32>(g: &mut SchemaGenerator) -> Schema {
    let mut s = text::<MAX>(g);
    s.insert("nullable".into(), true.into());
    s
}

/// A person named on the forms, with the two ways to reach them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Full name.
    #[schemars(schema_with = "text::<64>")]
    pub name: String,
    pub phone: Phone,
    pub email: Email,
}

/// A document handed in with an application: what it is, where it is, and its
/// digest so that the copy reviewed is the copy filed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentRef {
    /// Title of the document, e.g. 关于XX项目的批复.
    #[schemars(schema_with = "text::<200>")]
    pub name: String,
    pub uri: DocumentUri,
    pub sha256: Sha256,
}

/// CPU architecture of a VM group. Domestic (Xinchuang) platforms run on arm64
/// (Kunpeng, Phytium) or amd64 (Hygon, Zhaoxin).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Amd64,
    Arm64,
}

/// A group of identical virtual servers (虚拟服务器).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmGroup {
    /// Name of the group, used in the VM names (`<group>-<n>`).
    pub name: ShortName,
    /// Number of VMs in the group.
    #[schemars(range(min = 1, max = 100))]
    pub count: u32,
    /// Virtual CPUs per VM.
    #[schemars(range(min = 1, max = 128))]
    pub vcpu: u32,
    /// Memory per VM in GiB.
    #[serde(rename = "memoryGiB")]
    #[schemars(range(min = 1, max = 2048))]
    pub memory_gib: u32,
    /// System disk per VM in GiB.
    #[serde(rename = "systemDiskGiB")]
    #[schemars(range(min = 20, max = 2048))]
    pub system_disk_gib: u32,
    /// Data disk per VM in GiB; 0 for none.
    #[serde(rename = "dataDiskGiB", default)]
    #[schemars(range(min = 0, max = 65536))]
    pub data_disk_gib: u32,
    /// Operating-system image, e.g. `kylin-server-v10-sp3`.
    #[schemars(schema_with = "text::<256>")]
    pub image: String,
    pub architecture: Architecture,
    /// A high-end VM (GPU, large memory, special hardware) that the vendor must
    /// procure or set up by separate agreement before delivery (Art. 14 ¶2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub high_end: bool,
}

/// A cloud storage volume (云存储).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageVolume {
    /// Name of the volume, used as the PVC name.
    pub name: ShortName,
    /// Size in GiB.
    #[serde(rename = "sizeGiB")]
    #[schemars(range(min = 1, max = 1048576))]
    pub size_gib: u32,
    /// Storage class, as priced in the ServiceCatalog (e.g. `standard`, `ssd`).
    pub class: ShortName,
    /// High-end storage agreed separately with the vendor (Art. 14 ¶2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub high_end: bool,
}

/// The computing resources of the demand form, also used for what a tenancy is
/// allocated and what a change asks for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Virtual servers, by group.
    #[serde(default)]
    #[schemars(length(max = 50))]
    #[x_kube(validation = Rule::new("self.all(g, self.exists_one(o, o.name == g.name))")
        .message("each VM group needs its own name"))]
    pub vm_groups: Vec<VmGroup>,
    /// Cloud storage volumes (云存储).
    #[serde(default)]
    #[schemars(length(max = 50))]
    #[x_kube(validation = Rule::new("self.all(v, self.exists_one(o, o.name == v.name))")
        .message("each cloud storage volume needs its own name"))]
    pub cloud_storage: Vec<StorageVolume>,
    /// Backup storage in GiB (备份存储).
    #[serde(rename = "backupStorageGiB", default)]
    #[schemars(range(min = 0, max = 1048576))]
    pub backup_storage_gib: u32,
    /// Internet IP addresses (互联网IP地址).
    #[serde(rename = "publicIPs", default)]
    #[schemars(range(min = 0, max = 256))]
    pub public_ips: u32,
    /// Internet bandwidth in Mbps (互联网带宽).
    #[serde(default)]
    #[schemars(range(min = 0, max = 100000))]
    pub bandwidth_mbps: u32,
}

impl Resources {
    pub fn vm_count(&self) -> u32 {
        self.vm_groups
            .iter()
            .fold(0u32, |n, g| n.saturating_add(g.count))
    }
}

/// The services a unit may tick on the demand form (申请业务类型), row by row.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum ServiceType {
    // Infrastructure
    /// 云服务器
    CloudServer,
    /// 云备份
    CloudBackup,
    /// 专享云
    DedicatedCloud,
    /// 云托管
    CloudHosting,
    /// 运维和维保
    OperationsAndMaintenance,
    /// 网络接入
    NetworkAccess,
    /// 其他 (infrastructure)
    OtherInfrastructure,
    // Platform
    /// 数据库
    Database,
    /// 防病毒
    Antivirus,
    /// 中间件
    Middleware,
    /// 云开发平台
    CloudDevelopmentPlatform,
    /// 应用负载均衡
    ApplicationLoadBalancer,
    /// 其他 (platform)
    OtherPlatform,
    // Security and data services
    /// 数字证书服务
    DigitalCertificate,
    /// 安全交换
    SecureExchange,
    /// 互联网数据采集及分析
    InternetDataCollection,
    /// 基础信息数据交换
    BasicDataExchange,
    /// 大数据分析
    BigDataAnalytics,
    /// 网站监测
    WebsiteMonitoring,
    /// 可信身份认证服务
    TrustedIdentity,
    /// 数据库运维及同步服务
    DatabaseOpsAndSync,
    /// 高性能计算服务
    HighPerformanceComputing,
    /// 安全防护服务
    SecurityProtection,
    /// 统一电子印章服务
    ElectronicSeal,
    /// VPN接入
    VpnAccess,
    /// 其他 (security and data)
    OtherSecurity,
    // Applications
    /// 舆情信息
    PublicOpinion,
    /// 网站和视频加速
    WebAndVideoAcceleration,
    /// 密码服务
    CryptographicService,
    /// SaaS服务
    SaaS,
    /// 短信平台
    SmsPlatform,
    /// 其他 (applications)
    OtherApplication,
}

impl ServiceType {
    pub const ALL: [ServiceType; 32] = [
        Self::CloudServer,
        Self::CloudBackup,
        Self::DedicatedCloud,
        Self::CloudHosting,
        Self::OperationsAndMaintenance,
        Self::NetworkAccess,
        Self::OtherInfrastructure,
        Self::Database,
        Self::Antivirus,
        Self::Middleware,
        Self::CloudDevelopmentPlatform,
        Self::ApplicationLoadBalancer,
        Self::OtherPlatform,
        Self::DigitalCertificate,
        Self::SecureExchange,
        Self::InternetDataCollection,
        Self::BasicDataExchange,
        Self::BigDataAnalytics,
        Self::WebsiteMonitoring,
        Self::TrustedIdentity,
        Self::DatabaseOpsAndSync,
        Self::HighPerformanceComputing,
        Self::SecurityProtection,
        Self::ElectronicSeal,
        Self::VpnAccess,
        Self::OtherSecurity,
        Self::PublicOpinion,
        Self::WebAndVideoAcceleration,
        Self::CryptographicService,
        Self::SaaS,
        Self::SmsPlatform,
        Self::OtherApplication,
    ];

    /// The label of the checkbox on the paper form.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::CloudServer => "云服务器",
            Self::CloudBackup => "云备份",
            Self::DedicatedCloud => "专享云",
            Self::CloudHosting => "云托管",
            Self::OperationsAndMaintenance => "运维和维保",
            Self::NetworkAccess => "网络接入",
            Self::Database => "数据库",
            Self::Antivirus => "防病毒",
            Self::Middleware => "中间件",
            Self::CloudDevelopmentPlatform => "云开发平台",
            Self::ApplicationLoadBalancer => "应用负载均衡",
            Self::DigitalCertificate => "数字证书服务",
            Self::SecureExchange => "安全交换",
            Self::InternetDataCollection => "互联网数据采集及分析",
            Self::BasicDataExchange => "基础信息数据交换",
            Self::BigDataAnalytics => "大数据分析",
            Self::WebsiteMonitoring => "网站监测",
            Self::TrustedIdentity => "可信身份认证服务",
            Self::DatabaseOpsAndSync => "数据库运维及同步服务",
            Self::HighPerformanceComputing => "高性能计算服务",
            Self::SecurityProtection => "安全防护服务",
            Self::ElectronicSeal => "统一电子印章服务",
            Self::VpnAccess => "VPN接入",
            Self::PublicOpinion => "舆情信息",
            Self::WebAndVideoAcceleration => "网站和视频加速",
            Self::CryptographicService => "密码服务",
            Self::SaaS => "SaaS服务",
            Self::SmsPlatform => "短信平台",
            Self::OtherInfrastructure
            | Self::OtherPlatform
            | Self::OtherSecurity
            | Self::OtherApplication => "其他",
        }
    }
}

/// A reviewer's decision, as written in the `govcloud.dev/decision` annotation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Approve,
    Reject,
    Return,
    ExpertReview,
    EmergencyOpen,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Return => "return",
            Self::ExpertReview => "expert-review",
            Self::EmergencyOpen => "emergency-open",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Approve,
            Self::Reject,
            Self::Return,
            Self::ExpertReview,
            Self::EmergencyOpen,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One decision on a request, kept for the audit trail.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRecord {
    pub decision: Decision,
    /// The reviewer's user name, from `govcloud.dev/decided-by`.
    pub reviewer: String,
    /// The `metadata.generation` the decision was made on.
    pub generation: i64,
    pub decided_at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// The review opinion (审核意见).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opinion: Option<String>,
    /// Reference to the expert panel's opinion (专家评审意见), Art. 13.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expert_opinion: Option<String>,
}

/// Evidence that a compliance step was completed: when, and the report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The day the step was completed.
    pub completed_on: jiff::civil::Date,
    /// Report or certificate number.
    #[schemars(schema_with = "text::<128>")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentRef>,
}

/// Classified protection of information security (等级保护, MLPS).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mlps {
    /// Protection level, 1 to 5.
    #[schemars(range(min = 1, max = 5))]
    pub level: u8,
    /// Filing number with the public-security authority (定级备案).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opt_text::<64>")]
    pub filing_number: Option<String>,
    /// Evaluation (等级测评).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evidence>,
}

/// Evidence for the deadlines of Art. 12 ¶2 and Art. 24.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Compliance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlps: Option<Mlps>,
    /// Commercial cryptography application security assessment (密码应用安全性评估).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypto_assessment: Option<Evidence>,
    /// Software testing (软件测评).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_testing: Option<Evidence>,
    /// Domestic information-technology (信创) adaptation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xinchuang: Option<Evidence>,
}

/// The times of a status as people read them: Beijing time with its offset
/// (`2026-10-09 23:59:59 +08:00`), for printer columns and `kubectl
/// describe`. The machine fields beside them stay RFC 3339 in UTC; these are
/// derived from them and never read back.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    /// `status.reviewDueAt` (a change, Art. 17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_due: Option<String>,
    /// `status.paperworkDueAt` (an emergency opening, Art. 13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paperwork_due: Option<String>,
    /// `status.trialEndsAt` (Art. 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_ends: Option<String>,
    /// `status.billingStartedAt` (Art. 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_since: Option<String>,
}

impl Shown {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// An instant of a status as [`Shown`] holds it.
pub fn shown(at: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<String> {
    at.map(|t| crate::beijing::display(t.0))
}
