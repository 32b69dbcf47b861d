//! Generated artefacts are committed and must match what the code generates.

use std::path::Path;
use std::process::Command;

const CRDS: &str = "crds/govcloud.dev.yaml";
const CHART_CRDS: &str = "charts/govcloud-operator/crds/govcloud.dev.yaml";

/// What `govcloud-operator <command>` prints; it must succeed.
fn printed(command: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_govcloud-operator"))
        .arg(command)
        .output()
        .expect("govcloud-operator runs");
    assert!(out.status.success(), "govcloud-operator {command}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_committed_crds_are_what_govcloud_operator_crds_prints() {
    let printed = printed("crds");
    assert_eq!(printed, govcloud::api::crds_yaml());

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CRDS);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == printed,
        "{CRDS} differs from the types; regenerate it with\n  cargo xtask crds"
    );
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHART_CRDS);
    assert!(
        std::fs::read_to_string(&chart).unwrap_or_default() == printed,
        "{CHART_CRDS} differs from {CRDS}; regenerate both with\n  cargo xtask crds"
    );
}

#[test]
fn every_crd_is_structural_and_served() {
    for crd in govcloud::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert!(name.ends_with(".govcloud.dev"), "{name}");
        let versions = &crd.spec.versions;
        assert_eq!(versions.len(), 1, "{name}");
        assert!(versions[0].served && versions[0].storage, "{name}");
        let text = serde_json::to_string(&crd).expect("serialises");
        for unstructural in [
            "\"anyOf\"",
            "\"oneOf\"",
            "\"allOf\"",
            "\"$ref\"",
            "uint32",
            "uint8",
        ] {
            assert!(
                !text.contains(unstructural),
                "{name} contains {unstructural}"
            );
        }
    }
}

#[test]
fn the_committed_recording_rules_are_what_govcloud_operator_recording_rules_prints() {
    let printed = printed("recording-rules");
    for file in [
        "config/prometheus-rules.yaml",
        "charts/govcloud-operator/files/prometheus-rules.yaml",
    ] {
        let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap_or_default();
        assert!(
            committed == printed,
            "{file} differs from the queries; regenerate it with\n  cargo run --bin govcloud-operator -- recording-rules > {file}"
        );
    }
}
