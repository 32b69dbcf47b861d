//! Events, published as `events.k8s.io/v1`, with what repeats folded into a
//! series.
//!
//! kube-runtime's `Recorder` does the same, but keeps each event it
//! published whole (its note, both references, its metadata), about 2 KB,
//! for the 6 minutes a series may grow; it forgets them only at its next
//! publish. After a burst of provisioning that is the last 6 minutes of
//! events, kept until something else happens: 13.7 KB per tenancy
//! delivered in that window. Here an event is remembered by a 128-bit key
//! and where it lives: about 130 bytes.
//!
//! Deciding is pure ([`Seen`]); [`Events`] sends what it decides.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// How long a repeat of an event is folded into it (client-go's and
/// kube-runtime's window).
pub const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);

/// How often the events past their window are forgotten.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// An event as the apiserver holds it: where to patch its series.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Last {
    namespace: Box<str>,
    name: Box<str>,
    count: i32,
    at: Timestamp,
}

/// What to send for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// A new event.
    Create,
    /// A repeat within the window: the event `name` in `namespace` is now
    /// seen `count` times.
    Series {
        namespace: String,
        name: String,
        count: i32,
    },
}

/// The events published in the last [`SERIES_WINDOW`], by key.
#[derive(Debug)]
pub struct Seen {
    last: HashMap<u128, Last>,
    swept: Timestamp,
}

impl Seen {
    pub fn new(now: Timestamp) -> Self {
        Seen {
            last: HashMap::new(),
            swept: now,
        }
    }

    /// What to send for the event of `key` at `now`; forgets, once a
    /// minute, the events past their window.
    pub fn decide(&mut self, key: u128, now: Timestamp) -> Publish {
        if now.duration_since(self.swept) >= SWEEP_EVERY {
            self.last.retain(|_, l| l.at + SERIES_WINDOW > now);
            if self.last.capacity() > 4 * self.last.len().max(16) {
                self.last.shrink_to_fit();
            }
            self.swept = now;
        }
        match self.last.get(&key) {
            Some(l) if l.at + SERIES_WINDOW > now => Publish::Series {
                namespace: l.namespace.to_string(),
                name: l.name.to_string(),
                count: l.count + 1,
            },
            _ => Publish::Create,
        }
    }

    /// The event of `key` was sent: created as `namespace/name` (count 1)
    /// or seen again (`count`).
    pub fn sent(&mut self, key: u128, namespace: &str, name: &str, count: i32, now: Timestamp) {
        self.last.insert(
            key,
            Last {
                namespace: namespace.into(),
                name: name.into(),
                count,
                at: now,
            },
        );
    }
}

/// What makes two events one series: the same kind, reason, action and
/// note about the same object (by UID, at any resource version) and the
/// same related object. The note is part of it: a repeat with another
/// message is another event, not the old message counted again.
pub struct Keys([RandomState; 2]);

impl Keys {
    pub fn new() -> Self {
        Keys([RandomState::new(), RandomState::new()])
    }

    pub fn of(&self, ev: &Event, regarding: &ObjectReference) -> u128 {
        let half = |state: &RandomState| {
            let mut h = state.build_hasher();
            matches!(ev.type_, EventType::Warning).hash(&mut h);
            ev.reason.hash(&mut h);
            ev.action.hash(&mut h);
            ev.note.hash(&mut h);
            object(regarding, &mut h);
            if let Some(r) = &ev.secondary {
                object(r, &mut h);
            }
            h.finish()
        };
        (u128::from(half(&self.0[0])) << 64) | u128::from(half(&self.0[1]))
    }
}

impl Default for Keys {
    fn default() -> Self {
        Self::new()
    }
}

fn object(r: &ObjectReference, h: &mut impl Hasher) {
    r.api_version.hash(h);
    r.kind.hash(h);
    r.namespace.hash(h);
    r.name.hash(h);
    r.uid.hash(h);
}

/// Publishes events for the operator.
pub struct Events {
    client: Client,
    reporter: Reporter,
    keys: Keys,
    seen: Mutex<Seen>,
}

