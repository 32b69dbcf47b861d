//! Conditions as Kubernetes users expect them: one per type, with
//! `observedGeneration`, and a `lastTransitionTime` that moves only when the
//! status flips, so a settled object compares equal and is never rewritten.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// What a condition should say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
}

impl<'a> Wanted<'a> {
    pub fn new(type_: &'a str, status: bool, reason: &'a str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

fn status_str(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Sets a condition, keeping its transition time unless its status flips.
/// Returns whether the status flipped (or the condition is new).
pub fn set(
    conditions: &mut Vec<Condition>,
    wanted: Wanted<'_>,
    generation: i64,
    now: Timestamp,
) -> bool {
    let status = status_str(wanted.status);
    match conditions.iter_mut().find(|c| c.type_ == wanted.type_) {
        Some(c) => {
            let flipped = c.status != status;
            if flipped {
                c.last_transition_time = Time(now);
            }
            c.status = status.to_owned();
            c.reason = wanted.reason.to_owned();
            c.message = wanted.message;
            c.observed_generation = Some(generation);
            flipped
        }
        None => {
            conditions.push(Condition {
                type_: wanted.type_.to_owned(),
                status: status.to_owned(),
                reason: wanted.reason.to_owned(),
                message: wanted.message,
                observed_generation: Some(generation),
                last_transition_time: Time(now),
            });
            true
        }
    }
}

/// Removes a condition type.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Two condition lists say the same thing, whatever their transition times.
pub fn same(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.type_ == y.type_
                    && x.status == y.status
                    && x.reason == y.reason
                    && x.message == y.message
                    && x.observed_generation == y.observed_generation
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut cs = Vec::new();
        assert!(set(
            &mut cs,
            Wanted::new("Ready", false, "Waiting", "a"),
            1,
            t("2026-01-01T00:00:00Z")
        ));
        assert!(!set(
            &mut cs,
            Wanted::new("Ready", false, "Waiting", "b"),
            2,
            t("2026-01-02T00:00:00Z")
        ));
        assert_eq!(cs[0].last_transition_time.0, t("2026-01-01T00:00:00Z"));
        assert_eq!(cs[0].message, "b");
        assert_eq!(cs[0].observed_generation, Some(2));
        assert!(set(
            &mut cs,
            Wanted::new("Ready", true, "Done", "c"),
            2,
            t("2026-01-03T00:00:00Z")
        ));
        assert_eq!(cs[0].last_transition_time.0, t("2026-01-03T00:00:00Z"));
        assert!(is_true(&cs, "Ready"));
    }

    #[test]
    fn comparison_ignores_transition_times_but_not_content() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        set(
            &mut a,
            Wanted::new("Ready", true, "Done", "m"),
            1,
            t("2026-01-01T00:00:00Z"),
        );
        set(
            &mut b,
            Wanted::new("Ready", true, "Done", "m"),
            1,
            t("2026-05-01T00:00:00Z"),
        );
        assert!(same(&a, &b));
        set(
            &mut b,
            Wanted::new("Ready", true, "Done", "other"),
            1,
            t("2026-05-01T00:00:00Z"),
        );
        assert!(!same(&a, &b));
    }
}
