//! The Helm chart as users get it: `helm lint` and `helm template` with the
//! Helm built beside the control plane. The e2e tests install what it renders
//! into a real apiserver (admission.rs, failover.rs).

use govcloud::config::Config;
use govcloud::release::WipeMode;
use govcloud_testenv::helm::Release;
use kube::api::DynamicObject;
use serde_json::Value;

fn release() -> Release {
    Release::new("govcloud", "govcloud-system")
}

fn render(release: &Release) -> Vec<Value> {
    let yaml = release
        .template()
        .expect("helm runs")
        .unwrap_or_else(|e| panic!("{e}"));
    govcloud_testenv::manifests::parse("helm template", &yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|o: DynamicObject| serde_json::to_value(o).expect("serialises"))
        .collect()
}

fn refusal(release: &Release) -> String {
    match release.template().expect("helm runs") {
        Ok(_) => panic!("helm accepted {:?}", release.sets),
        Err(e) => e.stderr,
    }
}

fn find<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    let found = find(objs, kind);
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

#[test]
fn helm_lint_passes_strict_with_the_defaults_and_each_switch() {
    let variants = [
        release(),
        release()
            .set("replicas", "1")
            .set("leaderElection.enabled", "false"),
        release().set("admission.enabled", "false"),
        release().set("metrics.serviceMonitor.enabled", "true"),
        release().set("metrics.prometheusRule.enabled", "true"),
        release()
            .set("serviceAccount.create", "false")
            .set("serviceAccount.name", "existing"),
        release()
            .set("bindGroups", "false")
            .set("defaults.workCalendars", "false")
            .set("defaults.serviceCatalog", "false"),
    ];
    for r in variants {
        let out = r
            .lint()
            .expect("helm runs")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.contains("0 chart(s) failed"), "{:?}: {out}", r.sets);
    }
}

#[test]
fn the_values_schema_refuses_misspelt_keys_and_unsafe_values_before_install() {
    for (sets, words) in [
        (
            vec![("replica", "3")],
            "additional properties 'replica' not allowed",
        ),
        (
            vec![("leaderElection.enabled", "false")],
            "'/leaderElection/enabled': value must be true",
        ),
        (
            vec![("leaderElection.leaseSeconds", "1")],
            "'/leaderElection/leaseSeconds'",
        ),
        (
            vec![("maxConcurrentReconciles", "0")],
            "'/maxConcurrentReconciles'",
        ),
        (vec![("groups.reviewers", "it's")], "'/groups/reviewers'"),
        (
            vec![("admission.validationActions", "{Block}")],
            "value must be one of 'Deny', 'Warn', 'Audit'",
        ),
        (
            vec![("config.reviewerGroup", "x")],
            "'/config/reviewerGroup'",
        ),
        (
            vec![("image.pullPolicy", "Sometimes")],
            "'/image/pullPolicy'",
        ),
    ] {
        let mut r = release();
        for (k, v) in &sets {
            r = r.set(k, v);
        }
        let stderr = refusal(&r);
        assert!(stderr.contains(words), "{sets:?}: {stderr}");
    }
}

#[test]
fn the_deployment_runs_non_root_read_only_with_probes_resources_and_leader_election() {
    let objs = render(&release());
    let d = one(&objs, "Deployment");
    assert_eq!(d["metadata"]["namespace"], "govcloud-system");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["serviceAccountName"], "govcloud-operator");
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "govcloud-operator:0.1.0");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    assert!(args.contains(&"--lease-seconds=15"), "{args:?}");
    assert!(args.contains(&"--max-concurrent-reconciles=32"), "{args:?}");
    assert!(
        args.contains(&"--config=/etc/govcloud/operator.yaml"),
        "{args:?}"
    );
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/etc/govcloud");
    assert_eq!(pod["volumes"][0]["configMap"]["name"], "govcloud-operator");
    assert_eq!(c["env"][0]["name"], "POD_NAMESPACE");

    // One replica needs no lease.
    let objs = render(
        &release()
            .set("replicas", "1")
            .set("leaderElection.enabled", "false"),
    );
    let args =
        one(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("--leader-elect"), "{args}");
}

