//! kubectl-govcloud: the kubectl plugin for units and reviewers
//! (`kubectl govcloud ...`).
//!
//! Exit codes: 0 done; 1 the cluster refused or failed (its message is
//! printed); 2 the command line was wrong.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use govcloud::api::Decision;
use govcloud::api::{
    ChangeRequest, CloudResourceRequest, ServiceCatalog, Tenancy, WorkCalendar, keys,
};
use govcloud::billing;
use govcloud::calendar::{Calendar, display, local_date};
use govcloud::clock::Published;
use govcloud::letters;
use govcloud::plugin;
use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "kubectl govcloud",
    version,
    about = "Government cloud requests, reviews and tenancies",
    after_help = "Examples:\n  kubectl govcloud pending -A\n  kubectl govcloud show crr/finance-oa -n unit-finance\n  kubectl govcloud approve crr/finance-oa -n unit-finance --opinion 同意按申请配置开通\n  kubectl govcloud confirm finance-oa -n unit-finance\n  kubectl govcloud letter crr/finance-oa -n unit-finance --format html --out application.html"
)]
struct Cli {
    /// Path to the kubeconfig file.
    #[arg(long, global = true, env = "KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// The namespace (default: the context's).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long = "all-namespaces", global = true)]
    all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// The operator's namespace: where it publishes its clock when that is
    /// a development clock (the plugin then reads the operator's time).
    #[arg(long, global = true, default_value = "govcloud-system")]
    operator_namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
    Yaml,
    /// Only `bill` prints CSV.
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LetterFormat {
    Markdown,
    Html,
}

#[derive(Subcommand)]
enum Command {
    /// Print the plugin's version and the cluster's: the apiserver and
    /// whether the govcloud.dev API is installed.
    Version,
    /// What waits for review: overdue first, then by due date, then oldest;
    /// deadlines in working days.
    Pending,
    /// One request (crr/NAME), change (chr/NAME) or tenancy (tny/NAME):
    /// phase, conditions, deadlines, the month's charge, recommendations.
    /// A bare NAME is a request, else a tenancy, else a change.
    Show { target: String },
    /// Approve the request or change as it is now (its current generation).
    Approve {
        target: String,
        #[arg(long)]
        opinion: Option<String>,
    },
    /// Reject it; the opinion says why.
    Reject {
        target: String,
        #[arg(long)]
        opinion: String,
    },
    /// Return it to the unit; the opinion says what to supplement.
    Return {
        target: String,
        #[arg(long)]
        opinion: String,
    },
    /// Send it to expert review (Art. 13).
    ExpertReview {
        target: String,
        #[arg(long)]
        opinion: Option<String>,
    },
    /// Open an urgent request before the full review (Art. 13 ¶2).
    EmergencyOpen {
        target: String,
        #[arg(long)]
        opinion: Option<String>,
    },
    /// Open a rectification case on a tenancy (Art. 20; reviewers), with the
    /// trigger's code 1-5, or close it with --rectified.
    Rectify {
        tenancy: String,
        /// 1 low use after a scale-down, 2 security non-compliance,
        /// 3 vulnerabilities, 4 misuse of resources, 5 other.
        #[arg(long, required_unless_present = "rectified", value_parser = clap::value_parser!(u8).range(1..=5))]
        trigger: Option<u8>,
        /// Close the open case: what was rectified.
        #[arg(long, conflicts_with = "trigger")]
        rectified: Option<String>,
    },
    /// Isolate a tenancy at once (Art. 25; vendors and reviewers): its
    /// network is cut and its VMs stopped until lifted.
    Isolate {
        tenancy: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a tenancy's isolation: what it held is restored.
    Lift { tenancy: String },
    /// Per unit: tenancies with their size, rightsizing recommendations,
    /// compliance gaps, open cases and isolation; overdue items.
    Report,
    /// A month's statement per unit and tenancy (Art. 6, 16): the catalog's
    /// prices in force each day, prorated by day; -o csv for spreadsheets.
    Bill {
        /// The month, as 2026-11.
        #[arg(long)]
        month: String,
        /// The ServiceCatalog holding the prices.
        #[arg(long, default_value = "default")]
        catalog: String,
    },
    /// An object's events and conditions in time order.
    Timeline { target: String },
    /// The paper form of an object, in Chinese: a request (crr/NAME) gives
    /// Attachment 1, the application letter and demand form; a tenancy
    /// (tny/NAME) Attachment 2, the opening confirmation letter and the
    /// unit's reply; a change (chr/NAME) Attachment 3, the change or
    /// cancellation form. Seals are left blank.
    #[command(
        after_help = "Examples:\n  kubectl govcloud letter crr/finance-oa -n unit-finance --format html --out application.html\n  kubectl govcloud letter tny/finance-oa -n unit-finance\n  chromium --headless --print-to-pdf=application.pdf application.html"
    )]
    Letter {
        target: String,
        /// Markdown, or HTML laid out for A4 paper.
        #[arg(long, value_enum, default_value_t = LetterFormat::Markdown)]
        format: LetterFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Confirm, as the unit, that a tenancy's resources were delivered
    /// (the reply of Attachment 2).
    Confirm {
        tenancy: String,
        /// What the unit confirms (default: today's date).
        #[arg(long)]
        note: Option<String>,
    },
}

/// A failure, printed as `error: ...`: exit code 2 for a wrong command
/// line, 1 for anything else.
struct Failed {
    message: String,
    usage: bool,
}

fn failed(message: impl Into<String>) -> Failed {
    Failed {
        message: message.into(),
        usage: false,
    }
}

/// A wrong command line (exit code 2).
fn usage(message: impl Into<String>) -> Failed {
    Failed {
        message: message.into(),
        usage: true,
    }
}

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Self {
        failed(e.to_string())
    }
}

