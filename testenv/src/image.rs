//! Container images without a registry: a one-layer image written as a
//! docker-archive tarball (`manifest.json`, the config, the layer), which
//! `ctr images import` loads into the node's containerd.
//!
//! Three images are made here: the operator's (the static release binary, as
//! the Dockerfile's second stage holds it), the wipe Jobs' (Debian's static
//! busybox with its applet links) and the pod sandbox (a static `pause`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Error, io};

/// The operator's image as the node knows it; the chart is installed with
/// `image.repository` and `image.tag` set to these.
pub const OPERATOR_REPOSITORY: &str = "localhost/govcloud-operator";
pub const OPERATOR_TAG: &str = "local";
/// The wipe Jobs' image (the operator's `wipe.image`).
pub const WIPE: &str = "localhost/govcloud-testenv/busybox:1.35.0";
/// The pod sandbox image (containerd's `pinned_images.sandbox`).
pub const PAUSE: &str = "localhost/govcloud-testenv/pause:1";

/// One entry of an image's only layer.
enum Entry {
    Dir(&'static str),
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Link {
        path: String,
        target: String,
    },
}

/// An image: its name, its one layer and what it runs.
pub struct Image {
    name: String,
    entries: Vec<Entry>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    user: Option<String>,
}

impl Image {
    fn new(name: &str, entrypoint: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            entries: Vec::new(),
            entrypoint: entrypoint.iter().map(|s| (*s).to_owned()).collect(),
            cmd: Vec::new(),
            user: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.entries.push(Entry::File {
            path: path.to_owned(),
            mode,
            data,
        });
    }

    /// The layer as a tar stream, entries in the order added.
    fn layer(&self) -> Result<Vec<u8>, Error> {
        let mut tar = tar::Builder::new(Vec::new());
        let err = io(format!("writing the layer of {}", self.name));
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h
        };
        let result = (|| -> std::io::Result<()> {
            for entry in &self.entries {
                match entry {
                    Entry::Dir(path) => {
                        let mut h = header(tar::EntryType::Directory, 0o755, 0);
                        tar.append_data(&mut h, path, std::io::empty())?;
                    }
                    Entry::File { path, mode, data } => {
                        let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                        tar.append_data(&mut h, path, data.as_slice())?;
                    }
                    Entry::Link { path, target } => {
                        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                        tar.append_link(&mut h, path, target)?;
                    }
                }
            }
            Ok(())
        })();
        result.map_err(err)?;
        tar.into_inner()
            .map_err(io(format!("writing the layer of {}", self.name)))
    }

    /// Writes the image as a docker-archive tarball at `path`.
    pub fn write_archive(&self, path: &Path) -> Result<(), Error> {
        let layer = self.layer()?;
        let layer_digest = hex(&Sha256::digest(&layer));
        let mut config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
                "Entrypoint": self.entrypoint,
                "WorkingDir": "/",
            },
            "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_digest}")] },
        });
        if !self.cmd.is_empty() {
            config["config"]["Cmd"] = json!(self.cmd);
        }
        if let Some(user) = &self.user {
            config["config"]["User"] = json!(user);
        }
        let config = config.to_string().into_bytes();
        let config_name = format!("{}.json", hex(&Sha256::digest(&config)));
        let layer_name = format!("{layer_digest}/layer.tar");
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": [self.name],
            "Layers": [layer_name],
        }])
        .to_string()
        .into_bytes();

        let file =
            std::fs::File::create(path).map_err(io(format!("creating {}", path.display())))?;
        let mut tar = tar::Builder::new(file);
        for (name, data) in [
            ("manifest.json", &manifest),
            (config_name.as_str(), &config),
            (layer_name.as_str(), &layer),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(0);
            tar.append_data(&mut h, name, data.as_slice())
                .map_err(io(format!("writing {}", path.display())))?;
        }
        tar.finish()
            .map_err(io(format!("writing {}", path.display())))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(io(format!("reading {}", path.display())))
}

