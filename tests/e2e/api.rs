//! The API as the apiserver serves it: CRDs established with their names,
//! columns and category; samples accepted; bad input refused with messages a
//! clerk can act on.

use std::collections::BTreeSet;

use govcloud::api::{ChangeRequest, CloudResourceRequest, ServiceCatalog, Tenancy, WorkCalendar};
use govcloud_testenv::manifests::{self, Applier};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::discovery::{Discovery, verbs};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::support::{Ctx, FIELD_MANAGER, TestResult, read};

pub async fn crds_are_established_with_names_columns_and_category(ctx: Ctx) -> TestResult {
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.admin());
    let expected = [
        ("cloudresourcerequests.govcloud.dev", "crr", true),
        ("tenancies.govcloud.dev", "tny", true),
        ("changerequests.govcloud.dev", "chr", true),
        ("workcalendars.govcloud.dev", "wcal", false),
        ("servicecatalogs.govcloud.dev", "svccat", false),
    ];
    for (name, short, namespaced) in expected {
        let crd = crds.get(name).await?;
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        assert!(established, "{name} is not Established");
        let names = &crd.spec.names;
        assert_eq!(
            names.short_names.as_deref(),
            Some(&[short.to_owned()][..]),
            "{name}"
        );
        assert_eq!(
            names.categories.as_deref(),
            Some(&["govcloud".to_owned()][..]),
            "{name}"
        );
        assert_eq!(crd.spec.scope == "Namespaced", namespaced, "{name} scope");
        let version = &crd.spec.versions[0];
        assert!(
            version
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            "{name} status subresource"
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert!(columns.contains(&"Age"), "{name} columns {columns:?}");
    }
    for kubevirt in [
        "virtualmachines.kubevirt.io",
        "virtualmachineinstances.kubevirt.io",
    ] {
        let crd = crds.get(kubevirt).await?;
        assert!(
            crd.status.and_then(|s| s.conditions).is_some_and(|cs| cs
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")),
            "{kubevirt} fixture is not Established"
        );
    }

    // Discovery, as kubectl sees it: the group, its kinds and the category.
    let discovery = Discovery::new(ctx.admin())
        .filter(&["govcloud.dev"])
        .run()
        .await?;
    let group = discovery
        .get("govcloud.dev")
        .ok_or("group govcloud.dev not discovered")?;
    let kinds: BTreeSet<String> = group
        .recommended_resources()
        .into_iter()
        .map(|(r, caps)| {
            assert!(
                caps.supports_operation(verbs::WATCH),
                "{} cannot be watched",
                r.kind
            );
            r.kind
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(
            [
                "ChangeRequest",
                "CloudResourceRequest",
                "ServiceCatalog",
                "Tenancy",
                "WorkCalendar"
            ]
            .map(String::from)
        )
    );

    // The printer columns a reviewer reads.
    let crr = crds.get("cloudresourcerequests.govcloud.dev").await?;
    let crr_columns: Vec<String> = crr.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        crr_columns,
        ["Unit", "System", "Phase", "Tenancy", "Paperwork-Due", "Age"]
    );
    let chr = crds.get("changerequests.govcloud.dev").await?;
    let chr_columns: Vec<String> = chr.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        chr_columns,
        [
            "Tenancy",
            "Action",
            "Phase",
            "Review-Due",
            "Effective",
            "Age"
        ]
    );
    Ok(())
}