fn api_message(e: kube::Error) -> Failed {
    match e {
        kube::Error::Api(s) => failed(s.message),
        e => failed(e.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed { message, usage }) => {
            eprintln!("error: {message}");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

async fn client(cli: &Cli) -> Result<Client, Failed> {
    let options = kube::config::KubeConfigOptions {
        context: cli.context.clone(),
        ..Default::default()
    };
    let config = match &cli.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &options).await?
        }
        None => kube::Config::from_kubeconfig(&options).await?,
    };
    Ok(Client::try_from(config)?)
}

/// The namespace of a command on one object; `-A` makes no sense there.
fn namespace(cli: &Cli, client: &Client) -> Result<String, Failed> {
    if cli.all_namespaces {
        return Err(usage(
            "-A lists every namespace; a command on one object takes -n NAMESPACE",
        ));
    }
    Ok(cli
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned()))
}

fn print<T: Serialize>(output: Output, value: &T) -> Result<(), Failed> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => print!("{}", serde_saphyr::to_string(value)?),
        Output::Table => unreachable!("tables are printed by each command"),
        Output::Csv => return Err(usage("-o csv is for bill only")),
    }
    Ok(())
}

/// The operator's clock, if it publishes a development clock; `None` when it
/// runs on the system's (or its namespace cannot be read: then so does
/// everyone's).
async fn operator_clock(cli: &Cli, client: &Client) -> Option<Published> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &cli.operator_namespace)
        .get_opt(Published::NAME)
        .await
        .ok()??;
    let json = cm.data?.get(Published::KEY)?.clone();
    match serde_json::from_str(&json) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!(
                "warning: {}/{} is not a clock ({e}); using this machine's",
                cli.operator_namespace,
                Published::NAME
            );
            None
        }
    }
}

