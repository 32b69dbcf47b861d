//! govcloud-operator: the operator process, and the tools that ship with it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use govcloud::clock::Clock;
use govcloud::config::Config;
use govcloud::operator::Ended;
use govcloud::operator::leader::LeaseConfig;

#[derive(Parser)]
#[command(
    version,
    about = "Runs a government cloud by its measures, on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster of the current kubeconfig
    /// (or the in-cluster service account).
    Run {
        /// Configuration file (YAML); absent keys take their defaults.
        #[arg(long, env = "GOVCLOUD_CONFIG")]
        config: Option<PathBuf>,
        /// DEVELOPMENT ONLY: read "now" from this file (an RFC 3339 instant,
        /// re-read every second) instead of the system clock.
        #[arg(
            long,
            env = "GOVCLOUD_DEV_CLOCK_FILE",
            conflicts_with = "dev_clock_offset"
        )]
        dev_clock_file: Option<PathBuf>,
        /// DEVELOPMENT ONLY: run the clock ahead of the system's by this span
        /// (e.g. "31d", "2h").
        #[arg(long, env = "GOVCLOUD_DEV_CLOCK_OFFSET")]
        dev_clock_offset: Option<String>,
        /// Where to serve /metrics, /healthz and /readyz.
        #[arg(long, env = "GOVCLOUD_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
        metrics_address: std::net::SocketAddr,
        /// Run the controllers only while holding a Lease, so that several
        /// replicas are safe (one active, the others standing by).
        #[arg(long, env = "GOVCLOUD_LEADER_ELECT")]
        leader_elect: bool,
        /// The Lease's namespace (in a pod: its own).
        #[arg(long, env = "POD_NAMESPACE", default_value = "govcloud-system")]
        lease_namespace: String,
        #[arg(long, env = "GOVCLOUD_LEASE_NAME", default_value = "govcloud-operator")]
        lease_name: String,
        /// Seconds a lease not renewed stays valid: the longest a takeover waits.
        #[arg(long, env = "GOVCLOUD_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
        lease_seconds: u64,
        /// Reconciles each controller runs at once: more provisions faster
        /// until the apiserver queues them.
        #[arg(long, env = "GOVCLOUD_MAX_CONCURRENT_RECONCILES", default_value_t = govcloud::operator::DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024))]
        max_concurrent_reconciles: u16,
        /// Seconds between looks at a settled tenancy, request or change,
        /// under the watches (a look that finds nothing to do writes
        /// nothing). One with something in progress is looked at every 30.
        #[arg(long, env = "GOVCLOUD_RESYNC_SECONDS", default_value_t = govcloud::operator::DEFAULT_RESYNC.as_secs(), value_parser = clap::value_parser!(u64).range(10..=86400))]
        resync_seconds: u64,
    },
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Print a Prometheus rules file recording the utilisation queries of a
    /// configuration (the defaults without one) as one series per namespace,
    /// every `prometheus.resolutionSeconds`.
    RecordingRules {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and print the configuration in effect.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
}

fn parse_offset(text: &str) -> Result<jiff::SignedDuration, String> {
    let span: jiff::Span = text.parse().map_err(|e| format!("{e}"))?;
    span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{e}"))
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The development clock asked for, or the system's.
fn clock(file: Option<PathBuf>, offset: Option<String>) -> Result<Clock, String> {
    match (file, offset) {
        (Some(path), _) => Clock::file(path).map_err(|e| e.to_string()),
        (None, Some(offset)) => parse_offset(&offset)
            .map(Clock::offset)
            .map_err(|e| format!("--dev-clock-offset {offset}: {e}")),
        (None, None) => Ok(Clock::system()),
    }
}

/// The Lease this replica competes for, with client-go's proportions: the
/// renew deadline two thirds of the lease, retries a seventh.
fn lease(namespace: String, name: String, seconds: u64) -> LeaseConfig {
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("{host}-{}", std::process::id())
    });
    let mut lease = LeaseConfig::new(namespace, name, identity);
    lease.duration = std::time::Duration::from_secs(seconds);
    lease.renew_deadline = std::time::Duration::from_secs(seconds * 2 / 3);
    lease.retry = std::time::Duration::from_secs((seconds / 7).max(1));
    lease
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", govcloud::api::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::RecordingRules { config } => match load(config.as_ref()) {
            Ok(c) => {
                print!(
                    "{}",
                    govcloud::prometheus::recording_rules(
                        &c.prometheus.queries,
                        c.prometheus.resolution_seconds
                    )
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(c) => {
                print!("{}", serde_saphyr::to_string(&c).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            config,
            dev_clock_file,
            dev_clock_offset,
            metrics_address,
            leader_elect,
            lease_namespace,
            lease_name,
            lease_seconds,
            max_concurrent_reconciles,
            resync_seconds,
        } => {
            govcloud::telemetry::init();
            let config = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let client = match kube::Client::try_default().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: cannot reach the cluster: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let clock = match clock(dev_clock_file, dev_clock_offset) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut operator = govcloud::operator::Operator::new(client, config)
                .with_clock(clock)
                .with_concurrency(max_concurrent_reconciles)
                .with_resync(std::time::Duration::from_secs(resync_seconds))
                .publish_clock_in(lease_namespace.clone())
                .serve_on(metrics_address);
            if leader_elect {
                operator = operator.with_leader_election(lease(
                    lease_namespace,
                    lease_name,
                    lease_seconds,
                ));
            }
            match operator.run(shutdown_signal()).await {
                Ended::Shutdown => ExitCode::SUCCESS,
                // Exit at once: a restart stands by until the lease is free.
                Ended::LeaseLost | Ended::ControllersEnded => ExitCode::FAILURE,
            }
        }
    }
}
