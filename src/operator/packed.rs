//! Requests and tenancies as the caches hold them: the metadata the
//! controllers find them by, their phase (which the metrics count at every
//! scrape), and the rest packed, as the JSON of the object compressed with
//! LZ4 against a dictionary: a large object of the kind packed before it
//! ([`Dictionary`]), whose field names and values most objects of the kind
//! share. A reconcile unpacks the one object it acts on. A settled
//! tenancy's 3.7 KB of JSON packs into a few hundred bytes, where decoded
//! it took 6.5 KB of heap (docs/performance.md).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::error_boundary::InvalidObject;
use serde::de::DeserializeOwned;

use super::caches::Guarded;
use crate::api::{CloudResourceRequest, Tenancy};

/// What is kept unpacked of a kind besides its metadata, and the kind's
/// dictionary.
pub trait Pack: Resource<DynamicType = ()> + serde::Serialize + DeserializeOwned {
    /// The phase the metrics count by (`None`: not yet given one).
    fn phase(&self) -> Option<String>;

    /// What objects of the kind are packed against.
    fn dictionary() -> &'static Dictionary;
}

impl Pack for Tenancy {
    fn phase(&self) -> Option<String> {
        let phase = self.status.as_ref()?.phase?;
        Some(format!("{phase:?}"))
    }

    fn dictionary() -> &'static Dictionary {
        static TENANCIES: Dictionary = Dictionary::new();
        &TENANCIES
    }
}

impl Pack for CloudResourceRequest {
    fn phase(&self) -> Option<String> {
        let phase = self.status.as_ref()?.phase?;
        Some(format!("{phase:?}"))
    }

    fn dictionary() -> &'static Dictionary {
        static REQUESTS: Dictionary = Dictionary::new();
        &REQUESTS
    }
}

/// The JSON of a large object of the kind packed so far (up to LZ4's
/// window): objects are packed against it, and each keeps the one it was
/// packed against, so that another can take its place at any time. One a
/// quarter larger than it takes its place: the dictionaries still held are
/// then a geometric series, at most five times the window, however objects
/// grow (a unit filing ever larger requests cannot make each hold the last).
pub struct Dictionary(RwLock<Option<Arc<[u8]>>>);

/// LZ4 reaches back at most this far, into the dictionary too.
const WINDOW: usize = 65_535;

impl Dictionary {
    const fn new() -> Self {
        Self(RwLock::new(None))
    }

    /// The dictionary to pack `json` against; `json` itself becomes the
    /// next one when it is a quarter larger.
    fn take_for(&self, json: &[u8]) -> Arc<[u8]> {
        let larger = |d: &[u8]| json.len() > d.len() + d.len() / 4 && json.len() <= WINDOW;
        let now = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        let now = now.unwrap_or_else(|| Arc::from(&[][..]));
        if larger(&now) {
            let mut held = self.0.write().unwrap_or_else(|e| e.into_inner());
            if held.as_deref().is_none_or(larger) {
                *held = Some(Arc::from(json));
            }
        }
        now
    }
}

/// An object packed: see the module's text.
pub struct Packed<K> {
    /// Name, namespace, UID, version, generation and the creation and
    /// deletion times: what stores, queues and wakes read.
    meta: ObjectMeta,
    phase: Option<Box<str>>,
    /// The object as LZ4 of its JSON against `dictionary`, or why it
    /// could not be read.
    body: Result<Body, Arc<str>>,
    kind: PhantomData<fn() -> K>,
}

/// The LZ4 of an object's JSON, and the dictionary it was packed against.
type Body = (Box<[u8]>, Arc<[u8]>);

impl<K> Clone for Packed<K> {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta.clone(),
            phase: self.phase.clone(),
            body: self.body.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Packed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("namespace", &self.meta.namespace)
            .field("name", &self.meta.name)
            .field("resourceVersion", &self.meta.resource_version)
            .field("bytes", &self.body.as_ref().map(|(b, _)| b.len()))
            .finish()
    }
}

