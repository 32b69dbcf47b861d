//! The test environment of govcloud-operator: what the tests, the demo and the
//! harnesses run against. None of it ships; the operator's image links the
//! `govcloud-operator` crate alone.
//!
//! A real, local Kubernetes control plane: etcd, kube-apiserver and
//! kube-controller-manager, built from the Go module proxy by
//! `tools/build-control-plane.sh` and started here on free loopback ports.
//!
//! The apiserver runs with RBAC; people are client certificates signed by a CA
//! made for each run (CN = user, O = group), the admin being in
//! `system:masters`. The controller-manager runs the namespace, garbage
//! collector, resource quota, service account and cluster-role aggregation
//! controllers, so namespaces finish deleting, owner references cascade,
//! quotas get their status and the built-in `edit` and `view` roles their
//! rules.
//! Everything lives in one temporary directory and dies with the process.
//!
//! Beside it: [`node`] (a real worker node on this machine: containerd,
//! kubelet, kube-proxy, for a control plane started with [`Options::node`]),
//! [`image`] (container images without a registry), [`manifests`] (applying
//! YAML as `kubectl apply` does), [`helm`] (the chart), [`prometheus`] (a
//! real Prometheus with backfilled months), [`standins`] (KubeVirt's part,
//! and the Job controller's where there is no node) and [`fleet`] (many
//! tenancies and operator processes, for the harnesses).

pub mod fleet;
pub mod helm;
pub mod image;
pub mod manifests;
pub mod node;
mod pki;
pub mod prometheus;
pub mod standins;

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::{Value, json};

use pki::Pki;

