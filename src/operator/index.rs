//! Caches of the kinds the operator only needs to know exist: for each
//! object, by namespace and name, what the planner reads of it ([`Known`])
//! instead of the object. A watch's events are applied here as a
//! reflector's are to its store: an object's change shows before what it
//! wakes runs, and a relist shows all at once when it is done.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use hashbrown::{HashTable, hash_table};
use kube::Resource;
use kube::runtime::watcher;
use tokio::sync::watch;

/// What the controllers read of an object they only need to know exists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    pub uid: Word,
    /// Its `resourceVersion`: what a relist compares, and a delete's
    /// precondition.
    pub version: Word,
    /// Its `govcloud.dev/spec-hash`.
    pub hash: Option<Word>,
    /// The fingerprint of what the operator governs of it, as it is.
    pub live: Option<Word>,
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

/// A short text as the index keeps it: the shapes the apiserver and the
/// operator write (a UID, a resource version, a 64-bit hash in hex) as
/// their bytes, in place; anything else, exactly as it was, on the heap.
/// It reads back as the very text it was made from.
#[derive(Clone, PartialEq, Eq)]
pub enum Word {
    /// A UUID in its lowercase hyphenated form.
    Uuid([u8; 16]),
    /// A decimal number without leading zeros.
    Number(u64),
    /// 16 lowercase hex digits.
    Hex([u8; 8]),
    Text(Box<str>),
}

impl Default for Word {
    fn default() -> Self {
        Word::Text(Box::default())
    }
}

