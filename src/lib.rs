//! govcloud-operator: runs a district government cloud by its measures.

pub mod api;
pub mod calendar;
