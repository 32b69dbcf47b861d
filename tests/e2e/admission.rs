//! Who may do what (Ch. 2, Art. 7-10, 13, 15): the chart's ClusterRoles and
//! admission policies against the real apiserver, with distinct users.

use govcloud::api::{CloudResourceRequest, keys};
use govcloud::controlplane::User;
use govcloud::manifests::{self, Applier};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::support::lab::Lab;
use crate::support::{Ctx, TestResult, read};

const OA: &str = "config/samples/20-cloudresourcerequest-oa.yaml";
const TEMPLATES: [&str; 2] = [
    "charts/govcloud-operator/templates/clusterroles-people.yaml",
    "charts/govcloud-operator/templates/admission-decisions.yaml",
];

/// A case of the matrix: what was tried, and `None` when it must succeed or
/// the words the refusal must contain.
struct Case {
    what: &'static str,
    refused_with: Option<String>,
    outcome: Result<(), String>,
}

fn check(cases: &[Case]) {
    let mut wrong = Vec::new();
    for c in cases {
        match (&c.refused_with, &c.outcome) {
            (None, Ok(())) => {}
            (Some(words), Err(message)) if message.contains(words.as_str()) => {}
            (expected, got) => {
                wrong.push(format!("{}: expected {expected:?}, got {got:?}", c.what))
            }
        }
    }
    eprintln!(
        "  {} cases, {} as expected",
        cases.len(),
        cases.len() - wrong.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn refused(words: &str) -> Option<String> {
    Some(words.to_owned())
}

fn outcome<T>(r: Result<T, kube::Error>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| match e {
        kube::Error::Api(s) => s.message,
        e => e.to_string(),
    })
}

async fn annotate(client: &Client, ns: &str, name: &str, annotations: Value) -> Result<(), String> {
    let api: Api<CloudResourceRequest> = Api::namespaced(client.clone(), ns);
    outcome(
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": annotations } })),
        )
        .await,
    )
}

