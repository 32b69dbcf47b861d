//! govcloud-operator: the operator process, and the tools that ship with it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use govcloud::clock::Clock;
use govcloud::config::Config;

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
    },
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", govcloud::api::crds_yaml());
            ExitCode::SUCCESS
        }
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
            let clock = match (dev_clock_file, dev_clock_offset) {
                (Some(path), _) => match Clock::file(path) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
                (None, Some(offset)) => match parse_offset(&offset) {
                    Ok(d) => Clock::offset(d),
                    Err(e) => {
                        eprintln!("error: --dev-clock-offset {offset}: {e}");
                        return ExitCode::from(2);
                    }
                },
                (None, None) => Clock::system(),
            };
            govcloud::operator::Operator::new(client, config)
                .with_clock(clock)
                .serve_on(metrics_address)
                .run(shutdown_signal())
                .await;
            ExitCode::SUCCESS
        }
    }
}
