//! A real worker node joined to a local control plane started with
//! [`Options::node`](crate::Options): containerd (with Debian's runc and CNI
//! plugins), kubelet and kube-proxy on this machine, so that pods, Jobs and
//! local volumes run for real.
//!
//! A node takes machine-wide things (kubelet's ports 10250 and 10248,
//! cgroups, a bridge, iptables chains, loop devices), so there is one per
//! machine at a time, it runs as root, and everything it makes lives under
//! [`STATE`] and [`RUN`] or carries its name. [`clean_host`] removes all of
//! it: when a node stops, and before one starts, after a crash of an
//! earlier run as well.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;
use serde_json::json;

use super::{ControlPlane, Error, Process, User, image, io, tail_of};

/// Kubelet's, containerd's and the CNI plugins' persistent state, the
/// images' archives, and the files that back local volumes.
pub const STATE: &str = "/var/lib/govcloud-node";
/// Sockets, containerd's runtime state, the CNI address leases.
pub const RUN: &str = "/run/govcloud-node";
/// The node's name.
pub const NAME: &str = "govcloud-node";
/// The CNI bridge.
const BRIDGE: &str = "govcloud0";
/// Pod addresses (host-local IPAM on the bridge).
pub const POD_CIDR: &str = "10.244.0.0/24";
/// Where runc and the CNI plugins are (Debian's `runc`,
/// `containernetworking-plugins`).
const RUNC: &str = "/usr/sbin/runc";
const CNI_BIN: &str = "/usr/lib/cni";
const STARTUP: Duration = Duration::from_secs(90);

/// The address of this machine that pods reach it at (not loopback: kubelet
/// refuses a loopback node address): the source address of its default
/// route.
pub fn address() -> Result<Ipv4Addr, Error> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(io("opening a socket"))?;
    // Connecting a UDP socket sends nothing; it picks the route's source.
    socket
        .connect((Ipv4Addr::new(192, 0, 2, 1), 9))
        .map_err(|e| Error::Unavailable(format!("this machine has no default route ({e}): a node needs an address that is not loopback")))?;
    match socket
        .local_addr()
        .map_err(io("reading a socket's address"))?
        .ip()
    {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Ok(ip),
        other => Err(Error::Unavailable(format!(
            "the default route's source address {other} cannot be a node's"
        ))),
    }
}

/// The apiserver's further names when a node joins: the node's address
/// and the `kubernetes` Service's address and names.
pub fn apiserver_names(node_ip: Option<Ipv4Addr>) -> Vec<String> {
    let Some(ip) = node_ip else {
        return Vec::new();
    };
    vec![
        ip.to_string(),
        "10.96.0.1".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
    ]
}

/// The directory holding kubelet, kube-proxy, containerd, its shim and
/// `ctr`: `$GOVCLOUD_NODE_BIN` if set, otherwise the cache that
/// `tools/build-node.sh` fills (building on the first run).
pub fn binaries() -> Result<PathBuf, Error> {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    super::built_by("GOVCLOUD_NODE_BIN", "tools/build-node.sh", &FOUND)
}

