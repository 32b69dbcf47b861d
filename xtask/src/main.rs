//! govcloud-operator's harnesses, run from the repository as
//! `cargo xtask <command>` (an alias in `.cargo/config.toml` for
//! `cargo run --release --package xtask --`). None of this ships.

mod bench;
mod crds;
mod faults;
mod fuzz;
mod utilisation_bench;

const USAGE: &str = "\
usage: cargo xtask <command> [arguments]

  bench         provisioning, latency, quiet and memory against a local control plane
                (--sizes 200,1000 --memory 10000 --batch 1000 --quiet-minutes 5 --idle 60)
  faults        SIGKILLs and apiserver+etcd restarts while requests are provisioned
                (--requests 200 --kills 20 --restarts 3 --runs 1 --seed N)
  utilisation   rightsizing's queries against a real Prometheus with backfilled months
                ([tenancies [resolution-seconds]] [--raw])
  crds          regenerate crds/govcloud.dev.yaml and the chart's copy from the types
  fuzz          every fuzz target for a bounded time ([seconds], default 60; needs nightly)
";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let outcome: Result<(), Box<dyn std::error::Error>> = match command.as_str() {
        "bench" => bench::main(rest).await.map_err(|e| e as _),
        "faults" => faults::main(rest).await.map_err(|e| e as _),
        "utilisation" => utilisation_bench::main(rest).await,
        "crds" => crds::main(rest),
        "fuzz" => fuzz::main(rest),
        "" | "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}").into()),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