/// Of an object's metadata, what the header keeps; the UID only of an
/// object that could not be read (what is reported of it), since every
/// reader of a readable one unpacks it.
fn header(meta: &ObjectMeta, readable: bool) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone().filter(|_| !readable),
        resource_version: meta.resource_version.clone(),
        generation: meta.generation,
        creation_timestamp: meta.creation_timestamp.clone(),
        deletion_timestamp: meta.deletion_timestamp.clone(),
        ..ObjectMeta::default()
    }
}

impl<K: Pack> Packed<K> {
    /// Packs an object as the watch gave it.
    pub fn pack(object: &Guarded<K>) -> Self {
        Self::pack_with(object, K::dictionary())
    }

    fn pack_with(object: &Guarded<K>, dictionary: &Dictionary) -> Self {
        let (meta, phase, body) = match &object.0 {
            Ok(o) => {
                let body = serde_json::to_vec(o)
                    .map(|json| {
                        let dictionary = dictionary.take_for(&json);
                        let packed =
                            lz4_flex::block::compress_prepend_size_with_dict(&json, &dictionary);
                        (packed.into_boxed_slice(), dictionary)
                    })
                    .map_err(|e| Arc::from(e.to_string()));
                (o.meta(), o.phase(), body)
            }
            Err(invalid) => (
                &invalid.metadata,
                None,
                Err(Arc::from(invalid.error.as_str())),
            ),
        };
        Self {
            meta: header(meta, body.is_ok()),
            phase: phase.map(Box::from),
            body,
            kind: PhantomData,
        }
    }

    /// The object, as the watch gave it.
    pub fn unpack(&self) -> Guarded<K> {
        let invalid = |error: String| InvalidObject {
            error,
            metadata: self.meta.clone(),
        };
        let object = match &self.body {
            Ok((body, dictionary)) => {
                lz4_flex::block::decompress_size_prepended_with_dict(body, dictionary)
                    .map_err(|e| e.to_string())
                    .and_then(|json| serde_json::from_slice::<K>(&json).map_err(|e| e.to_string()))
                    .map_err(invalid)
            }
            Err(error) => Err(invalid(error.to_string())),
        };
        kube::core::DeserializeGuard(object)
    }

    /// Its phase, as [`Pack::phase`] gave it when packed; `None` also when
    /// the object could not be read.
    pub fn phase(&self) -> Option<&str> {
        self.phase.as_deref()
    }

    /// Whether the object could be read.
    pub fn is_valid(&self) -> bool {
        self.body.is_ok()
    }

    /// Bytes held packed.
    #[cfg(test)]
    pub fn packed_len(&self) -> usize {
        self.body.as_ref().map_or(0, |(b, _)| b.len())
    }
}

