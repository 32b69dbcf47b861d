//! `kubectl govcloud` against the real control plane, with the chart's
//! policies in force and the operator running as its ServiceAccount.

use std::path::PathBuf;
use std::process::Command;

use govcloud::api::{ChangePhase, RequestPhase, Tenancy};
use govcloud_testenv::User;
use kube::Api;
use serde_json::Value;

use crate::admission::{Fixture, change_in, file_change, request_in};
use crate::support::lab::WAIT;
use crate::support::{Ctx, TestResult, eventually};

/// The plugin as `kubectl govcloud` runs it: exit code, stdout, stderr.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kubeconfig(f: &Fixture, user: &User, file: &str) -> PathBuf {
    let path = f.lab.plane.dir().join(file);
    f.lab
        .plane
        .write_kubeconfig(&path, user)
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

fn plugin(kubeconfig: &PathBuf, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-govcloud"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running the plugin: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub async fn art13_the_plugin_approves_as_a_reviewer_and_is_refused_as_a_tenant(
    _: Ctx,
) -> TestResult {
    let f = Fixture::new().await;
    let ns = f.ns.clone();
    let tenant = kubeconfig(&f, &f.tenant_a_user, "tenant.kubeconfig");
    let reviewer = kubeconfig(&f, &f.reviewer_user, "reviewer.kubeconfig");
    f.filed("oa").await;

    let run = plugin(&tenant, &["approve", "crr/oa", "-n", &ns]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("only the Digital City Department's reviewers"),
        "{}",
        run.stderr
    );

    // A unit sees what of its own waits, deadlines counted by the calendars
    // everyone may read.
    let run = plugin(&tenant, &["pending", "-n", &ns]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("oa"), "{}", run.stdout);
    let run = plugin(&reviewer, &["approve", "crr/oa", "-A"]);
    assert_eq!(
        run.code, 2,
        "-A on one object is a usage error: {}",
        run.stderr
    );

    let run = plugin(&reviewer, &["reject", "crr/oa", "-n", &ns]);
    assert_eq!(
        run.code, 2,
        "a reject without an opinion is a usage error: {}",
        run.stderr
    );
    assert!(run.stderr.contains("--opinion"), "{}", run.stderr);

    let run = plugin(
        &reviewer,
        &[
            "approve",
            "crr/oa",
            "-n",
            &ns,
            "--opinion",
            "同意按申请配置开通",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "cloudresourcerequest/oa approve: generation 1, by wang.reviewer"
    );
    request_in(&f.lab, &ns, "oa", RequestPhase::Approved).await;
    // Approved means provisioned: the tenancy is delivered.
    f.lab.deliver(&ns, "oa", "finance").await;

    let run = plugin(&tenant, &["confirm", "oa", "-n", &ns, "--note", "已收到"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let tenancies: Api<Tenancy> = Api::namespaced(f.admin.clone(), &ns);
    eventually("the confirmation", WAIT, || async {
        tenancies
            .get("oa")
            .await
            .ok()?
            .status?
            .delivery_confirmed_at
    })
    .await;

    // The letters come from the objects as they stand: the opening letter
    // dated by the delivery, the reply by the unit's confirmation, the
    // department's opinion on the demand form.
    let run = plugin(&tenant, &["letter", "tny/oa", "-n", &ns]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("# 政务云资源开通确认函"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("# 回　函"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("　　　　年　　月　　日"),
        "every date is known:\n{}",
        run.stdout
    );
    let html = f.lab.plane.dir().join("application.html");
    let out = html.to_string_lossy().into_owned();
    let run = plugin(
        &reviewer,
        &[
            "letter", "crr/oa", "-n", &ns, "--format", "html", "--out", &out,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page = std::fs::read_to_string(&html)?;
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(
        page.contains("同意按申请配置开通"),
        "the opinion is on the form"
    );
    let run = plugin(&reviewer, &["letter", "tny/missing", "-n", &ns]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);

    let run = plugin(&tenant, &["show", "tny/oa", "-n", &ns, "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let shown: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(shown["kind"], "Tenancy");
    assert_eq!(shown["status"]["phase"], "Trial");
    let run = plugin(&tenant, &["show", "tny/oa", "-n", &ns]);
    assert!(run.stdout.contains("Trial ends:"), "{}", run.stdout);

    let run = plugin(&reviewer, &["show", "crr/missing", "-n", &ns]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
    Ok(())
}

pub async fn art17_pending_lists_an_overdue_change_first(_: Ctx) -> TestResult {
    let mut f = Fixture::new().await;
    let ns = f.ns.clone();
    let reviewer = kubeconfig(&f, &f.reviewer_user, "reviewer.kubeconfig");
    f.active("erp").await;
    file_change(&f.tenant_a, &ns, "late", "erp").await?;
    change_in(&f.lab, &ns, "late", ChangePhase::UnderReview).await;
    f.lab.advance_days(20);
    f.filed("new").await;
    file_change(&f.tenant_a, &ns, "soon", "erp").await?;
    change_in(&f.lab, &ns, "soon", ChangePhase::UnderReview).await;
    // The plugin reads the operator's (development) clock from the
    // cluster, with no flag or variable: 20 days on, "late" is overdue.
    let now = govcloud::calendar::display(f.lab.now());
    eventually("the operator to publish its clock", WAIT, || async {
        let run = plugin(&reviewer, &["pending", "-A"]);
        run.stderr
            .contains(&format!(
                "the operator runs on a development clock: now is {now}"
            ))
            .then_some(())
    })
    .await;
    // Anyone signed in reads the clock; nobody but the operator moves it:
    // not a unit's clerk, who would make its own lateness vanish, nor a
    // reviewer.
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
    for who in [&f.tenant_a, &f.reviewer] {
        let clocks = Api::<ConfigMap>::namespaced(who.clone(), crate::admission::NAMESPACE);
        let published = clocks.get("govcloud-clock").await?;
        assert!(published.data.is_some_and(|d| d.contains_key("clock.json")));
        let moved = serde_json::json!({ "data": { "clock.json": "{\"runs\":true,\"moves\":[]}" } });
        let refused = [
            clocks
                .patch(
                    "govcloud-clock",
                    &PatchParams::default(),
                    &Patch::Merge(&moved),
                )
                .await
                .err(),
            clocks
                .delete("govcloud-clock", &DeleteParams::default())
                .await
                .err(),
            clocks
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(serde_json::json!({
                        "metadata": { "name": "govcloud-clock-2" }, "data": {}
                    }))?,
                )
                .await
                .err(),
        ];
        for e in refused {
            assert!(
                matches!(&e, Some(kube::Error::Api(s)) if s.code == 403),
                "{e:?}"
            );
        }
    }
    let run = plugin(&reviewer, &["pending", "-A"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<&str> = run.stdout.lines().collect();
    assert!(rows[0].starts_with("NAMESPACE"), "{}", run.stdout);
    assert!(
        rows[1].contains("late") && rows[1].contains("OVERDUE"),
        "{}",
        run.stdout
    );
    assert!(
        rows[2].contains("soon") && rows[2].contains(" wd"),
        "{}",
        run.stdout
    );
    assert!(rows[3].contains("new"), "{}", run.stdout);

    let run = plugin(&reviewer, &["pending", "-n", &ns, "-o", "json"]);
    let items: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(items[0]["name"], "late");
    assert_eq!(items[0]["overdue"], true);
    assert!(items[0]["workingDaysLeft"].as_i64().unwrap_or(0) < 0);
    assert_eq!(items[1]["overdue"], false);

    // A bare name finds the change too, and its form.
    let run = plugin(&reviewer, &["show", "late", "-n", &ns]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("changerequest/late"), "{}", run.stdout);
    assert!(run.stdout.contains("Review due:"), "{}", run.stdout);
    let run = plugin(&reviewer, &["letter", "late", "-n", &ns]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("# 济南政务云计算中心云服务资源变更/注销申请表"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("| 变更/注销前配置 |"), "{}", run.stdout);

    let run = plugin(&reviewer, &["report", "-A"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("({ns})")), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("OVERDUE chr late: Modify tenancy erp")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("OVERDUE chr soon"), "{}", run.stdout);
    Ok(())
}

pub async fn art25_the_plugin_isolates_as_a_vendor_and_rectifies_as_a_reviewer(
    _: Ctx,
) -> TestResult {
    let mut f = Fixture::new().await;
    let ns = f.ns.clone();
    let tenant = kubeconfig(&f, &f.tenant_a_user, "tenant.kubeconfig");
    let vendor = kubeconfig(&f, &f.vendor_user, "vendor.kubeconfig");
    let reviewer = kubeconfig(&f, &f.reviewer_user, "reviewer.kubeconfig");
    f.active("erp").await;
    let tenancies: Api<Tenancy> = Api::namespaced(f.admin.clone(), &ns);

    let run = plugin(&tenant, &["isolate", "erp", "-n", &ns, "--reason", "自查"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stderr.contains("only vendors"), "{}", run.stderr);
    let run = plugin(
        &vendor,
        &["isolate", "tny/erp", "-n", &ns, "--reason", "异常外联"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "tenancy/erp: isolation, by li.vendor");
    eventually("the isolation", WAIT, || async {
        tenancies.get("erp").await.ok()?.status?.isolation
    })
    .await;
    let run = plugin(&vendor, &["lift", "erp", "-n", &ns]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    eventually("the isolation lifted", WAIT, || async {
        let t = tenancies.get("erp").await.ok()?;
        t.status?.isolation.is_none().then_some(())
    })
    .await;

    let run = plugin(&vendor, &["rectify", "erp", "-n", &ns, "--trigger", "3"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let run = plugin(&reviewer, &["rectify", "erp", "-n", &ns, "--trigger", "9"]);
    assert_eq!(run.code, 2, "a trigger outside 1-5 is a usage error");
    let run = plugin(&reviewer, &["rectify", "erp", "-n", &ns, "--trigger", "3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    eventually("the case", WAIT, || async {
        tenancies.get("erp").await.ok()?.status?.rectification
    })
    .await;
    let run = plugin(&reviewer, &["report", "-n", &ns, "-o", "json"]);
    let report: Value = serde_json::from_str(&run.stdout)?;
    let erp = &report[0]["tenancies"][0];
    assert_eq!(erp["name"], "erp");
    assert_eq!(erp["vcpu"], 16);
    assert!(
        erp["rectification"]
            .as_str()
            .is_some_and(|c| c.starts_with("trigger 3 due ")),
        "{report}"
    );
    let run = plugin(
        &reviewer,
        &["rectify", "erp", "-n", &ns, "--rectified", "漏洞已修复"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("rectification case closed as rectified: 漏洞已修复"),
        "{}",
        run.stdout
    );
    eventually("the case closed", WAIT, || async {
        tenancies
            .get("erp")
            .await
            .ok()?
            .status?
            .rectification?
            .closed_at
    })
    .await;

    let run = plugin(&tenant, &["timeline", "tny/erp", "-n", &ns]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let order: Vec<usize> = ["Delivered", "TrialPassed", "Isolated"]
        .iter()
        .map(|r| {
            run.stdout
                .lines()
                .position(|l| l.contains(" Event ") && l.contains(r))
                .unwrap_or(usize::MAX)
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]) && order[2] != usize::MAX,
        "{}",
        run.stdout
    );
    // One clock: the isolation's event (stamped by the apiserver in real
    // time) is placed on the operator's development clock, at the instant
    // its condition says.
    let time_of = |source: &str, what: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains(source) && l.contains(what))
            .and_then(|l| l.split(source).next())
            .map(|t| t.trim().to_owned())
    };
    for (event, condition) in [
        ("Delivered", "Delivered=True"),
        ("IsolationLifted", "Isolated=False"),
    ] {
        let at = time_of(" Event ", event);
        assert!(at.is_some(), "{event}: {}", run.stdout);
        assert_eq!(at, time_of(" Condition ", condition), "{}", run.stdout);
    }
    Ok(())
}

pub async fn art16_bill_prints_a_statement_whose_total_is_the_sum_of_its_lines(
    _: Ctx,
) -> TestResult {
    let mut f = Fixture::new().await;
    let reviewer = kubeconfig(&f, &f.reviewer_user, "reviewer.kubeconfig");
    f.active("erp").await;
    let t = Api::<Tenancy>::namespaced(f.admin.clone(), &f.ns)
        .get("erp")
        .await?;
    let started = t
        .status
        .and_then(|s| s.billing_started_at)
        .ok_or("billing started")?
        .0;
    // Delivered 2026-11-27 10:00 Beijing: the trial ends 2026-12-27 10:00,
    // that day is the trial's, 28-31 December are billed.
    assert_eq!(
        govcloud::calendar::local_date(started).to_string(),
        "2026-12-27"
    );

    let run = plugin(
        &reviewer,
        &["bill", "--month", "2026-12", "-A", "-o", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(s["month"], "2026-12");
    let lines = s["lines"].as_array().ok_or("lines")?;
    let line = |item: &str| {
        lines
            .iter()
            .find(|l| l["item"] == item)
            .unwrap_or_else(|| panic!("{item} in {lines:?}"))
    };
    // The OA sample: 2 x 4 + 1 x 8 = 16 vCPU at 35.00, 2 x 8 + 16 = 32 GiB
    // at 18.00 (the chart's price list), 4 of 31 days:
    // 560 x 4 / 31 = 72.258.. and 576 x 4 / 31 = 74.322..
    assert_eq!(line("vcpu")["quantity"], 16);
    assert_eq!(line("vcpu")["days"], 4);
    assert_eq!(line("vcpu")["amount"], 7226);
    assert_eq!(line("memoryGiB")["amount"], 7432);
    let sum: i64 = lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    assert_eq!(s["total"].as_i64(), Some(sum));

    let run = plugin(
        &reviewer,
        &["bill", "--month", "2026-12", "-A", "-o", "csv"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let last = run.stdout.lines().last().unwrap_or_default().to_owned();
    assert_eq!(
        last,
        format!("total,,,,,,,,,,{}.{:02}", sum / 100, sum % 100)
    );
    let run = plugin(&reviewer, &["bill", "--month", "2026-12", "-A"]);
    assert!(
        run.stdout
            .lines()
            .last()
            .unwrap_or_default()
            .ends_with(&format!("{}.{:02}", sum / 100, sum % 100)),
        "{}",
        run.stdout
    );
    eprint!("{}", run.stdout);
    // The tenancy's status shows the same month's charge, written once with
    // the start of billing.
    let accrual = Api::<Tenancy>::namespaced(f.admin.clone(), &f.ns)
        .get("erp")
        .await?
        .status
        .and_then(|s| s.accrual)
        .ok_or("status.accrual")?;
    assert_eq!(accrual.month, "2026-12");
    assert_eq!(
        accrual.amount,
        Some(format!("{}.{:02}", sum / 100, sum % 100))
    );
    assert_eq!(accrual.billed_days, 4);
    assert_eq!(
        accrual.first_day.map(|d| d.to_string()).as_deref(),
        Some("2026-12-28")
    );
    let run = plugin(&reviewer, &["show", "tny/erp", "-n", &f.ns]);
    assert!(
        run.stdout.contains(&format!(
            "2026-12: {}.{:02} yuan, 4 billed days",
            sum / 100,
            sum % 100
        )),
        "{}",
        run.stdout
    );

    let run = plugin(&reviewer, &["bill", "--month", "2026-11", "-A"]);
    assert!(
        run.stdout
            .lines()
            .last()
            .unwrap_or_default()
            .ends_with("0.00"),
        "{}",
        run.stdout
    );
    let run = plugin(&reviewer, &["bill", "--month", "December", "-A"]);
    assert_eq!(
        run.code, 2,
        "a month not written as 2026-11 is a usage error"
    );
    assert!(run.stderr.contains("2026-11"), "{}", run.stderr);
    Ok(())
}
