//! Leader election on a `coordination.k8s.io/v1` Lease, so that two or more
//! replicas are safe: one writes, the others keep their caches warm and wait.
//!
//! As in client-go, a lease is judged expired by how long this replica has
//! seen it unchanged (a monotonic clock), never by comparing the holder's
//! `renewTime` with our own wall clock, so clock skew between nodes does not
//! matter. Leases live in real time, never on the development clock.
//!
//! The holder renews every `retry`; if it cannot renew within `renew_deadline`,
//! or finds the lease taken, it has lost: [`Leadership::lost`] completes and the
//! operator stops its controllers at once (the binary then exits, so that
//! nothing of the old term can still write).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{info, warn};

/// Which Lease, who we are, and the timings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name, or host and pid).
    pub identity: String,
    /// How long a lease not renewed stays valid (`leaseDurationSeconds`).
    pub duration: Duration,
    /// How long the holder keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// How often to renew, or to look again while waiting.
    pub retry: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// What we last saw of the lease, and since when it has not changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub holder: Option<String>,
    pub renew_time: Option<Timestamp>,
    pub transitions: i32,
    pub since: Instant,
}

/// What to do with the lease as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nobody has it (or it has expired, or it was released): take it.
    Take,
    /// We hold it: renew.
    Renew,
    /// Someone else holds a live lease: wait.
    Wait,
}

/// Decides, from the lease's holder and how long we have seen it unchanged.
pub fn decide(holder: Option<&str>, me: &str, unchanged_for: Duration, duration: Duration) -> Step {
    match holder {
        Some(h) if h == me => Step::Renew,
        Some(h) if !h.is_empty() && unchanged_for < duration => Step::Wait,
        _ => Step::Take,
    }
}

/// A won lease: renews it in the background until lost or released.
pub struct Leadership {
    lost: tokio::sync::watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
    api: Api<Lease>,
    config: LeaseConfig,
}

