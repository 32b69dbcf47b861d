//! The operator's configuration file. Every key has a documented default; an
//! unknown key is an error, so a typo is never silently ignored.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::prometheus::PrometheusConfig;
use crate::provisioning::ProvisioningConfig;
use crate::release::{WipeConfig, WipeMode};
use crate::rightsizing::Thresholds;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// The Kubernetes group of the Digital City Department's reviewers (Art. 7).
    pub reviewer_group: String,
    /// The group of the cloud vendor's operators (Art. 10).
    pub vendor_group: String,
    /// The group of the supervising authorities, read-only (Art. 9).
    pub auditor_group: String,
    /// The ServiceCatalog holding the prices (Art. 6).
    pub catalog: String,
    /// How allocations become Kubernetes objects.
    pub provisioning: ProvisioningConfig,
    /// How volumes are wiped before deletion (Art. 19).
    pub wipe: WipeConfig,
    /// Where utilisation comes from (Art. 18).
    pub prometheus: PrometheusConfig,
    /// The rightsizing rules' thresholds and windows (Art. 18).
    pub rightsizing: Thresholds,
    /// The isolation (Art. 25) and rectification (Art. 20) settings.
    pub oversight: OversightConfig,
}

/// How VMs are stopped by isolation (Art. 25), and the compliance deadlines
/// (Art. 12 ¶2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OversightConfig {
    /// `halt` (runStrategy Halted) or `pause` (KubeVirt's pause subresource).
    pub isolation_vms: IsolationVms,
    /// MLPS filing and evaluation, cryptography assessment, software testing.
    pub security_deadline: jiff::civil::Date,
    /// Domestic IT (Xinchuang) adaptation.
    pub xinchuang_deadline: jiff::civil::Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IsolationVms {
    Halt,
    Pause,
}

impl Default for OversightConfig {
    fn default() -> Self {
        Self {
            isolation_vms: IsolationVms::Halt,
            security_deadline: jiff::civil::date(2025, 12, 31),
            xinchuang_deadline: jiff::civil::date(2026, 12, 31),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            reviewer_group: "govcloud:reviewers".into(),
            vendor_group: "govcloud:vendors".into(),
            auditor_group: "govcloud:auditors".into(),
            catalog: "default".into(),
            provisioning: ProvisioningConfig::default(),
            wipe: WipeConfig::default(),
            prometheus: PrometheusConfig::default(),
            rightsizing: Thresholds::default(),
            oversight: OversightConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {field} must not be empty")]
    Empty { path: String, field: &'static str },
    #[error("{path}: prometheus.{message}")]
    Prometheus { path: String, message: String },
}

impl Config {
    /// Reads a YAML configuration file; absent keys take their defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: name.clone(),
            source,
        })?;
        Self::parse(&name, &text)
    }

    pub fn parse(source_name: &str, text: &str) -> Result<Self, ConfigError> {
        let config: Option<Config> =
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                path: source_name.to_owned(),
                message: e.to_string(),
            })?;
        let config = config.unwrap_or_default();
        for (field, value) in [
            ("reviewerGroup", &config.reviewer_group),
            ("vendorGroup", &config.vendor_group),
            ("auditorGroup", &config.auditor_group),
            ("catalog", &config.catalog),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::Empty {
                    path: source_name.to_owned(),
                    field,
                });
            }
        }
        if config.wipe.mode == WipeMode::Overwrite
            && (config.wipe.image.trim().is_empty() || config.wipe.command.is_empty())
        {
            return Err(ConfigError::Empty {
                path: source_name.to_owned(),
                field: "wipe.image and wipe.command (overwrite mode)",
            });
        }
        config
            .prometheus
            .check()
            .map_err(|message| ConfigError::Prometheus {
                path: source_name.to_owned(),
                message,
            })?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_holds_exactly_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/operator.yaml");
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        // And it writes every key out, so that it documents them all.
        fn keys(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
            if let serde_json::Value::Object(m) = v {
                for (k, v) in m {
                    out.push(format!("{at}{k}"));
                    keys(v, &format!("{at}{k}."), out);
                }
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let written: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let (mut want, mut have) = (Vec::new(), Vec::new());
        keys(
            &serde_json::to_value(Config::default()).unwrap(),
            "",
            &mut want,
        );
        keys(&written, "", &mut have);
        let missing: Vec<&String> = want.iter().filter(|k| !have.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "config/operator.yaml leaves out {missing:?}"
        );
    }

    #[test]
    fn an_empty_file_means_the_defaults() {
        assert_eq!(Config::parse("c", "").unwrap(), Config::default());
    }

    #[test]
    fn given_keys_override_defaults() {
        let c = Config::parse("c", "reviewerGroup: dcd:reviewers\n").unwrap();
        assert_eq!(c.reviewer_group, "dcd:reviewers");
        assert_eq!(c.vendor_group, "govcloud:vendors");
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = Config::parse("c.yaml", "reviewrGroup: x\n").unwrap_err();
        assert!(err.to_string().contains("reviewrGroup"), "{err}");
    }

    #[test]
    fn wiping_by_deletion_is_an_explicit_choice() {
        assert_eq!(Config::default().wipe.mode, WipeMode::Overwrite);
        let c = Config::parse("c", "wipe:\n  mode: delete\n").unwrap();
        assert_eq!(c.wipe.mode, WipeMode::Delete);
        let err = Config::parse("c", "wipe:\n  mode: shred\n").unwrap_err();
        assert!(err.to_string().contains("shred"), "{err}");
    }

    #[test]
    fn an_empty_group_is_refused() {
        let err = Config::parse("c.yaml", "vendorGroup: ''\n").unwrap_err();
        assert_eq!(err.to_string(), "c.yaml: vendorGroup must not be empty");
    }

    #[test]
    fn art18_a_resolution_that_misses_midnight_is_refused_with_what_to_set() {
        let err = Config::parse("c.yaml", "prometheus:\n  resolutionSeconds: 70\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("c.yaml: prometheus.resolutionSeconds 70 must divide 28800"),
            "{err}"
        );
        let err = Config::parse(
            "c.yaml",
            "prometheus:\n  queries:\n    cpu: 'count_values(\"v\", up)'\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("c.yaml: prometheus.queries.cpu: "),
            "{err}"
        );
    }
}
