//! govcloud-operator: runs a district government cloud by its measures.
//!
//! * [`api`]: the `govcloud.dev/v1alpha1` kinds, the source of the CRDs;
//! * [`calendar`]: working days and deadlines (pure);
//! * [`operator`]: the controllers;
//! * [`controlplane`] and [`manifests`]: a local control plane and applying
//!   YAML, for the tests and the demo.

pub mod api;
pub mod calendar;
pub mod config;
pub mod controlplane;
pub mod manifests;
pub mod operator;
pub mod telemetry;
