//! kubectl-govcloud: the kubectl plugin for units and reviewers
//! (`kubectl govcloud ...`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kubectl govcloud",
    version,
    about = "Government cloud requests, reviews and tenancies"
)]
struct Cli {
    /// Path to the kubeconfig file.
    #[arg(long, global = true, env = "KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the plugin's version and the cluster's: the apiserver and
    /// whether the govcloud.dev API is installed.
    Version,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("kubectl-govcloud {}", env!("CARGO_PKG_VERSION"));
            let options = kube::config::KubeConfigOptions {
                context: cli.context.clone(),
                ..Default::default()
            };
            let config = match &cli.kubeconfig {
                Some(path) => match kube::config::Kubeconfig::read_from(path) {
                    Ok(kc) => kube::Config::from_custom_kubeconfig(kc, &options).await,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                None => kube::Config::from_kubeconfig(&options).await,
            };
            let client = match config
                .map_err(|e| e.to_string())
                .and_then(|c| kube::Client::try_from(c).map_err(|e| e.to_string()))
            {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match client.apiserver_version().await {
                Ok(v) => println!("server {}", v.git_version),
                Err(e) => {
                    eprintln!("error: cannot reach the cluster: {e}");
                    return ExitCode::FAILURE;
                }
            }
            let installed = client
                .list_api_group_resources("govcloud.dev/v1alpha1")
                .await
                .map(|l| l.resources.len())
                .unwrap_or(0);
            if installed > 0 {
                println!("govcloud.dev/v1alpha1: installed ({installed} resources)");
                ExitCode::SUCCESS
            } else {
                println!("govcloud.dev/v1alpha1: not installed");
                ExitCode::FAILURE
            }
        }
    }
}
