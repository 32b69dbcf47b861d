//! The chart as users get it: `helm lint` and `helm template` of
//! `charts/govcloud-operator`, run with the Helm that
//! `tools/build-control-plane.sh` builds beside the control plane.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Error, binaries, io};

/// The repository's chart.
pub fn chart_dir() -> PathBuf {
    Path::new(crate::SOURCE_TREE).join("charts/govcloud-operator")
}

/// A Helm release of the chart: its name, namespace and `--set` values.
#[derive(Clone, Debug)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub sets: Vec<(String, String)>,
}

/// What helm printed when it refused.
#[derive(Debug, thiserror::Error)]
#[error("helm {args}: {stderr}")]
pub struct Refused {
    pub args: String,
    pub stderr: String,
}

impl Release {
    pub fn new(name: &str, namespace: &str) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            sets: Vec::new(),
        }
    }

    /// `--set key=value` (Helm's syntax: `a.b=c`, `list={x,y}`).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.sets.push((key.into(), value.into()));
        self
    }

    fn set_args(&self) -> Vec<String> {
        self.sets
            .iter()
            .flat_map(|(k, v)| ["--set".to_owned(), format!("{k}={v}")])
            .collect()
    }

    /// `helm lint --strict` with these values.
    pub fn lint(&self) -> Result<Result<String, Refused>, Error> {
        let mut args = vec!["lint".to_owned(), "--strict".to_owned()];
        args.push(chart_dir().display().to_string());
        args.extend(self.set_args());
        helm(&args)
    }

    /// `helm template --include-crds`: every manifest the release installs,
    /// as one YAML stream.
    pub fn template(&self) -> Result<Result<String, Refused>, Error> {
        let mut args = vec![
            "template".to_owned(),
            self.name.clone(),
            chart_dir().display().to_string(),
            "--namespace".to_owned(),
            self.namespace.clone(),
            "--include-crds".to_owned(),
        ];
        args.extend(self.set_args());
        helm(&args)
    }
}

impl Release {
    /// `helm install --wait` into the cluster of `kubeconfig`, creating the
    /// namespace: returns once the Deployment's pods are Ready, or helm's
    /// refusal after `timeout`.
    pub fn install(
        &self,
        kubeconfig: &Path,
        timeout: std::time::Duration,
    ) -> Result<Result<String, Refused>, Error> {
        let mut args = vec![
            "install".to_owned(),
            self.name.clone(),
            chart_dir().display().to_string(),
            "--namespace".to_owned(),
            self.namespace.clone(),
            "--create-namespace".to_owned(),
            "--kubeconfig".to_owned(),
            kubeconfig.display().to_string(),
            "--wait".to_owned(),
            "--timeout".to_owned(),
            format!("{}s", timeout.as_secs()),
        ];
        args.extend(self.set_args());
        helm(&args)
    }
}

/// Runs helm; the outer error is helm not running at all, the inner one helm
/// refusing (bad values, a template error).
fn helm(args: &[String]) -> Result<Result<String, Refused>, Error> {
    let bin = binaries()?.join("helm");
    // Helm's own caches and configuration stay out of the user's home.
    let home = std::env::temp_dir().join("govcloud-helm-home");
    let out = Command::new(&bin)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .map_err(io(format!("running {}", bin.display())))?;
    if out.status.success() {
        Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        Ok(Err(Refused {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }))
    }
}
