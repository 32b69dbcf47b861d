//! The main job, locally: starts a real control plane (built from the Go module
//! proxy on first use), installs KubeVirt's CRDs, the chart as `helm template`
//! renders it (CRDs, roles, admission policies, calendars, prices; the
//! operator runs in this process instead of the Deployment) and the samples,
//! runs the operator as the chart's ServiceAccount on a development clock, and
//! walks the samples through their lifecycle with a reviewer deciding under
//! the admission policies: review, emergency opening, provisioning, trial,
//! formal operation, reclaim with wiping, a change, an extension, termination.
//!
//!   cargo run --example demo                       # then keeps running until Ctrl-C
//!   cargo run --example demo -- --once             # walk the lifecycle, then stop
//!   cargo run --example demo -- --current-context  # install and run against $KUBECONFIG's cluster
//!
//! A local control plane has no KubeVirt and no Job controller: the demo plays
//! their parts (VMs come up, a guest agent reports, wipe Jobs finish) and says
//! so each time.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use govcloud::api::{
    ChangePhase, ChangeRequest, CloudResourceRequest, RequestPhase, Tenancy, TenancyPhase, keys,
};
use govcloud::clock::Clock;
use govcloud::config::Config;
use govcloud::operator::Operator;
use govcloud::provisioning::namespace_name;
use govcloud_testenv::helm::Release;
use govcloud_testenv::manifests::{self, Applier};
use govcloud_testenv::{ControlPlane, Options, User, standins};
use jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

const FIELD_MANAGER: &str = "govcloud-demo";
const REVIEWER: &str = "wang.reviewer";
const NAMESPACE: &str = "govcloud-system";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Installs the chart as `helm template` renders it, but for the Deployment
/// (the operator runs in this process); returns the operator's configuration
/// from the chart's ConfigMap.
async fn install_chart(client: &Client) -> Result<Config, Error> {
    let yaml = Release::new("govcloud", NAMESPACE).template()??;
    let objs: Vec<_> = manifests::parse("helm template", &yaml)?
        .into_iter()
        .filter(|o| o.types.as_ref().is_none_or(|t| t.kind != "Deployment"))
        .collect();
    let ns: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NAMESPACE },
    }))?;
    let mut applier = Applier::new(client.clone(), "helm");
    applier.apply(&ns, None).await?;
    applier.apply_all(&objs, Some(NAMESPACE)).await?;
    println!(
        "  installed the chart as helm template renders it: {} objects (the operator runs here instead of its Deployment)",
        objs.len()
    );
    let text = objs
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "ConfigMap"))
        .and_then(|o| o.data["data"]["operator.yaml"].as_str())
        .ok_or("the chart renders no operator configuration")?;
    Ok(Config::parse("operator.yaml", text)?)
}