#[test]
fn the_rendered_configuration_is_what_the_operator_reads() {
    let objs = render(
        &release()
            .set("groups.reviewers", "district:dcd-reviewers")
            .set("config.wipe.mode", "delete"),
    );
    let text = one(&objs, "ConfigMap")["data"]["operator.yaml"]
        .as_str()
        .expect("operator.yaml")
        .to_owned();
    let config = Config::parse("operator.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.reviewer_group, "district:dcd-reviewers");
    assert_eq!(config.vendor_group, "govcloud:vendors");
    assert_eq!(config.wipe.mode, WipeMode::Delete);
    // The policies and the reviewers' binding use the same group.
    let policies = find(&objs, "ValidatingAdmissionPolicy");
    assert_eq!(policies.len(), 7);
    for p in &policies {
        let text = p.to_string();
        if text.contains("reviewer") {
            assert!(
                text.contains("district:dcd-reviewers"),
                "{}",
                p["metadata"]["name"]
            );
            assert!(
                !text.contains("govcloud:reviewers"),
                "{}",
                p["metadata"]["name"]
            );
        }
    }
    let binding = find(&objs, "ClusterRoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["name"] == "govcloud-reviewers")
        .expect("the reviewers' binding");
    assert_eq!(binding["subjects"][0]["name"], "district:dcd-reviewers");

    // A key the operator does not know renders, and the operator refuses it
    // at start with the key named, rather than ignoring it.
    let objs = render(&release().set("config.wipeMode", "delete"));
    let text = one(&objs, "ConfigMap")["data"]["operator.yaml"]
        .as_str()
        .expect("operator.yaml")
        .to_owned();
    let e = Config::parse("operator.yaml", &text).expect_err("unknown key refused");
    assert!(e.to_string().contains("wipeMode"), "{e}");
}

#[test]
fn the_operator_is_named_by_its_release_namespace_and_service_account() {
    let objs = render(
        &Release::new("gc", "platform-ops")
            .set("serviceAccount.create", "false")
            .set("serviceAccount.name", "gco"),
    );
    assert!(find(&objs, "ServiceAccount").is_empty());
    let user = "system:serviceaccount:platform-ops:gco";
    for p in find(&objs, "ValidatingAdmissionPolicy") {
        let text = p.to_string();
        if text.contains("system:serviceaccount:") {
            assert!(text.contains(user), "{}", p["metadata"]["name"]);
        }
    }
    let binding = find(&objs, "ClusterRoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["name"] == "govcloud-operator")
        .expect("the operator's binding");
    assert_eq!(binding["subjects"][0]["name"], "gco");
    assert_eq!(binding["subjects"][0]["namespace"], "platform-ops");
    let roles = find(&objs, "Role");
    assert_eq!(roles.len(), 3, "the lease, the clock and its readers");
    for role in roles {
        assert_eq!(role["metadata"]["namespace"], "platform-ops");
    }
    let clock = find(&objs, "RoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["name"] == "govcloud-operator-clock")
        .expect("the operator's clock binding");
    assert_eq!(clock["subjects"][0]["name"], "gco");
    assert_eq!(clock["subjects"][0]["namespace"], "platform-ops");
}

#[test]
fn the_chart_ships_crds_calendars_and_prices_kept_on_uninstall() {
    let objs = render(&release());
    let crds: Vec<&str> = find(&objs, "CustomResourceDefinition")
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    assert_eq!(crds.len(), 5, "{crds:?}");
    let calendars: Vec<&str> = find(&objs, "WorkCalendar")
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .collect();
    assert_eq!(calendars, ["cn-2025", "cn-2026"]);
    let catalog = one(&objs, "ServiceCatalog");
    assert_eq!(catalog["metadata"]["name"], "default");
    for o in find(&objs, "WorkCalendar")
        .into_iter()
        .chain(find(&objs, "ServiceCatalog"))
    {
        assert_eq!(
            o["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{}",
            o["metadata"]["name"]
        );
    }
    assert!(find(&objs, "ServiceMonitor").is_empty());
    let objs = render(&release().set("metrics.serviceMonitor.enabled", "true"));
    let monitor = one(&objs, "ServiceMonitor");
    let service = one(&objs, "Service");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("labels")
    {
        assert_eq!(&service["metadata"]["labels"][k], v, "{k}");
    }
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
}

#[test]
fn the_prometheus_rule_records_the_queries_the_operator_then_reads() {
    let operator_config = |objs: &[Value]| {
        let text = one(objs, "ConfigMap")["data"]["operator.yaml"]
            .as_str()
            .expect("operator.yaml")
            .to_owned();
        Config::parse("operator.yaml", &text).unwrap_or_else(|e| panic!("{e}"))
    };
    let objs = render(&release());
    assert!(find(&objs, "PrometheusRule").is_empty());
    assert_eq!(
        operator_config(&objs).prometheus.queries,
        govcloud::prometheus::Queries::default()
    );

    let objs = render(&release().set("metrics.prometheusRule.enabled", "true"));
    let rule = one(&objs, "PrometheusRule");
    let raw = govcloud::prometheus::Queries::default();
    let recorded = govcloud::prometheus::Queries::recorded();
    let records: Vec<(String, String)> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| (r["record"].to_string(), r["expr"].to_string()))
        .collect();
    let expected: Vec<(String, String)> = [
        (&recorded.cpu, &raw.cpu),
        (&recorded.memory, &raw.memory),
        (&recorded.disk_used, &raw.disk_used),
        (&recorded.disk_capacity, &raw.disk_capacity),
    ]
    .into_iter()
    .map(|(r, e)| {
        (
            Value::from(r.as_str()).to_string(),
            Value::from(e.as_str()).to_string(),
        )
    })
    .collect();
    assert_eq!(records, expected);
    // The operator reads what the rule records...
    assert_eq!(operator_config(&objs).prometheus.queries, recorded);
    // ...unless told otherwise.
    let objs = render(
        &release()
            .set("metrics.prometheusRule.enabled", "true")
            .set("config.prometheus.queries.cpu", "my_cpu_ratio"),
    );
    let queries = operator_config(&objs).prometheus.queries;
    assert_eq!(queries.cpu, "my_cpu_ratio");
    assert_eq!(queries.memory, recorded.memory);
}

#[test]
fn the_tenancy_policy_compares_every_spec_field_but_the_compliance_evidence() {
    // The Tenancy CRD as the chart ships it: its spec's fields.
    let crds = std::fs::read_to_string("charts/govcloud-operator/crds/govcloud.dev.yaml")
        .expect("the chart's CRDs");
    let tenancy = govcloud_testenv::manifests::parse("crds", &crds)
        .expect("parse")
        .into_iter()
        .map(|o: DynamicObject| serde_json::to_value(o).expect("serialises"))
        .find(|o| o["spec"]["names"]["kind"] == "Tenancy")
        .expect("the Tenancy CRD");
    let mut fields: Vec<String> = tenancy["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        ["properties"]["spec"]["properties"]
        .as_object()
        .expect("spec properties")
        .keys()
        .filter(|k| k.as_str() != "compliance")
        .cloned()
        .collect();
    fields.sort();
    let objs = render(&release());
    let policy = find(&objs, "ValidatingAdmissionPolicy")
        .into_iter()
        .find(|p| p["metadata"]["name"] == "govcloud-tenancies")
        .expect("the tenancies policy");
    let same = policy["spec"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "sameButCompliance")
        .and_then(|v| v["expression"].as_str())
        .expect("sameButCompliance");
    let mut compared: Vec<String> = same
        .split("has(object.spec.")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(str::to_owned)
        .collect();
    compared.sort();
    compared.dedup();
    assert_eq!(
        compared, fields,
        "a field added to TenancySpec must be compared too (admission-tenancies.yaml)"
    );
}

#[test]
fn the_readme_authorization_matrix_has_at_least_150_cases_as_it_says() {
    // The tables are what the e2e tests tried (they fail when the two
    // differ); this counts them and holds the README's sum to the count.
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let mut cases = 0;
    let mut parts = 0;
    for section in readme.split("<!-- matrix: ").skip(1) {
        let table = section.split("<!-- /matrix: ").next().unwrap_or_default();
        let rows = table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| who "))
            .count();
        assert!(
            rows > 0,
            "an empty table: {}",
            &section[..40.min(section.len())]
        );
        cases += rows;
        parts += 1;
    }
    assert!(parts >= 16, "{parts} parts");
    assert!(cases >= 150, "{cases} cases");
    assert!(
        readme.contains(&format!("{cases}\ncases, 0 escalations"))
            || readme.contains(&format!("{cases} cases, 0 escalations")),
        "the README says how many cases there are: {cases}"
    );
}
