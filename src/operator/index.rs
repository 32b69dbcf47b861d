//! Caches of the kinds the operator only needs to know exist: for each
//! object, by namespace and name, what the planner reads of it ([`Known`])
//! instead of the object. A watch's events are applied here as a
//! reflector's are to its store: an object's change shows before what it
//! wakes runs, and a relist shows all at once when it is done.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::watcher;
use tokio::sync::watch;

/// What the controllers read of an object they only need to know exists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    pub uid: Box<str>,
    /// Its `resourceVersion`: what a relist compares, and a delete's
    /// precondition.
    pub version: Box<str>,
    /// Its `govcloud.dev/spec-hash`.
    pub hash: Option<Box<str>>,
    /// The fingerprint of what the operator governs of it, as it is.
    pub live: Option<Box<str>>,
    /// The tenancy it names (`govcloud.dev/tenancy-ref`).
    pub tenancy: Option<Box<str>>,
    /// In the state a tenancy needs (a quota in force, a VM created ...).
    pub ready: bool,
    pub deleting: bool,
    /// Of a quota, what it counts as used.
    pub usage: Option<Box<Usage>>,
    /// Of a VM instance, when it ran and its guest agent connected.
    pub instance: Option<Box<Started>>,
}

/// When a VM instance entered phase Running and when its guest agent
/// connected, as far as it did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Started {
    pub running: Option<jiff::Timestamp>,
    pub agent: Option<jiff::Timestamp>,
}

/// What a quota counts as used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Of `requests.storage`.
    pub storage: Option<Box<str>>,
    /// A digest of the whole count: one recount is asked per count.
    pub counted: Box<str>,
}

/// Where an object is: `<namespace>/<name>`, or its name alone.
fn key(namespace: Option<&str>, name: &str) -> Box<str> {
    match namespace {
        Some(ns) => format!("{ns}/{name}").into(),
        None => name.into(),
    }
}

/// The namespace of a key made by [`key`] for a namespaced object.
pub fn namespace_of(key: &str) -> Option<&str> {
    key.split_once('/').map(|(ns, _)| ns)
}

type Map = HashMap<Box<str>, Known>;

/// The reading end: shared, cheap to clone.
#[derive(Clone)]
pub struct Index {
    map: Arc<RwLock<Map>>,
    ready: watch::Receiver<bool>,
}

/// The writing end, handed to the watch.
pub struct Writer {
    map: Arc<RwLock<Map>>,
    ready: watch::Sender<bool>,
    /// A relist in progress: what it has listed so far.
    relist: Option<Map>,
}

impl Writer {
    pub fn new() -> Self {
        Self {
            map: Arc::default(),
            ready: watch::channel(false).0,
            relist: None,
        }
    }

    pub fn as_reader(&self) -> Index {
        Index {
            map: self.map.clone(),
            ready: self.ready.subscribe(),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Map> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one event; returns what changed, for the wakes: the entries
    /// an `Apply`/`Delete` touched, or, when a relist is done, those it
    /// added or changed (as they are now) and those it no longer has (as
    /// they were).
    fn apply(&mut self, event: Event) -> Vec<(Box<str>, Known)> {
        match event {
            Event::Apply(k, v) => {
                self.write().insert(k.clone(), v.clone());
                vec![(k, v)]
            }
            Event::Delete(k, v) => {
                let held = self.write().remove(&k);
                vec![(k, held.unwrap_or(v))]
            }
            Event::Init => {
                self.relist = Some(Map::new());
                Vec::new()
            }
            Event::InitApply(k, v) => {
                self.relist.get_or_insert_default().insert(k, v);
                Vec::new()
            }
            Event::InitDone => {
                let mut after = self.relist.take().unwrap_or_default();
                after.shrink_to_fit();
                let before = std::mem::replace(&mut *self.write(), after);
                let now = self.map.read().unwrap_or_else(|e| e.into_inner());
                // What the relist added or changed wakes as it is now; what
                // it no longer has, as it was; the rest nothing.
                let mut changed: Vec<_> = now
                    .iter()
                    .filter(|(k, v)| before.get(*k).is_none_or(|b| b.version != v.version))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                changed.extend(before.into_iter().filter(|(k, _)| !now.contains_key(k)));
                drop(now);
                self.ready.send_replace(true);
                changed
            }
        }
    }
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Index {
    /// What is known of the object `name` in `namespace` (`None` for a
    /// cluster-scoped one).
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Known> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(&key(namespace, name)).cloned()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Waits for the first list to be complete.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|r| *r).await;
    }
}

/// A watch event, with the object made into its key and [`Known`].
enum Event {
    Apply(Box<str>, Known),
    Delete(Box<str>, Known),
    Init,
    InitApply(Box<str>, Known),
    InitDone,
}

fn entry<K: Resource>(o: &K, known: &impl Fn(&K) -> Known) -> (Box<str>, Known) {
    let meta = o.meta();
    (
        key(
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or_default(),
        ),
        known(o),
    )
}

/// Applies a watch's events to `writer`, each object made into what
/// `known` keeps of it, and only then wakes (by its key and entry) what
/// each change concerns.
pub async fn drive<K: Resource>(
    kind: &str,
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    mut writer: Writer,
    known: impl Fn(&K) -> Known,
    wake: impl Fn(&str, &Known),
) {
    futures::pin_mut!(events);
    while let Some(item) = events.next().await {
        let event = match item {
            Ok(watcher::Event::Apply(o)) => {
                let (k, v) = entry(&o, &known);
                Event::Apply(k, v)
            }
            Ok(watcher::Event::Delete(o)) => {
                let (k, v) = entry(&o, &known);
                Event::Delete(k, v)
            }
            Ok(watcher::Event::Init) => Event::Init,
            Ok(watcher::Event::InitApply(o)) => {
                let (k, v) = entry(&o, &known);
                Event::InitApply(k, v)
            }
            Ok(watcher::Event::InitDone) => Event::InitDone,
            Err(e) => {
                tracing::warn!(kind = %kind, error = %e, "watch error; retrying");
                continue;
            }
        };
        for (k, v) in writer.apply(event) {
            wake(&k, &v);
        }
    }
}