impl<K: Pack> Resource for Packed<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// Read as the object is read, then packed (the controllers' runtime asks
/// that what it drives can be read from the API; the caches pack what their
/// watches read).
impl<'de, K: Pack> serde::Deserialize<'de> for Packed<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::pack(&Guarded::<K>::deserialize(d)?))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use jiff::Timestamp;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::core::DeserializeGuard;

    use super::*;
    use crate::api::TenancyPhase;
    use crate::api::tenancy::{InventoryItem, TenancyStatus};
    use crate::conditions::{self, Wanted};

    /// A tenancy of the sample request's, as approved: `name` in `ns`,
    /// made from `request`.
    pub(in crate::operator) fn approved(ns: &str, name: &str, request: &str) -> Tenancy {
        let text = std::fs::read_to_string(format!(
            "{}/config/samples/20-cloudresourcerequest-oa.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let r: CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        let mut t = Tenancy::new(
            name,
            crate::api::TenancySpec {
                unit: "finance".into(),
                unit_name: r.spec.unit.name.clone(),
                system_name: r.spec.system.name.clone(),
                purpose: r.spec.system.purpose.clone(),
                request: request.into(),
                request_generation: 1,
                service_types: r.spec.service_types.clone(),
                allocation: r.spec.resources.clone(),
                compliance: r.spec.compliance.clone(),
                extensions: Vec::new(),
                changes: Vec::new(),
                emergency: None,
                retirement: None,
            },
        );
        t.metadata.namespace = Some(ns.into());
        t
    }

    /// A tenancy in service as the operator leaves it: the sample request's
    /// allocation, its 11 objects, its conditions and dates.
    fn settled() -> Tenancy {
        let mut t = approved("unit-finance", "oa", "oa");
        t.metadata.uid = Some("6f1c3a52-4a8e-4d2b-9f0e-0c5b8d7e2a11".into());
        t.metadata.resource_version = Some("184467".into());
        t.metadata.generation = Some(1);
        let now: Timestamp = "2026-11-27T02:00:00Z".parse().unwrap();
        let ns = "gc-finance-oa-7k2m9";
        let mut status = TenancyStatus {
            phase: Some(TenancyPhase::Active),
            observed_generation: Some(1),
            namespace: Some(ns.into()),
            delivered_at: Some(Time(now)),
            trial_ends_at: Some(Time(now)),
            billing_started_at: Some(Time(now)),
            ..TenancyStatus::default()
        };
        for (kind, name) in [
            ("Namespace", ns),
            ("ResourceQuota", "envelope"),
            ("LimitRange", "defaults"),
            ("NetworkPolicy", "default-deny"),
            ("NetworkPolicy", "allow-same-namespace"),
            ("RoleBinding", "unit-admin"),
            ("RoleBinding", "vendor"),
            ("VirtualMachine", "app-1"),
            ("VirtualMachine", "db-1"),
            ("PersistentVolumeClaim", "app-1-root"),
            ("PersistentVolumeClaim", "db-1-root"),
        ] {
            status.inventory.push(InventoryItem {
                api_version: "v1".into(),
                kind: kind.into(),
                name: name.into(),
                namespace: Some(ns.into()),
                ready: true,
                removing: false,
                cause: None,
            });
        }
        for (type_, reason) in [
            ("Ready", "Delivered"),
            ("Provisioned", "AllReady"),
            ("TrialUsed", "UsageRecorded"),
            ("Billing", "Active"),
        ] {
            let message = format!("{type_}: as the measures have it since {now}");
            conditions::set(
                &mut status.conditions,
                Wanted::new(type_, true, reason, message),
                1,
                now,
            );
        }
        t.status = Some(status);
        t
    }

    fn json_of(o: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(o).unwrap()
    }

    #[test]
    fn a_packed_tenancy_unpacks_as_it_was_and_keeps_its_phase_at_hand() {
        let t = settled();
        let packed = Packed::pack(&DeserializeGuard(Ok(t.clone())));
        assert_eq!(json_of(&packed.unpack().0.unwrap()), json_of(&t));
        assert_eq!(packed.phase(), Some("Active"));
        assert!(packed.is_valid());
        // What stores, queues and wakes read is at hand, and nothing else.
        let meta = packed.meta();
        assert_eq!(meta.name.as_deref(), Some("oa"));
        assert_eq!(meta.namespace.as_deref(), Some("unit-finance"));
        assert_eq!(meta.resource_version.as_deref(), Some("184467"));
        assert_eq!(meta.generation, Some(1));
        assert!(meta.labels.is_none() && meta.annotations.is_none());
        // Its readers unpack it for its UID.
        assert_eq!(meta.uid, None);
        let json = serde_json::to_vec(&t).unwrap().len();
        eprintln!("{json} bytes of JSON packed in {}", packed.packed_len());
        assert!(
            packed.packed_len() * 3 < json * 2,
            "{} bytes packed of {json}",
            packed.packed_len()
        );
    }

    #[test]
    fn a_tenancy_packs_small_against_another_and_a_larger_one_becomes_the_dictionary() {
        let words = Dictionary::new();
        let first = settled();
        let mut second = settled();
        second.metadata.name = Some("hr-payroll".into());
        second.metadata.uid = Some("0b9d2e11-7c4f-4a3e-8d21-5f6a7b8c9d0e".into());
        second.metadata.resource_version = Some("991203".into());
        second.spec.system_name = "Payroll".into();
        let mut larger = second.clone();
        let status = larger.status.as_mut().unwrap();
        status.inventory.extend(status.inventory.clone());
        let a = Packed::pack_with(&DeserializeGuard(Ok(first.clone())), &words);
        let b = Packed::pack_with(&DeserializeGuard(Ok(second.clone())), &words);
        let c = Packed::pack_with(&DeserializeGuard(Ok(larger.clone())), &words);
        // The larger, more than a quarter larger, is the dictionary now: the
        // others keep the one they were packed against.
        let d = Packed::pack_with(&DeserializeGuard(Ok(second.clone())), &words);
        let dictionary = |p: &Packed<Tenancy>| p.body.as_ref().unwrap().1.len();
        let json = |t: &Tenancy| serde_json::to_vec(t).unwrap().len();
        assert_eq!(dictionary(&b), json(&first));
        assert_eq!(dictionary(&d), json(&larger));
        for (packed, t) in [(&a, &first), (&b, &second), (&c, &larger), (&d, &second)] {
            assert_eq!(json_of(&packed.unpack().0.unwrap()), json_of(t));
        }
        eprintln!(
            "{} bytes of JSON packed in {} against another tenancy, in {} alone",
            json(&second),
            b.packed_len(),
            a.packed_len()
        );
        assert!(
            b.packed_len() * 5 < json(&second),
            "{} bytes packed of {}",
            b.packed_len(),
            json(&second)
        );
    }

    #[test]
    fn objects_ever_larger_hold_few_dictionaries() {
        let words = Dictionary::new();
        let mut t = settled();
        let mut held: Vec<Packed<Tenancy>> = Vec::new();
        for n in 0..200 {
            t.spec.purpose.push_str(&"用于".repeat(20 + n));
            held.push(Packed::pack_with(&DeserializeGuard(Ok(t.clone())), &words));
        }
        let mut dictionaries: Vec<_> = held
            .iter()
            .map(|p| {
                let (_, d) = p.body.as_ref().unwrap();
                (Arc::as_ptr(d) as *const u8 as usize, d.len())
            })
            .collect();
        dictionaries.sort_unstable();
        dictionaries.dedup();
        let bytes: usize = dictionaries.iter().map(|(_, len)| len).sum();
        assert!(
            dictionaries.len() < 20,
            "{} dictionaries",
            dictionaries.len()
        );
        assert!(bytes <= 5 * WINDOW, "{bytes} bytes of dictionaries");
        assert_eq!(json_of(&held[199].unpack().0.unwrap()), json_of(&t));
    }

    #[test]
    fn a_new_object_counts_as_new_and_an_unreadable_one_stays_unreadable() {
        let mut t = settled();
        t.status = None;
        assert_eq!(Packed::pack(&DeserializeGuard(Ok(t.clone()))).phase(), None);

        let invalid = InvalidObject {
            error: "spec.allocation: missing field `vcpus`".into(),
            metadata: t.metadata.clone(),
        };
        let packed = Packed::<Tenancy>::pack(&DeserializeGuard(Err(invalid)));
        assert!(!packed.is_valid());
        assert_eq!(packed.phase(), None);
        let unpacked = packed.unpack().0.unwrap_err();
        assert_eq!(unpacked.error, "spec.allocation: missing field `vcpus`");
        assert_eq!(unpacked.metadata.name.as_deref(), Some("oa"));
        assert_eq!(unpacked.metadata.namespace.as_deref(), Some("unit-finance"));
        // What is reported of it names it by UID too.
        assert_eq!(unpacked.metadata.uid, t.metadata.uid);
        assert!(unpacked.metadata.uid.is_some());
    }

    #[test]
    fn a_packed_request_unpacks_as_it_was() {
        let text = std::fs::read_to_string(format!(
            "{}/config/samples/20-cloudresourcerequest-oa.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut r: CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        r.metadata.namespace = Some("unit-finance".into());
        let packed = Packed::pack(&DeserializeGuard(Ok(r.clone())));
        assert_eq!(json_of(&packed.unpack().0.unwrap()), json_of(&r));
        assert_eq!(packed.phase(), None);
    }
}