async fn run(cli: &Cli) -> Result<(), Failed> {
    let client = client(cli).await?;
    let clock = operator_clock(cli, &client).await;
    let now = match &clock {
        Some(c) => {
            let now = c.at(Timestamp::now());
            eprintln!(
                "note: the operator runs on a development clock: now is {}",
                display(now)
            );
            now
        }
        None => Timestamp::now(),
    };
    match &cli.command {
        Command::Version => version(&client).await,
        Command::Pending => pending(cli, &client, now).await,
        Command::Show { target } => show(cli, &client, target, now).await,
        Command::Approve { target, opinion } => {
            decide(cli, &client, target, Decision::Approve, opinion.as_deref()).await
        }
        Command::Reject { target, opinion } => {
            decide(cli, &client, target, Decision::Reject, Some(opinion)).await
        }
        Command::Return { target, opinion } => {
            decide(cli, &client, target, Decision::Return, Some(opinion)).await
        }
        Command::ExpertReview { target, opinion } => {
            decide(
                cli,
                &client,
                target,
                Decision::ExpertReview,
                opinion.as_deref(),
            )
            .await
        }
        Command::EmergencyOpen { target, opinion } => {
            decide(
                cli,
                &client,
                target,
                Decision::EmergencyOpen,
                opinion.as_deref(),
            )
            .await
        }
        Command::Confirm { tenancy, note } => confirm(cli, &client, tenancy, note, now).await,
        Command::Rectify {
            tenancy,
            trigger,
            rectified,
        } => {
            let (annotations, what) = plugin::rectification(*trigger, rectified.as_deref())
                .ok_or_else(|| usage("give --trigger 1-5 or --rectified NOTE"))?;
            act(cli, &client, tenancy, annotations, &what).await
        }
        Command::Isolate { tenancy, reason } => {
            act(
                cli,
                &client,
                tenancy,
                json!({ keys::ISOLATE: reason }),
                "isolation",
            )
            .await
        }
        Command::Lift { tenancy } => {
            act(
                cli,
                &client,
                tenancy,
                json!({ keys::ISOLATE: null }),
                "isolation lifted",
            )
            .await
        }
        Command::Timeline { target } => timeline(cli, &client, target, clock.as_ref()).await,
        Command::Letter {
            target,
            format,
            out,
        } => letter(cli, &client, target, *format, out.as_deref()).await,
        Command::Bill { month, catalog } => bill(cli, &client, month, catalog).await,
        Command::Report => {
            let units = plugin::report(
                &list::<Tenancy>(cli, &client).await?,
                &list::<CloudResourceRequest>(cli, &client).await?,
                &list::<ChangeRequest>(cli, &client).await?,
                &calendar(&client).await?,
                now,
            );
            match cli.output {
                Output::Table => print!("{}", plugin::report_text(&units)),
                output => print(output, &units)?,
            }
            Ok(())
        }
    }
}

async fn version(client: &Client) -> Result<(), Failed> {
    println!("kubectl-govcloud {}", env!("CARGO_PKG_VERSION"));
    let v = client
        .apiserver_version()
        .await
        .map_err(|e| failed(format!("cannot reach the cluster: {e}")))?;
    println!("server {}", v.git_version);
    let installed = client
        .list_api_group_resources("govcloud.dev/v1alpha1")
        .await
        .map(|l| l.resources.len())
        .unwrap_or(0);
    if installed == 0 {
        return Err(failed("govcloud.dev/v1alpha1: not installed"));
    }
    println!("govcloud.dev/v1alpha1: installed ({installed} resources)");
    Ok(())
}

fn scoped<K>(cli: &Cli, client: &Client) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    if cli.all_namespaces {
        Api::all(client.clone())
    } else {
        let ns = cli
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        Api::namespaced(client.clone(), &ns)
    }
}

/// The objects of a kind in the namespace, or every namespace with -A.
async fn list<K>(cli: &Cli, client: &Client) -> Result<Vec<K>, Failed>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Ok(scoped::<K>(cli, client)
        .list(&ListParams::default())
        .await
        .map_err(api_message)?
        .items)
}

async fn calendar(client: &Client) -> Result<Calendar, Failed> {
    let calendars = Api::<WorkCalendar>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api_message)?;
    Ok(Calendar::from_specs(
        calendars.items.iter().map(|c| &c.spec),
    )?)
}

async fn pending(cli: &Cli, client: &Client, now: Timestamp) -> Result<(), Failed> {
    let requests = list::<CloudResourceRequest>(cli, client).await?;
    let changes = list::<ChangeRequest>(cli, client).await?;
    let items = plugin::pending(&requests, &changes, &calendar(client).await?, now);
    match cli.output {
        Output::Table if items.is_empty() => eprintln!("nothing waits for review"),
        Output::Table => print!("{}", plugin::pending_table(&items, cli.all_namespaces)),
        output => print(output, &items)?,
    }
    Ok(())
}

/// What a target names: `crr/NAME`, `chr/NAME`, `tny/NAME` (or the long
/// kind names), or a bare name (a request, else a change).
enum Target {
    Request(String),
    Change(String),
    Tenancy(String),
    Either(String),
}

