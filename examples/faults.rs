//! Faults while the operator provisions, against a local control plane:
//!
//! 1. the operator killed with SIGKILL at random moments while `--requests`
//!    approved requests are provisioned, `--kills` rounds, each kill followed
//!    by a restart;
//! 2. the apiserver and etcd restarted (etcd keeping its data) in the middle
//!    of reconciling another `--requests`, `--restarts` times.
//!
//! Each ends when every tenancy is delivered, and is then audited: every
//! approved request has exactly one tenancy, and the cluster holds exactly
//! the objects those tenancies call for (kind, namespace and name): none
//! missing, no duplicates, no orphans. The operator then has to stay quiet.
//!
//!   cargo run --release --example faults                   # 200 requests, 20 kills, 3 restarts (~15 min)
//!   cargo run --release --example faults -- --requests 50 --kills 5 --restarts 1 --seed 7
//!
//! Prints what it did and writes `bench/results/faults-<UTC time>.json`;
//! exits non-zero when an audit is not exact.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use govcloud::controlplane::fleet::{self, Audit, Fleet, OperatorProcess, Rng};
use serde_json::{Value, json};

const UNITS: usize = 40;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    requests: usize,
    kills: usize,
    restarts: usize,
    seed: u64,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        requests: 200,
        kills: 20,
        restarts: 3,
        seed: jiff::Timestamp::now().as_nanosecond() as u64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--requests" => a.requests = value()?.parse()?,
            "--kills" => a.kills = value()?.parse()?,
            "--restarts" => a.restarts = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

/// Waits until `n` tenancies are delivered; returns how long it took.
async fn delivered(admin: &kube::Client, n: usize) -> Result<Duration, Error> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(1800);
    while fleet::delivered(admin).await.unwrap_or(0) < n {
        if Instant::now() > deadline {
            return Err(format!("fewer than {n} tenancies delivered after 30 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(started.elapsed())
}

/// The operator's writes over `secs` seconds once it has settled.
async fn quiet(operator: &OperatorProcess, secs: u64) -> Option<u64> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = operator.counter("writes").await?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Some(operator.counter("writes").await? - before)
}

/// How many tenancies were told the apiserver refused an object for quota.
async fn quota_refusals(admin: &kube::Client) -> Result<usize, Error> {
    let events = kube::Api::<k8s_openapi::api::core::v1::Event>::all(admin.clone())
        .list(&kube::api::ListParams::default())
        .await?
        .items;
    let tenancies: std::collections::BTreeSet<String> = events
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some("ApplyFailed")
                && e.message
                    .as_deref()
                    .unwrap_or_default()
                    .contains("exceeded quota")
        })
        .filter_map(|e| e.involved_object.name.clone())
        .collect();
    Ok(tenancies.len())
}

fn audit_json(a: &Audit) -> Value {
    json!({
        "requestsApproved": a.requests_approved,
        "tenancies": a.tenancies,
        "delivered": a.delivered,
        "objects": a.objects,
        "missing": a.missing,
        "orphans": a.orphans,
        "duplicates": a.duplicates,
        "exact": a.exact(),
    })
}