/// The operator's image: the static binary at `/usr/local/bin`, run as
/// 65532 (the `nonroot` user of the Dockerfile's distroless base), `run` by
/// default.
pub fn operator(binary: &Path) -> Result<Image, Error> {
    let mut image = Image::new(
        &format!("{OPERATOR_REPOSITORY}:{OPERATOR_TAG}"),
        &["/usr/local/bin/govcloud-operator"],
    );
    image.cmd = vec!["run".into()];
    image.user = Some("65532:65532".into());
    for dir in ["etc/", "tmp/", "usr/", "usr/local/", "usr/local/bin/"] {
        image.entries.push(Entry::Dir(dir));
    }
    image.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n".to_vec(),
    );
    image.file(
        "etc/group",
        0o644,
        b"root:x:0:\nnonroot:x:65532:\n".to_vec(),
    );
    image.file("usr/local/bin/govcloud-operator", 0o755, read(binary)?);
    Ok(image)
}

/// The wipe Jobs' image: `busybox` (Debian's `busybox-static`) at
/// `/bin/busybox` and a link for each of its applets.
pub fn busybox() -> Result<Image, Error> {
    let binary = Path::new("/bin/busybox");
    let out = Command::new(binary).arg("--list").output().map_err(|e| {
        Error::Unavailable(format!(
            "{}: {e}; install Debian's busybox-static (tools/setup.sh does)",
            binary.display()
        ))
    })?;
    let mut image = Image::new(WIPE, &["/bin/sh"]);
    image.entries.push(Entry::Dir("bin/"));
    image.entries.push(Entry::Dir("tmp/"));
    image.file("bin/busybox", 0o755, read(binary)?);
    for applet in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if applet != "busybox" {
            image.entries.push(Entry::Link {
                path: format!("bin/{applet}"),
                target: "busybox".into(),
            });
        }
    }
    Ok(image)
}

const PAUSE_C: &str = r#"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction a = {0};
    a.sa_handler = stop;
    sigaction(SIGINT, &a, 0);
    sigaction(SIGTERM, &a, 0);
    a.sa_handler = reap;
    a.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &a, 0);
    for (;;) pause();
}
"#;

/// The pod sandbox: a static program that waits for a signal and reaps
/// children, compiled here with the system's C compiler.
pub fn pause(work: &Path) -> Result<Image, Error> {
    let source = work.join("pause.c");
    let binary = work.join("pause");
    std::fs::write(&source, PAUSE_C).map_err(io(format!("writing {}", source.display())))?;
    let out = Command::new("cc")
        .args(["-static", "-Os", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .map_err(io("running cc for the pause program"))?;
    if !out.status.success() {
        return Err(Error::Unavailable(format!(
            "cc -static pause.c failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut image = Image::new(PAUSE, &["/pause"]);
    image.file("pause", 0o755, read(&binary)?);
    Ok(image)
}

/// The operator's release binary, static (musl) as the Dockerfile builds it:
/// `cargo build --release --locked --target x86_64-unknown-linux-musl`, in
/// the source tree's own target directory.
pub fn build_operator() -> Result<PathBuf, Error> {
    const TARGET: &str = "x86_64-unknown-linux-musl";
    let tree = Path::new(crate::SOURCE_TREE);
    let started = std::time::Instant::now();
    let mut cargo = crate::cargo();
    let status = cargo
        .current_dir(tree)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .args(["-p", "govcloud-operator", "--bin", "govcloud-operator"])
        .status()
        .map_err(io("running cargo build for the operator's image"))?;
    if !status.success() {
        return Err(Error::Build(format!(
            "cargo build --release --target {TARGET} ({status}); the target and musl-gcc come from tools/setup.sh"
        )));
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tree.join("target"));
    let binary = target_dir.join(TARGET).join("release/govcloud-operator");
    eprintln!(
        "node: the operator's release binary built in {:.0} s ({})",
        started.elapsed().as_secs_f64(),
        binary.display()
    );
    Ok(binary)
}