fn target(text: &str) -> Result<Target, Failed> {
    let Some((kind, name)) = text.split_once('/') else {
        return Ok(Target::Either(text.to_owned()));
    };
    let name = name.to_owned();
    match kind.to_ascii_lowercase().as_str() {
        "crr" | "cloudresourcerequest" | "cloudresourcerequests" => Ok(Target::Request(name)),
        "chr" | "changerequest" | "changerequests" => Ok(Target::Change(name)),
        "tny" | "tenancy" | "tenancies" => Ok(Target::Tenancy(name)),
        other => Err(usage(format!(
            "unknown kind {other:?}: use crr/NAME, chr/NAME or tny/NAME"
        ))),
    }
}

async fn who_am_i(client: &Client) -> Result<String, Failed> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(api_message)?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .ok_or_else(|| failed("the apiserver did not say who you are"))
}

async fn decide(
    cli: &Cli,
    client: &Client,
    text: &str,
    decision: Decision,
    opinion: Option<&str>,
) -> Result<(), Failed> {
    if plugin::needs_opinion(decision) && opinion.is_none_or(|o| o.trim().is_empty()) {
        return Err(usage(format!(
            "{} needs --opinion saying why",
            decision.as_str()
        )));
    }
    let ns = namespace(cli, client)?;
    let user = who_am_i(client).await?;
    let requests: Api<CloudResourceRequest> = Api::namespaced(client.clone(), &ns);
    let changes: Api<ChangeRequest> = Api::namespaced(client.clone(), &ns);
    let (kind, name, meta) = match target(text)? {
        Target::Request(name) => {
            let r = requests.get(&name).await.map_err(api_message)?;
            ("cloudresourcerequest", name, r.metadata)
        }
        Target::Change(name) => {
            let c = changes.get(&name).await.map_err(api_message)?;
            ("changerequest", name, c.metadata)
        }
        Target::Either(name) => match requests.get_opt(&name).await.map_err(api_message)? {
            Some(r) => ("cloudresourcerequest", name, r.metadata),
            None => {
                let c = changes.get(&name).await.map_err(api_message)?;
                ("changerequest", name, c.metadata)
            }
        },
        Target::Tenancy(_) => {
            return Err(usage(
                "a tenancy is not decided on: decide its request (crr/NAME) or change (chr/NAME)",
            ));
        }
    };
    let generation = meta.generation.unwrap_or(1);
    let patch = plugin::decision_patch(
        decision,
        &user,
        generation,
        meta.resource_version.as_deref().unwrap_or_default(),
        opinion,
    );
    let pp = PatchParams::default();
    let result = match kind {
        "cloudresourcerequest" => requests
            .patch(&name, &pp, &Patch::Merge(&patch))
            .await
            .map(|_| ()),
        _ => changes
            .patch(&name, &pp, &Patch::Merge(&patch))
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => {
            println!(
                "{kind}/{name} {}: generation {generation}, by {user}",
                decision.as_str()
            );
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Err(failed(format!(
            "{kind}/{name} changed while you decided: read it again (kubectl govcloud show {kind}/{name}), then decide"
        ))),
        Err(e) => Err(api_message(e)),
    }
}

async fn confirm(
    cli: &Cli,
    client: &Client,
    tenancy: &str,
    note: &Option<String>,
    now: Timestamp,
) -> Result<(), Failed> {
    let name = match target(tenancy)? {
        Target::Tenancy(n) | Target::Either(n) => n,
        _ => return Err(usage("confirm names a tenancy (tny/NAME)")),
    };
    let api: Api<Tenancy> = Api::namespaced(client.clone(), &namespace(cli, client)?);
    let value = note.clone().unwrap_or_else(|| local_date(now).to_string());
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({ "metadata": { "annotations": { keys::DELIVERY_CONFIRMED: value } } }),
        ),
    )
    .await
    .map_err(api_message)?;
    println!("tenancy/{name}: delivery confirmed ({value})");
    Ok(())
}

