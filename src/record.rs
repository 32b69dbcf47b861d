//! What a planner records beside the status it plans, the same way for the
//! three of them (requests, changes, tenancies): conditions with the
//! generation they saw and the time they flipped, the events to publish, and
//! when to look again. Pure; `now` and the generation are given.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::change::ChangeRequestStatus;
use crate::api::request::CloudResourceRequestStatus;
use crate::api::tenancy::TenancyStatus;
use crate::conditions::{self, Wanted};

/// A note for a Kubernetes event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
    /// Another object the event is about, e.g. the volume wiped.
    pub related: Option<Related>,
}

/// An object an event relates to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl Note {
    pub fn new(warning: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            warning,
            reason,
            message: message.into(),
            related: None,
        }
    }

    pub fn normal(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(false, reason, message)
    }

    pub fn warning(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(true, reason, message)
    }
}

/// A status that carries conditions.
pub trait Conditioned {
    fn conditions(&mut self) -> &mut Vec<Condition>;
}

impl Conditioned for CloudResourceRequestStatus {
    fn conditions(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl Conditioned for ChangeRequestStatus {
    fn conditions(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

impl Conditioned for TenancyStatus {
    fn conditions(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
}

/// The status being planned, the events it calls for and the next wake-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorder<S> {
    pub status: S,
    pub events: Vec<Note>,
    /// When to look again even if nothing changes (a deadline).
    pub requeue_at: Option<Timestamp>,
    /// The object's `metadata.generation`, which every condition set here
    /// records as its `observedGeneration`.
    pub generation: i64,
    pub now: Timestamp,
}

impl<S: Conditioned> Recorder<S> {
    pub fn new(status: S, generation: i64, now: Timestamp) -> Self {
        Self {
            status,
            events: Vec::new(),
            requeue_at: None,
            generation,
            now,
        }
    }

    /// Sets a condition; whether its status flipped (or it is new).
    pub fn cond(&mut self, wanted: Wanted<'_>) -> bool {
        conditions::set(self.status.conditions(), wanted, self.generation, self.now)
    }

    /// Removes a condition type.
    pub fn clear(&mut self, type_: &str) {
        conditions::remove(self.status.conditions(), type_);
    }

    /// Sets a condition and, when it flips, publishes an event with `reason`
    /// and the condition's message: once per transition, not per reconcile.
    pub fn flag(&mut self, wanted: Wanted<'_>, warning: bool, reason: &'static str) -> bool {
        let message = wanted.message.clone();
        let flipped = self.cond(wanted);
        if flipped {
            self.event(warning, reason, message);
        }
        flipped
    }

    /// A deadline counted without the State Council's notice for some year
    /// is flagged, never silently guessed: the condition `type_` goes False
    /// with `YearNotLoaded`, once per transition.
    pub fn calendar_assumed(&mut self, type_: &str, assumed: &std::collections::BTreeSet<i32>) {
        if assumed.is_empty() {
            return;
        }
        let years: Vec<String> = assumed.iter().map(i32::to_string).collect();
        let message = format!(
            "no WorkCalendar for {}: counted Monday to Friday; apply the State Council's notice as a WorkCalendar",
            years.join(", ")
        );
        self.flag(
            Wanted::new(type_, false, "YearNotLoaded", message),
            true,
            "YearNotLoaded",
        );
    }

    pub fn event(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.events.push(Note::new(warning, reason, message));
    }

    pub fn note(&mut self, note: Note) {
        self.events.push(note);
    }

    /// Looks again at `at` at the latest.
    pub fn wake_at(&mut self, at: Timestamp) {
        self.requeue_at = Some(self.requeue_at.map_or(at, |t| t.min(at)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_flag_publishes_once_per_transition_and_records_the_generation() {
        let now = at("2026-12-07T02:00:00Z");
        let mut r = Recorder::new(TenancyStatus::default(), 4, now);
        let failed = || Wanted::new("ApplyFailed", true, "Refused", "the apiserver refused x");
        assert!(r.flag(failed(), true, "ApplyFailed"));
        assert!(!r.flag(failed(), true, "ApplyFailed"));
        assert_eq!(r.events.len(), 1);
        assert!(r.events[0].warning);
        assert_eq!(r.events[0].message, "the apiserver refused x");
        let c = &r.status.conditions[0];
        assert_eq!(c.observed_generation, Some(4));
        assert_eq!(c.last_transition_time.0, now);
        r.clear("ApplyFailed");
        assert!(r.status.conditions.is_empty());
    }

    #[test]
    fn the_earliest_wake_up_wins() {
        let mut r = Recorder::new(
            ChangeRequestStatus::default(),
            1,
            at("2026-12-07T02:00:00Z"),
        );
        r.wake_at(at("2026-12-09T00:00:00Z"));
        r.wake_at(at("2026-12-08T00:00:00Z"));
        r.wake_at(at("2026-12-10T00:00:00Z"));
        assert_eq!(r.requeue_at, Some(at("2026-12-08T00:00:00Z")));
    }
}
