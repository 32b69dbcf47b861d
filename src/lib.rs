//! govcloud-operator: runs a district government cloud by its measures.
//!
//! The law, the types and the side effects live apart:
//!
//! * [`api`]: the `govcloud.dev/v1alpha1` kinds, the source of the CRDs;
//! * pure rules, time passed in: [`calendar`] (working days), [`review`]
//!   (Art. 11-14), [`provisioning`] (what an allocation becomes),
//!   [`lifecycle`] (delivery, trial, reclaim), [`release`] (wiping),
//!   [`billing`] (statements), [`letters`] (the paper forms);
//! * [`operator`]: the controllers that read the cluster and carry out plans.
//!
//! The test environment (a local control plane, Prometheus, stand-ins) is the
//! `govcloud-testenv` crate beside this one; it never ships.

pub mod api;
pub mod beijing;
pub mod billing;
pub mod calendar;
pub mod change;
pub mod clock;
pub mod conditions;
pub mod config;
pub mod decision;
pub mod letters;
pub mod lifecycle;
pub mod operator;
pub mod plugin;
pub mod prometheus;
pub mod provisioning;
pub mod quantity;
pub mod record;
pub mod release;
pub mod review;
pub mod rightsizing;
pub mod telemetry;
pub mod utilisation;