async fn bill(cli: &Cli, client: &Client, month: &str, catalog: &str) -> Result<(), Failed> {
    let first: jiff::civil::Date = format!("{month}-01")
        .parse()
        .map_err(|_| usage(format!("--month {month:?}: write the month as 2026-11")))?;
    let prices = Api::<ServiceCatalog>::all(client.clone())
        .get(catalog)
        .await
        .map_err(api_message)?;
    let tenancies = list::<Tenancy>(cli, client).await?;
    let requests = list::<CloudResourceRequest>(cli, client).await?;
    let changes = list::<ChangeRequest>(cli, client).await?;
    let accounts: Vec<billing::Account> = tenancies
        .iter()
        .map(|t| {
            let ns = t.metadata.namespace.clone().unwrap_or_default();
            let same_ns = |o: &Option<String>| o.as_deref() == Some(ns.as_str());
            let requests: Vec<_> = requests
                .iter()
                .filter(|r| same_ns(&r.metadata.namespace))
                .cloned()
                .collect();
            let changes: Vec<_> = changes
                .iter()
                .filter(|c| same_ns(&c.metadata.namespace))
                .cloned()
                .collect();
            billing::account(&t.spec.unit_name, t, &requests, &changes)
        })
        .collect();
    let statement = billing::statement(&accounts, &prices.spec.periods, first)?;
    match cli.output {
        Output::Table => print!("{}", statement.table()),
        Output::Csv => print!("{}", statement.csv()),
        output => print(output, &statement)?,
    }
    Ok(())
}

async fn letter(
    cli: &Cli,
    client: &Client,
    text: &str,
    format: LetterFormat,
    out: Option<&std::path::Path>,
) -> Result<(), Failed> {
    let ns = namespace(cli, client)?;
    let object = fetch(client, &ns, text).await?;
    let letter = match object["kind"].as_str() {
        Some("Tenancy") => {
            let tenancy: Tenancy = serde_json::from_value(object)?;
            // The request may have been deleted since; its date is then left blank.
            let filed = Api::<CloudResourceRequest>::namespaced(client.clone(), &ns)
                .get_opt(tenancy.spec.request.as_str())
                .await
                .map_err(api_message)?
                .as_ref()
                .and_then(letters::filed_on);
            letters::opening(&tenancy, filed).map_err(|e| failed(e.to_string()))?
        }
        Some("ChangeRequest") => {
            letters::change(&serde_json::from_value(object)?).map_err(|e| failed(e.to_string()))?
        }
        _ => letters::application(&serde_json::from_value(object)?),
    };
    let rendered = match format {
        LetterFormat::Markdown => letter.markdown(),
        LetterFormat::Html => letter.html(),
    };
    match out {
        Some(path) => {
            std::fs::write(path, rendered)
                .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
            eprintln!("{}: written to {}", letter.title, path.display());
        }
        None => print!("{rendered}"),
    }
    Ok(())
}

/// Sets annotations on a tenancy in the caller's name (`decided-by`).
async fn act(
    cli: &Cli,
    client: &Client,
    tenancy: &str,
    mut annotations: serde_json::Value,
    what: &str,
) -> Result<(), Failed> {
    let name = match target(tenancy)? {
        Target::Tenancy(n) | Target::Either(n) => n,
        _ => return Err(usage("this acts on a tenancy (tny/NAME)")),
    };
    let user = who_am_i(client).await?;
    annotations[keys::DECIDED_BY] = json!(user);
    let api: Api<Tenancy> = Api::namespaced(client.clone(), &namespace(cli, client)?);
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "annotations": annotations } })),
    )
    .await
    .map_err(api_message)?;
    println!("tenancy/{name}: {what}, by {user}");
    Ok(())
}

/// Reads the object a target names. A bare name is a request, else a
/// tenancy, else a change; not found when none of the three has it.
async fn fetch(client: &Client, ns: &str, text: &str) -> Result<Value, Failed> {
    async fn get<K>(client: &Client, ns: &str, name: &str) -> Result<Option<Value>, Failed>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + Serialize
            + std::fmt::Debug,
    {
        let found = Api::<K>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(api_message)?;
        Ok(found.map(serde_json::to_value).transpose()?)
    }
    let (found, what) = match target(text)? {
        Target::Request(n) => (
            get::<CloudResourceRequest>(client, ns, &n).await?,
            format!("cloudresourcerequests {n:?}"),
        ),
        Target::Change(n) => (
            get::<ChangeRequest>(client, ns, &n).await?,
            format!("changerequests {n:?}"),
        ),
        Target::Tenancy(n) => (
            get::<Tenancy>(client, ns, &n).await?,
            format!("tenancies {n:?}"),
        ),
        Target::Either(n) => {
            let mut found = get::<CloudResourceRequest>(client, ns, &n).await?;
            if found.is_none() {
                found = get::<Tenancy>(client, ns, &n).await?;
            }
            if found.is_none() {
                found = get::<ChangeRequest>(client, ns, &n).await?;
            }
            (found, format!("no request, tenancy or change {n:?}"))
        }
    };
    found.ok_or_else(|| failed(format!("{what} not found in namespace {ns}")))
}