/// What a node needs of the machine, with the way to get what is missing.
fn check_machine() -> Result<(), Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::Unavailable(
            "a node runs as root (kubelet, containerd, mounts, cgroups)".into(),
        ));
    }
    let mut missing = Vec::new();
    for (path, package) in [
        (RUNC, "runc"),
        ("/usr/lib/cni/bridge", "containernetworking-plugins"),
        ("/usr/lib/cni/host-local", "containernetworking-plugins"),
        ("/usr/lib/cni/loopback", "containernetworking-plugins"),
        ("/usr/sbin/iptables", "iptables"),
        ("/usr/sbin/mkfs.ext4", "e2fsprogs"),
        ("/usr/sbin/losetup", "mount"),
        ("/bin/busybox", "busybox-static"),
        ("/usr/bin/musl-gcc", "musl-tools"),
    ] {
        if !Path::new(path).exists() {
            missing.push(format!("{path} (Debian {package})"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Unavailable(format!(
            "a node needs {}: run tools/setup.sh",
            missing.join(", ")
        )))
    }
}

/// A running node. Dropping it stops kubelet, kube-proxy and containerd and
/// cleans the machine.
pub struct Node {
    ip: Ipv4Addr,
    bin: PathBuf,
    dir: PathBuf,
    processes: Vec<Process>,
}

impl Node {
    /// Starts a node joined to `plane` (started with `Options::node`), with
    /// the operator's, the wipe and the sandbox images imported, and waits
    /// until it is Ready.
    pub async fn start(plane: &ControlPlane) -> Result<Self, Error> {
        let ip = plane.node_ip().ok_or_else(|| {
            Error::Unavailable("the control plane was not started with Options::node".into())
        })?;
        check_machine()?;
        let bin = binaries()?;
        clean_host();
        let dir = plane.dir().join("node");
        for d in [
            dir.clone(),
            PathBuf::from(STATE).join("cni/net.d"),
            PathBuf::from(STATE).join("etc"),
            PathBuf::from(STATE).join("volumes"),
            PathBuf::from(RUN),
        ] {
            std::fs::create_dir_all(&d).map_err(io(format!("creating {}", d.display())))?;
        }
        let mut node = Self {
            ip,
            bin,
            dir,
            processes: Vec::new(),
        };
        node.start_containerd().await?;
        node.import_images()?;
        let started = Instant::now();
        node.start_kubelet(plane)?;
        node.start_kube_proxy(plane)?;
        node.wait_ready(plane).await?;
        eprintln!(
            "node {NAME} ({ip}) Ready {:.1} s after kubelet started",
            started.elapsed().as_secs_f64()
        );
        Ok(node)
    }

    /// The node's address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The node's configuration files (under [`STATE`], so that the
    /// processes that name them are known as the node's after a crash).
    fn etc(name: &str) -> PathBuf {
        Path::new(STATE).join("etc").join(name)
    }

    /// Where the logs of containerd, kubelet and kube-proxy are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, path: &Path, text: &str) -> Result<String, Error> {
        std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))?;
        Ok(path.display().to_string())
    }

    fn socket() -> String {
        format!("{RUN}/containerd/containerd.sock")
    }

    async fn start_containerd(&mut self) -> Result<(), Error> {
        let cni = json!({
            "cniVersion": "1.0.0",
            "name": "govcloud",
            "plugins": [{
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": POD_CIDR }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": format!("{RUN}/cni-ipam"),
                },
            }],
        });
        self.write(
            &Path::new(STATE).join("cni/net.d/10-govcloud.conflist"),
            &cni.to_string(),
        )?;
        // These machines drop CAP_SYS_RESOURCE: nothing may lower
        // oom_score_adj, so the runtime keeps it at least the parent's
        // (restrict_oom_score_adj). Devices of block volumes belong to the
        // pod's user, so that a non-root wipe Job (Pod Security restricted)
        // can write them.
        let config = format!(
            r#"version = 3
root = "{STATE}/containerd"
state = "{RUN}/containerd"

[grpc]
  address = "{socket}"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  device_ownership_from_security_context = true
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "{RUNC}"
      SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{CNI_BIN}"]
    conf_dir = "{STATE}/cni/net.d"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{pause}"
"#,
            socket = Self::socket(),
            pause = image::PAUSE,
        );
        let path = self.write(&Self::etc("containerd.toml"), &config)?;
        // The v2 shim is found on PATH, ahead of any other.
        let path_var = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            self.bin.display()
        );
        let mut containerd = Process::spawn_with(
            "containerd",
            self.bin.join("containerd"),
            vec![format!("--config={path}"), "--log-level=warn".into()],
            vec![("PATH".into(), path_var)],
            &self.dir,
        )?;
        let started = Instant::now();
        while !Path::new(&Self::socket()).exists() {
            containerd.check_alive()?;
            if started.elapsed() > STARTUP {
                return Err(super::timeout("containerd", &containerd));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.processes.push(containerd);
        Ok(())
    }

    /// Builds the three images and imports them into containerd's `k8s.io`
    /// namespace, where kubelet finds them.
    fn import_images(&self) -> Result<(), Error> {
        let operator = image::build_operator()?;
        for image in [
            image::operator(&operator)?,
            image::busybox()?,
            image::pause(&Self::etc(""))?,
        ] {
            let archive = Self::etc(&format!("{}.tar", image.name().replace(['/', ':'], "_")));
            image.write_archive(&archive)?;
            let out = Command::new(self.bin.join("ctr"))
                .args([
                    "--address",
                    &Self::socket(),
                    "-n",
                    "k8s.io",
                    "images",
                    "import",
                ])
                .arg(&archive)
                .output()
                .map_err(io("running ctr images import"))?;
            if !out.status.success() {
                return Err(Error::Unavailable(format!(
                    "ctr images import {}: {}",
                    archive.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            eprintln!("node: imported {}", image.name());
        }
        Ok(())
    }

    fn start_kubelet(&mut self, plane: &ControlPlane) -> Result<(), Error> {
        let kubeconfig = Self::etc("kubelet.kubeconfig");
        plane.write_kubeconfig(
            &kubeconfig,
            &User::new(format!("system:node:{NAME}"), Some("system:nodes")),
        )?;
        let ca = self.write(&Self::etc("ca.crt"), plane.ca_pem())?;
        // Eviction and image collection only at a nearly full disk: the
        // machine's disk may be fuller than kubelet's defaults allow, and
        // the imported images are pulled from nowhere.
        let config = json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": false,
            "failSwapOn": false,
            "containerRuntimeEndpoint": format!("unix://{}", Self::socket()),
            "authentication": {
                "x509": { "clientCAFile": ca },
                "anonymous": { "enabled": false },
                "webhook": { "enabled": false },
            },
            "authorization": { "mode": "AlwaysAllow" },
            "podLogsDir": format!("{STATE}/pod-logs"),
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": false,
            "resolvConf": "/etc/resolv.conf",
            "clusterDomain": "cluster.local",
        });
        let config = self.write(&Self::etc("kubelet.json"), &config.to_string())?;
        let kubelet = Process::spawn(
            "kubelet",
            self.bin.join("kubelet"),
            vec![
                format!("--config={config}"),
                format!("--kubeconfig={}", kubeconfig.display()),
                format!("--root-dir={STATE}/kubelet"),
                format!("--cert-dir={STATE}/kubelet-pki"),
                format!("--hostname-override={NAME}"),
                format!("--node-ip={}", self.ip),
                "--v=1".into(),
            ],
            &self.dir,
        )?;
        self.processes.push(kubelet);
        Ok(())
    }

    fn start_kube_proxy(&mut self, plane: &ControlPlane) -> Result<(), Error> {
        let kubeconfig = Self::etc("kube-proxy.kubeconfig");
        plane.write_kubeconfig(&kubeconfig, &User::new("system:kube-proxy", None))?;
        let proxy = Process::spawn(
            "kube-proxy",
            self.bin.join("kube-proxy"),
            vec![
                format!("--kubeconfig={}", kubeconfig.display()),
                format!("--hostname-override={NAME}"),
                "--proxy-mode=iptables".into(),
                format!("--cluster-cidr={POD_CIDR}"),
                // Leave the machine's conntrack settings alone.
                "--conntrack-max-per-core=0".into(),
                "--conntrack-tcp-timeout-established=0".into(),
                "--conntrack-tcp-timeout-close-wait=0".into(),
                format!("--healthz-bind-address=127.0.0.1:{}", super::free_port()?),
                format!("--metrics-bind-address=127.0.0.1:{}", super::free_port()?),
                "--v=1".into(),
            ],
            &self.dir,
        )?;
        self.processes.push(proxy);
        Ok(())
    }

    async fn wait_ready(&mut self, plane: &ControlPlane) -> Result<(), Error> {
        let nodes: Api<NodeObject> = Api::all(plane.admin().await?);
        let started = Instant::now();
        loop {
            for p in &mut self.processes {
                p.check_alive()?;
            }
            if let Ok(Some(node)) = nodes.get_opt(NAME).await
                && node
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            {
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                let kubelet = self
                    .processes
                    .iter()
                    .find(|p| p.name == "kubelet")
                    .unwrap_or(&self.processes[0]);
                return Err(super::timeout("the node to be Ready", kubelet));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines of kubelet's log (for a failed test's message).
    pub fn kubelet_log(&self) -> String {
        tail_of(&self.dir.join("kubelet.log"), 40)
    }

    /// Stops kube-proxy, kubelet and containerd and cleans the machine.
    /// Idempotent; dropping the node does the same.
    pub fn stop(&mut self) {
        for p in self.processes.iter_mut().rev() {
            p.stop();
        }
        self.processes.clear();
        clean_host();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes everything a node makes on the machine, in the order it can go:
/// the processes (the node's own, its containers' shims and what runs in its
/// pods' cgroups), the mounts under [`STATE`], [`RUN`] and the pods' network
/// namespaces, the loop devices backed by files under [`STATE`], the pods'
/// cgroups, the bridge, the iptables chains of kubelet, kube-proxy and CNI,
/// and the directories. Each step goes on past what it cannot undo.
pub fn clean_host() {
    kill_node_processes();
    unmount_under(&[STATE, RUN, "/run/netns/cni-", "/var/lib/kubelet"]);
    remove_network_namespaces();
    detach_loop_devices();
    remove_cgroups();
    let _ = Command::new("ip")
        .args(["link", "delete", BRIDGE])
        .stderr(Stdio::null())
        .status();
    remove_iptables_chains();
    for dir in [STATE, RUN] {
        let _ = std::fs::remove_dir_all(dir);
    }
    remove_outside_files();
}

/// What kubelet and the CNI library write outside the node's directories:
/// kubelet's device-plugin socket and the CNI results of the node's network
/// (and of the loopback plugin) under /var/lib/cni. The directories go only
/// when nothing else is left in them.
fn remove_outside_files() {
    let _ = std::fs::remove_file("/var/lib/kubelet/device-plugins/kubelet.sock");
    if let Ok(entries) = std::fs::read_dir("/var/lib/cni/results") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("govcloud-") || name.starts_with("cni-loopback-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for dir in [
        "/var/lib/kubelet/device-plugins",
        "/var/lib/kubelet",
        "/var/lib/cni/results",
        "/var/lib/cni",
    ] {
        let _ = std::fs::remove_dir(dir);
    }
}

/// What of a node is on this machine: its processes, mounts, loop devices,
/// pod cgroups, bridge, iptables chains and directories, one line each.
/// Empty once [`clean_host`] has run.
pub fn leftovers() -> Vec<String> {
    let mut found = Vec::new();
    for pid in node_pids() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        found.push(format!("process {pid} {}", String::from_utf8_lossy(first)));
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for point in info.lines().filter_map(|l| l.split(' ').nth(4)) {
        let point = unescape_mount_point(point);
        if [STATE, RUN, "/run/netns/cni-"]
            .iter()
            .any(|p| point.starts_with(p))
        {
            found.push(format!("mount {point}"));
        }
    }
    for dev in node_loop_devices() {
        found.push(format!("loop device {dev}"));
    }
    for dir in pod_cgroups() {
        found.push(format!("cgroup {}", dir.display()));
    }
    if Path::new("/sys/class/net").join(BRIDGE).exists() {
        found.push(format!("network device {BRIDGE}"));
    }
    for (tool, table, chain) in node_chains() {
        found.push(format!("{tool} -t {table} chain {chain}"));
    }
    for path in [STATE, RUN, "/var/lib/kubelet/device-plugins/kubelet.sock"] {
        if Path::new(path).exists() {
            found.push(format!("path {path}"));
        }
    }
    found
}

/// Processes of the node: whose command line names its directories (its
/// own, and the shims of its containers), and those in its pods' cgroups.
fn node_pids() -> Vec<i32> {
    let ours = |pid: &str| -> bool {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline.contains(STATE) || cmdline.contains(RUN)
    };
    let mut pids: Vec<i32> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(pid) = name.parse::<i32>()
                && pid != std::process::id() as i32
                && ours(&name)
            {
                pids.push(pid);
            }
        }
    }
    pids.extend(cgroup_pids());
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn kill_node_processes() {
    for _ in 0..50 {
        let pids = node_pids();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: a signal to a process of the node's.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `kubepods` cgroup directories, deepest first, in every hierarchy.
fn pod_cgroups() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = Vec::new();
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            let pods = h.path().join("kubepods");
            if pods.is_dir() {
                walk(&pods, &mut out);
            }
        }
    }
    if Path::new("/sys/fs/cgroup/kubepods").is_dir() {
        walk(Path::new("/sys/fs/cgroup/kubepods"), &mut out);
    }
    out
}

fn cgroup_pids() -> Vec<i32> {
    pod_cgroups()
        .iter()
        .flat_map(|d| {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn remove_cgroups() {
    for dir in pod_cgroups() {
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Unmounts (lazily) every mount point under one of `prefixes`, deepest
/// first.
fn unmount_under(prefixes: &[&str]) {
    for _ in 0..5 {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mount_point)
            .filter(|p| prefixes.iter().any(|prefix| p.starts_with(prefix)))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            if let Ok(c) = std::ffi::CString::new(p) {
                // SAFETY: a NUL-terminated path; MNT_DETACH cannot block.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
}

/// mountinfo writes a space, tab, newline or backslash as an octal escape.
fn unescape_mount_point(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.by_ref().take(3).collect();
            if let Ok(b) = u8::from_str_radix(&digits, 8) {
                out.push(b as char);
                continue;
            }
            out.push('\\');
            out.push_str(&digits);
        } else {
            out.push(c);
        }
    }
    out
}

fn remove_network_namespaces() {
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("cni-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The loop devices backed by files under [`STATE`].
fn node_loop_devices() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let backing =
                std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
            (name.starts_with("loop") && backing.trim().starts_with(STATE))
                .then(|| format!("/dev/{name}"))
        })
        .collect()
}

fn detach_loop_devices() {
    for dev in node_loop_devices() {
        let _ = Command::new("losetup").args(["--detach", &dev]).status();
    }
}

/// `(tool, table, chain)` of every chain kubelet, kube-proxy and the CNI
/// plugins add (`KUBE-*`, `CNI-*`), with the table's rules as `-S` prints
/// them.
fn node_chains() -> Vec<(&'static str, &'static str, String)> {
    let mut found = Vec::new();
    for (tool, table, rules) in iptables_rules() {
        for chain in rules.lines().filter_map(|l| l.strip_prefix("-N ")) {
            if ours_chain(chain) {
                found.push((tool, table, chain.to_owned()));
            }
        }
    }
    found
}

fn ours_chain(chain: &str) -> bool {
    chain.starts_with("KUBE-") || chain.starts_with("CNI-")
}

fn iptables_rules() -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    for tool in ["iptables", "ip6tables"] {
        for table in ["filter", "nat", "mangle"] {
            if let Ok(o) = Command::new(tool)
                .args(["-w", "-t", table, "-S"])
                .stderr(Stdio::null())
                .output()
            {
                out.push((tool, table, String::from_utf8_lossy(&o.stdout).into_owned()));
            }
        }
    }
    out
}

/// Deletes the node's chains and the rules that jump to them, in IPv4 and
/// IPv6.
fn remove_iptables_chains() {
    for (tool, table, rules) in iptables_rules() {
        // `-S` prints rules quoted as a shell reads them.
        let run = |args: &str| {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("{tool} -w -t {table} {args}"))
                .stderr(Stdio::null())
                .status();
        };
        // Rules in the built-in chains that jump to ours.
        for line in rules.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&"-A")
                && !words.get(1).is_some_and(|c| ours_chain(c))
                && words
                    .windows(2)
                    .any(|w| (w[0] == "-j" || w[0] == "-g") && ours_chain(w[1]))
                && let Some(rule) = line.strip_prefix("-A ")
            {
                run(&format!("-D {rule}"));
            }
        }
        let chains: Vec<&str> = rules
            .lines()
            .filter_map(|l| l.strip_prefix("-N "))
            .filter(|c| ours_chain(c))
            .collect();
        for c in &chains {
            run(&format!("-F {c}"));
        }
        for c in &chains {
            run(&format!("-X {c}"));
        }
    }
}

/// A local volume backed by a file under [`STATE`]: the file on a loop
/// device, either as a raw block device (volume mode Block) or formatted
/// ext4 and mounted (volume mode Filesystem).
pub struct Backing {
    pub name: String,
    pub file: PathBuf,
    pub device: String,
    /// A raw device (volume mode Block), or formatted (Filesystem).
    pub block: bool,
    /// Where the filesystem is mounted (Filesystem mode, until released).
    pub mount: Option<PathBuf>,
}

impl Backing {
    /// A file of `mib` MiB on a loop device; formatted and mounted unless
    /// `block`.
    pub fn create(name: &str, mib: u64, block: bool) -> Result<Self, Error> {
        let dir = Path::new(STATE).join("volumes").join(name);
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let file = dir.join("backing.img");
        let f = std::fs::File::create(&file).map_err(io(format!("creating {}", file.display())))?;
        f.set_len(mib << 20)
            .map_err(io(format!("sizing {}", file.display())))?;
        let run = |cmd: &str, args: &[&str]| -> Result<String, Error> {
            let out = Command::new(cmd)
                .args(args)
                .output()
                .map_err(io(format!("running {cmd}")))?;
            if !out.status.success() {
                return Err(Error::Unavailable(format!(
                    "{cmd} {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let path = file.display().to_string();
        let mut mount = None;
        if !block {
            // No reserved blocks: a wipe that fills the free space reaches
            // every block a file had.
            run("mkfs.ext4", &["-q", "-m", "0", "-E", "nodiscard", &path])?;
        }
        let device = run("losetup", &["--find", "--show", &path])?;
        if !block {
            let at = dir.join("mnt");
            std::fs::create_dir_all(&at).map_err(io(format!("creating {}", at.display())))?;
            run("mount", &[&device, &at.display().to_string()])?;
            mount = Some(at);
        }
        Ok(Self {
            name: name.to_owned(),
            file,
            device,
            block,
            mount,
        })
    }

    /// The path a local PersistentVolume names: the mount point, or the
    /// loop device.
    pub fn local_path(&self) -> String {
        match &self.mount {
            Some(m) => m.display().to_string(),
            None => self.device.clone(),
        }
    }

    /// A local PersistentVolume of `class` on the node for this backing,
    /// declaring `capacity` (a quantity) so that any claim of the class binds.
    pub fn persistent_volume(&self, class: &str, capacity: &str) -> serde_json::Value {
        json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": { "name": self.name },
            "spec": {
                "capacity": { "storage": capacity },
                "accessModes": ["ReadWriteOnce"],
                "volumeMode": if self.block { "Block" } else { "Filesystem" },
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": class,
                "local": { "path": self.local_path() },
                "nodeAffinity": { "required": { "nodeSelectorTerms": [{
                    "matchExpressions": [{
                        "key": "kubernetes.io/hostname",
                        "operator": "In",
                        "values": [NAME],
                    }],
                }] } },
            },
        })
    }

    /// Unmounts the filesystem (flushing it) and detaches the loop device,
    /// so that the file holds all that was written.
    pub fn release(&mut self) {
        if let Some(m) = self.mount.take() {
            let _ = Command::new("umount").arg(&m).status();
        }
        let _ = Command::new("losetup")
            .args(["--detach", &self.device])
            .status();
    }

    /// How many times `needle` occurs in the backing file.
    pub fn occurrences(&self, needle: &[u8]) -> Result<usize, Error> {
        let bytes =
            std::fs::read(&self.file).map_err(io(format!("reading {}", self.file.display())))?;
        Ok(count(&bytes, needle))
    }

    /// Whether every byte of the backing file is zero.
    pub fn all_zero(&self) -> Result<bool, Error> {
        let bytes =
            std::fs::read(&self.file).map_err(io(format!("reading {}", self.file.display())))?;
        Ok(bytes.iter().all(|b| *b == 0))
    }
}

/// Occurrences of `needle` in `haystack` (not overlapping).
fn count(haystack: &[u8], needle: &[u8]) -> usize {
    let Some(first) = needle.first() else {
        return 0;
    };
    let mut n = 0;
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        match haystack[at..].iter().position(|b| b == first) {
            Some(off) if at + off + needle.len() <= haystack.len() => {
                let start = at + off;
                if &haystack[start..start + needle.len()] == needle {
                    n += 1;
                    at = start + needle.len();
                } else {
                    at = start + 1;
                }
            }
            _ => break,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_are_counted() {
        assert_eq!(count(b"abcabcab", b"abc"), 2);
        assert_eq!(count(b"aaaa", b"aa"), 2);
        assert_eq!(count(b"xyz", b"abc"), 0);
        assert_eq!(count(b"ab", b"abc"), 0);
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount_point(r"/a\040b"), "/a b");
        assert_eq!(unescape_mount_point("/plain"), "/plain");
    }
}
