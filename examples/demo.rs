//! The main job, locally: starts a real control plane (built from the Go module
//! proxy on first use), installs the CRDs, the KubeVirt CRDs, the calendars and
//! the samples, runs the operator, and shows what it sees.
//!
//!   cargo run --example demo                 # until Ctrl-C
//!   cargo run --example demo -- --once       # set up, show, stop
//!   cargo run --example demo -- --current-context   # use $KUBECONFIG's cluster instead

use std::path::Path;
use std::process::ExitCode;

use govcloud::config::Config;
use govcloud::controlplane::{ControlPlane, Options, User};
use govcloud::manifests::{self, Applier};

const FIELD_MANAGER: &str = "govcloud-demo";

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn install(client: &kube::Client) -> Result<(), Error> {
    govcloud::controlplane::install_basics(client, FIELD_MANAGER).await?;
    let mut applier = Applier::new(client.clone(), FIELD_MANAGER);
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples");
    let mut files: Vec<_> = std::fs::read_dir(&samples)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let name = path.display().to_string();
        let objs = manifests::parse(&name, &std::fs::read_to_string(&path)?)?;
        applier.apply_all(&objs, None).await?;
        println!("applied {name} ({} objects)", objs.len());
    }
    Ok(())
}

async fn demo(once: bool, current_context: bool) -> Result<(), Error> {
    let (plane, client, kubeconfig) = if current_context {
        let client = kube::Client::try_default().await?;
        (
            None,
            client,
            std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into()),
        )
    } else {
        println!("starting a local control plane (the first run builds it: 10-25 minutes)...");
        let plane = ControlPlane::start(Options {
            keep_dir: true,
            ..Options::default()
        })
        .await?;
        let client = plane.admin().await?;
        let path = plane.dir().join("admin.kubeconfig");
        plane.write_kubeconfig(&path, &User::admin())?;
        println!("control plane {} at {}", plane.version(), plane.server());
        (Some(plane), client, path.display().to_string())
    };
    install(&client).await?;

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(govcloud::operator::run(
        client.clone(),
        Config::default(),
        govcloud::clock::Clock::system(),
        async {
            let _ = stop_rx.await;
        },
    ));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let kubectl = plane
        .as_ref()
        .map(|p| p.bin_dir().join("kubectl").display().to_string())
        .unwrap_or_else(|| "kubectl".into());
    println!("\n$ kubectl --kubeconfig {kubeconfig} get govcloud -A");
    let out = std::process::Command::new(&kubectl)
        .args(["--kubeconfig", &kubeconfig, "get", "govcloud", "-A"])
        .output();
    match out {
        Ok(out) => print!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!("(cannot run {kubectl}: {e})"),
    }
    println!("\nkubeconfig: {kubeconfig}");
    println!("kubectl:    {kubectl}");
    if once {
        let _ = stop_tx.send(());
        let _ = operator.await;
        return Ok(());
    }
    println!("\nthe operator is running; Ctrl-C stops it and the control plane");
    tokio::signal::ctrl_c().await?;
    let _ = stop_tx.send(());
    let _ = operator.await;
    if let Some(plane) = plane {
        plane.stop();
        println!("stopped; logs and data kept in {}", plane.dir().display());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    govcloud::telemetry::init();
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