impl Events {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Events {
            client,
            reporter,
            keys: Keys::new(),
            seen: Mutex::new(Seen::new(Timestamp::now())),
        }
    }

    /// Publishes `ev` about `regarding` (cluster-scoped objects' events go
    /// to `default`): a new event, or the series of the same event
    /// published in the last 6 minutes. An event deleted meanwhile is
    /// created again.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = self.keys.of(ev, regarding);
        let send = self.seen.lock().expect("events lock").decide(key, now);
        if let Publish::Series {
            namespace,
            name,
            count,
        } = send
        {
            let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
            let series = serde_json::json!({ "series": EventSeries {
                count,
                last_observed_time: MicroTime(now),
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                Ok(_) => {
                    self.seen
                        .lock()
                        .expect("events lock")
                        .sent(key, &namespace, &name, count, now);
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.event(ev, regarding, now);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let name = event.metadata.name.clone().unwrap_or_default();
        Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        self.seen
            .lock()
            .expect("events lock")
            .sent(key, &namespace, &name, 1, now);
        Ok(())
    }

    fn event(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let controller = &self.reporter.controller;
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: Some(
                    regarding
                        .namespace
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                ),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            related: ev.secondary.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn event(reason: &str, note: &str) -> Event {
        Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: reason.into(),
            secondary: None,
        }
    }

    fn tenancy(name: &str, version: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("govcloud.example/v1".into()),
            kind: Some("Tenancy".into()),
            namespace: Some("unit-a".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some(version.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_repeat_within_six_minutes_counts_in_the_series_of_the_first() {
        let keys = Keys::new();
        let t0 = at("2026-12-01T02:00:00Z");
        let mut seen = Seen::new(t0);
        let ev = event("Refused", "quota exceeded");
        let key = keys.of(&ev, &tenancy("a", "1"));
        assert_eq!(seen.decide(key, t0), Publish::Create);
        seen.sent(key, "unit-a", "a.1", 1, t0);
        // The same event at a later resource version is a repeat.
        let again = keys.of(&ev, &tenancy("a", "7"));
        assert_eq!(again, key);
        let t1 = at("2026-12-01T02:05:59Z");
        assert_eq!(
            seen.decide(again, t1),
            Publish::Series {
                namespace: "unit-a".into(),
                name: "a.1".into(),
                count: 2
            }
        );
        seen.sent(key, "unit-a", "a.1", 2, t1);
        // The window runs from the last time it was seen.
        let t2 = at("2026-12-01T02:11:58Z");
        assert!(matches!(
            seen.decide(key, t2),
            Publish::Series { count: 3, .. }
        ));
        // Six minutes after it, it is a new event.
        let t3 = at("2026-12-01T02:11:59Z");
        assert_eq!(seen.decide(key, t3), Publish::Create);
    }

    #[test]
    fn another_message_reason_object_or_related_object_is_another_event() {
        let keys = Keys::new();
        let base = keys.of(&event("Refused", "quota exceeded"), &tenancy("a", "1"));
        let others = [
            keys.of(&event("Refused", "cpu exceeded"), &tenancy("a", "1")),
            keys.of(&event("Paused", "quota exceeded"), &tenancy("a", "1")),
            keys.of(&event("Refused", "quota exceeded"), &tenancy("b", "1")),
            keys.of(
                &Event {
                    secondary: Some(tenancy("disk", "1")),
                    ..event("Refused", "quota exceeded")
                },
                &tenancy("a", "1"),
            ),
            keys.of(
                &Event {
                    type_: EventType::Warning,
                    ..event("Refused", "quota exceeded")
                },
                &tenancy("a", "1"),
            ),
        ];
        for (i, k) in others.iter().enumerate() {
            assert_ne!(*k, base, "variant {i}");
        }
    }

    #[test]
    fn events_past_their_window_are_forgotten_and_their_table_shrinks() {
        let keys = Keys::new();
        let t0 = at("2026-12-01T02:00:00Z");
        let mut seen = Seen::new(t0);
        for i in 0..10_000 {
            let key = keys.of(&event("Delivered", "ok"), &tenancy(&format!("t{i}"), "1"));
            assert_eq!(seen.decide(key, t0), Publish::Create);
            seen.sent(key, "unit-a", &format!("t{i}.1"), 1, t0);
        }
        assert_eq!(seen.last.len(), 10_000);
        let big = seen.last.capacity();
        // Within the window, nothing is forgotten.
        let key = keys.of(&event("Delivered", "ok"), &tenancy("late", "1"));
        seen.decide(key, at("2026-12-01T02:05:59Z"));
        assert_eq!(seen.last.len(), 10_000);
        // The first publish a minute past the window forgets them all.
        seen.decide(key, at("2026-12-01T02:06:59Z"));
        assert!(seen.last.is_empty());
        assert!(seen.last.capacity() < big / 100, "{}", seen.last.capacity());
    }
}