/// An object's events and conditions in one order, on the operator's clock:
/// conditions carry its time, events the apiserver's real time, placed on
/// the operator's clock when that is a development clock.
async fn timeline(
    cli: &Cli,
    client: &Client,
    text: &str,
    clock: Option<&Published>,
) -> Result<(), Failed> {
    let ns = namespace(cli, client)?;
    let object = fetch(client, &ns, text).await?;
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let events = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind={kind},involvedObject.name={name}"
        )))
        .await
        .map_err(api_message)?;
    let mut moments: Vec<plugin::Moment> = events
        .items
        .into_iter()
        .filter_map(|e| {
            let at = e
                .event_time
                .map(|t| t.0)
                .or(e.last_timestamp.map(|t| t.0))
                .or(e.first_timestamp.map(|t| t.0))
                .or(e.metadata.creation_timestamp.map(|t| t.0))?;
            Some(plugin::Moment {
                at: clock.map_or(at, |c| c.at(at)),
                source: "Event",
                what: e.reason.unwrap_or_default(),
                message: e.message.unwrap_or_default(),
            })
        })
        .collect();
    for c in object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(at) = c["lastTransitionTime"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
        else {
            continue;
        };
        moments.push(plugin::Moment {
            at,
            source: "Condition",
            what: format!(
                "{}={} {}",
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default()
            ),
            message: c["message"].as_str().unwrap_or_default().to_owned(),
        });
    }
    let moments = plugin::timeline(moments);
    match cli.output {
        Output::Table => print!("{}", plugin::timeline_table(&moments)),
        output => print(output, &moments)?,
    }
    Ok(())
}

async fn show(cli: &Cli, client: &Client, text: &str, now: Timestamp) -> Result<(), Failed> {
    let ns = namespace(cli, client)?;
    let value = fetch(client, &ns, text).await?;
    if cli.output != Output::Table {
        return print(cli.output, &value);
    }
    let kind = value["kind"].as_str().unwrap_or_default();
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    let status = &value["status"];
    let mut rows = vec![
        vec![
            "Name:".to_owned(),
            format!("{}/{name}", kind.to_lowercase()),
        ],
        vec![
            "Phase:".to_owned(),
            status["phase"].as_str().unwrap_or("Submitted").to_owned(),
        ],
    ];
    let when = |key: &str| {
        status[key]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .map(|t| {
                let mark = if t < now { " (passed)" } else { "" };
                format!("{}{mark}", display(t))
            })
    };
    for (label, key) in [
        ("Review due:", "reviewDueAt"),
        ("Paperwork due:", "paperworkDueAt"),
        ("Delivered:", "deliveredAt"),
        ("Trial ends:", "trialEndsAt"),
        ("Billed from:", "billingStartedAt"),
        ("Billed until:", "billingEndedAt"),
        ("Retired:", "retiredAt"),
    ] {
        if let Some(v) = when(key) {
            rows.push(vec![label.to_owned(), v]);
        }
    }
    let accrual = &status["accrual"];
    if let Some(month) = accrual["month"].as_str() {
        let days = accrual["billedDays"].as_u64().unwrap_or_default();
        let text = match (accrual["amount"].as_str(), accrual["problem"].as_str()) {
            (Some(amount), _) => format!("{month}: {amount} yuan, {days} billed days"),
            (None, problem) => format!("{month}: not priced: {}", problem.unwrap_or_default()),
        };
        rows.push(vec!["Charge:".to_owned(), text]);
    }
    for c in status["conditions"].as_array().into_iter().flatten() {
        rows.push(vec![
            format!("{}:", c["type"].as_str().unwrap_or_default()),
            format!(
                "{} {} {}",
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default()
            ),
        ]);
    }
    for r in status["recommendations"].as_array().into_iter().flatten() {
        rows.push(vec![
            "Recommendation:".to_owned(),
            r.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| r.to_string()),
        ]);
    }
    print!("{}", plugin::table(&rows));
    Ok(())
}
