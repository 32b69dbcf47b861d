//! A reviewer's decision, as written in the decision annotations of a
//! CloudResourceRequest or a ChangeRequest: read in one place for both.
//! Pure.

use std::collections::BTreeMap;

use crate::api::{Decision, keys};

/// The decision annotations of a request, as a reviewer wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub decision: Decision,
    pub generation: i64,
    pub by: String,
    pub opinion: Option<String>,
    pub expert_opinion: Option<String>,
}

/// When the apiserver recorded the last write of the decision annotation:
/// the time of the newest `managedFields` entry that owns it (to the
/// second). It orders approvals as they were made, whenever the operator
/// happens to see them.
pub fn decision_written_at(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<jiff::Timestamp> {
    let field = format!("f:{}", keys::DECISION);
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1.as_ref().is_some_and(|f| {
                f.0.get("f:metadata")
                    .and_then(|m| m.get("f:annotations"))
                    .and_then(|a| a.get(&field))
                    .is_some()
            })
        })
        .filter_map(|m| m.time.as_ref().map(|t| t.0))
        .max()
}

/// Reads the decision annotations. `Ok(None)`: no decision written.
pub fn read_decision(annotations: &BTreeMap<String, String>) -> Result<Option<Written>, String> {
    let Some(raw) = annotations.get(keys::DECISION) else {
        return Ok(None);
    };
    let decision = Decision::parse(raw.trim()).ok_or_else(|| {
        format!(
            "{} must be approve, reject, return, expert-review or emergency-open, not {raw:?}",
            keys::DECISION
        )
    })?;
    let generation = annotations
        .get(keys::DECIDED_GENERATION)
        .and_then(|g| g.trim().parse::<i64>().ok())
        .ok_or_else(|| {
            format!(
                "set {} to the metadata.generation you decided on",
                keys::DECIDED_GENERATION
            )
        })?;
    let by = annotations
        .get(keys::DECIDED_BY)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("name the reviewer in {}", keys::DECIDED_BY))?;
    let text = |key: &str| {
        annotations
            .get(key)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    Ok(Some(Written {
        decision,
        generation,
        by,
        opinion: text(keys::OPINION),
        expert_opinion: text(keys::EXPERT_OPINION),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn art17_an_approval_is_dated_by_the_apiservers_record_of_the_decision() {
        let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
            serde_json::from_value(serde_json::json!({
                "managedFields": [
                    { "manager": "kubectl-govcloud", "operation": "Update",
                      "time": "2026-11-27T10:00:05Z", "fieldsType": "FieldsV1",
                      "fieldsV1": { "f:metadata": { "f:annotations": {
                          "f:govcloud.dev/decision": {}, "f:govcloud.dev/decided-by": {} } } } },
                    { "manager": "unit", "operation": "Update",
                      "time": "2026-11-27T11:00:00Z", "fieldsType": "FieldsV1",
                      "fieldsV1": { "f:spec": { "f:reason": {} } } },
                    { "manager": "govcloud-operator", "operation": "Apply",
                      "time": "2026-11-27T12:00:00Z", "fieldsType": "FieldsV1",
                      "fieldsV1": { "f:status": { "f:phase": {} } } }
                ]
            }))
            .unwrap();
        assert_eq!(
            decision_written_at(&meta),
            Some("2026-11-27T10:00:05Z".parse().unwrap()),
            "the reviewer's write, not the unit's or the operator's later ones"
        );
        assert_eq!(decision_written_at(&Default::default()), None);
    }

    #[test]
    fn art13_a_decision_names_its_generation_and_reviewer() {
        let mut a = BTreeMap::new();
        assert_eq!(read_decision(&a), Ok(None));
        a.insert(keys::DECISION.to_owned(), " approve ".to_owned());
        let missing = read_decision(&a).unwrap_err();
        assert!(missing.contains(keys::DECIDED_GENERATION), "{missing}");
        a.insert(keys::DECIDED_GENERATION.to_owned(), "3".to_owned());
        let missing = read_decision(&a).unwrap_err();
        assert!(missing.contains(keys::DECIDED_BY), "{missing}");
        a.insert(keys::DECIDED_BY.to_owned(), "wang".to_owned());
        a.insert(keys::OPINION.to_owned(), "  ".to_owned());
        let w = read_decision(&a).unwrap().unwrap();
        assert_eq!(
            (w.decision, w.generation, w.by.as_str(), w.opinion),
            (Decision::Approve, 3, "wang", None)
        );
        a.insert(keys::DECISION.to_owned(), "approved".to_owned());
        assert!(read_decision(&a).unwrap_err().contains("not \"approved\""));
    }
}