/// Every file in `config/samples/` and the chart's price list, applied as a
/// platform engineer would.
pub async fn samples_are_accepted_and_listed_by_category(ctx: Ctx) -> TestResult {
    let mut applier = Applier::new(ctx.admin(), FIELD_MANAGER);
    let dir = crate::support::repo().join("config/samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    // The price list the samples are billed by ships with the chart.
    files.insert(
        0,
        crate::support::repo().join("charts/govcloud-operator/files/servicecatalog.yaml"),
    );
    assert!(files.len() >= 7, "samples: {files:?}");
    let mut applied = Vec::new();
    for file in &files {
        let name = file.display().to_string();
        let objs = manifests::parse(&name, &std::fs::read_to_string(file)?)?;
        assert!(!objs.is_empty(), "{name} holds no object");
        for obj in applier.apply_all(&objs, None).await? {
            applied.push((obj.types.clone().unwrap_or_default().kind, obj.name_any()));
        }
    }
    for kind in [
        "Namespace",
        "ServiceCatalog",
        "CloudResourceRequest",
        "ChangeRequest",
    ] {
        assert!(
            applied.iter().any(|(k, _)| k == kind),
            "no sample of {kind}"
        );
    }

    // `kubectl get govcloud -A` lists them through the category.
    let kubeconfig = ctx.env.plane.dir().join("admin-test.kubeconfig");
    ctx.env
        .plane
        .write_kubeconfig(&kubeconfig, &govcloud_testenv::User::admin())?;
    let out = std::process::Command::new(ctx.env.plane.bin_dir().join("kubectl"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "govcloud", "-A"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "finance-oa",
        "exam-registration",
        "finance-oa-resize-db",
        "exam-registration-stop",
        "default",
        "cn-2026",
    ] {
        assert!(
            stdout.contains(name),
            "`kubectl get govcloud -A` does not list {name}:\n{stdout}"
        );
    }
    Ok(())
}

fn sample(path: &str) -> Value {
    let objs = manifests::parse(path, &read(path)).expect("sample parses");
    serde_json::to_value(&objs[0]).expect("sample serialises")
}

fn resource<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

fn set(v: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let target = if parent.is_empty() {
        Some(&mut *v)
    } else {
        v.pointer_mut(parent)
    };
    match target.expect("parent exists") {
        Value::Object(map) => {
            map.insert(key.to_owned(), new);
        }
        Value::Array(items) => {
            let i: usize = key.parse().expect("array index");
            if i == items.len() {
                items.push(new);
            } else {
                items[i] = new;
            }
        }
        other => panic!("cannot set {pointer} in {other}"),
    }
}

fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    if let Some(Value::Object(map)) = v.pointer_mut(parent) {
        map.remove(key);
    }
}

/// Dry-run create: the full admission chain, nothing stored.
async fn dry_create(
    ctx: &Ctx,
    ns: &str,
    ar: &ApiResource,
    namespaced: bool,
    obj: Value,
) -> Result<(), String> {
    let api: Api<DynamicObject> = if namespaced {
        Api::namespaced_with(ctx.admin(), ns, ar)
    } else {
        Api::all_with(ctx.admin(), ar)
    };
    let obj: DynamicObject = serde_json::from_value(obj).map_err(|e| e.to_string())?;
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&params, &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(format!("{} {}", status.code, status.message)),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn art5_a_request_without_data_platform_access_is_refused(ctx: Ctx) -> TestResult {
    let unit = ctx.unit("art5").await;
    let ar = resource::<CloudResourceRequest>();
    let mut ok = sample("config/samples/20-cloudresourcerequest-oa.yaml");
    set(&mut ok, "/metadata/namespace", json!(unit.namespace));
    dry_create(&ctx, &unit.namespace, &ar, true, ok.clone()).await?;

    let mut no_access = ok.clone();
    remove(&mut no_access, "/spec/dataPlatformAccess");
    let err = dry_create(&ctx, &unit.namespace, &ar, true, no_access)
        .await
        .expect_err("accepted without access method");
    assert!(
        err.contains("Art. 5: declare how the system connects to the city big-data platform"),
        "{err}"
    );

    let mut no_catalogue = ok;
    set(&mut no_catalogue, "/spec/informationResources", json!([]));
    let err = dry_create(&ctx, &unit.namespace, &ar, true, no_catalogue)
        .await
        .expect_err("accepted without catalogue");
    assert!(
        err.contains("Art. 5: list the system's information-resource catalogue"),
        "{err}"
    );
    Ok(())
}

type Edit = Box<dyn Fn(&mut Value) + Send + Sync>;

/// One bad manifest: what the clerk did, and what the apiserver must say.
struct Case {
    name: &'static str,
    sample: &'static str,
    /// `true`: the edit is an update of a stored object (immutability rules).
    update: bool,
    edit: Edit,
    expect: &'static str,
}

fn case(
    name: &'static str,
    sample: &'static str,
    expect: &'static str,
    edit: impl Fn(&mut Value) + Send + Sync + 'static,
) -> Case {
    Case {
        name,
        sample,
        update: false,
        edit: Box::new(edit),
        expect,
    }
}

fn update(
    name: &'static str,
    sample: &'static str,
    expect: &'static str,
    edit: impl Fn(&mut Value) + Send + Sync + 'static,
) -> Case {
    Case {
        name,
        sample,
        update: true,
        edit: Box::new(edit),
        expect,
    }
}

const CRR: &str = "config/samples/20-cloudresourcerequest-oa.yaml";
const URGENT: &str = "config/samples/21-cloudresourcerequest-emergency.yaml";
const MODIFY: &str = "config/samples/30-changerequest-modify.yaml";
const TERMINATE: &str = "config/samples/31-changerequest-terminate.yaml";
const CALENDAR: &str = "charts/govcloud-operator/files/calendar/2026.yaml";
const CATALOG: &str = "charts/govcloud-operator/files/servicecatalog.yaml";

const PHONE: &str = "phone must be an 11-digit mobile number or a landline";
const EMAIL: &str = "email must be an address such as name@example.gov.cn";
const BLANK: &str = "must not be blank";
const NAME_RULE: &str = "must be lowercase letters, digits and '-'";

fn cases() -> Vec<Case> {
    vec![
        // CloudResourceRequest: the form and the materials.
        case(
            "request without the IT lead",
            CRR,
            "spec.itLead: Required value",
            |v| remove(v, "/spec/itLead"),
        ),
        case("IT lead phone too short", CRR, PHONE, |v| {
            set(v, "/spec/itLead/phone", json!("12345"))
        }),
        case("contact phone with letters", CRR, PHONE, |v| {
            set(v, "/spec/contact/phone", json!("0531-6660ABCD"))
        }),
        case("contact email without @", CRR, EMAIL, |v| {
            set(v, "/spec/contact/email", json!("lixm.finance.gov.cn"))
        }),
        case("blank system name", CRR, BLANK, |v| {
            set(v, "/spec/system/name", json!("   "))
        }),
        case("system name too long", CRR, "Too long", |v| {
            set(v, "/spec/system/name", json!("系".repeat(101)))
        }),
        case(
            "no purpose",
            CRR,
            "spec.system.purpose: Required value",
            |v| remove(v, "/spec/system/purpose"),
        ),
        case(
            "planned start not a date",
            CRR,
            "must be of type date",
            |v| set(v, "/spec/plannedStart", json!("2026-13-01")),
        ),
        case(
            "no access method (Art. 5)",
            CRR,
            "Art. 5: declare how the system connects",
            |v| set(v, "/spec/dataPlatformAccess", json!([])),
        ),
        case(
            "unknown access method",
            CRR,
            "Unsupported value: \"Email\"",
            |v| set(v, "/spec/dataPlatformAccess", json!(["Email"])),
        ),
        case(
            "no information resources (Art. 5)",
            CRR,
            "Art. 5: list the system's information-resource catalogue",
            |v| remove(v, "/spec/informationResources"),
        ),
        case(
            "unknown sharing type",
            CRR,
            "Unsupported value: \"Public\"",
            |v| set(v, "/spec/informationResources/0/sharing", json!("Public")),
        ),
        case(
            "no service ticked",
            CRR,
            "should have at least 1 items",
            |v| set(v, "/spec/serviceTypes", json!([])),
        ),
        case(
            "unknown service type",
            CRR,
            "Unsupported value: \"CloudGPU\"",
            |v| set(v, "/spec/serviceTypes/4", json!("CloudGPU")),
        ),
        case("service ticked twice", CRR, "Duplicate value", |v| {
            set(v, "/spec/serviceTypes/4", json!("Database"))
        }),
        case(
            "'Other' without description",
            CRR,
            "describe the services ticked as 'Other' in spec.otherServices",
            |v| set(v, "/spec/serviceTypes/4", json!("OtherPlatform")),
        ),
        case(
            "VMs without CloudServer",
            CRR,
            "tick CloudServer in spec.serviceTypes exactly when",
            |v| set(v, "/spec/serviceTypes", json!(["CloudBackup", "Database"])),
        ),
        case(
            "CloudServer without VMs",
            CRR,
            "tick CloudServer in spec.serviceTypes exactly when",
            |v| set(v, "/spec/resources/vmGroups", json!([])),
        ),
        case(
            "CloudBackup without backup storage",
            CRR,
            "tick CloudBackup in spec.serviceTypes exactly when",
            |v| set(v, "/spec/resources/backupStorageGiB", json!(0)),
        ),
        case(
            "zero VMs in a group",
            CRR,
            "should be greater than or equal to 1",
            |v| set(v, "/spec/resources/vmGroups/0/count", json!(0)),
        ),
        case(
            "101 VMs in a group",
            CRR,
            "should be less than or equal to 100",
            |v| set(v, "/spec/resources/vmGroups/0/count", json!(101)),
        ),
        case(
            "zero vCPU",
            CRR,
            "should be greater than or equal to 1",
            |v| set(v, "/spec/resources/vmGroups/0/vcpu", json!(0)),
        ),
        case(
            "4 TiB of memory per VM",
            CRR,
            "should be less than or equal to 2048",
            |v| set(v, "/spec/resources/vmGroups/0/memoryGiB", json!(4096)),
        ),
        case(
            "10 GiB system disk",
            CRR,
            "should be greater than or equal to 20",
            |v| set(v, "/spec/resources/vmGroups/0/systemDiskGiB", json!(10)),
        ),
        case(
            "negative data disk",
            CRR,
            "should be greater than or equal to 0",
            |v| set(v, "/spec/resources/vmGroups/1/dataDiskGiB", json!(-500)),
        ),
        case(
            "unknown architecture",
            CRR,
            "Unsupported value: \"riscv64\"",
            |v| {
                set(
                    v,
                    "/spec/resources/vmGroups/0/architecture",
                    json!("riscv64"),
                )
            },
        ),
        case("VM group name with capitals", CRR, NAME_RULE, |v| {
            set(v, "/spec/resources/vmGroups/0/name", json!("App_1"))
        }),
        case(
            "two VM groups with one name",
            CRR,
            "each VM group needs its own name",
            |v| set(v, "/spec/resources/vmGroups/1/name", json!("app")),
        ),
        case(
            "empty storage volume",
            CRR,
            "should be greater than or equal to 1",
            |v| set(v, "/spec/resources/cloudStorage/0/sizeGiB", json!(0)),
        ),
        case("storage class with symbols", CRR, NAME_RULE, |v| {
            set(v, "/spec/resources/cloudStorage/0/class", json!("SSD!"))
        }),
        case(
            "negative public IPs",
            CRR,
            "should be greater than or equal to 0",
            |v| set(v, "/spec/resources/publicIPs", json!(-1)),
        ),
        case(
            "200 Gbps of bandwidth",
            CRR,
            "should be less than or equal to 100000",
            |v| set(v, "/spec/resources/bandwidthMbps", json!(200000)),
        ),
        case(
            "high-end VM without a note (Art. 14)",
            CRR,
            "high-end VMs or storage need an explanation in spec.highEndNote",
            |v| set(v, "/spec/resources/vmGroups/1/highEnd", json!(true)),
        ),
        case(
            "materials missing (Art. 12)",
            CRR,
            "Art. 12: attach the request letter, project approval",
            |v| remove(v, "/spec/documents/procurementContract"),
        ),
        case(
            "digest not SHA-256",
            CRR,
            "sha256 must be the 64 lowercase hexadecimal digits",
            |v| set(v, "/spec/documents/requestLetter/sha256", json!("ABC123")),
        ),
        case(
            "document without scheme",
            CRR,
            "uri must be an absolute address",
            |v| {
                set(
                    v,
                    "/spec/documents/projectApproval/uri",
                    json!("docs/approval.pdf"),
                )
            },
        ),
        case(
            "MLPS level 6",
            CRR,
            "should be less than or equal to 5",
            |v| set(v, "/spec/compliance/mlps/level", json!(6)),
        ),
        case(
            "evaluation without report number",
            CRR,
            "spec.compliance.mlps.evaluation.reference: Required value",
            |v| remove(v, "/spec/compliance/mlps/evaluation/reference"),
        ),
        case("urgent request with blank reason", URGENT, BLANK, |v| {
            set(v, "/spec/emergency/reason", json!(""))
        }),
        case(
            "urgent request without materials, not urgent",
            URGENT,
            "Art. 12: attach the request letter",
            |v| remove(v, "/spec/emergency"),
        ),
        case(
            "extends a tenancy with a bad name",
            CRR,
            "must be the name of an object",
            |v| set(v, "/spec/extends", json!("Finance OA")),
        ),
        update(
            "extends changed after filing",
            CRR,
            "spec.extends cannot change once filed",
            |v| set(v, "/spec/extends", json!("another")),
        ),
        // ChangeRequest: Attachment 3 and Art. 19.
        case(
            "termination without reason code (Art. 19)",
            TERMINATE,
            "Art. 19: a termination needs spec.reasonCode",
            |v| remove(v, "/spec/reasonCode"),
        ),
        case(
            "unknown reason code",
            TERMINATE,
            "Unsupported value: \"Budget\"",
            |v| set(v, "/spec/reasonCode", json!("Budget")),
        ),
        case(
            "termination without effective date",
            TERMINATE,
            "Art. 19: a termination needs spec.effectiveDate",
            |v| remove(v, "/spec/effectiveDate"),
        ),
        case(
            "termination with a configuration after",
            TERMINATE,
            "a termination releases everything: leave spec.after empty",
            |v| set(v, "/spec/after", json!({"publicIPs": 0})),
        ),
        case(
            "modify without configuration after",
            MODIFY,
            "a Modify needs spec.after",
            |v| remove(v, "/spec/after"),
        ),
        case(
            "modify with a reason code",
            MODIFY,
            "spec.reasonCode is for terminations only",
            |v| set(v, "/spec/reasonCode", json!("PolicyChange")),
        ),
        case(
            "modify with an effective date",
            MODIFY,
            "spec.effectiveDate is for terminations only",
            |v| set(v, "/spec/effectiveDate", json!("2027-01-04")),
        ),
        case(
            "unknown action",
            MODIFY,
            "Unsupported value: \"Suspend\"",
            |v| set(v, "/spec/action", json!("Suspend")),
        ),
        case("technical contact email wrong", MODIFY, EMAIL, |v| {
            set(v, "/spec/technicalContact/email", json!("chenl@"))
        }),
        case("blank reason", MODIFY, BLANK, |v| {
            set(v, "/spec/reason", json!(" "))
        }),
        update(
            "tenancy changed after filing",
            MODIFY,
            "spec.tenancy cannot change; file a new ChangeRequest",
            |v| set(v, "/spec/tenancy", json!("other-system")),
        ),
        update(
            "action changed after filing",
            TERMINATE,
            "spec.action cannot change; file a new ChangeRequest",
            |v| {
                set(v, "/spec/action", json!("Modify"));
                remove(v, "/spec/reasonCode");
                remove(v, "/spec/effectiveDate");
                set(v, "/spec/after", json!({"publicIPs": 0}));
            },
        ),
        // WorkCalendar.
        case(
            "holiday listed twice",
            CALENDAR,
            "each date may be listed only once in spec.holidays",
            |v| set(v, "/spec/holidays/1/date", json!("2026-01-01")),
        ),
        case(
            "holiday in another year",
            CALENDAR,
            "every date must fall in spec.year",
            |v| set(v, "/spec/holidays/0/date", json!("2025-12-31")),
        ),
        case(
            "date both off and worked",
            CALENDAR,
            "a date cannot be both a holiday and an adjusted working day",
            |v| set(v, "/spec/workingDays/0/date", json!("2026-01-03")),
        ),
        case(
            "adjusted working day on a Wednesday",
            CALENDAR,
            "an adjusted working day (调休上班) must be a Saturday or Sunday",
            |v| set(v, "/spec/workingDays/0/date", json!("2026-03-04")),
        ),
        case(
            "year 1999",
            CALENDAR,
            "should be greater than or equal to 2000",
            |v| set(v, "/spec/year", json!(1999)),
        ),
        update("year changed", CALENDAR, "spec.year cannot change", |v| {
            set(v, "/spec/year", json!(2027));
            set(
                v,
                "/spec/holidays",
                json!([{"date": "2027-01-01", "name": "元旦"}]),
            );
            remove(v, "/spec/workingDays");
        }),
        // ServiceCatalog (Art. 6).
        case(
            "negative price",
            CATALOG,
            "a price is a non-negative amount of yuan",
            |v| set(v, "/spec/periods/0/vcpu", json!("-35.00")),
        ),
        case(
            "price with five decimals",
            CATALOG,
            "a price is a non-negative amount of yuan",
            |v| set(v, "/spec/periods/0/publicIP", json!("40.00001")),
        ),
        case(
            "price as a number",
            CATALOG,
            "must be of type string",
            |v| set(v, "/spec/periods/0/memoryGiB", json!(18)),
        ),
        case(
            "two periods from one date",
            CATALOG,
            "each price period needs its own effectiveFrom date",
            |v| {
                let first = v.pointer("/spec/periods/0").cloned().unwrap_or_default();
                set(v, "/spec/periods/1", first);
            },
        ),
        case(
            "storage class priced twice",
            CATALOG,
            "each storage class may be priced once per period",
            |v| set(v, "/spec/periods/0/storage/1/class", json!("standard")),
        ),
        case(
            "foreign currency",
            CATALOG,
            "Unsupported value: \"USD\"",
            |v| set(v, "/spec/currency", json!("USD")),
        ),
        case(
            "no price period",
            CATALOG,
            "should have at least 1 items",
            |v| set(v, "/spec/periods", json!([])),
        ),
        update(
            "a published price edited",
            CATALOG,
            "published price periods cannot be changed or removed",
            |v| set(v, "/spec/periods/0/vcpu", json!("30.00")),
        ),
    ]
}

/// Makes a name unique per case and puts namespaced objects into `ns`.
fn place(v: &mut Value, name: &str, ns: &str, namespaced: bool) {
    set(v, "/metadata/name", json!(name));
    if namespaced {
        set(v, "/metadata/namespace", json!(ns));
    } else {
        remove(v, "/metadata/namespace");
    }
}

fn kind_of(v: &Value) -> (ApiResource, bool) {
    match v["kind"].as_str() {
        Some("CloudResourceRequest") => (resource::<CloudResourceRequest>(), true),
        Some("ChangeRequest") => (resource::<ChangeRequest>(), true),
        Some("Tenancy") => (resource::<Tenancy>(), true),
        Some("WorkCalendar") => (resource::<WorkCalendar>(), false),
        Some("ServiceCatalog") => (resource::<ServiceCatalog>(), false),
        other => panic!("no kind for {other:?}"),
    }
}

pub async fn invalid_manifests_are_rejected_with_actionable_messages(ctx: Ctx) -> TestResult {
    let unit = ctx.unit("bad").await;
    let cases = cases();
    assert!(cases.len() >= 40, "only {} bad manifests", cases.len());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let mut obj = sample(case.sample);
        let (ar, namespaced) = kind_of(&obj);
        let name = format!("case-{i}");
        place(&mut obj, &name, &unit.namespace, namespaced);
        // The unedited sample must pass, or the case proves nothing.
        if let Err(e) = dry_create(&ctx, &unit.namespace, &ar, namespaced, obj.clone()).await {
            failures.push(format!("{}: the sample itself is refused: {e}", case.name));
            continue;
        }
        let result = if case.update {
            let api: Api<DynamicObject> = if namespaced {
                Api::namespaced_with(ctx.admin(), &unit.namespace, &ar)
            } else {
                Api::all_with(ctx.admin(), &ar)
            };
            let stored = api
                .create(&PostParams::default(), &serde_json::from_value(obj)?)
                .await?;
            let mut edited = serde_json::to_value(&stored)?;
            (case.edit)(&mut edited);
            let params = PostParams {
                dry_run: true,
                ..PostParams::default()
            };
            let outcome = api
                .replace(&name, &params, &serde_json::from_value(edited)?)
                .await;
            if !namespaced {
                let _ = api.delete(&name, &Default::default()).await;
            }
            match outcome {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) => Err(format!("{} {}", status.code, status.message)),
                Err(e) => Err(e.to_string()),
            }
        } else {
            (case.edit)(&mut obj);
            dry_create(&ctx, &unit.namespace, &ar, namespaced, obj).await
        };
        match result {
            Ok(()) => failures.push(format!("{}: accepted", case.name)),
            Err(message) if !message.starts_with("422 ") => failures.push(format!(
                "{}: refused for another reason: {message}",
                case.name
            )),
            Err(message) if !message.contains(case.expect) => failures.push(format!(
                "{}: expected {:?} in: {message}",
                case.name, case.expect
            )),
            Err(message) => {
                let said = message
                    .split_once(" is invalid: ")
                    .map(|(_, m)| m)
                    .unwrap_or(&message);
                eprintln!("  rejected [{:>2}] {:<45} {said}", i + 1, case.name);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    Ok(())
}

/// Values at the edges of what the forms allow are accepted: the rules do not
/// refuse what a clerk may legitimately write.
pub async fn values_at_the_edges_are_accepted(ctx: Ctx) -> TestResult {
    let unit = ctx.unit("edges").await;
    let ar = resource::<CloudResourceRequest>();
    let edits: Vec<(&str, Edit)> = vec![
        (
            "a 100-character Chinese system name",
            Box::new(|v| set(v, "/spec/system/name", json!("系".repeat(100)))),
        ),
        (
            "a landline with area code and extension",
            Box::new(|v| set(v, "/spec/contact/phone", json!("0531-66604285-123"))),
        ),
        (
            "a local landline number",
            Box::new(|v| set(v, "/spec/contact/phone", json!("66604285"))),
        ),
        (
            "100 VMs in a group",
            Box::new(|v| set(v, "/spec/resources/vmGroups/0/count", json!(100))),
        ),
        (
            "no public IP and no bandwidth",
            Box::new(|v| {
                set(v, "/spec/resources/publicIPs", json!(0));
                set(v, "/spec/resources/bandwidthMbps", json!(0));
            }),
        ),
        (
            "a high-end VM with its note",
            Box::new(|v| {
                set(v, "/spec/resources/vmGroups/1/highEnd", json!(true));
                set(
                    v,
                    "/spec/highEndNote",
                    json!("数据库服务器需配置高性能SSD及大内存"),
                );
            }),
        ),
        (
            "'Other' described",
            Box::new(|v| {
                set(v, "/spec/serviceTypes/4", json!("OtherApplication"));
                set(v, "/spec/otherServices", json!("电子档案归档服务"));
            }),
        ),
        (
            "all three access methods",
            Box::new(|v| {
                set(
                    v,
                    "/spec/dataPlatformAccess",
                    json!(["File", "Interface", "Database"]),
                )
            }),
        ),
    ];
    for (i, (what, edit)) in edits.iter().enumerate() {
        let mut obj = sample(CRR);
        place(&mut obj, &format!("edge-{i}"), &unit.namespace, true);
        edit(&mut obj);
        if let Err(e) = dry_create(&ctx, &unit.namespace, &ar, true, obj).await {
            panic!("{what} was refused: {e}");
        }
    }
    let ar = resource::<ServiceCatalog>();
    let mut free = sample(CATALOG);
    place(&mut free, "edge-free", "", false);
    set(&mut free, "/spec/periods/0/publicIP", json!("0"));
    set(&mut free, "/spec/periods/0/diskGiB", json!("0.0125"));
    dry_create(&ctx, "", &ar, false, free)
        .await
        .map_err(|e| format!("zero and four-decimal prices refused: {e}"))?;
    Ok(())
}

/// Art. 6: prices change by adding a period; a published period stays as it
/// was, so that every past bill can be reproduced.
pub async fn art6_published_prices_are_superseded_never_edited(ctx: Ctx) -> TestResult {
    let api: Api<ServiceCatalog> = Api::all(ctx.admin());
    let mut catalog: ServiceCatalog = serde_json::from_value(sample(CATALOG))?;
    catalog.metadata.name = Some("art6".into());
    let stored = api.create(&PostParams::default(), &catalog).await?;

    let mut newer = stored.clone();
    let mut period = newer.spec.periods[0].clone();
    period.effective_from = "2026-07-01".parse()?;
    period.vcpu = "32.00".into();
    newer.spec.periods.push(period);
    let stored = api
        .replace(&stored.name_any(), &PostParams::default(), &newer)
        .await?;
    assert_eq!(stored.spec.periods.len(), 2);

    let mut edited = stored.clone();
    edited.spec.periods[0].vcpu = "30.00".into();
    let err = api
        .replace(&stored.name_any(), &PostParams::default(), &edited)
        .await
        .expect_err("a published price was edited");
    assert!(
        err.to_string()
            .contains("published price periods cannot be changed or removed"),
        "{err}"
    );

    let mut removed = stored.clone();
    removed.spec.periods.remove(0);
    let err = api
        .replace(&stored.name_any(), &PostParams::default(), &removed)
        .await
        .expect_err("a published period was removed");
    assert!(
        err.to_string()
            .contains("published price periods cannot be changed or removed"),
        "{err}"
    );
    api.delete(&stored.name_any(), &Default::default()).await?;
    Ok(())
}

/// Art. 12: the four materials and the request letter come with the request;
/// only an urgent request (Art. 13 ¶2) may follow up with them.
pub async fn art12_materials_are_required_unless_the_request_is_urgent(ctx: Ctx) -> TestResult {
    let unit = ctx.unit("art12").await;
    let ar = resource::<CloudResourceRequest>();
    let mut urgent = sample(URGENT);
    place(&mut urgent, "urgent", &unit.namespace, true);
    assert!(
        urgent.pointer("/spec/documents").is_none(),
        "the urgent sample files no materials"
    );
    dry_create(&ctx, &unit.namespace, &ar, true, urgent.clone()).await?;

    let mut not_urgent = urgent.clone();
    remove(&mut not_urgent, "/spec/emergency");
    let err = dry_create(&ctx, &unit.namespace, &ar, true, not_urgent.clone())
        .await
        .expect_err("accepted without materials");
    assert!(err.contains("Art. 12: attach the request letter, project approval, construction plan, security assessment and procurement contract"), "{err}");

    let documents = sample(CRR)["spec"]["documents"].clone();
    for missing in [
        "requestLetter",
        "projectApproval",
        "constructionPlan",
        "securityAssessment",
        "procurementContract",
    ] {
        let mut partial = not_urgent.clone();
        set(&mut partial, "/spec/documents", documents.clone());
        remove(&mut partial, &format!("/spec/documents/{missing}"));
        let err = dry_create(&ctx, &unit.namespace, &ar, true, partial)
            .await
            .expect_err(missing);
        assert!(err.contains("Art. 12"), "without {missing}: {err}");
    }
    set(&mut not_urgent, "/spec/documents", documents);
    dry_create(&ctx, &unit.namespace, &ar, true, not_urgent).await?;
    Ok(())
}

/// Art. 19: a termination names one of the five admissible reasons.
pub async fn art19_a_termination_names_one_of_the_five_reasons(ctx: Ctx) -> TestResult {
    let unit = ctx.unit("art19").await;
    let ar = resource::<ChangeRequest>();
    for (i, code) in [
        "PolicyChange",
        "SuperiorPlatform",
        "DistrictConsolidation",
        "BusinessUpgrade",
        "OtherPolicy",
    ]
    .iter()
    .enumerate()
    {
        let mut obj = sample(TERMINATE);
        place(&mut obj, &format!("stop-{i}"), &unit.namespace, true);
        set(&mut obj, "/spec/reasonCode", json!(code));
        dry_create(&ctx, &unit.namespace, &ar, true, obj)
            .await
            .map_err(|e| format!("{code}: {e}"))?;
    }
    let mut none = sample(TERMINATE);
    place(&mut none, "stop-none", &unit.namespace, true);
    remove(&mut none, "/spec/reasonCode");
    let err = dry_create(&ctx, &unit.namespace, &ar, true, none)
        .await
        .expect_err("a termination without a reason");
    assert!(
        err.contains(
            "PolicyChange, SuperiorPlatform, DistrictConsolidation, BusinessUpgrade or OtherPolicy"
        ),
        "{err}"
    );
    Ok(())
}