async fn install(client: &Client) -> Result<Config, Error> {
    govcloud_testenv::install_basics(client, FIELD_MANAGER).await?;
    let config = install_chart(client).await?;
    let mut applier = Applier::new(client.clone(), FIELD_MANAGER);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(repo.join("config/samples"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    // The chart's default prices, which the samples are billed by.
    files.insert(
        0,
        repo.join("charts/govcloud-operator/files/servicecatalog.yaml"),
    );
    for path in files {
        let name = path.display().to_string();
        if name.contains("changerequest") {
            // Filed later, once their tenancies exist.
            continue;
        }
        let objs = manifests::parse(&name, &std::fs::read_to_string(&path)?)?;
        applier.apply_all(&objs, None).await?;
        println!("  applied {}", name.rsplit('/').next().unwrap_or(&name));
    }
    Ok(config)
}

fn sample(path: &str) -> Result<kube::api::DynamicObject, Error> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let mut objs = manifests::parse(path, &std::fs::read_to_string(full)?)?;
    objs.pop()
        .ok_or_else(|| format!("{path} holds no object").into())
}

fn calendar() -> Result<govcloud::calendar::Calendar, Error> {
    let mut specs = Vec::new();
    for year in ["2025", "2026"] {
        let object = sample(&format!(
            "charts/govcloud-operator/files/calendar/{year}.yaml"
        ))?;
        let cal: govcloud::api::WorkCalendar =
            serde_json::from_value(serde_json::to_value(object)?)?;
        specs.push(cal.spec);
    }
    Ok(govcloud::calendar::Calendar::from_specs(&specs)?)
}

struct Demo {
    client: Client,
    /// A reviewer of the Digital City Department (group govcloud:reviewers):
    /// the admission policies accept decisions from no one else.
    reviewer: Client,
    clock: Clock,
    kubectl: String,
    kubeconfig: String,
}

impl Demo {
    fn step(&self, text: &str) {
        println!(
            "\n== {} ({})",
            text,
            govcloud::calendar::local_date(self.clock.now())
        );
    }

    fn kubectl(&self, args: &[&str]) {
        println!("$ kubectl {}", args.join(" "));
        match std::process::Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
        {
            Ok(out) => print!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => println!("(cannot run kubectl: {e})"),
        }
    }

    async fn until<T, F, Fut>(&self, what: &str, mut check: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        for _ in 0..600 {
            if let Some(v) = check().await {
                return Ok(v);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("timed out waiting for {what}").into())
    }

    async fn request_phase(&self, ns: &str, name: &str, phase: RequestPhase) -> Result<(), Error> {
        let api: Api<CloudResourceRequest> = Api::namespaced(self.client.clone(), ns);
        self.until(&format!("{name} {phase:?}"), || async {
            let r = api.get(name).await.ok()?;
            (r.status?.phase? == phase).then_some(())
        })
        .await
    }

    async fn tenancy_phase(
        &self,
        ns: &str,
        name: &str,
        phase: TenancyPhase,
    ) -> Result<Tenancy, Error> {
        let api: Api<Tenancy> = Api::namespaced(self.client.clone(), ns);
        self.until(&format!("tenancy {name} {phase:?}"), || async {
            let t = api.get(name).await.ok()?;
            (t.status.as_ref()?.phase? == phase).then_some(t)
        })
        .await
    }

    /// What a reviewer's `kubectl govcloud approve` writes.
    async fn decide(
        &self,
        ns: &str,
        name: &str,
        decision: &str,
        opinion: &str,
    ) -> Result<(), Error> {
        let api: Api<CloudResourceRequest> = Api::namespaced(self.reviewer.clone(), ns);
        let generation = api.get(name).await?.metadata.generation.unwrap_or(1);
        println!(
            "  {REVIEWER} decides {decision} on {ns}/{name} (generation {generation}): {opinion}"
        );
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                keys::DECISION: decision,
                keys::DECIDED_GENERATION: generation.to_string(),
                keys::DECIDED_BY: REVIEWER,
                keys::OPINION: opinion,
            }}})),
        )
        .await?;
        Ok(())
    }

    /// Plays KubeVirt until the tenancy is delivered.
    async fn deliver(&self, ns: &str, name: &str, unit: &str) -> Result<Tenancy, Error> {
        let tns = namespace_name(&format!("unit-{unit}"), unit, name);
        println!("  (playing KubeVirt: the VMs in {tns} come up)");
        let api: Api<Tenancy> = Api::namespaced(self.client.clone(), ns);
        self.until("delivery", || async {
            standins::create_vms(&self.client, &tns).await.ok();
            let t = api.get(name).await.ok()?;
            (t.status.as_ref()?.phase? == TenancyPhase::Trial).then_some(t)
        })
        .await
    }

    async fn lifecycle(&self) -> Result<(), Error> {
        // The OA system's namespace: its name, and a hash of its unit's
        // namespace and its own (status.namespace says it too).
        let oa_ns = namespace_name("unit-finance", "finance", "finance-oa");
        self.step("the samples are filed; the operator takes them into review");
        self.request_phase("unit-finance", "finance-oa", RequestPhase::UnderReview)
            .await?;
        self.request_phase(
            "unit-education",
            "exam-registration",
            RequestPhase::UnderReview,
        )
        .await?;
        self.kubectl(&["get", "cloudresourcerequests", "-A"]);

        self.step("a reviewer approves the finance OA system (Art. 13-14)");
        self.decide(
            "unit-finance",
            "finance-oa",
            "approve",
            "同意按申请配置开通",
        )
        .await?;
        let t = self
            .deliver("unit-finance", "finance-oa", "finance")
            .await?;
        let ends = t
            .status
            .as_ref()
            .and_then(|s| s.trial_ends_at.clone())
            .map(|t| t.0);
        println!(
            "  delivered; the 30-day trial ends {}",
            ends.map(govcloud::calendar::display).unwrap_or_default()
        );
        self.kubectl(&[
            "get",
            "vm,pvc,resourcequota,networkpolicy,rolebinding",
            "-n",
            &oa_ns,
        ]);

        self.step(
            "the exam registration system is urgent: opened before the full review (Art. 13 ¶2)",
        );
        self.decide(
            "unit-education",
            "exam-registration",
            "emergency-open",
            "机房故障，紧急开通",
        )
        .await?;
        self.deliver("unit-education", "exam-registration", "education")
            .await?;
        self.kubectl(&[
            "get",
            "cloudresourcerequest",
            "exam-registration",
            "-n",
            "unit-education",
        ]);

        self.step(
            "the finance unit deploys its system: a VM runs and its monitoring probe reports",
        );
        println!("  (playing KubeVirt: app-1 running, guest agent connected)");
        standins::run_vm(&self.client, &oa_ns, "app-1", true, self.clock.now()).await?;

        self.clock.advance(SignedDuration::from_hours(24 * 31));
        self.step("31 days later, on the development clock");
        let t = self
            .tenancy_phase("unit-finance", "finance-oa", TenancyPhase::Active)
            .await?;
        println!(
            "  finance-oa: Active, billed from {} (Art. 16)",
            t.status
                .and_then(|s| s.billing_started_at)
                .map(|t| govcloud::calendar::display(t.0))
                .unwrap_or_default()
        );
        self.tenancy_phase(
            "unit-education",
            "exam-registration",
            TenancyPhase::Reclaimed,
        )
        .await?;
        println!(
            "  exam-registration: unused in its trial, Reclaimed; the education unit is suspended (Art. 15)"
        );
        println!("  (playing KubeVirt and the Job controller: halted VMs stop, wipe Jobs finish)");
        let tns = namespace_name("unit-education", "education", "exam-registration");
        let api: Api<Tenancy> = Api::namespaced(self.client.clone(), "unit-education");
        let released = self
            .until("the release", || async {
                standins::stop_halted(&self.client, &tns).await.ok();
                standins::finish_jobs(&self.client, &tns, true, self.clock.now())
                    .await
                    .ok();
                let t = api.get("exam-registration").await.ok()?;
                t.status.as_ref()?.retired_at.is_some().then_some(t)
            })
            .await?;
        for r in released.status.map(|s| s.wipe_records).unwrap_or_default() {
            println!(
                "  wiped {} {} ({} GiB) by {:?}: {:?}",
                r.kind, r.name, r.size_gib, r.method, r.result
            );
        }
        self.kubectl(&["get", "tenancies", "-A"]);
        self.kubectl(&["get", "namespace", "unit-education", "--show-labels"]);

        self.step("the finance unit asks for more database memory and less backup (Art. 17)");
        let modify = sample("config/samples/30-changerequest-modify.yaml")?;
        Applier::new(self.client.clone(), FIELD_MANAGER)
            .apply(&modify, None)
            .await?;
        self.change_phase(
            "unit-finance",
            "finance-oa-resize-db",
            ChangePhase::UnderReview,
        )
        .await?;
        self.decide_change("unit-finance", "finance-oa-resize-db", "同意变更")
            .await?;
        self.change_phase("unit-finance", "finance-oa-resize-db", ChangePhase::Applied)
            .await?;
        self.kubectl(&["get", "changerequest", "-n", "unit-finance"]);
        self.kubectl(&["get", "resourcequota", "govcloud-allocation", "-n", &oa_ns]);

        self.step("the finance unit's extension request (one more server) is approved (Art. 17)");
        self.decide(
            "unit-finance",
            "finance-oa-expansion",
            "approve",
            "同意扩容",
        )
        .await?;
        self.request_phase(
            "unit-finance",
            "finance-oa-expansion",
            RequestPhase::Approved,
        )
        .await?;
        let api: Api<Tenancy> = Api::namespaced(self.client.clone(), "unit-finance");
        self.until("the extension", || async {
            standins::create_vms(&self.client, &oa_ns).await.ok();
            let t = api.get("finance-oa").await.ok()?;
            (!t.status?.extension_deliveries.is_empty()).then_some(())
        })
        .await?;
        self.kubectl(&["get", "vm", "-n", &oa_ns]);

        self.step("the finance unit stops using the cloud (Art. 19)");
        let earliest = govcloud::change::earliest_effective(&calendar()?, self.clock.now());
        let mut stop = sample("config/samples/31-changerequest-terminate.yaml")?;
        stop.metadata.name = Some("finance-oa-stop".into());
        stop.metadata.namespace = Some("unit-finance".into());
        stop.data["spec"]["tenancy"] = json!("finance-oa");
        stop.data["spec"]["effectiveDate"] = json!(earliest.to_string());
        println!("  filed with the earliest effective date, {earliest} (10 working days out)");
        Applier::new(self.client.clone(), FIELD_MANAGER)
            .apply(&stop, None)
            .await?;
        self.change_phase("unit-finance", "finance-oa-stop", ChangePhase::UnderReview)
            .await?;
        self.decide_change("unit-finance", "finance-oa-stop", "同意注销")
            .await?;
        self.change_phase("unit-finance", "finance-oa-stop", ChangePhase::Approved)
            .await?;
        self.clock.set(govcloud::calendar::start_of_day(earliest));
        println!(
            "  (the development clock moves to {earliest}; playing KubeVirt and the Job controller)"
        );
        let api: Api<Tenancy> = Api::namespaced(self.client.clone(), "unit-finance");
        let retired = self
            .until("the termination", || async {
                standins::stop_halted(&self.client, &oa_ns).await.ok();
                standins::finish_jobs(&self.client, &oa_ns, true, self.clock.now())
                    .await
                    .ok();
                let t = api.get("finance-oa").await.ok()?;
                (t.status.as_ref()?.phase? == TenancyPhase::Retired).then_some(t)
            })
            .await?;
        let status = retired.status.unwrap_or_default();
        println!(
            "  finance-oa: Retired; billing ended {}; {} volumes wiped",
            status
                .billing_ended_at
                .map(|t| govcloud::calendar::display(t.0))
                .unwrap_or_default(),
            status.wipe_records.len()
        );
        self.kubectl(&["get", "govcloud", "-A"]);
        self.kubectl(&[
            "get",
            "events",
            "-n",
            "unit-finance",
            "--sort-by=.lastTimestamp",
        ]);
        Ok(())
    }

    async fn change_phase(&self, ns: &str, name: &str, phase: ChangePhase) -> Result<(), Error> {
        let api: Api<ChangeRequest> = Api::namespaced(self.client.clone(), ns);
        self.until(&format!("{name} {phase:?}"), || async {
            let c = api.get(name).await.ok()?;
            (c.status?.phase? == phase).then_some(())
        })
        .await
    }

    async fn decide_change(&self, ns: &str, name: &str, opinion: &str) -> Result<(), Error> {
        let api: Api<ChangeRequest> = Api::namespaced(self.reviewer.clone(), ns);
        let generation = api.get(name).await?.metadata.generation.unwrap_or(1);
        println!("  {REVIEWER} approves {ns}/{name} (generation {generation}): {opinion}");
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                keys::DECISION: "approve",
                keys::DECIDED_GENERATION: generation.to_string(),
                keys::DECIDED_BY: REVIEWER,
                keys::OPINION: opinion,
            }}})),
        )
        .await?;
        Ok(())
    }
}