fn request(ns: &str, name: &str, annotations: Value) -> CloudResourceRequest {
    let objs = manifests::parse(OA, &read(OA)).unwrap_or_else(|e| panic!("{e}"));
    let mut v = serde_json::to_value(&objs[0]).unwrap_or_default();
    v["metadata"] = json!({ "name": name, "namespace": ns, "annotations": annotations });
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

async fn file(client: &Client, ns: &str, name: &str, annotations: Value) -> Result<(), String> {
    let api: Api<CloudResourceRequest> = Api::namespaced(client.clone(), ns);
    outcome(
        api.create(&PostParams::default(), &request(ns, name, annotations))
            .await,
    )
}

fn decision(by: &str, generation: i64, decision: &str) -> Value {
    json!({
        keys::DECISION: decision,
        keys::DECIDED_GENERATION: generation.to_string(),
        keys::DECIDED_BY: by,
    })
}

pub async fn art13_only_reviewers_decide_in_their_own_name_on_the_current_generation(
    _: Ctx,
) -> TestResult {
    let mut lab = Lab::cluster("2026-11-27T02:00:00Z").await;
    let mut applier = Applier::new(lab.admin.clone(), "govcloud-tests");
    for t in TEMPLATES {
        applier
            .apply_all(&manifests::parse(t, &read(t))?, None)
            .await?;
    }
    let a = lab.unit("finance").await;
    let b = lab.unit("health").await;
    for unit in [&a, &b] {
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": "govcloud-tenant", "namespace": unit.namespace },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "govcloud-tenant" },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": unit.group }],
        });
        applier
            .apply(&serde_json::from_value(binding)?, None)
            .await?;
    }
    for role in ["reviewer", "vendor", "auditor"] {
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": format!("govcloud-{role}s") },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("govcloud-{role}") },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": format!("govcloud:{role}s") }],
        });
        applier
            .apply(&serde_json::from_value(binding)?, None)
            .await?;
    }
    let client = |user: User| {
        let plane = &lab.plane;
        async move { plane.client(&user).await.unwrap_or_else(|e| panic!("{e}")) }
    };
    let tenant_a = client(a.member("clerk")).await;
    let tenant_b = client(b.member("nurse")).await;
    let reviewer = client(User::new("wang.reviewer", Some("govcloud:reviewers"))).await;
    let other_reviewer = "zhao.reviewer";
    let vendor = client(User::new("li.vendor", Some("govcloud:vendors"))).await;
    let auditor = client(User::new("sun.auditor", Some("govcloud:auditors"))).await;
    let ns = a.namespace.as_str();
    // Policies take a moment to be enforced after they are created.
    crate::support::eventually(
        "the policies to be enforced",
        crate::support::lab::WAIT,
        || async {
            let refused = file(
                &tenant_a,
                ns,
                "probe",
                decision("clerk@finance", 1, "approve"),
            )
            .await
            .err()?;
            refused.contains("reviewers").then_some(())
        },
    )
    .await;

    let mut cases = vec![Case {
        what: "a tenant files a request in its unit",
        refused_with: None,
        outcome: file(&tenant_a, ns, "oa", json!({})).await,
    }];
    let crr: Api<CloudResourceRequest> = Api::namespaced(lab.admin.clone(), ns);
    let generation = crr.get("oa").await?.metadata.generation.unwrap_or(1);
    let results = vec![
        (
            "a tenant files a request already approved",
            refused("only the Digital City Department's reviewers"),
            file(
                &tenant_a,
                ns,
                "self-approved",
                decision("clerk@finance", 1, "approve"),
            )
            .await,
        ),
        (
            "a tenant approves its own request",
            refused("may set govcloud.dev/decision, govcloud.dev/decided-generation"),
            annotate(
                &tenant_a,
                ns,
                "oa",
                decision("clerk@finance", generation, "approve"),
            )
            .await,
        ),
        (
            "a tenant opens its request in an emergency",
            refused("only the Digital City Department's reviewers"),
            annotate(
                &tenant_a,
                ns,
                "oa",
                decision("clerk@finance", generation, "emergency-open"),
            )
            .await,
        ),
        (
            "a tenant writes a review opinion",
            refused("govcloud.dev/opinion"),
            annotate(&tenant_a, ns, "oa", json!({ keys::OPINION: "looks fine" })).await,
        ),
        (
            "a tenant of another unit reads the request",
            refused("forbidden"),
            outcome(
                Api::<CloudResourceRequest>::namespaced(tenant_b.clone(), ns)
                    .get("oa")
                    .await,
            ),
        ),
        (
            "a tenant of another unit lists the unit's requests",
            refused("forbidden"),
            outcome(
                Api::<CloudResourceRequest>::namespaced(tenant_b.clone(), ns)
                    .list(&ListParams::default())
                    .await,
            ),
        ),
        (
            "a tenant of another unit annotates the request",
            refused("forbidden"),
            annotate(&tenant_b, ns, "oa", json!({ "note": "x" })).await,
        ),
        (
            "a tenant files in another unit's namespace",
            refused("forbidden"),
            file(&tenant_b, ns, "intruder", json!({})).await,
        ),
        (
            "a tenant writes its request's status",
            refused("forbidden"),
            outcome(crr_status(&tenant_a, ns).await),
        ),
        // RBAC already: a vendor changes nothing on a request.
        (
            "a vendor approves",
            refused("cannot patch resource \"cloudresourcerequests\""),
            annotate(
                &vendor,
                ns,
                "oa",
                decision("li.vendor", generation, "approve"),
            )
            .await,
        ),
        (
            "an auditor lists every unit's requests",
            None,
            outcome(
                Api::<CloudResourceRequest>::all(auditor.clone())
                    .list(&ListParams::default())
                    .await,
            ),
        ),
        (
            "an auditor annotates a request",
            refused("forbidden"),
            annotate(&auditor, ns, "oa", json!({ "note": "x" })).await,
        ),
        (
            "a reviewer approves in someone else's name",
            refused("must name the person deciding: set it to \"wang.reviewer\""),
            annotate(
                &reviewer,
                ns,
                "oa",
                decision(other_reviewer, generation, "approve"),
            )
            .await,
        ),
        (
            "a reviewer approves an old generation",
            Some(format!("the current generation, \"{}\"", generation + 1)),
            amend_then_approve_old(&reviewer, ns, generation).await,
        ),
        (
            "a reviewer approves without naming a generation",
            refused("set govcloud.dev/decided-generation"),
            annotate(
                &reviewer,
                ns,
                "oa",
                json!({ keys::DECISION: "approve", keys::DECIDED_BY: "wang.reviewer" }),
            )
            .await,
        ),
        (
            "a reviewer approves in their own name on the current generation",
            None,
            annotate(
                &reviewer,
                ns,
                "oa",
                decision("wang.reviewer", generation + 1, "approve"),
            )
            .await,
        ),
        (
            "a tenant edits the decider's name afterwards",
            refused("must name the person deciding"),
            annotate(
                &tenant_a,
                ns,
                "oa",
                json!({ keys::DECIDED_BY: "wang.reviewer.2" }),
            )
            .await,
        ),
        (
            "a tenant adds a label of its own",
            None,
            annotate(
                &tenant_a,
                ns,
                "oa",
                json!({ "finance.example/owner": "it-office" }),
            )
            .await,
        ),
    ];
    cases.extend(
        results
            .into_iter()
            .map(|(what, refused_with, outcome)| Case {
                what,
                refused_with,
                outcome,
            }),
    );

    // A suspended unit files nothing new (Art. 15).
    Api::<Namespace>::all(lab.admin.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { keys::SUSPENDED: "true" } } })),
        )
        .await?;
    cases.push(Case {
        what: "a suspended unit files a request",
        refused_with: refused("this unit may not file new requests: it is suspended"),
        outcome: file(&tenant_a, ns, "another", json!({})).await,
    });
    cases.push(Case {
        what: "another unit files while one is suspended",
        refused_with: None,
        outcome: file(&tenant_b, &b.namespace, "his", json!({})).await,
    });
    check(&cases);
    Ok(())
}

/// A reviewer amends the request (its generation moves on), then approves
/// naming the generation before the amendment.
async fn amend_then_approve_old(
    reviewer: &Client,
    ns: &str,
    generation: i64,
) -> Result<(), String> {
    let api: Api<CloudResourceRequest> = Api::namespaced(reviewer.clone(), ns);
    outcome(
        api.patch(
            "oa",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "resources": { "publicIPs": 0 } } })),
        )
        .await,
    )?;
    annotate(
        reviewer,
        ns,
        "oa",
        decision("wang.reviewer", generation, "approve"),
    )
    .await
}

async fn crr_status(client: &Client, ns: &str) -> Result<CloudResourceRequest, kube::Error> {
    let api: Api<CloudResourceRequest> = Api::namespaced(client.clone(), ns);
    api.patch_status(
        "oa",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "phase": "Approved" } })),
    )
    .await
}