fn audit_line(a: &Audit) -> String {
    format!(
        "{} approved, {} tenancies, {} delivered, {} objects; {} missing, {} orphans, {} duplicates: {}",
        a.requests_approved,
        a.tenancies,
        a.delivered,
        a.objects,
        a.missing.len(),
        a.orphans.len(),
        a.duplicates.len(),
        if a.exact() { "exact" } else { "NOT EXACT" }
    ) + &a
        .missing
        .iter()
        .map(|m| format!("\n    missing {m}"))
        .chain(a.orphans.iter().map(|o| format!("\n    orphan {o}")))
        .chain(a.duplicates.iter().map(|d| format!("\n    {d}")))
        .take(20)
        .collect::<String>()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = args()?;
    let mut rng = Rng(args.seed);
    let fleet = Fleet::start("faults", UNITS).await?;
    let (plane, admin) = (&fleet.plane, fleet.admin.clone());
    println!(
        "kube-apiserver {} at {}; seed {} (--seed to repeat)",
        plane.version(),
        plane.server(),
        args.seed
    );
    let config = govcloud::config::Config::default();
    let mut results = json!({
        "seed": args.seed,
        "kubernetes": plane.version(),
        "when": jiff::Timestamp::now().to_string(),
    });
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "bench/results/faults-{}.json",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    ));
    let save = |results: &Value| {
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(
            &file,
            serde_json::to_string_pretty(results).unwrap_or_default() + "\n",
        );
    };
    let mut exact = true;

    let mut operator = fleet.operator()?;
    operator.ready().await;

    // 1. SIGKILL at random moments.
    let names: Vec<(String, String)> = (0..args.requests)
        .map(|i| (format!("unit-u{}", i % UNITS), format!("kill-{i}")))
        .collect();
    fleet::file(&admin, &names).await?;
    fleet::approve_all(&admin, &names).await?;
    let mut at_kill = Vec::new();
    for _ in 0..args.kills {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(3800))).await;
        let done = fleet::delivered(&admin).await.unwrap_or(0);
        operator.kill();
        at_kill.push(done);
        operator = fleet.operator()?;
    }
    let after_last = delivered(&admin, args.requests).await?;
    let over_quota = quota_refusals(&admin).await?;
    let settled = quiet(&operator, 10).await;
    let audit = fleet::audit(&admin, &config).await?;
    exact &= audit.exact();
    let mid = at_kill.iter().filter(|d| **d < args.requests).count();
    println!(
        "{} kills (SIGKILL) while {} requests were provisioned; {mid} landed before all were delivered (delivered at each kill: {at_kill:?})",
        args.kills, args.requests
    );
    println!(
        "  converged {:.1} s after the last restart; operator writes in 10 s after: {}",
        after_last.as_secs_f64(),
        settled.map_or("?".into(), |w| w.to_string())
    );
    println!(
        "  {over_quota} tenancies were refused a volume for quota on the way (creates cut off by a kill stay charged until the quota controller's full sync)"
    );
    println!("  {}", audit_line(&audit));
    results["kills"] = json!({
        "tenanciesRefusedForQuota": over_quota,
        "requests": args.requests,
        "kills": args.kills,
        "deliveredAtEachKill": at_kill,
        "killsBeforeAllDelivered": mid,
        "convergedSecondsAfterLastRestart": after_last.as_secs_f64(),
        "operatorWritesWhenSettled10s": settled,
        "audit": audit_json(&audit),
    });
    save(&results);

    // 2. The apiserver and etcd restarted in the middle of reconciling.
    let names: Vec<(String, String)> = (0..args.requests)
        .map(|i| (format!("unit-u{}", i % UNITS), format!("restart-{i}")))
        .collect();
    fleet::file(&admin, &names).await?;
    let total = 2 * args.requests;
    fleet::approve_all(&admin, &names).await?;
    let mut outages = Vec::new();
    let mut restarted_mid = 0;
    for k in 0..args.restarts {
        // Spread over the provisioning: the k-th restart once about
        // (k+1)/(restarts+1) of the batch is delivered, give or take.
        let step = args.requests / (args.restarts + 1);
        let target = args.requests + (k + 1) * step + rng.below(step as u64 / 2 + 1) as usize;
        let mut done = fleet::delivered(&admin).await.unwrap_or(0);
        while done < target.min(total - 1) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            done = fleet::delivered(&admin).await.unwrap_or(0);
        }
        restarted_mid += usize::from(done < total);
        let started = Instant::now();
        plane.restart_apiserver_and_etcd().await?;
        outages.push(json!({
            "deliveredBefore": done,
            "outageSeconds": started.elapsed().as_secs_f64(),
        }));
    }
    let converged = delivered(&admin, total).await?;
    let alive = operator.alive();
    let settled = quiet(&operator, 10).await;
    let audit = fleet::audit(&admin, &config).await?;
    exact &= audit.exact() && alive;
    println!(
        "{} restarts of the apiserver and etcd while {} more were provisioned; {restarted_mid} landed before all were delivered: {}",
        args.restarts,
        args.requests,
        serde_json::to_string(&outages).unwrap_or_default()
    );
    println!(
        "  converged {:.1} s after the last restart; the operator {}; its writes in 10 s after: {}",
        converged.as_secs_f64(),
        if alive { "kept running" } else { "EXITED" },
        settled.map_or("?".into(), |w| w.to_string())
    );
    println!("  {}", audit_line(&audit));
    results["restarts"] = json!({
        "requests": args.requests,
        "restarts": outages,
        "restartsBeforeAllDelivered": restarted_mid,
        "convergedSecondsAfterLastRestart": converged.as_secs_f64(),
        "operatorKeptRunning": alive,
        "operatorWritesWhenSettled10s": settled,
        "audit": audit_json(&audit),
    });
    save(&results);
    operator.stop();
    println!("\nwritten to {}", file.display());
    if exact {
        Ok(())
    } else {
        Err("an audit was not exact".into())
    }
}