async fn demo(once: bool, current_context: bool) -> Result<(), Error> {
    if current_context {
        let client = Client::try_default().await?;
        let config = install(&client).await?;
        // The operator acts as the chart's ServiceAccount (by impersonation),
        // which the admission policies let do its work.
        let mut as_operator = kube::Config::infer().await?;
        as_operator.auth_info.impersonate = Some(format!(
            "system:serviceaccount:{NAMESPACE}:govcloud-operator"
        ));
        as_operator.auth_info.impersonate_groups = Some(vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{NAMESPACE}"),
            "system:authenticated".into(),
        ]);
        println!(
            "installed into the current context; running the operator as govcloud-system/govcloud-operator (Ctrl-C stops it)"
        );
        Operator::new(Client::try_from(as_operator)?, config)
            .publish_clock_in(NAMESPACE)
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        return Ok(());
    }

    println!("starting a local control plane (the first run builds it: 10-25 minutes)...");
    let plane = ControlPlane::start(Options {
        keep_dir: !once,
        ..Options::default()
    })
    .await?;
    let client = plane.admin().await?;
    let kubeconfig = plane.dir().join("admin.kubeconfig");
    plane.write_kubeconfig(&kubeconfig, &User::admin())?;
    println!("control plane {} at {}", plane.version(), plane.server());
    let config = install(&client).await?;

    // The operator as the chart's ServiceAccount, bound only to its own roles.
    let operator_user = User::new(
        format!("system:serviceaccount:{NAMESPACE}:govcloud-operator"),
        Some("system:serviceaccounts"),
    );
    let operator_client = plane.client(&operator_user).await?;
    let reviewer = plane
        .client(&User::new(REVIEWER, Some(config.reviewer_group.as_str())))
        .await?;
    let clock = Clock::manual(Timestamp::now());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(
        Operator::new(operator_client, config)
            .with_clock(clock.clone())
            .publish_clock_in(NAMESPACE)
            .run(async {
                let _ = stop_rx.await;
            }),
    );
    let demo = Demo {
        client,
        reviewer,
        clock,
        kubectl: plane.bin_dir().join("kubectl").display().to_string(),
        kubeconfig: kubeconfig.display().to_string(),
    };
    let outcome = demo.lifecycle().await;

    println!("\nkubeconfig: {}", demo.kubeconfig);
    println!("kubectl:    {}", demo.kubectl);
    println!(
        "try:        {} --kubeconfig {} get govcloud -A",
        demo.kubectl, demo.kubeconfig
    );
    if !once && outcome.is_ok() {
        println!("\nthe operator keeps running; Ctrl-C stops it and the control plane");
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop_tx.send(());
    let _ = operator.await;
    plane.stop();
    if !once {
        println!("stopped; logs and data kept in {}", plane.dir().display());
    }
    outcome
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        govcloud::telemetry::init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    let current_context = args.iter().any(|a| a == "--current-context");
    if let Some(bad) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--once" | "--current-context"))
    {
        eprintln!("unknown argument {bad}; use --once or --current-context");
        return ExitCode::from(2);
    }
    match demo(once, current_context).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
