//! `cargo xtask crds`: writes the CRDs the types generate to `crds/` and to
//! the chart, which `tests/generated.rs` checks are committed.

use std::path::Path;

pub const FILES: [&str; 2] = [
    "crds/govcloud.dev.yaml",
    "charts/govcloud-operator/crds/govcloud.dev.yaml",
];

pub fn main(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(extra) = args.first() {
        return Err(format!("crds takes no arguments (got {extra:?})").into());
    }
    let yaml = govcloud::api::crds_yaml();
    for file in FILES {
        let path = Path::new(govcloud_testenv::SOURCE_TREE).join(file);
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        if before == yaml {
            println!("{file}: unchanged");
        } else {
            std::fs::write(&path, &yaml)?;
            println!("{file}: written ({} bytes)", yaml.len());
        }
    }
    Ok(())
}