impl Leadership {
    /// Completes when the lease is lost.
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|l| *l).await;
    }

    /// Gives the lease up (on a clean shutdown), so that another replica takes
    /// over at once instead of after the lease duration.
    pub async fn release(self) {
        self.task.abort();
        if let Ok(mut lease) = self.api.get(&self.config.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.config.identity.as_str())
        {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            let params = PostParams::default();
            let replace = self.api.replace(&self.config.name, &params, &lease);
            let released = within(self.config.retry, async { replace.await.map(|_| true) });
            match released.await {
                Ok(_) => info!(lease = %self.config.name, "lease released"),
                Err(e) => warn!(error = %e, "could not release the lease; it expires by itself"),
            }
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// Tries one step; returns whether we hold the lease afterwards.
async fn attempt(
    api: &Api<Lease>,
    cfg: &LeaseConfig,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let current = api.get_opt(&cfg.name).await?;
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                namespace: Some(cfg.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(cfg.duration.as_secs() as i32),
                acquire_time: Some(now_micro()),
                renew_time: Some(now_micro()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let seen = Observed {
        holder: spec.holder_identity.clone(),
        renew_time: spec.renew_time.as_ref().map(|t| t.0),
        transitions: spec.lease_transitions.unwrap_or_default(),
        since: Instant::now(),
    };
    let unchanged_since = match observed {
        Some(o)
            if (o.holder.as_ref(), o.renew_time, o.transitions)
                == (seen.holder.as_ref(), seen.renew_time, seen.transitions) =>
        {
            o.since
        }
        _ => {
            *observed = Some(seen);
            Instant::now()
        }
    };
    // A holder's own duration counts, so that a released lease (1 s) is free at once.
    let duration = spec
        .lease_duration_seconds
        .map_or(cfg.duration, |s| Duration::from_secs(s.max(0) as u64));
    let step = decide(
        spec.holder_identity.as_deref(),
        &cfg.identity,
        unchanged_since.elapsed(),
        duration,
    );
    if step == Step::Wait {
        return Ok(false);
    }
    let mut next = spec;
    if step == Step::Take {
        next.holder_identity = Some(cfg.identity.clone());
        next.acquire_time = Some(now_micro());
        next.lease_transitions = Some(next.lease_transitions.unwrap_or_default() + 1);
    }
    next.lease_duration_seconds = Some(cfg.duration.as_secs() as i32);
    next.renew_time = Some(now_micro());
    lease.spec = Some(next);
    // The resourceVersion read above makes this a compare-and-swap.
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// `attempt`, given `limit` at most.
async fn within(
    limit: Duration,
    attempt: impl std::future::Future<Output = Result<bool, kube::Error>>,
) -> Result<bool, String> {
    match tokio::time::timeout(limit, attempt).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}

/// Waits until this replica holds the lease, then keeps it in the background.
pub async fn acquire(client: Client, cfg: LeaseConfig) -> Leadership {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut observed = None;
    let mut waiting_logged = false;
    loop {
        match within(cfg.renew_deadline, attempt(&api, &cfg, &mut observed)).await {
            Ok(true) => break,
            Ok(false) => {
                if !waiting_logged {
                    let holder = observed
                        .as_ref()
                        .and_then(|o| o.holder.clone())
                        .unwrap_or_default();
                    info!(lease = %format!("{}/{}", cfg.namespace, cfg.name), %holder, "another replica leads; standing by");
                    waiting_logged = true;
                }
            }
            Err(e) => warn!(error = %e, "cannot read or write the lease; trying again"),
        }
        tokio::time::sleep(cfg.retry).await;
    }
    info!(lease = %format!("{}/{}", cfg.namespace, cfg.name), identity = %cfg.identity, "leading");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = {
        let (api, cfg) = (api.clone(), cfg.clone());
        tokio::spawn(async move {
            let mut renewed = Instant::now();
            let mut observed = None;
            loop {
                tokio::time::sleep(cfg.retry).await;
                // A renewal stuck on a dead connection must not outlive the
                // renew deadline: leadership is given up by then.
                let left = cfg.renew_deadline.saturating_sub(renewed.elapsed());
                match within(left, attempt(&api, &cfg, &mut observed)).await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        warn!(lease = %cfg.name, "the lease was taken by another replica");
                        break;
                    }
                    Err(e) => warn!(error = %e, "cannot renew the lease"),
                }
                if renewed.elapsed() >= cfg.renew_deadline {
                    warn!(lease = %cfg.name, "lease not renewed within the renew deadline");
                    break;
                }
            }
            let _ = tx.send(true);
        })
    };
    Leadership {
        lost: rx,
        task,
        api,
        config: cfg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lease_write_that_does_not_answer_is_given_up_at_its_limit() {
        let stuck = std::future::pending::<Result<bool, kube::Error>>();
        let started = Instant::now();
        let answer = within(Duration::from_millis(50), stuck).await;
        assert_eq!(answer, Err("no answer within 50 ms".to_owned()));
        assert!(started.elapsed() >= Duration::from_millis(50));
        let quick = async { Ok(true) };
        assert_eq!(within(Duration::from_secs(10), quick).await, Ok(true));
    }

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn a_live_lease_of_another_replica_is_waited_for() {
        assert_eq!(
            decide(Some("b"), "a", Duration::from_secs(14), D),
            Step::Wait
        );
    }

    #[test]
    fn a_lease_unchanged_for_its_duration_is_taken() {
        assert_eq!(
            decide(Some("b"), "a", Duration::from_secs(15), D),
            Step::Take
        );
    }

    #[test]
    fn a_free_or_released_lease_is_taken_and_our_own_renewed() {
        assert_eq!(decide(None, "a", Duration::ZERO, D), Step::Take);
        assert_eq!(decide(Some(""), "a", Duration::ZERO, D), Step::Take);
        assert_eq!(
            decide(Some("a"), "a", Duration::from_secs(60), D),
            Step::Renew
        );
    }
}