/// `s` as the bytes its lowercase hex digits spell, when it is exactly that.
fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N
        || !digits
            .iter()
            .all(|d| d.is_ascii_digit() || (b'a'..=b'f').contains(d))
    {
        return None;
    }
    let mut out = [0; N];
    for (o, pair) in out.iter_mut().zip(digits.chunks(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

impl From<&str> for Word {
    fn from(s: &str) -> Self {
        let uuid = || {
            let b = s.as_bytes();
            let dashes = [8, 13, 18, 23];
            if b.len() != 36 || dashes.iter().any(|&i| b[i] != b'-') {
                return None;
            }
            let digits: String = s.split('-').collect();
            hex_bytes::<16>(&digits)
        };
        let number = || s.parse::<u64>().ok().filter(|n| n.to_string() == s);
        if let Some(u) = uuid() {
            Word::Uuid(u)
        } else if let Some(n) = number() {
            Word::Number(n)
        } else if let Some(h) = hex_bytes::<8>(s) {
            Word::Hex(h)
        } else {
            Word::Text(s.into())
        }
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = |f: &mut fmt::Formatter<'_>, bytes: &[u8]| {
            bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
        };
        match self {
            Word::Uuid(u) => {
                for (i, part) in [&u[..4], &u[4..6], &u[6..8], &u[8..10], &u[10..]]
                    .into_iter()
                    .enumerate()
                {
                    if i > 0 {
                        f.write_str("-")?;
                    }
                    hex(f, part)?;
                }
                Ok(())
            }
            Word::Number(n) => write!(f, "{n}"),
            Word::Hex(h) => hex(f, h),
            Word::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl From<Word> for String {
    fn from(w: Word) -> Self {
        w.to_string()
    }
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
    pub counted: Word,
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

/// The entries of one kind, dense: in a `Vec`, found through a table of
/// their positions. A hash table of the entries themselves keeps an eighth
/// to over half of its slots empty, each as large as an entry (152
/// bytes); here an empty slot is 4 bytes, and the entries grow by an
/// eighth at a time. A removal moves the last entry into the gap.
#[derive(Default)]
struct Map {
    entries: Vec<(Box<str>, Known)>,
    positions: HashTable<u32>,
    state: RandomState,
}

impl Map {
    fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Option<usize> {
        let entries = &self.entries;
        self.positions
            .find(self.state.hash_one(key), |&i| {
                &*entries[i as usize].0 == key
            })
            .map(|&i| i as usize)
    }

    fn get(&self, key: &str) -> Option<&Known> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    fn insert(&mut self, key: Box<str>, known: Known) {
        let Map {
            entries,
            positions,
            state,
        } = self;
        let found = positions.entry(
            state.hash_one(&*key),
            |&i| entries[i as usize].0 == key,
            |&i| state.hash_one(&*entries[i as usize].0),
        );
        match found {
            hash_table::Entry::Occupied(at) => entries[*at.get() as usize].1 = known,
            hash_table::Entry::Vacant(gap) => {
                let i = u32::try_from(entries.len()).expect("fewer than 2^32 objects of a kind");
                gap.insert(i);
                if entries.len() == entries.capacity() {
                    entries.reserve_exact((entries.len() / 8).max(16));
                }
                entries.push((key, known));
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<Known> {
        let Map {
            entries,
            positions,
            state,
        } = self;
        let found = positions.find_entry(state.hash_one(key), |&i| &*entries[i as usize].0 == key);
        let i = found.ok()?.remove().0 as usize;
        let last = entries.len() - 1;
        if i != last {
            let moved = positions
                .find_mut(state.hash_one(&*entries[last].0), |&j| j as usize == last)
                .expect("every entry has its position");
            *moved = i as u32;
        }
        let (_, known) = entries.swap_remove(i);
        if entries.capacity() > 2 * entries.len().max(64) {
            self.shrink_to_fit();
        }
        Some(known)
    }

    fn shrink_to_fit(&mut self) {
        let Map {
            entries,
            positions,
            state,
        } = self;
        entries.shrink_to_fit();
        positions.shrink_to_fit(|&i| state.hash_one(&*entries[i as usize].0));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn iter(&self) -> impl Iterator<Item = (&Box<str>, &Known)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    fn into_iter(self) -> impl Iterator<Item = (Box<str>, Known)> {
        self.entries.into_iter()
    }
}

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
                    .filter(|(k, v)| before.get(k).is_none_or(|b| b.version != v.version))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn known(version: u64) -> Known {
        Known {
            version: Word::Number(version),
            ..Known::default()
        }
    }

    proptest::proptest! {
        /// Any run of inserts, replacements and removals leaves the dense
        /// map holding what a `HashMap` would: each key finds its own
        /// entry however the removals moved the others.
        #[test]
        fn the_dense_map_holds_what_a_hash_map_would(
            ops in proptest::collection::vec((0u8..3, 0u16..300, 0u64..1000), 0..2000),
        ) {
            let mut dense = Map::new();
            let mut model = std::collections::HashMap::new();
            for (op, k, v) in ops {
                let key: Box<str> = format!("ns-{}/vm-{k}", k % 7).into();
                if op == 2 {
                    proptest::prop_assert_eq!(dense.remove(&key), model.remove(&key));
                } else {
                    dense.insert(key.clone(), known(v));
                    model.insert(key, known(v));
                }
            }
            proptest::prop_assert_eq!(dense.len(), model.len());
            for k in 0..300u16 {
                let key = format!("ns-{}/vm-{k}", k % 7);
                proptest::prop_assert_eq!(dense.get(&key), model.get(key.as_str()));
                proptest::prop_assert_eq!(dense.contains_key(&key), model.contains_key(key.as_str()));
            }
            dense.shrink_to_fit();
            let mut all: Vec<_> = dense.into_iter().collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            let mut want: Vec<_> = model.into_iter().collect();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            proptest::prop_assert_eq!(all, want);
        }
    }

    #[test]
    fn the_dense_map_grows_by_an_eighth_and_gives_back_what_removals_free() {
        let mut dense = Map::new();
        for i in 0..10_000 {
            dense.insert(format!("ns/{i}").into(), known(i));
        }
        let slack = dense.entries.capacity() - dense.len();
        assert!(slack <= 10_000 / 8, "{slack} entries spare");
        for i in 0..9_000 {
            assert_eq!(dense.remove(&format!("ns/{i}")), Some(known(i)));
        }
        assert!(
            dense.entries.capacity() <= 2 * 1_000,
            "{}",
            dense.entries.capacity()
        );
        for i in 9_000..10_000 {
            assert_eq!(dense.get(&format!("ns/{i}")), Some(&known(i)));
        }
    }

    #[test]
    fn a_word_reads_back_as_the_text_it_was_made_from() {
        let kept_in_place = [
            "6f1c3a52-4a8e-4d2b-9f0e-0c5b8d7e2a11",
            "184467",
            "0",
            "18446744073709551615",
            "00ff3a52c4e1b290",
        ];
        for text in kept_in_place {
            let w = Word::from(text);
            assert!(!matches!(w, Word::Text(_)), "{text} kept as text");
            assert_eq!(w.to_string(), text);
        }
        // Near misses stay exactly as they were.
        for text in [
            "",
            "6F1C3A52-4A8E-4D2B-9F0E-0C5B8D7E2A11",
            "6f1c3a524a8e-4d2b-9f0e-0c5b8d7e2a11-",
            "0184467",
            "+184467",
            "18446744073709551616",
            "00FF3A52C4E1B290",
            "00ff3a52c4e1b29",
            "hand-edited",
            "名字",
        ] {
            let w = Word::from(text);
            assert!(matches!(w, Word::Text(_)), "{text} taken for {w:?}");
            assert_eq!(w.to_string(), text);
        }
        assert_ne!(Word::from("184467"), Word::from("184468"));
        assert_eq!(
            String::from(Word::from("0b9d2e11-7c4f-4a3e-8d21-5f6a7b8c9d0e")),
            "0b9d2e11-7c4f-4a3e-8d21-5f6a7b8c9d0e"
        );
        assert!(std::mem::size_of::<Option<Word>>() <= 24);
    }
}
