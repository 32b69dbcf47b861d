//! Which objects a change wakes, by controller: pure functions of the object
//! that changed and what the caches hold. The watches call them and send
//! what they return.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;

use super::caches::{ChangeRef, Guarded, RequestRef, TenancyRef, UnitRef};
use super::index::Known;
use super::packed::Packed;
use crate::api::{ChangeRequest, Tenancy};

/// The objects to reconcile, by controller.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Wakes {
    pub requests: Vec<RequestRef>,
    pub tenancies: Vec<TenancyRef>,
    pub changes: Vec<ChangeRef>,
    pub units: Vec<UnitRef>,
}

/// A tenancy wakes itself, its unit (which counts the tenancies in service),
/// its changes (they follow what it becomes) and the request that created it
/// (whose status names the tenancy).
pub fn of_tenancy(t: &Packed<Tenancy>, changes: &[Arc<Guarded<ChangeRequest>>]) -> Wakes {
    let (ns, name) = (t.namespace(), t.name_any());
    let request = match &t.unpack().0 {
        Ok(t) => t.spec.request.to_string(),
        Err(_) => name.clone(),
    };
    let within = |r: ObjectRef<_>| match &ns {
        Some(ns) => r.within(ns),
        None => r,
    };
    Wakes {
        requests: vec![within(ObjectRef::new(&request))],
        tenancies: vec![ObjectRef::from_obj(t)],
        changes: changes
            .iter()
            .filter(|c| {
                c.0.as_ref()
                    .is_ok_and(|c| c.namespace() == ns && c.spec.tenancy.as_str() == name)
            })
            .map(|c| ObjectRef::from_obj(&**c))
            .collect(),
        units: ns.iter().map(|ns| ObjectRef::new(ns)).collect(),
    }
}

/// A unit namespace wakes its unit and its tenancies (the unit's group is
/// bound in each).
pub fn of_unit(ns: &PartialObjectMeta<Namespace>, tenancies: &[Arc<Packed<Tenancy>>]) -> Wakes {
    let name = ns.name_any();
    Wakes {
        units: vec![ObjectRef::from_obj(ns)],
        tenancies: tenancies
            .iter()
            .filter(|t| t.namespace().as_deref() == Some(name.as_str()))
            .map(|t| ObjectRef::from_obj(&**t))
            .collect(),
        ..Wakes::default()
    }
}

/// New prices reprice every tenancy's month; a storage class appearing or
/// going changes every tenancy's quota.
pub fn every_tenancy(tenancies: &[Arc<Packed<Tenancy>>]) -> Wakes {
    Wakes {
        tenancies: tenancies
            .iter()
            .map(|t| ObjectRef::from_obj(&**t))
            .collect(),
        ..Wakes::default()
    }
}

/// Where an object of a tenancy namespace points: its tenancy, by the
/// reference it carries or, failing that, the one its namespace carries.
/// While the namespace is not cached (made while its watch was down, and
/// not relisted yet), nothing is woken and nothing is lost: the namespace
/// wakes its tenancy when its cache shows it, and this object is cached by
/// then.
pub fn owner(reference: Option<&str>, namespace: Option<&Known>) -> Option<TenancyRef> {
    let reference = reference.or_else(|| namespace?.tenancy.as_deref())?;
    let (ns, name) = reference.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
}

/// Where the controllers take what to reconcile from.
#[derive(Clone)]
pub struct Senders {
    pub requests: UnboundedSender<RequestRef>,
    pub tenancies: UnboundedSender<TenancyRef>,
    pub changes: UnboundedSender<ChangeRef>,
    pub units: UnboundedSender<UnitRef>,
}

impl Senders {
    pub fn send(&self, wakes: Wakes) {
        // A controller that stopped takes nothing more: the operator is
        // ending.
        for r in wakes.requests {
            let _ = self.requests.send(r);
        }
        for t in wakes.tenancies {
            let _ = self.tenancies.send(t);
        }
        for c in wakes.changes {
            let _ = self.changes.send(c);
        }
        for u in wakes.units {
            let _ = self.units.send(u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenancy(ns: &str, name: &str, request: &str) -> Packed<Tenancy> {
        let t = super::super::packed::tests::approved(ns, name, request);
        Packed::pack(&kube::core::DeserializeGuard(Ok(t)))
    }

    fn change(ns: &str, name: &str, tenancy: &str) -> Arc<Guarded<ChangeRequest>> {
        let text = std::fs::read_to_string(format!(
            "{}/config/samples/31-changerequest-terminate.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut c: ChangeRequest = serde_saphyr::from_str(&text).unwrap();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some(ns.into());
        c.spec.tenancy = tenancy.into();
        Arc::new(kube::core::DeserializeGuard(Ok(c)))
    }

    #[test]
    fn a_tenancy_wakes_its_request_unit_and_its_own_changes_only() {
        let t = tenancy("unit-finance", "oa", "oa-2026");
        let changes = [
            change("unit-finance", "resize", "oa"),
            change("unit-finance", "other", "erp"),
            change("unit-health", "same-name", "oa"),
        ];
        let w = of_tenancy(&t, &changes);
        let names = |v: &[ChangeRef]| v.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&w.changes), ["resize"]);
        assert_eq!(w.requests.len(), 1);
        assert_eq!(
            (
                w.requests[0].name.as_str(),
                w.requests[0].namespace.as_deref()
            ),
            ("oa-2026", Some("unit-finance"))
        );
        assert_eq!(w.units[0].name, "unit-finance");
        assert_eq!(w.tenancies[0].name, "oa");
    }

    #[test]
    fn a_unit_wakes_the_tenancies_filed_in_it() {
        let tenancies = [
            Arc::new(tenancy("unit-finance", "oa", "oa")),
            Arc::new(tenancy("unit-health", "his", "his")),
        ];
        let mut ns = PartialObjectMeta::<Namespace>::default();
        ns.metadata.name = Some("unit-finance".into());
        let w = of_unit(&ns, &tenancies);
        assert_eq!(w.tenancies.len(), 1);
        assert_eq!(w.tenancies[0].name, "oa");
        assert_eq!(every_tenancy(&tenancies).tenancies.len(), 2);
    }

    #[test]
    fn an_object_wakes_the_tenancy_it_or_its_namespace_names() {
        assert_eq!(owner(None, None), None);
        let ns = Known {
            tenancy: Some("unit-finance/oa".into()),
            ..Known::default()
        };
        let by_namespace = owner(None, Some(&ns)).unwrap();
        assert_eq!(
            (
                by_namespace.name.as_str(),
                by_namespace.namespace.as_deref()
            ),
            ("oa", Some("unit-finance"))
        );
        assert_eq!(
            owner(Some("unit-health/his"), Some(&ns)).unwrap().name,
            "his"
        );
        assert_eq!(owner(Some("no-slash"), Some(&ns)), None);
    }
}
