//! govcloud-operator: runs a district government cloud by its measures.
//!
//! The law, the types and the side effects live apart:
//!
//! * [`api`]: the `govcloud.dev/v1alpha1` kinds, the source of the CRDs;
//! * pure rules, time passed in: [`calendar`] (working days), [`review`]
//!   (Art. 11-14), [`provisioning`] (what an allocation becomes),
//!   [`lifecycle`] (delivery, trial, reclaim), [`release`] (wiping),
//!   [`billing`] (statements), [`letters`] (the paper forms);
//! * [`operator`]: the controllers that read the cluster and carry out plans;
//! * [`controlplane`] and [`manifests`]: a local control plane and applying
//!   YAML, for the tests and the demo.

pub mod api;
pub mod billing;
pub mod calendar;
pub mod change;
pub mod clock;
pub mod conditions;
pub mod config;
pub mod controlplane;
pub mod letters;
pub mod lifecycle;
pub mod manifests;
pub mod operator;
pub mod plugin;
pub mod prometheus;
pub mod provisioning;
pub mod quantity;
pub mod release;
pub mod review;
pub mod rightsizing;
pub mod telemetry;
