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
//! A part passes when its audit is exact and it converged within
//! `--converge-within` seconds (60) of its last kill or restart.
//!
//!   cargo xtask faults                   # 200 requests, 20 kills, 3 restarts (~6 min)
//!   cargo xtask faults --runs 5       # five runs, each on a fresh control plane and seed
//!   cargo xtask faults --requests 50 --kills 5 --restarts 1 --seed 7
//!
//! Prints what it did and writes `bench/results/faults-<UTC time>.json` as
//! it goes (one entry per run). When it gives up waiting (`--give-up`
//! seconds, 600), it prints the tenancies not delivered with their
//! conditions and the requests without a tenancy, and saves them with what
//! it measured so far. Exits non-zero unless every run passed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use govcloud_testenv::fleet::{self, Audit, Fleet, OperatorProcess, Rng};
use serde_json::{Value, json};

const UNITS: usize = 40;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    requests: usize,
    kills: usize,
    restarts: usize,
    /// The first run's seed; the others' are fresh.
    seed: u64,
    runs: usize,
    converge_within: f64,
    give_up: u64,
}

fn args(given: Vec<String>) -> Result<Args, Error> {
    let mut a = Args {
        requests: 200,
        kills: 20,
        restarts: 3,
        seed: jiff::Timestamp::now().as_nanosecond() as u64,
        runs: 1,
        converge_within: 60.0,
        give_up: 600,
    };
    let mut it = given.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--requests" => a.requests = value()?.parse()?,
            "--kills" => a.kills = value()?.parse()?,
            "--restarts" => a.restarts = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--runs" => a.runs = value()?.parse::<usize>()?.max(1),
            "--converge-within" => a.converge_within = value()?.parse()?,
            "--give-up" => a.give_up = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

/// Waits until `n` tenancies are delivered; returns how long it took, or
/// after `give_up` seconds what is stuck.
async fn delivered(admin: &kube::Client, n: usize, give_up: u64) -> Result<Duration, Error> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(give_up);
    while fleet::delivered(admin).await.unwrap_or(0) < n {
        if Instant::now() > deadline {
            return Err(format!("fewer than {n} tenancies delivered after {give_up} s").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(started.elapsed())
}

/// The tenancies not delivered, with their phase and conditions, and the
/// approved requests without a tenancy.
async fn stuck(admin: &kube::Client) -> Result<Vec<Value>, Error> {
    use govcloud::api::{CloudResourceRequest, Tenancy, TenancyPhase, request::RequestPhase};
    use kube::ResourceExt;
    let lp = kube::api::ListParams::default();
    let tenancies = kube::Api::<Tenancy>::all(admin.clone())
        .list(&lp)
        .await?
        .items;
    let mut out: Vec<Value> = tenancies
        .iter()
        .filter(|t| {
            !t.status
                .as_ref()
                .is_some_and(|s| s.phase == Some(TenancyPhase::Trial) && s.delivered_at.is_some())
        })
        .map(|t| {
            let status = t.status.clone().unwrap_or_default();
            json!({
                "tenancy": format!("{}/{}", t.namespace().unwrap_or_default(), t.name_any()),
                "phase": status.phase,
                "conditions": status.conditions.iter().map(|c| json!({
                    "type": c.type_, "status": c.status, "reason": c.reason, "message": c.message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let requests = kube::Api::<CloudResourceRequest>::all(admin.clone())
        .list(&lp)
        .await?
        .items;
    for r in requests {
        let approved = r
            .status
            .as_ref()
            .is_some_and(|s| s.phase == Some(RequestPhase::Approved));
        let has = tenancies
            .iter()
            .any(|t| t.namespace() == r.namespace() && t.name_any() == r.name_any());
        if approved && !has {
            out.push(json!({
                "request": format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any()),
                "phase": "Approved",
                "conditions": [],
                "note": "approved, no tenancy",
            }));
        }
    }
    Ok(out)
}

fn stuck_lines(stuck: &[Value]) -> String {
    stuck
        .iter()
        .take(20)
        .map(|s| {
            let what = s["tenancy"]
                .as_str()
                .or(s["request"].as_str())
                .unwrap_or("?");
            let conditions: Vec<String> = s["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["type"] != "Ready" || c["status"] != "True")
                .map(|c| {
                    let message = c["message"].as_str().unwrap_or_default();
                    let short: String = message.chars().take(160).collect();
                    format!(
                        "{}={} {}: {short}",
                        c["type"].as_str().unwrap_or_default(),
                        c["status"].as_str().unwrap_or_default(),
                        c["reason"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            format!(
                "\n    {what} {}: {}{}",
                s["phase"].as_str().unwrap_or("-"),
                s["note"].as_str().unwrap_or_default(),
                conditions.join("; ")
            )
        })
        .collect()
}

/// The operator's writes over `secs` seconds once it has settled.
async fn quiet(operator: &OperatorProcess, secs: u64) -> Option<u64> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = operator.counter("writes").await?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Some(operator.counter("writes").await? - before)
}

/// How many tenancies were told the apiserver refused an object for quota,
/// and how many had the quota controller count again.
async fn quota_refusals(admin: &kube::Client) -> Result<(usize, usize), Error> {
    let events = kube::Api::<k8s_openapi::api::core::v1::Event>::all(admin.clone())
        .list(&kube::api::ListParams::default())
        .await?
        .items;
    let tenancies = |pick: &dyn Fn(&k8s_openapi::api::core::v1::Event) -> bool| {
        events
            .iter()
            .filter(|e| pick(e))
            .filter_map(|e| e.involved_object.name.clone())
            .collect::<std::collections::BTreeSet<String>>()
            .len()
    };
    let refused = tenancies(&|e| {
        matches!(e.reason.as_deref(), Some("ApplyFailed" | "QuotaRecount"))
            && e.message.as_deref().unwrap_or_default().contains("quota")
    });
    let recounted = tenancies(&|e| e.reason.as_deref() == Some("QuotaRecount"));
    Ok((refused, recounted))
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

/// The document written: every run so far.
fn save(file: &std::path::Path, runs: &[Value]) {
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(
        file,
        serde_json::to_string_pretty(&json!({ "runs": runs })).unwrap_or_default() + "\n",
    );
}

/// Waits for `n` delivered; when it gives up, records and prints what is
/// stuck and saves.
async fn converge(
    admin: &kube::Client,
    n: usize,
    args: &Args,
    part: &str,
    file: &std::path::Path,
    runs: &mut [Value],
) -> Result<Duration, Error> {
    match delivered(admin, n, args.give_up).await {
        Ok(d) => Ok(d),
        Err(e) => {
            let stuck = stuck(admin).await.unwrap_or_default();
            println!(
                "  GAVE UP in the {part}: {e}; {} stuck:{}",
                stuck.len(),
                stuck_lines(&stuck)
            );
            if let Some(run) = runs.last_mut() {
                run[part] = json!({ "gaveUp": e.to_string(), "stuck": stuck });
            }
            save(file, runs);
            Err(e)
        }
    }
}

/// One run on a fresh control plane: whether both parts passed.
async fn run(
    args: &Args,
    seed: u64,
    file: &std::path::Path,
    runs: &mut Vec<Value>,
) -> Result<bool, Error> {
    let mut rng = Rng(seed);
    let fleet = Fleet::start("faults", UNITS).await?;
    let (plane, admin) = (&fleet.plane, fleet.admin.clone());
    println!(
        "kube-apiserver {} at {}; seed {seed} (--seed to repeat)",
        plane.version(),
        plane.server(),
    );
    let config = govcloud::config::Config::default();
    runs.push(json!({
        "seed": seed,
        "kubernetes": plane.version(),
        "when": jiff::Timestamp::now().to_string(),
    }));
    let mut passed = true;
    let within = |d: Duration| d.as_secs_f64() <= args.converge_within;

    let mut operator = fleet.operator()?;
    operator.ready().await;

    // 1. SIGKILL at random moments.
    let names: Vec<(String, String)> = (0..args.requests)
        .map(|i| (format!("unit-u{}", i % UNITS), format!("kill-{i}")))
        .collect();
    fleet::file(&admin, &names).await?;
    fleet::approve_all(&admin, &names).await?;
    let approved = Instant::now();
    let mut at_kill = Vec::new();
    let mut kill_times = Vec::new();
    for _ in 0..args.kills {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(3800))).await;
        let done = fleet::delivered(&admin).await.unwrap_or(0);
        operator.kill();
        at_kill.push(done);
        kill_times.push(approved.elapsed());
        operator = fleet.operator()?;
    }
    let after_last = converge(&admin, args.requests, args, "kills", file, runs).await?;
    // When the batch was all delivered: at the last kill or after it, or
    // by the first kill that found it so.
    let first_done = at_kill.iter().position(|d| *d >= args.requests);
    let all_delivered = first_done.map_or(approved.elapsed(), |k| kill_times[k]);
    // How long it took at most after the last kill that landed mid-way.
    let after_last_mid = match first_done {
        Some(0) | None => after_last,
        Some(k) => kill_times[k] - kill_times[k - 1],
    };
    let (over_quota, recounts) = quota_refusals(&admin).await?;
    let settled = quiet(&operator, 10).await;
    let audit = fleet::audit(&admin, &config).await?;
    passed &= audit.exact() && within(after_last) && within(after_last_mid);
    let mid = at_kill.iter().filter(|d| **d < args.requests).count();
    println!(
        "{} kills (SIGKILL) while {} requests were provisioned; {mid} landed before all were delivered (delivered at each kill: {at_kill:?})",
        args.kills, args.requests
    );
    println!(
        "  all delivered by {:.1} s after the approvals, within {:.1} s of the last kill that landed mid-way; converged {:.1} s after the last kill{}; operator writes in 10 s after: {}",
        all_delivered.as_secs_f64(),
        after_last_mid.as_secs_f64(),
        after_last.as_secs_f64(),
        if within(after_last) {
            ""
        } else {
            " (TOO SLOW)"
        },
        settled.map_or("?".into(), |w| w.to_string())
    );
    println!(
        "  {over_quota} tenancies were refused a volume for quota on the way (creates cut off by a kill stay charged until the quota controller counts again); the operator asked for {recounts} recounts"
    );
    println!("  {}", audit_line(&audit));
    if let Some(r) = runs.last_mut() {
        r["kills"] = json!({
            "tenanciesRefusedForQuota": over_quota,
            "tenanciesRecounted": recounts,
            "requests": args.requests,
            "kills": args.kills,
            "deliveredAtEachKill": at_kill,
            "killsBeforeAllDelivered": mid,
            "convergedSecondsAfterLastKill": after_last.as_secs_f64(),
            "allDeliveredSecondsAfterApprovals": all_delivered.as_secs_f64(),
            "convergedWithinSecondsAfterLastKillMidWay": after_last_mid.as_secs_f64(),
            "killSecondsAfterApprovals": kill_times.iter().map(|t| t.as_secs_f64()).collect::<Vec<_>>(),
            "operatorWritesWhenSettled10s": settled,
            "audit": audit_json(&audit),
        });
    }
    save(file, runs);

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
    let converged = converge(&admin, total, args, "restarts", file, runs).await?;
    let alive = operator.alive();
    let settled = quiet(&operator, 10).await;
    let audit = fleet::audit(&admin, &config).await?;
    passed &= audit.exact() && alive && within(converged);
    println!(
        "{} restarts of the apiserver and etcd while {} more were provisioned; {restarted_mid} landed before all were delivered: {}",
        args.restarts,
        args.requests,
        serde_json::to_string(&outages).unwrap_or_default()
    );
    println!(
        "  converged {:.1} s after the last restart{}; the operator {}; its writes in 10 s after: {}",
        converged.as_secs_f64(),
        if within(converged) { "" } else { " (TOO SLOW)" },
        if alive { "kept running" } else { "EXITED" },
        settled.map_or("?".into(), |w| w.to_string())
    );
    println!("  {}", audit_line(&audit));
    if let Some(r) = runs.last_mut() {
        r["restarts"] = json!({
            "requests": args.requests,
            "restarts": outages,
            "restartsBeforeAllDelivered": restarted_mid,
            "convergedSecondsAfterLastRestart": converged.as_secs_f64(),
            "operatorKeptRunning": alive,
            "operatorWritesWhenSettled10s": settled,
            "audit": audit_json(&audit),
        });
        r["passed"] = json!(passed);
    }
    save(file, runs);
    operator.stop();
    Ok(passed)
}

pub async fn main(given: Vec<String>) -> Result<(), Error> {
    let args = args(given)?;
    let file = PathBuf::from(govcloud_testenv::SOURCE_TREE).join(format!(
        "bench/results/faults-{}.json",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    ));
    let mut runs = Vec::new();
    let mut passed = 0;
    for k in 0..args.runs {
        let seed = if k == 0 {
            args.seed
        } else {
            jiff::Timestamp::now().as_nanosecond() as u64
        };
        println!("\n== run {} of {}", k + 1, args.runs);
        match run(&args, seed, &file, &mut runs).await {
            Ok(true) => passed += 1,
            Ok(false) => println!("run {} (seed {seed}) FAILED", k + 1),
            Err(e) => {
                println!("run {} (seed {seed}) FAILED: {e}", k + 1);
                if let Some(r) = runs.last_mut() {
                    r["passed"] = json!(false);
                    r["error"] = json!(e.to_string());
                }
                save(&file, &runs);
            }
        }
    }
    println!(
        "\n{passed} of {} runs passed; written to {}",
        args.runs,
        file.display()
    );
    if passed == args.runs {
        Ok(())
    } else {
        Err(format!("{} of {} runs failed", args.runs - passed, args.runs).into())
    }
}