/// The repository this crate lives in: the chart, the samples, the fixtures
/// and the tools are read from there.
pub const SOURCE_TREE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// SIGTERM, as Kubernetes stops a pod; does not wait.
pub fn terminate(child: &Child) {
    // SAFETY: a signal to a child we own and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

/// SIGKILL, as the OOM killer or a node failure would, and reaps it.
pub fn kill(child: &mut Child) {
    // SAFETY: a signal to a child we own and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Who a client acts as.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub group: Option<String>,
}

impl User {
    pub fn new(name: impl Into<String>, group: Option<&str>) -> Self {
        Self {
            name: name.into(),
            group: group.map(str::to_owned),
        }
    }

    /// The cluster administrator (group `system:masters`).
    pub fn admin() -> Self {
        Self::new("govcloud-admin", Some("system:masters"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the control-plane binaries failed ({0}); see the output above")]
    Build(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("{0}")]
    Unavailable(String),
    #[error("client configuration: {0}")]
    Kubeconfig(String),
    #[error("{process} exited before it was ready ({status}); last lines of {log}:\n{tail}")]
    Exited {
        process: &'static str,
        status: String,
        log: String,
        tail: String,
    },
    #[error("{what} not ready after {secs} s; last lines of {log}:\n{tail}")]
    Timeout {
        what: String,
        secs: u64,
        log: String,
        tail: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The directory holding `etcd`, `kube-apiserver`, `kube-controller-manager`,
/// `kubectl` and `helm`: `$GOVCLOUD_CONTROL_PLANE_BIN` if set, otherwise the cache that
/// `tools/build-control-plane.sh` fills (building on the first run).
pub fn binaries() -> Result<PathBuf, Error> {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    built_by(
        "GOVCLOUD_CONTROL_PLANE_BIN",
        "tools/build-control-plane.sh",
        &FOUND,
    )
}

/// The directory named by the environment variable `var`, or else the one
/// that `script` (a build script of `tools/`, building what is missing)
/// prints on its last line; found once per process.
fn built_by(var: &str, script: &str, found: &OnceLock<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os(var) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = found.get() {
        return Ok(dir.clone());
    }
    let script = Path::new(crate::SOURCE_TREE).join(script);
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(io(format!("running {}", script.display())))?;
    if !out.status.success() {
        return Err(Error::Build(format!(
            "{}: {}",
            script.display(),
            out.status
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout.lines().last().unwrap_or_default().trim();
    if dir.is_empty() {
        return Err(Error::Build(format!(
            "{} printed no directory",
            script.display()
        )));
    }
    Ok(found.get_or_init(|| PathBuf::from(dir)).clone())
}

struct Process {
    name: &'static str,
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Child,
}

impl Process {
    fn spawn(
        name: &'static str,
        bin: PathBuf,
        args: Vec<String>,
        dir: &Path,
    ) -> Result<Self, Error> {
        Self::spawn_with(name, bin, args, Vec::new(), dir)
    }

    /// Starts `bin` with `env` added to this process's environment.
    fn spawn_with(
        name: &'static str,
        bin: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        dir: &Path,
    ) -> Result<Self, Error> {
        let log = dir.join(format!("{name}.log"));
        let child = Self::launch(&bin, &args, &env, &log)?;
        Ok(Self {
            name,
            bin,
            args,
            env,
            log,
            child,
        })
    }

    fn launch(
        bin: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Child, Error> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io(format!("opening {}", log.display())))?;
        let err = out.try_clone().map_err(io("duplicating a log handle"))?;
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // A test run that crashes or is killed leaves no control plane behind.
        spawn_tied(cmd).map_err(io(format!("starting {}", bin.display())))
    }

    fn tail(&self) -> String {
        tail_of(&self.log, 30)
    }

    /// Fails when the process has exited.
    fn check_alive(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Error::Exited {
                process: self.name,
                status: status.to_string(),
                log: self.log.display().to_string(),
                tail: self.tail(),
            }),
            _ => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL after ten seconds.
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on a child we own and have not reaped.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Stops the process and starts it again with the same arguments.
    fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        self.child = Self::launch(&self.bin, &self.args, &self.env, &self.log)?;
        Ok(())
    }
}

/// The three processes, in start order.
struct Processes {
    etcd: Process,
    apiserver: Process,
    controller_manager: Option<Process>,
    scheduler: Option<Process>,
}

impl Processes {
    fn stop(&mut self) {
        if let Some(scheduler) = self.scheduler.as_mut() {
            scheduler.stop();
        }
        if let Some(kcm) = self.controller_manager.as_mut() {
            kcm.stop();
        }
        self.apiserver.stop();
        self.etcd.stop();
    }
}

/// `cargo` with the environment of a shell, not of the `cargo test` or
/// `cargo run` that runs this: what cargo sets for its child would make a
/// build differ from one started in a shell (ring's build script reads it)
/// and compile everything again.
pub fn cargo() -> Command {
    let mut cargo = Command::new("cargo");
    cargo.env_clear();
    for key in [
        "PATH",
        "HOME",
        "USER",
        "TMPDIR",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "CARGO_TARGET_DIR",
    ] {
        if let Some(v) = std::env::var_os(key) {
            cargo.env(key, v);
        }
    }
    cargo
}

/// Starts a process that dies with this one (PR_SET_PDEATHSIG), from the
/// spawner thread that lives as long as the process: for the operator binary
/// that a test runs, as for the control plane.
pub fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    // SAFETY: prctl is async-signal-safe and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    spawn(cmd)
}

type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

/// Starts `cmd` from the process-long spawner thread.
fn spawn(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        let started = std::thread::Builder::new()
            .name("control-plane-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the spawner thread");
        }
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

fn tail_of(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn free_port() -> Result<u16, Error> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port();
    Ok(port)
}

/// How to start a control plane.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Keep the working directory (certificates, logs, etcd data) after stopping.
    pub keep_dir: bool,
    /// Extra flags for kube-apiserver.
    pub apiserver_args: Vec<String>,
    /// Ready for a node to join ([`node::Node`]): the apiserver also
    /// listens on the machine's address (pods reach it there through the
    /// `kubernetes` Service), authorizes kubelets (`Node,RBAC`), and
    /// kube-scheduler and every controller run (Jobs, volume binding, node
    /// lifecycle, certificate signing).
    pub node: bool,
}

/// A running control plane. Dropping it stops the processes.
pub struct ControlPlane {
    dir: PathBuf,
    remove_dir: bool,
    pki: Pki,
    bin: PathBuf,
    server: String,
    version: String,
    etcd_port: u16,
    /// The address pods reach the apiserver at, when ready for a node.
    node_ip: Option<Ipv4Addr>,
    processes: Mutex<Processes>,
}

const STARTUP: Duration = Duration::from_secs(90);

/// kube-controller-manager's requests a second to the apiserver.
pub const KCM_QPS: u32 = 200;

impl ControlPlane {
    /// Builds the binaries if needed, starts etcd, the apiserver and the
    /// controller-manager, and waits until they serve.
    pub async fn start(options: Options) -> Result<Self, Error> {
        let bin = binaries()?;
        // Free ports are found by binding and releasing them; another process
        // may take one in between. A start that fails that way is retried.
        let mut attempt = 1;
        loop {
            match Self::start_once(&bin, &options).await {
                Err(Error::Exited {
                    process, log, tail, ..
                }) if attempt < 3 => {
                    tracing::warn!(process, log, %tail, "a control-plane process exited while starting; retrying");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(bin: &Path, options: &Options) -> Result<Self, Error> {
        let bin = bin.to_path_buf();
        // The directory outlives a failed start, for its logs; a control plane
        // that started removes it when dropped, unless asked to keep it.
        let dir = tempfile::Builder::new()
            .prefix("govcloud-control-plane-")
            .tempdir()
            .map_err(io("creating the working directory"))?
            .keep();

        let node_ip = if options.node {
            Some(node::address()?)
        } else {
            None
        };
        let pki = Pki::generate(&node::apiserver_names(node_ip))?;
        let write = |name: &str, text: &str| -> Result<String, Error> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))?;
            Ok(path.display().to_string())
        };
        let ca = write("ca.crt", &pki.ca_pem)?;
        let serving_crt = write("apiserver.crt", &pki.serving.cert_pem)?;
        let serving_key = write("apiserver.key", &pki.serving.key_pem)?;
        let sa_key = write("service-account.key", &pki.service_account_key_pem)?;
        let sa_pub = write("service-account.pub", &pki.service_account_pub_pem)?;

        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let api_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");

        let mut etcd = Process::spawn(
            "etcd",
            bin.join("etcd"),
            vec![
                "--name=local".into(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=local={peer_url}"),
                "--unsafe-no-fsync".into(),
                "--quota-backend-bytes=8589934592".into(),
                "--log-level=warn".into(),
            ],
            &dir,
        )?;
        wait_tcp(&mut etcd, etcd_port).await?;

        let mut apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            format!(
                "--bind-address={}",
                if node_ip.is_some() {
                    "0.0.0.0"
                } else {
                    "127.0.0.1"
                }
            ),
            format!(
                "--advertise-address={}",
                node_ip.unwrap_or(Ipv4Addr::LOCALHOST)
            ),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={serving_crt}"),
            format!("--tls-private-key-file={serving_key}"),
            format!("--client-ca-file={ca}"),
            format!(
                "--authorization-mode={}",
                if node_ip.is_some() {
                    "Node,RBAC"
                } else {
                    "RBAC"
                }
            ),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={sa_pub}"),
            format!("--service-account-signing-key-file={sa_key}"),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ];
        if node_ip.is_some() {
            let kubelet_client =
                pki.client("kube-apiserver-kubelet-client", Some("system:masters"))?;
            apiserver_args.extend([
                "--enable-admission-plugins=NodeRestriction".into(),
                format!(
                    "--kubelet-client-certificate={}",
                    write("kubelet-client.crt", &kubelet_client.cert_pem)?
                ),
                format!(
                    "--kubelet-client-key={}",
                    write("kubelet-client.key", &kubelet_client.key_pem)?
                ),
                "--kubelet-preferred-address-types=InternalIP".into(),
            ]);
        }
        apiserver_args.extend(options.apiserver_args.iter().cloned());
        let apiserver = Process::spawn(
            "kube-apiserver",
            bin.join("kube-apiserver"),
            apiserver_args,
            &dir,
        )?;

        let mut plane = Self {
            dir: dir.clone(),
            remove_dir: !options.keep_dir,
            pki,
            bin: bin.clone(),
            server: format!("https://127.0.0.1:{api_port}"),
            version: String::new(),
            etcd_port,
            node_ip,
            processes: Mutex::new(Processes {
                etcd,
                apiserver,
                controller_manager: None,
                scheduler: None,
            }),
        };
        plane.version = plane.wait_apiserver().await?;

        // The controllers delete whole namespaces and collect any kind, so they
        // run as an administrator rather than with per-controller accounts.
        let kcm_kubeconfig = dir.join("controller-manager.kubeconfig");
        let kcm_user = User::new("system:kube-controller-manager", Some("system:masters"));
        plane.write_kubeconfig(&kcm_kubeconfig, &kcm_user)?;
        let mut kcm_args = vec![
            format!("--kubeconfig={}", kcm_kubeconfig.display()),
            format!("--service-account-private-key-file={sa_key}"),
            format!("--root-ca-file={ca}"),
            "--leader-elect=false".into(),
            "--secure-port=0".into(),
            "--concurrent-namespace-syncs=10".into(),
            "--concurrent-gc-syncs=20".into(),
            // The quota controller takes up every new tenancy's quota (a
            // status write each) and the service account controller makes
            // every new namespace's `default` account: at the client's
            // default 20 requests a second a burst of approvals waits for
            // them, so the control plane is sized as a district's would be.
            format!("--kube-api-qps={KCM_QPS}"),
            format!("--kube-api-burst={}", KCM_QPS * 2),
            "--concurrent-resource-quota-syncs=20".into(),
            "--v=1".into(),
        ];
        if options.node {
            // Every default controller: a node runs what they make (Jobs'
            // pods, bound volumes), and certificates are signed by the CA.
            let ca_key = write("ca.key", &plane.pki.ca_key_pem)?;
            kcm_args.extend([
                "--controllers=*".into(),
                format!("--cluster-signing-cert-file={ca}"),
                format!("--cluster-signing-key-file={ca_key}"),
            ]);
        } else {
            // The controllers a control plane without nodes needs; the tests
            // play the Job controller and the volume binder themselves.
            kcm_args.push("--controllers=namespace-controller,garbage-collector-controller,resourcequota-controller,serviceaccount-controller,persistentvolumeclaim-protection-controller,clusterrole-aggregation-controller".into());
        }
        let kcm = Process::spawn(
            "kube-controller-manager",
            bin.join("kube-controller-manager"),
            kcm_args,
            &dir,
        )?;
        plane.processes().controller_manager = Some(kcm);
        plane.wait_controller_manager().await?;
        if options.node {
            let scheduler_kubeconfig = dir.join("scheduler.kubeconfig");
            let scheduler_user = User::new("system:kube-scheduler", Some("system:masters"));
            plane.write_kubeconfig(&scheduler_kubeconfig, &scheduler_user)?;
            let scheduler = Process::spawn(
                "kube-scheduler",
                node::binaries()?.join("kube-scheduler"),
                vec![
                    format!("--kubeconfig={}", scheduler_kubeconfig.display()),
                    format!(
                        "--authentication-kubeconfig={}",
                        scheduler_kubeconfig.display()
                    ),
                    format!(
                        "--authorization-kubeconfig={}",
                        scheduler_kubeconfig.display()
                    ),
                    "--bind-address=127.0.0.1".into(),
                    format!("--secure-port={}", free_port()?),
                    "--leader-elect=false".into(),
                    "--v=1".into(),
                ],
                &dir,
            )?;
            plane.processes().scheduler = Some(scheduler);
        }
        Ok(plane)
    }

    fn processes(&self) -> std::sync::MutexGuard<'_, Processes> {
        self.processes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The apiserver's version, e.g. `v1.36.3`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The working directory: certificates, logs, etcd data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The address pods reach the apiserver at (the machine's), when
    /// started ready for a node.
    pub fn node_ip(&self) -> Option<Ipv4Addr> {
        self.node_ip
    }

    /// The CA that signed every certificate (PEM): a kubelet trusts clients
    /// it signed.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// The directory of the control-plane binaries (kubectl among them).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// A kubeconfig (as JSON) for `user`, with a client certificate made for it.
    pub fn kubeconfig(&self, user: &User) -> Result<Value, Error> {
        let cert = self.pki.client(&user.name, user.group.as_deref())?;
        Ok(json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": "govcloud-local",
                "cluster": {
                    "server": self.server,
                    "certificate-authority-data": BASE64.encode(&self.pki.ca_pem),
                },
            }],
            "users": [{
                "name": user.name,
                "user": {
                    "client-certificate-data": BASE64.encode(&cert.cert_pem),
                    "client-key-data": BASE64.encode(&cert.key_pem),
                },
            }],
            "contexts": [{
                "name": "govcloud-local",
                "context": { "cluster": "govcloud-local", "user": user.name },
            }],
            "current-context": "govcloud-local",
        }))
    }

    /// Writes a kubeconfig file for `user` (readable by the owner only).
    pub fn write_kubeconfig(&self, path: &Path, user: &User) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_saphyr::to_string(&self.kubeconfig(user)?)
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io(format!("writing {}", path.display())))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .map_err(io(format!("writing {}", path.display())))
    }

    /// Client configuration for `user`.
    pub async fn config(&self, user: &User) -> Result<Config, Error> {
        let kubeconfig: Kubeconfig = serde_json::from_value(self.kubeconfig(user)?)
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))
    }

    /// A client acting as `user`.
    pub async fn client(&self, user: &User) -> Result<Client, Error> {
        Client::try_from(self.config(user).await?).map_err(|e| Error::Kubeconfig(e.to_string()))
    }

    /// A client of the administrator's that acts as `name` in every one of
    /// `groups` (a client certificate names one group; a person may hold
    /// several, a reviewer who also belongs to a unit say).
    pub async fn impersonating(&self, name: &str, groups: &[&str]) -> Result<Client, Error> {
        let mut config = self.config(&User::admin()).await?;
        config.auth_info.impersonate = Some(name.to_owned());
        config.auth_info.impersonate_groups =
            Some(groups.iter().map(|g| (*g).to_owned()).collect());
        Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))
    }

    /// A client acting as the administrator.
    pub async fn admin(&self) -> Result<Client, Error> {
        self.client(&User::admin()).await
    }

    /// Waits until the apiserver answers `/readyz`; returns its version.
    async fn wait_apiserver(&self) -> Result<String, Error> {
        let client = self.admin().await?;
        let started = Instant::now();
        loop {
            {
                let mut procs = self.processes();
                procs.etcd.check_alive()?;
                procs.apiserver.check_alive()?;
            }
            if let Ok(text) = client.request_text(http_get("/readyz")).await
                && text.trim() == "ok"
                && let Ok(info) = client.apiserver_version().await
            {
                return Ok(info.git_version);
            }
            if started.elapsed() > STARTUP {
                return Err(timeout("kube-apiserver", &self.processes().apiserver));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The service account controller creates `default` in every namespace:
    /// once it exists, the controller-manager's informers are running.
    async fn wait_controller_manager(&self) -> Result<(), Error> {
        let client = self.admin().await?;
        let accounts: Api<ServiceAccount> = Api::namespaced(client, "default");
        let started = Instant::now();
        loop {
            if let Some(kcm) = self.processes().controller_manager.as_mut() {
                kcm.check_alive()?;
            }
            if let Ok(Some(_)) = accounts.get_opt("default").await {
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                let procs = self.processes();
                let kcm = procs
                    .controller_manager
                    .as_ref()
                    .unwrap_or(&procs.apiserver);
                return Err(timeout("kube-controller-manager", kcm));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Restarts etcd and the apiserver (keeping etcd's data) and waits until
    /// the apiserver serves again: the outage a fault test needs.
    pub async fn restart_apiserver_and_etcd(&self) -> Result<(), Error> {
        {
            let mut procs = self.processes();
            procs.apiserver.stop();
            procs.etcd.restart()?;
        }
        {
            let mut procs = self.processes();
            wait_tcp_blocking(&mut procs.etcd, self.etcd_port)?;
            procs.apiserver.restart()?;
        }
        self.wait_apiserver().await.map(|_| ())
    }

    /// Stops kube-controller-manager alone (its quota controller among its
    /// controllers) until [`Self::start_controller_manager`].
    pub fn stop_controller_manager(&self) {
        if let Some(kcm) = self.processes().controller_manager.as_mut() {
            kcm.stop();
        }
    }

    /// Starts kube-controller-manager again, as it was started.
    pub fn start_controller_manager(&self) -> Result<(), Error> {
        match self.processes().controller_manager.as_mut() {
            Some(kcm) => kcm.restart(),
            None => Ok(()),
        }
    }

    /// Stops the controller-manager, the apiserver and etcd, in that order.
    /// Idempotent; dropping the control plane does the same.
    pub fn stop(&self) {
        self.processes().stop();
    }
}

impl ControlPlane {
    /// Stops the processes and removes the working directory (unless asked
    /// to keep it). Dropping the control plane does the same.
    pub fn shutdown(&self) {
        self.stop();
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn http_get(path: &str) -> http::Request<Vec<u8>> {
    let mut req = http::Request::new(Vec::new());
    *req.uri_mut() = http::Uri::try_from(path).unwrap_or_default();
    req
}

fn timeout(what: &str, process: &Process) -> Error {
    Error::Timeout {
        what: what.to_owned(),
        secs: STARTUP.as_secs(),
        log: process.log.display().to_string(),
        tail: process.tail(),
    }
}

async fn wait_tcp(process: &mut Process, port: u16) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        process.check_alive()?;
        if tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if started.elapsed() > STARTUP {
            return Err(timeout(process.name, process));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_tcp_blocking(process: &mut Process, port: u16) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        process.check_alive()?;
        if std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > STARTUP {
            return Err(timeout(process.name, process));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Installs what every local cluster of this repository starts with: the
/// govcloud.dev CRDs (from the types, which `crds/` must equal), KubeVirt's VM
/// and VMI CRDs and expandable storage classes (`tests/fixtures/`), and the
/// shipped WorkCalendars (`charts/govcloud-operator/files/calendar/`).
pub async fn install_basics(
    client: &Client,
    field_manager: &str,
) -> Result<(), crate::manifests::Error> {
    use crate::manifests::{self, Applier};
    let repo = Path::new(crate::SOURCE_TREE);
    let read = |path: &str| -> Result<(String, String), crate::manifests::Error> {
        let full = repo.join(path);
        let text = std::fs::read_to_string(&full).map_err(|e| manifests::Error::Parse {
            source_name: full.display().to_string(),
            message: e.to_string(),
        })?;
        Ok((full.display().to_string(), text))
    };
    let mut crds = govcloud::api::crds();
    let (name, text) = read("tests/fixtures/kubevirt-crds.yaml")?;
    for obj in manifests::parse(&name, &text)? {
        let parsed = serde_json::to_value(obj)
            .and_then(serde_json::from_value)
            .map_err(|e| manifests::Error::Parse {
                source_name: name.clone(),
                message: e.to_string(),
            })?;
        crds.push(parsed);
    }
    manifests::install_crds(client, &crds, field_manager).await?;
    let mut applier = Applier::new(client.clone(), field_manager);
    for path in [
        "tests/fixtures/storageclasses.yaml",
        "charts/govcloud-operator/files/calendar/2025.yaml",
        "charts/govcloud-operator/files/calendar/2026.yaml",
    ] {
        let (name, text) = read(path)?;
        applier
            .apply_all(&manifests::parse(&name, &text)?, None)
            .await?;
    }
    Ok(())
}
