//! A tenancy's life (Art. 14-16): provisioning until every approved resource
//! is in place (high-end items after the vendor's procurement), the 30-day
//! trial from delivery, then formal operation with billing, or, unused,
//! reclaim with the unit's applications suspended; and the release of
//! everything, wiped, when the tenancy is retired. Pure: the controller
//! gathers what exists and applies the plan.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::keys;
use crate::api::tenancy::{
    ExtensionDelivery, InventoryItem, RetirementReason, TenancyStatus, UsageEvidence,
};
use crate::api::{TenancyPhase, TenancySpec};
use crate::calendar;
use crate::conditions::{self, Wanted};
use crate::provisioning::{self, Desired, ProvisioningConfig};
use crate::record::{Note, Recorder};
use crate::release::{self, Deletion, WipeConfig};

mod oversight;
mod settle;

pub use oversight::{
    compliance_gaps, condition as oversight_condition, rectification_due, trigger_text,
};
pub use settle::{Outcome, Refusal, Settled, Wake, settle};

const NO_USAGE_YET: &str = "no VM has run with its monitoring probe reporting yet";

/// Art. 15: the trial lasts 30 calendar days from delivery.
pub const TRIAL_DAYS: i64 = 30;

pub mod condition {
    pub const READY: &str = "Ready";
    pub const DELIVERED: &str = "Delivered";
    pub const USAGE_DETECTED: &str = "UsageDetected";
    pub const RELEASED: &str = "Released";
    pub const WIPE_FAILED: &str = "WipeFailed";
    pub const UNIT_GROUP_KNOWN: &str = "UnitGroupKnown";
    /// The apiserver refused an object the tenancy needs.
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// Deletion was requested while the tenancy still holds resources.
    pub const DELETION_HELD: &str = "DeletionHeld";
    /// The namespace the tenancy's name maps to is someone else's.
    pub const NAMESPACE_OWNED: &str = "NamespaceOwned";
    /// Volumes of the tenancy disappeared without the wipe the measures
    /// require.
    pub const VOLUMES_LOST: &str = "VolumesLost";
}

/// An object the operator applied, as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Seen {
    /// Its `govcloud.dev/spec-hash`.
    pub hash: Option<String>,
    /// The fingerprint of what the operator governs of it, as it is (see
    /// [`provisioning::governed`]), for the kinds that have one.
    pub live: Option<String>,
    /// In the state the tenancy needs (quota enforced, VM created ...).
    pub ready: bool,
    /// Being deleted.
    pub deleting: bool,
}

/// A VM instance of the tenancy, as KubeVirt reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    /// When it entered phase Running, if it did.
    pub running_since: Option<Timestamp>,
    /// When its guest agent connected (`AgentConnected`), if it did.
    pub agent_since: Option<Timestamp>,
}

/// Looks up what exists in the tenancy namespace.
pub trait Lookup {
    /// One of the operator's objects, by kind and name.
    fn object(&self, kind: &str, name: &str) -> Option<Seen>;
    /// The instance of a VM, by the VM's name.
    fn instance(&self, vm: &str) -> Option<Instance>;
    /// What the tenancy's quota counts as used of `requests.storage`, as
    /// its status says.
    fn quota_storage_used(&self) -> Option<String>;
}

/// The tenancy's namespace, as it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenNamespace {
    pub uid: String,
    pub terminating: bool,
    /// Whether it is this tenancy's (see [`provisioning::owner`]).
    pub owner: Result<(), String>,
}

/// What exists of the tenancy.
pub struct Observed<'a> {
    /// Its namespace, if one of that name exists, whoever made it.
    pub namespace: Option<SeenNamespace>,
    pub lookup: &'a (dyn Lookup + Sync),
    /// Everything in the namespace, gathered only while releasing or
    /// removing items.
    pub view: Option<release::Namespace>,
}

impl Observed<'_> {
    /// The UID of the tenancy's namespace, while it exists and is not being
    /// deleted: what the objects in it are owned by.
    pub fn namespace_uid(&self) -> Option<&str> {
        self.namespace
            .as_ref()
            .filter(|n| !n.terminating)
            .map(|n| n.uid.as_str())
    }
}

/// Whether the controller should gather the whole namespace for this reconcile.
pub fn needs_view(
    spec: &TenancySpec,
    status: &TenancyStatus,
    annotations: &BTreeMap<String, String>,
    now: Timestamp,
) -> bool {
    let held = status.held.is_some()
        || status.isolation.is_some()
        || annotation(annotations, keys::ISOLATE).is_some()
        || status.rectification.as_ref().is_some_and(|c| {
            c.closed_at.is_none() && (c.force_stopped_at.is_some() || now >= c.due_at.0)
        });
    status.retired_at.is_none()
        && (releasing(spec, status, now) || status.inventory.iter().any(|i| i.removing) || held)
}

pub struct Input<'a> {
    pub unit_namespace: &'a str,
    pub name: &'a str,
    /// The tenancy's namespace (see [`namespace_of`]).
    pub namespace: &'a str,
    pub generation: i64,
    pub spec: &'a TenancySpec,
    pub status: &'a TenancyStatus,
    pub annotations: &'a BTreeMap<String, String>,
    pub unit_group: Option<&'a str>,
    /// The groups of the reviewers, vendors and auditors: never bound as a
    /// unit's.
    pub role_groups: &'a [&'a str],
    /// Every storage class known, the cluster's and the price list's.
    pub storage_classes: &'a std::collections::BTreeSet<String>,
    pub observed: &'a Observed<'a>,
    pub provisioning: &'a ProvisioningConfig,
    pub wipe: &'a WipeConfig,
    pub oversight: &'a crate::config::OversightConfig,
    /// Deletion was requested (a deletion timestamp is set).
    pub deleting: bool,
    /// The tenancy carries the operator's finalizer.
    pub finalized: bool,
    pub now: Timestamp,
}

impl<'a> Input<'a> {
    /// What the tenancy's objects are built from (see
    /// [`provisioning::desired`]), bound to `group` if any, isolated or not.
    fn tenancy(
        &self,
        group: Option<&'a str>,
        procured: bool,
        isolated: bool,
        storage_in_removal: BTreeMap<String, u64>,
    ) -> provisioning::Tenancy<'a> {
        provisioning::Tenancy {
            unit_namespace: self.unit_namespace,
            name: self.name,
            namespace: self.namespace,
            spec: self.spec,
            unit_group: group,
            namespace_uid: self.observed.namespace_uid(),
            procured,
            halted: false,
            isolated,
            storage_in_removal,
            storage_classes: self.storage_classes,
        }
    }
}

/// The finalizer that keeps a tenancy, and so its resources, until they are
/// released by a decision the measures require.
pub const FINALIZER: &str = "govcloud.dev/release";

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub status: TenancyStatus,
    pub events: Vec<Note>,
    pub requeue_at: Option<Timestamp>,
    /// What to carry out; [`Actions::steps`] gives the order.
    pub actions: Actions,
}

/// What a plan asks the executor to do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Actions {
    pub apply: Vec<Desired>,
    pub delete: Vec<Deletion>,
    /// Suspend the unit's applications, for this reason (Art. 15).
    pub suspend_unit: Option<String>,
    /// VMs of the tenancy namespace to set to `Halted`.
    pub halt: Vec<String>,
    /// Whether to look again soon: the plan waits on objects the operator
    /// does not watch (the unit's own VMs, policies, wipe Jobs).
    pub poll: bool,
    /// Add (`true`) or remove (`false`) the finalizer.
    pub finalizer: Option<bool>,
    /// VMs whose `runStrategy` / `running` to set (by the halt manager): a
    /// hold stopping them, or its lifting putting them back.
    pub run_states: Vec<crate::api::tenancy::HeldVm>,
    /// VM instances to pause and unpause (a hold in `pause` mode).
    pub pause: Vec<String>,
    pub unpause: Vec<String>,
    /// The unit's NetworkPolicies to put back (a hold lifted).
    pub restore_policies: Vec<crate::api::tenancy::StashedPolicy>,
    /// Retire the tenancy: set `spec.retirement` (a deregistration).
    pub retire: Option<crate::api::tenancy::Retirement>,
    /// Objects someone else changed, put back by this plan (`Kind/name`).
    pub drift: Vec<String>,
    /// The unit's own workloads to delete (a release).
    pub remove: Vec<release::Removal>,
    /// Volumes found gone without a wipe by this plan.
    pub lost_volumes: Vec<String>,
    /// Have the quota controller count the quota's usage again.
    pub recount_quota: bool,
}

/// One thing to carry out, in the order [`Actions::steps`] gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step<'a> {
    /// Suspend the unit's applications, for this reason (Art. 15).
    SuspendUnit(&'a str),
    /// Add (`true`) or remove (`false`) the finalizer.
    Finalizer(bool),
    /// Objects to write, wave by wave (`provisioning::wave`): the namespace
    /// is a plan of its own, planned again with the namespace as created;
    /// VMs and volumes wait for the quota in force; the unit's binding
    /// waits for the quota in force and counting them. An object the
    /// apiserver refuses is reported, not retried blindly: the others of its
    /// wave still apply.
    Apply(&'a [Desired]),
    /// Have the quota controller count the quota's usage again.
    RecountQuota,
    RestorePolicy(&'a crate::api::tenancy::StashedPolicy),
    RunState(&'a crate::api::tenancy::HeldVm),
    Halt(&'a str),
    /// Pause (`true`) or unpause a VM instance; KubeVirt may fail to.
    Pause(&'a str, bool),
    Retire(&'a crate::api::tenancy::Retirement),
    /// Write the status settled from what the steps before reported. What
    /// follows deletes, and the status records first what it deletes.
    WriteStatus,
    Delete(&'a Deletion),
    Remove(&'a release::Removal),
}

impl Actions {
    /// The steps in the order they are carried out: the unit suspended and
    /// the finalizer in place before anything is created; objects applied
    /// before a hold is enforced or lifted on them; a deregistration retired;
    /// the status written; then the deletions it records.
    pub fn steps(&self) -> Vec<Step<'_>> {
        let mut steps = Vec::new();
        steps.extend(self.suspend_unit.as_deref().map(Step::SuspendUnit));
        steps.extend(self.finalizer.map(Step::Finalizer));
        if !self.apply.is_empty() {
            steps.push(Step::Apply(&self.apply));
        }
        if self.recount_quota {
            steps.push(Step::RecountQuota);
        }
        steps.extend(self.restore_policies.iter().map(Step::RestorePolicy));
        steps.extend(self.run_states.iter().map(Step::RunState));
        steps.extend(self.halt.iter().map(|vm| Step::Halt(vm)));
        steps.extend(self.pause.iter().map(|vm| Step::Pause(vm, true)));
        steps.extend(self.unpause.iter().map(|vm| Step::Pause(vm, false)));
        steps.extend(self.retire.iter().map(Step::Retire));
        steps.push(Step::WriteStatus);
        steps.extend(self.delete.iter().map(Step::Delete));
        steps.extend(self.remove.iter().map(Step::Remove));
        steps
    }
}

/// The namespace a tenancy lives in: `recorded`, the one its status names,
/// if that namespace still is the tenancy's (a tenancy keeps the namespace it
/// was given, whatever the naming of later versions), else the one its name
/// maps to (see [`provisioning::namespace_name`]).
pub fn namespace_of(
    recorded: Option<&str>,
    unit_namespace: &str,
    unit: &str,
    name: &str,
) -> String {
    recorded.map_or_else(
        || provisioning::namespace_name(unit_namespace, unit, name),
        str::to_owned,
    )
}

/// Whether a tenancy still holds resources (not yet released, or without a
/// status yet): its unit's namespace must stay.
pub fn in_service(status: Option<&TenancyStatus>) -> bool {
    status.is_none_or(|s| s.retired_at.is_none())
}

/// Whether the tenancy is being (or has been) released, and why.
pub fn releasing(spec: &TenancySpec, status: &TenancyStatus, now: Timestamp) -> bool {
    let retire_due = spec
        .retirement
        .as_ref()
        .is_some_and(|r| r.effective_at.as_ref().is_none_or(|t| now >= t.0));
    retire_due || status.phase == Some(TenancyPhase::Reclaimed)
}

struct Builder<'a, 'b> {
    input: &'b Input<'a>,
    rec: Recorder<TenancyStatus>,
    todo: Actions,
    /// A hold is enforced: `Ready` says so rather than what is in place.
    held: bool,
}

impl Builder<'_, '_> {
    fn cond(&mut self, w: Wanted<'_>) -> bool {
        self.rec.cond(w)
    }

    fn event(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.rec.event(warning, reason, message);
    }

    fn wake_at(&mut self, at: Timestamp) {
        self.rec.wake_at(at);
    }

    fn finish(self) -> Plan {
        Plan {
            status: self.rec.status,
            events: self.rec.events,
            requeue_at: self.rec.requeue_at,
            actions: self.todo,
        }
    }

    fn enter(&mut self, phase: TenancyPhase, reason: &'static str, message: String) {
        self.rec.status.phase = Some(phase);
        let warning = matches!(phase, TenancyPhase::Reclaimed | TenancyPhase::ForceStopped);
        self.event(warning, reason, message);
    }
}

fn annotation<'a>(map: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    map.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
}

pub fn plan(input: &Input<'_>) -> Plan {
    let mut plan = planned(input);
    // Its times as people read them, from what was decided.
    plan.status.show();
    plan
}

fn planned(input: &Input<'_>) -> Plan {
    let mut b = Builder {
        input,
        rec: Recorder::new(input.status.clone(), input.generation, input.now),
        todo: Actions::default(),
        held: false,
    };
    b.rec.status.observed_generation = Some(input.generation);
    b.rec.status.namespace = Some(input.namespace.to_owned());
    if !to_plan(&mut b) {
        return b.finish();
    }
    // The passes, in the order they depend on each other. Oversight first:
    // a hold changes what is desired.
    oversight::isolation(&mut b);
    oversight::rectification(&mut b);
    oversight::deregistration(&mut b);
    let hold = oversight::hold(&mut b);
    b.held = hold.enforce;
    // Then what is desired, and what of it is in place.
    let provisioned = provision(&mut b);
    // Then the phase that follows from it (delivery, the trial's end).
    phase(&mut b, &provisioned);
    extensions(&mut b, provisioned.complete);
    // The hold enforced on what is in place.
    oversight::enforce(&mut b, hold);
    if b.rec
        .status
        .phase
        .is_some_and(|p| p != TenancyPhase::Provisioning)
    {
        oversight::compliance(&mut b);
    }
    delivery_confirmation(&mut b);
    b.finish()
}

/// The finalizer, a deletion held, and whether the tenancy is to be planned
/// any further: not once retired, not in a namespace that is not its own,
/// and not while it is released (a step of its own).
fn to_plan(b: &mut Builder<'_, '_>) -> bool {
    let input = b.input;
    let namespace = input.namespace;
    let done = input.status.retired_at.is_some();
    if !input.deleting && !input.finalized {
        b.todo.finalizer = Some(true);
    }
    if input.deleting && done && input.finalized {
        b.todo.finalizer = Some(false);
    }
    if input.deleting && !done {
        let message = "deleting this tenancy waits until its resources are released by an approved termination, a deregistration or an unused trial; nothing is removed until then".to_owned();
        b.rec.flag(
            Wanted::new(condition::DELETION_HELD, true, "ResourcesHeld", message),
            true,
            "DeletionHeld",
        );
    }
    if done {
        return false;
    }
    // Nothing is written into a namespace that is not this tenancy's.
    if let Some(SeenNamespace {
        owner: Err(why), ..
    }) = &input.observed.namespace
    {
        namespace_taken(b, namespace, why);
        return false;
    }
    b.rec.clear(condition::NAMESPACE_OWNED);
    if releasing(input.spec, input.status, input.now) {
        release_step(b, namespace);
        return false;
    }
    if let Some(r) = &input.spec.retirement
        && let Some(at) = &r.effective_at
    {
        b.wake_at(at.0);
    }
    true
}

/// What provisioning found: whether everything desired is in place, what is
/// not yet, what waits for the vendor, and the VMs.
struct Provisioned {
    complete: bool,
    pending: Vec<String>,
    held: Vec<String>,
    vms: Vec<String>,
}

/// Applies what differs from what was applied, and records the inventory.
fn provision(b: &mut Builder<'_, '_>) -> Provisioned {
    let input = b.input;
    // The vendor's acknowledgment, or high-end items already in place: an
    // annotation removed by mistake takes nothing away.
    let procured = annotation(input.annotations, keys::PROCURED).is_some()
        || high_end_in_place(input.spec, input.status);
    let group = unit_group(b);
    let namespace_uid = input.observed.namespace_uid();
    let tenancy = input.tenancy(group, procured, b.held, storage_in_removal(input));
    let desired = provisioning::desired(&tenancy, input.provisioning);
    let vms = desired
        .iter()
        .filter(|d| d.kind == "VirtualMachine")
        .map(|d| d.name.clone())
        .collect();
    let inventory = inventory(b, &desired);
    // VMs and volumes wait until the quota the allocation needs is in force,
    // so that they are never refused for want of it, and are charged by
    // quota admission as they are created. (Created before, in a namespace
    // just made, they would be counted by the quota controller when it
    // takes the quota up, from its own watch: measured under a burst, its
    // first count missed volumes made a moment before in three tenancies
    // of four, and each then waited for a recount.)
    let quota_in_force = inventory
        .iter()
        .any(|i| i.kind == "ResourceQuota" && i.ready);
    if !quota_in_force {
        b.todo
            .apply
            .retain(|d| !matches!(d.kind, "VirtualMachine" | "PersistentVolumeClaim"));
    }
    // The unit's people come in last, with them or after, once the quota
    // is in force and counts the volumes there are, so that nothing of
    // theirs escapes it; the limits and policies are written before the
    // binding when they go with it (see `provisioning::wave`). A count
    // without a volume (the quota controller counts from its own watch, and
    // counts a volume it missed only at its next full resync) is asked
    // again.
    let counted = quota_counts_volumes(input.observed.lookup, &desired);
    if !quota_in_force || !counted {
        let waiting = b.todo.apply.iter().any(|d| d.kind == "RoleBinding");
        b.todo.apply.retain(|d| d.kind != "RoleBinding");
        b.todo.recount_quota = waiting && quota_in_force;
    }
    let removing = removals(b, input.namespace, &inventory);
    lost_volumes(b, &inventory);
    // The namespace alone is desired until it exists; the rest follows.
    let complete = namespace_uid.is_some() && inventory.iter().all(|i| i.ready);
    let pending = inventory
        .iter()
        .filter(|i| !i.ready)
        .map(|i| format!("{} {}", i.kind, i.name))
        .collect();
    b.rec.status.inventory = inventory;
    b.rec.status.inventory.extend(removing);
    Provisioned {
        complete,
        pending,
        held: held_items(input.spec, procured),
        vms,
    }
}

/// Whether the quota counts as used at least the storage of the tenancy's
/// volumes the apiserver has.
fn quota_counts_volumes(lookup: &(dyn Lookup + Sync), desired: &[Desired]) -> bool {
    let claimed: i128 = desired
        .iter()
        .filter(|d| d.kind == "PersistentVolumeClaim")
        .filter(|d| lookup.object(d.kind, &d.name).is_some())
        .filter_map(|d| d.object["spec"]["resources"]["requests"]["storage"].as_str())
        .filter_map(crate::quantity::nanos)
        .sum();
    let used = lookup
        .quota_storage_used()
        .and_then(|q| crate::quantity::nanos(&q))
        .unwrap_or(0);
    used >= claimed
}

/// Each desired object as the caches show it: what to apply (new, changed,
/// or changed by someone else), and the inventory of what is in place.
fn inventory(b: &mut Builder<'_, '_>, desired: &[Desired]) -> Vec<InventoryItem> {
    let input = b.input;
    let mut inventory = Vec::with_capacity(desired.len());
    for d in desired {
        let seen = input.observed.lookup.object(d.kind, &d.name);
        let applied = seen
            .as_ref()
            .is_some_and(|s| s.hash.as_deref() == Some(d.hash.as_str()));
        // Applied, and changed since by someone else (a held tenancy's VMs
        // are left as the hold has them).
        let drifted = applied
            && d.fingerprint.is_some()
            && seen.as_ref().and_then(|s| s.live.as_ref()) != d.fingerprint.as_ref()
            && !(b.held && d.kind == "VirtualMachine");
        let current = applied && !drifted;
        if !current {
            let mut d = d.clone();
            if drifted {
                repair(b, &mut d);
            } else if d.kind == "Namespace" && input.observed.namespace.is_none() {
                d.write = provisioning::Write::Create;
            }
            if d.kind == "RoleBinding" && seen.is_some() {
                d.write = provisioning::Write::Recreate;
            }
            // An existing VM's run state is the unit's (and a hold's).
            if d.kind == "VirtualMachine" && seen.is_some() {
                d.write = provisioning::Write::Template;
            }
            b.todo.apply.push(d);
        }
        inventory.push(InventoryItem {
            api_version: d.api_version.to_owned(),
            kind: d.kind.to_owned(),
            name: d.name.clone(),
            namespace: None,
            ready: current && seen.as_ref().is_some_and(|s| s.ready),
            removing: false,
            cause: None,
        });
    }
    inventory
}

/// The phase that follows from what is in place: delivery, and the trial's
/// end (Art. 15, 16).
fn phase(b: &mut Builder<'_, '_>, p: &Provisioned) {
    let (complete, pending) = (p.complete, &p.pending);
    match b.rec.status.phase {
        None => {
            let message = format!(
                "provisioning the approved allocation in namespace {}",
                b.input.namespace
            );
            b.enter(TenancyPhase::Provisioning, "Provisioning", message);
            delivery(b, complete, pending, &p.held);
        }
        Some(TenancyPhase::Provisioning) => delivery(b, complete, pending, &p.held),
        Some(TenancyPhase::Trial) => {
            ready(b, complete, pending);
            let vms: Vec<&str> = p.vms.iter().map(String::as_str).collect();
            usage(b, &vms);
            trial_end(b);
        }
        Some(_) => ready(b, complete, pending),
    }
}

/// Art. 15, 16: a trial that has ended becomes formal operation if the
/// resources were used, and is reclaimed otherwise.
fn trial_end(b: &mut Builder<'_, '_>) {
    let input = b.input;
    let now = input.now;
    let ends = input.status.trial_ends_at.as_ref().map(|t| t.0);
    match ends {
        Some(end) if now >= end => {
            if b.rec
                .status
                .usage
                .as_ref()
                .is_some_and(|u| u.probe_reported_at.is_some())
            {
                b.rec.status.billing_started_at = Some(Time(end));
                b.enter(
                    TenancyPhase::Active,
                    "TrialPassed",
                    format!(
                        "the trial ended on {} with the resources in use: formal operation, billed from {} (Art. 16)",
                        calendar::local_date(end),
                        calendar::display(end)
                    ),
                );
            } else {
                let reason = format!(
                    "the trial of tenancy {} ended on {} without use (Art. 15)",
                    input.name,
                    calendar::local_date(end)
                );
                b.enter(
                    TenancyPhase::Reclaimed,
                    "TrialUnused",
                    format!("{reason}: its resources are reclaimed and wiped, and the unit's further applications suspended"),
                );
                if input.status.unit_suspended_at.is_none() {
                    b.todo.suspend_unit = Some(reason);
                    b.rec.status.unit_suspended_at = Some(Time(now));
                }
                b.cond(Wanted::new(
                    condition::READY,
                    false,
                    "Reclaimed",
                    "the unused trial was reclaimed",
                ));
                b.wake_at(now);
            }
        }
        Some(end) => b.wake_at(end),
        None => {}
    }
}

/// The unit's reply to the delivery letter (Attachment 2), recorded once.
fn delivery_confirmation(b: &mut Builder<'_, '_>) {
    let input = b.input;
    if let Some(value) = annotation(input.annotations, keys::DELIVERY_CONFIRMED)
        && input.status.delivery_confirmed_at.is_none()
        && input.status.delivered_at.is_some()
    {
        b.rec.status.delivery_confirmed_at = Some(Time(input.now));
        b.rec.status.delivery_confirmation = Some(value.to_owned());
        b.event(
            false,
            "DeliveryConfirmed",
            format!("the unit confirmed delivery (Attachment 2 reply): {value}"),
        );
    }
}

/// Storage of the operator's volumes that the allocation no longer has but
/// that still exist (being wiped), by class.
fn storage_in_removal(input: &Input<'_>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Some(view) = &input.observed.view else {
        return out;
    };
    let keep = provisioning::pvc_names(input.spec);
    for pvc in &view.pvcs {
        let ours = input
            .status
            .inventory
            .iter()
            .any(|i| i.kind == "PersistentVolumeClaim" && i.name == pvc.name);
        if ours && !keep.contains(&pvc.name) {
            *out.entry(pvc.class.clone()).or_default() += u64::from(pvc.size_gib);
        }
    }
    out
}

/// Whether any high-end VM or volume of the allocation was in place.
fn high_end_in_place(spec: &TenancySpec, status: &TenancyStatus) -> bool {
    let a = &spec.allocation;
    let names: Vec<String> = a
        .vm_groups
        .iter()
        .filter(|g| g.high_end)
        .flat_map(|g| (1..=g.count).map(|n| provisioning::vm_name(g.name.as_str(), n)))
        .chain(
            a.cloud_storage
                .iter()
                .filter(|v| v.high_end)
                .map(|v| provisioning::volume_pvc(v.name.as_str())),
        )
        .collect();
    // In the inventory, it was procured: ready or not (a VM stopped or held
    // is not "created" for KubeVirt).
    status.inventory.iter().any(|i| names.contains(&i.name))
}

fn held_items(spec: &TenancySpec, procured: bool) -> Vec<String> {
    if procured {
        return Vec::new();
    }
    let a = &spec.allocation;
    a.vm_groups
        .iter()
        .filter(|g| g.high_end)
        .map(|g| format!("VM group {} ({} VMs)", g.name, g.count))
        .chain(
            a.cloud_storage
                .iter()
                .filter(|v| v.high_end)
                .map(|v| format!("volume {}", v.name)),
        )
        .collect()
}

fn delivery(b: &mut Builder<'_, '_>, complete: bool, pending: &[String], held: &[String]) {
    let now = b.input.now;
    if complete && held.is_empty() {
        let ends = calendar::add_days(now, TRIAL_DAYS);
        b.rec.status.delivered_at = Some(Time(now));
        b.rec.status.trial_ends_at = Some(Time(ends));
        b.cond(Wanted::new(
            condition::DELIVERED,
            true,
            "Delivered",
            // True for as long as it stands, in the trial and after it.
            format!(
                "every approved resource was in place at {}; the 30-day trial (Art. 15) counts from then",
                calendar::display(now)
            ),
        ));
        b.enter(
            TenancyPhase::Trial,
            "Delivered",
            format!(
                "resources delivered; the 30-day trial ends {} (Art. 15): deploy the system and let the monitoring probe report",
                calendar::display(ends)
            ),
        );
        // The conditions the trial keeps, set now so that the next look
        // finds nothing to write.
        ready(b, true, &[]);
        b.cond(Wanted::new(
            condition::USAGE_DETECTED,
            false,
            "NoUsageYet",
            NO_USAGE_YET,
        ));
        b.wake_at(ends);
        return;
    }
    let (reason, message) = if !held.is_empty() && complete {
        (
            "AwaitingProcurement",
            format!(
                "high-end items wait for the vendor's procurement ({} on the tenancy, Art. 14): {}",
                keys::PROCURED,
                held.join(", ")
            ),
        )
    } else if !held.is_empty() {
        (
            "AwaitingProcurement",
            format!(
                "provisioning {}; high-end items wait for the vendor's procurement: {}",
                pending.join(", "),
                held.join(", ")
            ),
        )
    } else {
        (
            "Provisioning",
            format!("waiting for {}", pending.join(", ")),
        )
    };
    if b.cond(Wanted::new(
        condition::DELIVERED,
        false,
        reason,
        message.clone(),
    )) && reason == "AwaitingProcurement"
    {
        b.event(false, "AwaitingProcurement", message.clone());
    }
    b.cond(Wanted::new(condition::READY, false, reason, message));
}

/// The namespace of the tenancy's name exists and is someone else's: no
/// object is written into it, and a platform administrator is told.
fn namespace_taken(b: &mut Builder<'_, '_>, namespace: &str, why: &str) {
    if b.rec.status.phase.is_none() {
        b.rec.status.phase = Some(TenancyPhase::Provisioning);
    }
    let message = format!(
        "namespace {namespace} already exists and is not this tenancy's ({why}): nothing is written into it; a platform administrator resolves it, the operator never takes it over"
    );
    if b.cond(Wanted::new(
        condition::NAMESPACE_OWNED,
        false,
        "NamespaceTaken",
        message.clone(),
    )) {
        b.event(true, "NamespaceConflict", message.clone());
    }
    b.cond(Wanted::new(
        condition::READY,
        false,
        "NamespaceTaken",
        message,
    ));
}

/// The unit's group, if it may be bound in the tenancy namespace; otherwise
/// the unit's people get no access there and the status says why.
fn unit_group<'a>(b: &mut Builder<'a, '_>) -> Option<&'a str> {
    let input = b.input;
    let refused = match input.unit_group {
        None => Some((
            "AnnotationMissing",
            format!(
                "the unit namespace has no {} annotation: no RoleBinding for the unit's people",
                keys::UNIT_GROUP
            ),
        )),
        Some(g) => provisioning::bindable(g, input.role_groups)
            .err()
            .map(|why| ("GroupRefused", format!("not bound: {why}; a platform administrator declares the unit's own group in {} on its namespace", keys::UNIT_GROUP))),
    };
    let Some((reason, message)) = refused else {
        b.rec.clear(condition::UNIT_GROUP_KNOWN);
        return input.unit_group;
    };
    b.rec.flag(
        Wanted::new(condition::UNIT_GROUP_KNOWN, false, reason, message),
        true,
        "UnitGroupRefused",
    );
    // Access follows the declared group: a binding of before goes.
    for binding in [
        provisioning::UNIT_BINDING,
        provisioning::UNIT_BINDING_ISOLATED,
    ] {
        if input
            .observed
            .lookup
            .object("RoleBinding", binding)
            .is_some()
        {
            b.todo.delete.push(Deletion {
                api_version: "rbac.authorization.k8s.io/v1",
                kind: "RoleBinding",
                namespace: Some(input.namespace.to_owned()),
                name: binding.to_owned(),
            });
        }
    }
    None
}

/// An object the operator applied was changed by someone else: it is put
/// back whole (a policy, quota or binding) or in what the operator sets of
/// it (a namespace, a VM), and the change is reported.
fn repair(b: &mut Builder<'_, '_>, d: &mut Desired) {
    d.write = match d.kind {
        "Namespace" | "PersistentVolumeClaim" => provisioning::Write::Apply,
        "VirtualMachine" => provisioning::Write::Template,
        _ => provisioning::Write::Replace,
    };
    b.todo.drift.push(format!("{}/{}", d.kind, d.name));
    b.event(
        true,
        "DriftRepaired",
        format!(
            "{} {} was changed by someone other than the operator; put back as approved",
            d.kind, d.name
        ),
    );
}

/// Volumes that were in place and are gone, though nothing removed them: a
/// deletion that bypassed the wipe. Recorded and reported, never silent.
fn lost_volumes(b: &mut Builder<'_, '_>, desired: &[InventoryItem]) {
    let input = b.input;
    let lost: Vec<String> = input
        .status
        .inventory
        .iter()
        .filter(|i| i.kind == "PersistentVolumeClaim" && !i.removing)
        .filter(|i| desired.iter().any(|d| d.kind == i.kind && d.name == i.name))
        // Gone after it was in place, or going now, and not by the operator.
        .filter(|i| match input.observed.lookup.object(&i.kind, &i.name) {
            None => i.ready,
            Some(seen) => seen.deleting && i.ready,
        })
        // A loss still unacknowledged is not counted twice.
        .filter(|i| {
            !b.rec
                .status
                .lost_volumes
                .iter()
                .any(|l| l.name == i.name && l.acknowledged.is_none())
        })
        .map(|i| i.name.clone())
        .collect();
    if !lost.is_empty() {
        let message = format!(
            "volumes deleted without the wipe the measures require: {}; their data is gone unwiped from the operator's control. Empty volumes take their place; a vendor or reviewer acknowledges the loss with {}",
            lost.join(", "),
            keys::LOSS_ACKNOWLEDGED
        );
        b.event(true, "VolumesLost", message);
        for name in &lost {
            b.rec
                .status
                .lost_volumes
                .push(crate::api::tenancy::LostVolume {
                    name: name.clone(),
                    noticed_at: Time(input.now),
                    acknowledged: None,
                });
        }
        b.todo.lost_volumes = lost;
    }
    // An acknowledgment is of the losses it finds: a later loss needs a new
    // one (the same words acknowledge nothing new).
    if let Some(note) = annotation(input.annotations, keys::LOSS_ACKNOWLEDGED) {
        let used = b
            .rec
            .status
            .lost_volumes
            .iter()
            .any(|l| l.acknowledged.as_deref() == Some(note));
        if !used {
            for l in &mut b.rec.status.lost_volumes {
                l.acknowledged.get_or_insert_with(|| note.to_owned());
            }
        }
    }
    if b.rec.status.lost_volumes.is_empty() {
        b.rec.clear(condition::VOLUMES_LOST);
        return;
    }
    let open: Vec<&str> = b
        .rec
        .status
        .lost_volumes
        .iter()
        .filter(|l| l.acknowledged.is_none())
        .map(|l| l.name.as_str())
        .collect();
    let all: Vec<String> = b
        .rec
        .status
        .lost_volumes
        .iter()
        .map(|l| match &l.acknowledged {
            Some(note) => format!("{} (acknowledged: {note})", l.name),
            None => l.name.clone(),
        })
        .collect();
    let (reason, message) = if open.is_empty() {
        (
            "Acknowledged",
            format!("volumes lost without a wipe: {}", all.join(", ")),
        )
    } else {
        (
            "DeletedWithoutWipe",
            format!(
                "volumes lost without a wipe: {}; a vendor or reviewer acknowledges {} with a new note in {}",
                all.join(", "),
                open.join(", "),
                keys::LOSS_ACKNOWLEDGED
            ),
        )
    };
    b.cond(Wanted::new(condition::VOLUMES_LOST, true, reason, message));
}

fn ready(b: &mut Builder<'_, '_>, complete: bool, pending: &[String]) {
    if b.held {
        return;
    }
    if b.rec
        .status
        .lost_volumes
        .iter()
        .any(|l| l.acknowledged.is_none())
    {
        b.cond(Wanted::new(
            condition::READY,
            false,
            "VolumesLost",
            "volumes of the tenancy were deleted without a wipe: see the VolumesLost condition",
        ));
        return;
    }
    if complete {
        b.cond(Wanted::new(
            condition::READY,
            true,
            "InPlace",
            "every approved resource is in place",
        ));
    } else {
        b.cond(Wanted::new(
            condition::READY,
            false,
            "Reconciling",
            format!("bringing back {}", pending.join(", ")),
        ));
    }
}

/// Art. 15: a VM reached Running and its monitoring probe (the guest agent)
/// reported, within the trial.
fn usage(b: &mut Builder<'_, '_>, vms: &[&str]) {
    if b.rec
        .status
        .usage
        .as_ref()
        .is_some_and(|u| u.probe_reported_at.is_some())
    {
        return;
    }
    let ends = b.input.status.trial_ends_at.as_ref().map(|t| t.0);
    let now = b.input.now;
    let found = vms
        .iter()
        .filter_map(|vm| b.input.observed.lookup.instance(vm))
        .find_map(|i| {
            let running = i.running_since?;
            let agent = i.agent_since?;
            let within = ends.is_none_or(|end| agent <= end);
            within.then(|| (i.name.clone(), running.min(now), agent.min(now)))
        });
    if let Some((vm, running, agent)) = found {
        b.rec.status.usage = Some(UsageEvidence {
            vm: Some(vm.clone()),
            running_at: Some(Time(running)),
            probe_reported_at: Some(Time(agent)),
        });
        b.cond(Wanted::new(
            condition::USAGE_DETECTED,
            true,
            "ProbeReported",
            format!(
                "VM {vm} running since {}, its monitoring probe reporting since {}",
                calendar::display(running),
                calendar::display(agent)
            ),
        ));
        b.event(
            false,
            "UsageDetected",
            format!("VM {vm} is running and its monitoring probe reports"),
        );
    } else {
        b.cond(Wanted::new(
            condition::USAGE_DETECTED,
            false,
            "NoUsageYet",
            NO_USAGE_YET,
        ));
    }
}

/// Extensions have no trial: they are delivered (and billed) once in place.
fn extensions(b: &mut Builder<'_, '_>, complete: bool) {
    if !complete || b.rec.status.delivered_at.is_none() {
        return;
    }
    for request in &b.input.spec.extensions {
        if b.rec
            .status
            .extension_deliveries
            .iter()
            .any(|e| e.request == request.as_str())
        {
            continue;
        }
        b.rec.status.extension_deliveries.push(ExtensionDelivery {
            request: request.to_string(),
            delivered_at: Time(b.input.now),
        });
        b.rec.events.push(Note {
            warning: false,
            reason: "ExtensionDelivered",
            message: format!("the resources of extension {request} are in place; billed from now"),
            related: None,
        });
    }
}

fn release_step(b: &mut Builder<'_, '_>, namespace: &str) {
    let input = b.input;
    release_started(b);
    b.todo.poll = true;
    let Some(seen) = &input.observed.view else {
        // Gathered on the next reconcile.
        b.wake_at(input.now);
        return;
    };
    let cause = input
        .spec
        .retirement
        .as_ref()
        .map_or_else(|| "Reclaim".to_owned(), |r| r.reference.clone());
    let mut steps = release::plan(&release::Input {
        namespace,
        tenancy: input.name,
        seen,
        records: &input.status.wipe_records,
        jobs: &input.status.wipe_jobs,
        wipe: input.wipe,
        pod_security: input.provisioning.pod_security,
        scope: release::Scope::Namespace,
        cause: &cause,
        now: input.now,
    });
    if !narrow_access(b) {
        // Nothing is wiped while the unit's people can still act here.
        steps = release::Steps {
            halt: steps.halt,
            waiting: Some(format!(
                "narrowing the unit's access to {} before anything is wiped",
                input.provisioning.isolated_cluster_role
            )),
            ..Default::default()
        };
    }
    take_steps(b, &mut steps);
    if steps.failed.is_empty() {
        b.rec.clear(condition::WIPE_FAILED);
    } else {
        wipe_failed(b, &steps.failed);
    }
    match steps.waiting {
        Some(waiting) => {
            b.cond(Wanted::new(
                condition::RELEASED,
                false,
                "Releasing",
                waiting,
            ));
        }
        None => released(b),
    }
}

/// A release begins: `Terminating` says why, and billing ends.
fn release_started(b: &mut Builder<'_, '_>) {
    let input = b.input;
    let starting = !matches!(
        b.rec.status.phase,
        Some(TenancyPhase::Terminating | TenancyPhase::Reclaimed)
    );
    if starting {
        let (reason, why) = match input.spec.retirement.as_ref().map(|r| r.reason) {
            Some(RetirementReason::EmergencyRejected) => (
                "EmergencyRejected",
                "the application opened in an emergency was rejected",
            ),
            Some(RetirementReason::Deregistered) => (
                "Deregistered",
                "deregistered after rectification failed (Art. 20)",
            ),
            _ => ("Terminating", "termination approved (Art. 19)"),
        };
        b.enter(
            TenancyPhase::Terminating,
            reason,
            format!("{why}: stopping VMs, wiping and deleting every volume, then the namespace"),
        );
    }
    if b.rec.status.billing_started_at.is_some() && b.rec.status.billing_ended_at.is_none() {
        let ends = input
            .spec
            .retirement
            .as_ref()
            .and_then(|r| r.effective_at.as_ref())
            .map_or(input.now, |t| t.0);
        b.rec.status.billing_ended_at = Some(Time(ends));
    }
}

/// Everything released: the tenancy holds nothing and is retired.
fn released(b: &mut Builder<'_, '_>) {
    let input = b.input;
    b.rec.status.retired_at = Some(Time(input.now));
    b.rec.status.inventory.clear();
    b.cond(Wanted::new(
        condition::RELEASED,
        true,
        "Released",
        format!(
            "every resource released; {} volumes wiped",
            b.rec
                .status
                .wipe_records
                .iter()
                .filter(|r| r.result == crate::api::tenancy::WipeResult::Succeeded)
                .count()
        ),
    ));
    b.cond(Wanted::new(
        condition::READY,
        false,
        "Released",
        "the tenancy holds no resources",
    ));
    if b.rec.status.phase == Some(TenancyPhase::Terminating) {
        b.enter(
            TenancyPhase::Retired,
            "Retired",
            "every resource released and wiped".into(),
        );
    } else {
        b.event(
            false,
            "Released",
            "every resource of the reclaimed tenancy released and wiped",
        );
    }
}

/// A namespace being released is the unit's to watch, not to act in (no
/// exec into, eviction of or labelling of the wipe's pods, no Job or VM of
/// its own in the wipe's way): its group is bound to the isolated role
/// instead of its own. Whether its own binding is gone.
fn narrow_access(b: &mut Builder<'_, '_>) -> bool {
    let input = b.input;
    let present = |name: &str| input.observed.lookup.object("RoleBinding", name);
    // The cache knows bindings by the operator's label; what binds is what
    // the namespace holds, whatever its labels.
    let bound = |name: &str| {
        present(name).is_some()
            || input
                .observed
                .view
                .as_ref()
                .is_some_and(|v| v.bindings.iter().any(|b| b == name))
    };
    let bindable = input
        .unit_group
        .filter(|g| provisioning::bindable(g, input.role_groups).is_ok());
    let namespace_uid = input.observed.namespace_uid();
    let tenancy = input.tenancy(bindable, false, true, BTreeMap::new());
    if namespace_uid.is_some()
        && let Some(d) = provisioning::unit_binding(&tenancy, input.provisioning)
        && present(&d.name).and_then(|s| s.hash).as_deref() != Some(d.hash.as_str())
    {
        b.todo.apply.push(d);
    }
    if !bound(provisioning::UNIT_BINDING) {
        return true;
    }
    b.todo.delete.push(Deletion {
        api_version: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        namespace: Some(input.namespace.to_owned()),
        name: provisioning::UNIT_BINDING.to_owned(),
    });
    false
}

/// Hands a release's steps to the plan, with an event per step and wipe
/// record; what is left of `steps` is what it waits for and what failed.
fn take_steps(b: &mut Builder<'_, '_>, steps: &mut release::Steps) {
    let apply = std::mem::take(&mut steps.apply);
    let halt = std::mem::take(&mut steps.halt);
    let delete = std::mem::take(&mut steps.delete);
    let records = std::mem::take(&mut steps.records);
    let impostors = std::mem::take(&mut steps.impostors);
    for r in std::mem::take(&mut steps.remove) {
        b.rec.events.push(Note {
            warning: false,
            reason: "WorkloadRemoved",
            message: format!(
                "{} {} of the unit's removed before the volumes are wiped",
                r.workload.kind, r.workload.name
            ),
            related: None,
        });
        b.todo.remove.push(r);
    }
    let namespace = b.input.namespace;
    let related = |api_version: &'static str, kind: &'static str, ns: &str, name: &str| {
        Some(crate::record::Related {
            api_version,
            kind,
            namespace: ns.to_owned(),
            name: name.to_owned(),
        })
    };
    // An event per step, about the object it concerns.
    for job in &impostors {
        b.rec.events.push(Note {
            warning: true,
            reason: "WipeJobRefused",
            message: format!(
                "Job {job} names a volume to wipe but is not a wipe Job the operator created (by UID) with the configured command: it is removed and counts for nothing"
            ),
            related: related("batch/v1", "Job", namespace, job),
        });
    }
    for vm in &halt {
        b.rec.events.push(Note {
            warning: false,
            reason: "Halting",
            message: format!("VM {vm} set to Halted before its volumes are wiped"),
            related: related("kubevirt.io/v1", "VirtualMachine", namespace, vm),
        });
    }
    for d in delete.iter().filter(|d| d.kind != "Job") {
        let (reason, api_version, kind) = match d.kind {
            "PersistentVolumeClaim" => ("VolumeDeleted", "v1", "PersistentVolumeClaim"),
            "VirtualMachine" => ("VMDeleted", "kubevirt.io/v1", "VirtualMachine"),
            "VirtualMachineInstance" => (
                "VMInstanceDeleted",
                "kubevirt.io/v1",
                "VirtualMachineInstance",
            ),
            _ => ("NamespaceDeleted", "v1", "Namespace"),
        };
        b.rec.events.push(Note {
            warning: false,
            reason,
            message: format!("{} {} deleted", d.kind, d.name),
            related: related(
                api_version,
                kind,
                d.namespace.as_deref().unwrap_or_default(),
                &d.name,
            ),
        });
    }
    b.todo.apply.extend(apply);
    b.todo.halt.extend(halt);
    b.todo.delete.extend(delete);
    for record in records {
        let ok = record.result == crate::api::tenancy::WipeResult::Succeeded;
        let message = match &record.message {
            Some(m) => format!(
                "{} {} ({} GiB): {}",
                record.kind, record.name, record.size_gib, m
            ),
            None => format!(
                "{} {} ({} GiB) wiped by {:?}",
                record.kind, record.name, record.size_gib, record.method
            ),
        };
        b.rec.events.push(Note {
            warning: !ok,
            reason: if ok { "VolumeWiped" } else { "WipeFailed" },
            message,
            related: Some(crate::record::Related {
                api_version: "v1",
                kind: "PersistentVolumeClaim",
                namespace: record.namespace.clone(),
                name: record.name.clone(),
            }),
        });
        b.rec.status.wipe_records.push(record);
    }
}

fn wipe_failed(b: &mut Builder<'_, '_>, volumes: &[String]) {
    b.cond(Wanted::new(
        condition::WIPE_FAILED,
        true,
        "WipeJobFailed",
        format!(
            "wiping failed for {}; those volumes are kept. Delete the failed Job to try again",
            volumes.join(", ")
        ),
    ));
}

/// Items the allocation no longer has (a reduction): VMs and volumes leave
/// only after their volumes are wiped. Returns the inventory entries of what
/// is still being removed.
fn removals(
    b: &mut Builder<'_, '_>,
    namespace: &str,
    desired: &[InventoryItem],
) -> Vec<InventoryItem> {
    let input = b.input;
    let latest = input
        .spec
        .changes
        .last()
        .map_or_else(|| "Reduction".to_owned(), |c| format!("ChangeRequest/{c}"));
    let mut removing: Vec<InventoryItem> = input
        .status
        .inventory
        .iter()
        .filter(|i| matches!(i.kind.as_str(), "VirtualMachine" | "PersistentVolumeClaim"))
        .filter(|i| i.removing || !desired.iter().any(|d| d.kind == i.kind && d.name == i.name))
        .map(|i| InventoryItem {
            ready: false,
            removing: true,
            cause: Some(i.cause.clone().unwrap_or_else(|| latest.clone())),
            ..i.clone()
        })
        .collect();
    if removing.is_empty() {
        b.rec.clear(condition::WIPE_FAILED);
        return removing;
    }
    b.todo.poll = true;
    let Some(view) = &input.observed.view else {
        b.wake_at(input.now);
        return removing;
    };
    let named = |kind: &str, name: &str| removing.iter().any(|i| i.kind == kind && i.name == name);
    // Only the VMs and volumes removed: nothing else of the namespace (the
    // unit's own workloads, its policies) is touched by a reduction.
    let kept = view.only(
        |vm| named("VirtualMachine", vm),
        |pvc| named("PersistentVolumeClaim", pvc),
    );
    let subset = release::Namespace {
        exists: view.exists,
        terminating: view.terminating,
        vms: kept.vms,
        instances: kept.instances,
        pvcs: kept.pvcs,
        jobs: kept.jobs,
        ..Default::default()
    };
    let mut failed = Vec::new();
    let causes: std::collections::BTreeSet<String> =
        removing.iter().filter_map(|i| i.cause.clone()).collect();
    for cause in &causes {
        let of_cause = |kind: &str, name: &str| {
            removing
                .iter()
                .any(|i| i.kind == kind && i.name == name && i.cause.as_ref() == Some(cause))
        };
        let seen = subset.only(
            |vm| of_cause("VirtualMachine", vm),
            |pvc| of_cause("PersistentVolumeClaim", pvc),
        );
        let steps = release::plan(&release::Input {
            namespace,
            tenancy: input.name,
            seen: &seen,
            records: &input.status.wipe_records,
            jobs: &input.status.wipe_jobs,
            wipe: input.wipe,
            pod_security: input.provisioning.pod_security,
            scope: release::Scope::Items,
            cause,
            now: input.now,
        });
        failed.extend(steps.failed.iter().cloned());
        let mut steps = steps;
        take_steps(b, &mut steps);
    }
    if failed.is_empty() {
        b.rec.clear(condition::WIPE_FAILED);
    } else {
        wipe_failed(b, &failed);
    }
    // What is gone is done.
    removing.retain(|i| match i.kind.as_str() {
        "VirtualMachine" => subset.vms.iter().any(|v| v.name == i.name),
        _ => subset.pvcs.iter().any(|p| p.name == i.name),
    });
    if !removing.is_empty() {
        b.wake_at(
            input
                .now
                .saturating_add(jiff::SignedDuration::from_secs(2))
                .unwrap_or(input.now),
        );
    }
    removing
}

/// What the operator has just created that only counts by its UID: a wipe
/// Job (see [`release::plan`]). The record to keep, if there is one; the
/// executor writes it at once, [`settle`] into the status it writes next.
pub fn wipe_record(d: &Desired, uid: &str) -> Option<crate::api::tenancy::WipeJob> {
    if d.kind != "Job" {
        return None;
    }
    let pvc = d.object["metadata"]["annotations"][release::WIPE_OF].as_str()?;
    Some(crate::api::tenancy::WipeJob {
        pvc: pvc.to_owned(),
        job: d.name.clone(),
        uid: uid.to_owned(),
    })
}

/// Whether a tenancy with this status has nothing in progress: nothing left
/// for the operator to do until something changes or a deadline comes.
/// One that is not settled is looked at again soon even if no change is
/// seen (a change missed must not leave it half done).
pub fn settled(status: &TenancyStatus, deleting: bool) -> bool {
    use conditions::{get, is_true};
    let c = &status.conditions;
    let in_progress = matches!(
        status.phase,
        None | Some(TenancyPhase::Provisioning | TenancyPhase::Terminating)
    );
    !deleting
        && !in_progress
        && get(c, condition::DELIVERED).is_none_or(|d| d.status == "True")
        && get(c, condition::NAMESPACE_OWNED).is_none_or(|d| d.status == "True")
        && !is_true(c, condition::APPLY_FAILED)
        && !is_true(c, condition::WIPE_FAILED)
        && !is_true(c, oversight_condition::HOLD_INCOMPLETE)
}

/// Whether two statuses say the same thing (condition times aside).
pub fn same_status(a: &TenancyStatus, b: &TenancyStatus) -> bool {
    conditions::same(&a.conditions, &b.conditions) && {
        let mut a = a.clone();
        let mut b = b.clone();
        a.conditions.clear();
        b.conditions.clear();
        a == b
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::api::CloudResourceRequest;

    /// The object of `kind` a plan applies.
    pub fn applied<'a>(plan: &'a Plan, kind: &str) -> &'a Desired {
        let found = plan.actions.apply.iter().find(|d| d.kind == kind);
        found.unwrap_or_else(|| panic!("the plan applies no {kind}"))
    }

    #[derive(Default)]
    pub struct Fake {
        pub objects: BTreeMap<(String, String), Seen>,
        pub instances: BTreeMap<String, Instance>,
        /// What the quota counts as used of `requests.storage`; unless set,
        /// a quota in force counts everything.
        pub storage_used: Option<String>,
    }

    impl Lookup for Fake {
        fn object(&self, kind: &str, name: &str) -> Option<Seen> {
            self.objects
                .get(&(kind.to_owned(), name.to_owned()))
                .cloned()
        }
        fn instance(&self, vm: &str) -> Option<Instance> {
            self.instances.get(vm).cloned()
        }
        fn quota_storage_used(&self) -> Option<String> {
            let quota = self
                .objects
                .get(&("ResourceQuota".to_owned(), provisioning::QUOTA.to_owned()));
            let everything = quota.is_some_and(|q| q.ready).then(|| "1Ei".to_owned());
            self.storage_used.clone().or(everything)
        }
    }

    impl Fake {
        /// Everything planned has been applied, and is ready when `ready`.
        pub fn applied(&mut self, plan: &Plan, ready: bool) {
            for d in &plan.actions.apply {
                self.objects.insert(
                    (d.kind.to_owned(), d.name.clone()),
                    Seen {
                        hash: Some(d.hash.clone()),
                        live: d.fingerprint.clone(),
                        ready,
                        deleting: false,
                    },
                );
            }
        }
    }

    pub fn spec() -> TenancySpec {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/samples/20-cloudresourcerequest-oa.yaml"
        ))
        .unwrap();
        let crr: CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        let s = crr.spec;
        TenancySpec {
            unit: "finance".into(),
            unit_name: s.unit.name.clone(),
            system_name: s.system.name.clone(),
            purpose: s.system.purpose.clone(),
            request: "oa".into(),
            request_generation: 1,
            service_types: s.service_types.clone(),
            allocation: s.resources.clone(),
            compliance: s.compliance.clone(),
            extensions: vec![],
            changes: vec![],
            emergency: None,
            retirement: None,
        }
    }

    pub struct World {
        pub spec: TenancySpec,
        pub status: TenancyStatus,
        pub annotations: BTreeMap<String, String>,
        pub fake: Fake,
        pub uid: Option<String>,
        pub view: Option<release::Namespace>,
        pub oversight: crate::config::OversightConfig,
        pub now: Timestamp,
        pub unit_group: String,
        pub storage_classes: std::collections::BTreeSet<String>,
        /// Whose the namespace is, once it exists.
        pub namespace_owner: Result<(), String>,
    }

    impl World {
        pub fn new() -> Self {
            Self {
                spec: spec(),
                status: TenancyStatus::default(),
                annotations: BTreeMap::new(),
                fake: Fake::default(),
                uid: None,
                view: None,
                oversight: Default::default(),
                now: "2026-11-27T02:00:00Z".parse().unwrap(),
                unit_group: "govcloud:unit:finance".into(),
                storage_classes: ["backup", "ssd", "standard"].map(String::from).into(),
                namespace_owner: Ok(()),
            }
        }

        pub fn step(&mut self) -> Plan {
            let observed = Observed {
                namespace: self.uid.clone().map(|uid| SeenNamespace {
                    uid,
                    terminating: false,
                    owner: self.namespace_owner.clone(),
                }),
                lookup: &self.fake,
                view: self.view.clone(),
            };
            let namespace = provisioning::namespace_name("unit-finance", &self.spec.unit, "oa");
            let plan = plan(&Input {
                unit_namespace: "unit-finance",
                name: "oa",
                namespace: &namespace,
                generation: 1,
                spec: &self.spec,
                status: &self.status,
                annotations: &self.annotations,
                unit_group: Some(self.unit_group.as_str()),
                role_groups: &[
                    "govcloud:reviewers",
                    "govcloud:vendors",
                    "govcloud:auditors",
                ],
                storage_classes: &self.storage_classes,
                observed: &observed,
                provisioning: &ProvisioningConfig::default(),
                wipe: &WipeConfig::default(),
                oversight: &self.oversight,
                deleting: false,
                finalized: true,
                now: self.now,
            });
            self.status = plan.status.clone();
            plan
        }

        /// Applies and readies everything until the plan is quiet.
        pub fn settle(&mut self) -> Plan {
            loop {
                let plan = self.step();
                if plan.actions.apply.is_empty() {
                    return plan;
                }
                if plan.actions.apply.iter().any(|d| d.kind == "Namespace") {
                    self.uid = Some("ns-uid".into());
                }
                self.fake.applied(&plan, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn a_tenancy_is_settled_when_nothing_is_in_progress() {
        use crate::api::tenancy::TenancyStatus;
        let now: Timestamp = "2026-12-07T02:00:00Z".parse().unwrap();
        let with = |phase, conds: &[(&str, bool)]| {
            let mut s = TenancyStatus {
                phase: Some(phase),
                ..Default::default()
            };
            for (t, v) in conds {
                conditions::set(&mut s.conditions, Wanted::new(t, *v, "R", "m"), 1, now);
            }
            s
        };
        let delivered = [(condition::DELIVERED, true)];
        assert!(settled(&with(TenancyPhase::Active, &delivered), false));
        assert!(settled(&with(TenancyPhase::Trial, &delivered), false));
        assert!(settled(&with(TenancyPhase::Retired, &[]), false));
        assert!(
            !settled(&with(TenancyPhase::Active, &delivered), true),
            "deleting"
        );
        assert!(!settled(&with(TenancyPhase::Provisioning, &[]), false));
        assert!(!settled(&with(TenancyPhase::Terminating, &[]), false));
        assert!(
            !settled(&TenancyStatus::default(), false),
            "never reconciled"
        );
        for waiting in [
            (condition::DELIVERED, false),
            (condition::APPLY_FAILED, true),
            (condition::NAMESPACE_OWNED, false),
            (condition::WIPE_FAILED, true),
            (oversight_condition::HOLD_INCOMPLETE, true),
        ] {
            assert!(
                !settled(&with(TenancyPhase::Active, &[waiting]), false),
                "{waiting:?}"
            );
        }
    }

    #[test]
    fn art14_delivery_comes_once_everything_is_ready_and_starts_the_trial() {
        let mut w = World::new();
        let first = w.step();
        assert_eq!(first.status.phase, Some(TenancyPhase::Provisioning));
        assert_eq!(first.actions.apply.len(), 1, "the namespace first");
        // Planned again with the namespace as its creation was answered:
        // the envelope.
        w.uid = Some("ns-uid".into());
        w.fake.applied(&first, true);
        let second = w.step();
        let kinds: Vec<&str> = second.actions.apply.iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            [
                "ResourceQuota",
                "LimitRange",
                "NetworkPolicy",
                "NetworkPolicy"
            ]
        );
        w.fake.applied(&second, false);
        assert!(
            w.step().actions.apply.is_empty(),
            "VMs, volumes and the unit's binding wait for the quota in force"
        );
        w.fake.applied(&second, true);
        // Then what fills it (3 VMs and 5 volumes) and the unit's binding.
        let third = w.step();
        let kinds: Vec<&str> = third.actions.apply.iter().map(|d| d.kind).collect();
        assert_eq!(kinds.len(), 9, "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| **k == "VirtualMachine").count(), 3);
        assert!(kinds.contains(&"RoleBinding"));
        w.fake.applied(&third, false);
        assert_eq!(
            w.step().status.phase,
            Some(TenancyPhase::Provisioning),
            "not ready yet"
        );
        w.fake.applied(&third, true);
        let plan = w.step();
        assert_eq!(plan.status.phase, Some(TenancyPhase::Trial));
        assert_eq!(
            plan.status.trial_ends_at.as_ref().unwrap().0.to_string(),
            "2026-12-27T02:00:00Z"
        );
        assert_eq!(plan.requeue_at.unwrap().to_string(), "2026-12-27T02:00:00Z");
        // Settled: nothing to apply, the same status.
        let again = w.step();
        assert!(again.actions.apply.is_empty());
        assert!(
            same_status(&plan.status, &again.status),
            "{:#?}\n{:#?}",
            plan.status.conditions,
            again.status.conditions
        );
        assert!(again.events.is_empty());
    }

    #[test]
    fn art14_the_unit_gets_in_only_once_the_quota_counts_the_volumes_there_are() {
        let mut w = World::new();
        w.settle();
        // The binding removed, and the quota made again (both by someone
        // else): the quota controller's first count missed the volumes.
        w.fake.objects.remove(&(
            "RoleBinding".to_owned(),
            provisioning::UNIT_BINDING.to_owned(),
        ));
        w.fake.storage_used = Some("1Gi".into());
        let plan = w.step();
        assert!(plan.actions.apply.is_empty(), "{:?}", plan.actions.apply);
        assert!(plan.actions.recount_quota, "a recount is asked");
        // Three system disks of 40 GiB, a data disk of 500, a volume of 1,024.
        w.fake.storage_used = Some("1643Gi".into());
        assert!(w.step().actions.apply.is_empty(), "one GiB short");
        w.fake.storage_used = Some("1644Gi".into());
        let plan = w.step();
        let kinds: Vec<&str> = plan.actions.apply.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, ["RoleBinding"]);
        assert!(!plan.actions.recount_quota);
    }

    fn reason_of(plan: &Plan, type_: &str) -> Option<(String, String)> {
        conditions::get(&plan.status.conditions, type_)
            .map(|c| (c.status.clone(), c.reason.clone()))
    }

    #[test]
    fn art8_a_namespace_that_is_not_the_tenancys_is_never_written_into() {
        let mut w = World::new();
        w.uid = Some("someone-elses".into());
        w.namespace_owner = Err("it belongs to tenancy unit-finance/sod-test".into());
        let plan = w.step();
        assert!(
            plan.actions.apply.is_empty() && plan.actions.delete.is_empty(),
            "{plan:#?}"
        );
        assert!(plan.actions.halt.is_empty() && plan.actions.run_states.is_empty());
        assert_eq!(
            reason_of(&plan, condition::NAMESPACE_OWNED),
            Some(("False".into(), "NamespaceTaken".into()))
        );
        assert_eq!(
            reason_of(&plan, condition::READY).unwrap().1,
            "NamespaceTaken"
        );
        assert!(
            plan.events
                .iter()
                .any(|e| e.reason == "NamespaceConflict" && e.warning)
        );
        // Said once.
        assert!(w.step().events.is_empty());
        // Not even a release touches it.
        w.spec.retirement = Some(crate::api::tenancy::Retirement {
            reason: RetirementReason::Deregistered,
            reference: "x".into(),
            decided_at: Time(w.now),
            effective_at: None,
        });
        w.view = Some(release::Namespace {
            exists: true,
            ..Default::default()
        });
        let plan = w.step();
        assert!(
            plan.actions.apply.is_empty() && plan.actions.delete.is_empty(),
            "{plan:#?}"
        );
    }

    #[test]
    fn art8_a_new_namespace_is_created_never_applied_over_an_existing_one() {
        let mut w = World::new();
        let first = w.step();
        assert_eq!(first.actions.apply[0].write, provisioning::Write::Create);
        w.settle();
        // Once it is the tenancy's, later changes to it are applied.
        w.spec.unit = "finance2".into();
        let plan = w.step();
        let ns = applied(&plan, "Namespace");
        assert_eq!(ns.write, provisioning::Write::Apply);
    }

    #[test]
    fn art8_what_someone_else_changed_is_put_back_and_said() {
        let mut w = World::new();
        w.settle();
        let key = (
            "NetworkPolicy".to_owned(),
            provisioning::DENY_POLICY.to_owned(),
        );
        w.fake.objects.get_mut(&key).unwrap().live = Some("opened".into());
        let key = ("VirtualMachine".to_owned(), "app-1".to_owned());
        w.fake.objects.get_mut(&key).unwrap().live = Some("resized".into());
        let plan = w.step();
        let writes: Vec<(&str, &str, provisioning::Write)> = plan
            .actions
            .apply
            .iter()
            .map(|d| (d.kind, d.name.as_str(), d.write))
            .collect();
        assert_eq!(
            writes,
            [
                (
                    "NetworkPolicy",
                    provisioning::DENY_POLICY,
                    provisioning::Write::Replace
                ),
                ("VirtualMachine", "app-1", provisioning::Write::Template),
            ]
        );
        assert_eq!(
            plan.actions.drift,
            [
                "NetworkPolicy/govcloud-default-deny",
                "VirtualMachine/app-1"
            ]
        );
        assert_eq!(
            plan.events
                .iter()
                .filter(|e| e.reason == "DriftRepaired" && e.warning)
                .count(),
            2
        );
        w.fake.applied(&plan, true);
        assert!(w.step().actions.apply.is_empty(), "put back, then quiet");
    }

    #[test]
    fn art19_volumes_deleted_without_a_wipe_are_reported_until_acknowledged() {
        let mut w = World::new();
        w.settle();
        assert_eq!(w.status.phase, Some(TenancyPhase::Trial));
        w.fake
            .objects
            .remove(&("PersistentVolumeClaim".to_owned(), "vol-files".to_owned()));
        let plan = w.step();
        assert_eq!(plan.actions.lost_volumes, ["vol-files"]);
        assert_eq!(plan.status.lost_volumes.len(), 1);
        assert_eq!(
            reason_of(&plan, condition::VOLUMES_LOST),
            Some(("True".into(), "DeletedWithoutWipe".into()))
        );
        assert_eq!(
            reason_of(&plan, condition::READY),
            Some(("False".into(), "VolumesLost".into()))
        );
        assert!(
            plan.events
                .iter()
                .any(|e| e.reason == "VolumesLost" && e.warning)
        );
        assert!(
            plan.actions.apply.iter().any(|d| d.name == "vol-files"),
            "an empty one takes its place"
        );
        w.fake.applied(&plan, true);
        // Being deleted by someone else counts as lost at once.
        let key = ("PersistentVolumeClaim".to_owned(), "db-1-data".to_owned());
        w.fake.objects.get_mut(&key).unwrap().deleting = true;
        let plan = w.step();
        assert_eq!(plan.actions.lost_volumes, ["db-1-data"]);
        let plan = w.step();
        assert!(plan.actions.lost_volumes.is_empty(), "counted once");
        // Gone, and an empty one in its place.
        w.fake.objects.get_mut(&key).unwrap().deleting = false;
        assert_eq!(
            reason_of(&plan, condition::READY).unwrap().1,
            "VolumesLost",
            "still not Ready"
        );
        w.annotations.insert(
            keys::LOSS_ACKNOWLEDGED.into(),
            "restored from backup B-17".into(),
        );
        let plan = w.step();
        assert_eq!(reason_of(&plan, condition::READY).unwrap().0, "True");
        assert_eq!(
            reason_of(&plan, condition::VOLUMES_LOST),
            Some(("True".into(), "Acknowledged".into())),
            "the loss stays on record"
        );
        // Lost again: the note of before acknowledges nothing new.
        w.fake.applied(&plan, true);
        w.fake
            .objects
            .remove(&("PersistentVolumeClaim".to_owned(), "vol-files".to_owned()));
        let plan = w.step();
        assert_eq!(plan.actions.lost_volumes, ["vol-files"]);
        assert_eq!(reason_of(&plan, condition::READY).unwrap().1, "VolumesLost");
        w.fake.applied(&plan, true);
        assert_eq!(
            reason_of(&w.step(), condition::READY).unwrap().1,
            "VolumesLost"
        );
        w.annotations.insert(
            keys::LOSS_ACKNOWLEDGED.into(),
            "restored again, B-18".into(),
        );
        assert_eq!(reason_of(&w.step(), condition::READY).unwrap().0, "True");
    }

    #[test]
    fn art7_a_system_or_role_group_is_never_bound_and_a_binding_of_before_goes() {
        let mut w = World::new();
        w.settle();
        assert!(
            w.fake
                .objects
                .contains_key(&("RoleBinding".into(), provisioning::UNIT_BINDING.into()))
        );
        for group in ["system:authenticated", "govcloud:reviewers"] {
            w.unit_group = group.into();
            let plan = w.step();
            assert!(
                !plan.actions.apply.iter().any(|d| d.kind == "RoleBinding"),
                "{group}"
            );
            let deleted: Vec<&str> = plan
                .actions
                .delete
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            assert_eq!(deleted, [provisioning::UNIT_BINDING], "{group}");
            assert_eq!(
                reason_of(&plan, condition::UNIT_GROUP_KNOWN),
                Some(("False".into(), "GroupRefused".into()))
            );
            let ns = applied(&plan, "Namespace");
            assert!(
                ns.object["metadata"]["annotations"][keys::UNIT_GROUP].is_null(),
                "the namespace names no group for {group}"
            );
        }
    }

    #[test]
    fn art15_without_usage_the_trial_ends_in_reclaim_and_suspension() {
        let mut w = World::new();
        w.settle();
        w.now = "2026-12-27T02:00:00Z".parse().unwrap();
        let plan = w.step();
        assert_eq!(plan.status.phase, Some(TenancyPhase::Reclaimed));
        assert!(
            plan.actions
                .suspend_unit
                .as_deref()
                .unwrap()
                .contains("without use")
        );
        assert!(plan.status.unit_suspended_at.is_some());
        assert!(releasing(&w.spec, &plan.status, w.now));
        // Suspended once: the next step does not suspend again.
        assert!(w.step().actions.suspend_unit.is_none());
    }

    #[test]
    fn art19_a_release_takes_the_units_hands_off_and_its_workloads_away_before_anything_is_wiped() {
        let mut w = World::new();
        w.settle();
        w.now = "2026-12-27T02:00:00Z".parse().unwrap();
        w.step();
        // Reclaimed: the namespace as it is, VMs already stopped.
        w.view = Some(release::Namespace {
            exists: true,
            pvcs: vec![release::Pvc {
                name: "vol-files".into(),
                size_gib: 1024,
                block: false,
                class: "standard".into(),
            }],
            ..Default::default()
        });
        let plan = w.step();
        let bindings: Vec<&str> = plan
            .actions
            .apply
            .iter()
            .filter(|d| d.kind == "RoleBinding")
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(bindings, [provisioning::UNIT_BINDING_ISOLATED]);
        assert!(
            plan.actions
                .delete
                .iter()
                .any(|d| d.kind == "RoleBinding" && d.name == provisioning::UNIT_BINDING)
        );
        assert!(
            !plan.actions.apply.iter().any(|d| d.kind == "Job"),
            "no wipe yet: {:?}",
            plan.actions.apply
        );
        assert!(plan.actions.delete.iter().all(|d| d.kind == "RoleBinding"));
        // Its own binding gone: what of its own runs goes first ...
        w.fake.applied(&plan, true);
        w.fake
            .objects
            .remove(&("RoleBinding".into(), provisioning::UNIT_BINDING.into()));
        let view = w.view.as_mut().unwrap();
        view.workloads = vec![release::Workload {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
        }];
        view.pods = vec!["web-7d4b9-x2x9z".into()];
        let plan = w.step();
        let removed: Vec<&str> = plan
            .actions
            .remove
            .iter()
            .map(|r| r.workload.name.as_str())
            .collect();
        assert_eq!(removed, ["web"]);
        assert!(
            !plan.actions.apply.iter().any(|d| d.kind == "Job"),
            "nothing wiped while it runs"
        );
        // ... its pods gone too, the wipe begins.
        let view = w.view.as_mut().unwrap();
        view.workloads.clear();
        view.pods.clear();
        let plan = w.step();
        assert!(
            plan.actions
                .apply
                .iter()
                .any(|d| d.kind == "Job" && d.name == "wipe-vol-files")
        );
    }

    #[test]
    fn art14_procured_items_stay_when_the_acknowledgment_is_removed() {
        let mut w = World::new();
        w.spec.allocation.vm_groups[1].high_end = true;
        w.annotations
            .insert(keys::PROCURED.into(), "PO-2026-17".into());
        w.settle();
        assert!(
            w.status
                .inventory
                .iter()
                .any(|i| i.name == "db-1" && i.ready)
        );
        w.annotations.remove(keys::PROCURED);
        let plan = w.step();
        assert!(
            !plan.status.inventory.iter().any(|i| i.removing),
            "nothing of what was procured is removed: {:?}",
            plan.status.inventory
        );
        assert!(plan.actions.halt.is_empty() && plan.actions.delete.is_empty());
    }

    #[test]
    fn art16_with_usage_the_trial_ends_in_active_billed_from_its_end() {
        let mut w = World::new();
        w.settle();
        let ran: Timestamp = "2026-12-01T02:00:00Z".parse().unwrap();
        w.fake.instances.insert(
            "app-1".into(),
            Instance {
                name: "app-1".into(),
                running_since: Some(ran),
                agent_since: None,
            },
        );
        w.now = "2026-12-02T02:00:00Z".parse().unwrap();
        assert!(
            w.step().status.usage.is_none(),
            "running without the probe is not use"
        );
        w.fake.instances.insert(
            "app-1".into(),
            Instance {
                name: "app-1".into(),
                running_since: Some(ran),
                agent_since: Some(w.now),
            },
        );
        let plan = w.step();
        assert_eq!(
            plan.status.usage.as_ref().unwrap().vm.as_deref(),
            Some("app-1")
        );
        w.now = "2026-12-27T02:00:01Z".parse().unwrap();
        let plan = w.step();
        assert_eq!(plan.status.phase, Some(TenancyPhase::Active));
        assert_eq!(
            plan.status.billing_started_at.unwrap().0.to_string(),
            "2026-12-27T02:00:00Z"
        );
        // In formal operation, the delivery condition says nothing of a
        // trial still running, and gives its time in Beijing.
        let delivered = conditions::get(&plan.status.conditions, condition::DELIVERED).unwrap();
        assert_eq!(
            delivered.message,
            "every approved resource was in place at 2026-11-27 10:00:00 +08:00; \
             the 30-day trial (Art. 15) counts from then"
        );
    }

    #[test]
    fn art14_high_end_items_hold_delivery_until_procured() {
        let mut w = World::new();
        w.spec.allocation.vm_groups[1].high_end = true;
        let plan = w.settle();
        assert_eq!(plan.status.phase, Some(TenancyPhase::Provisioning));
        let delivered = conditions::get(&plan.status.conditions, condition::DELIVERED).unwrap();
        assert_eq!(delivered.reason, "AwaitingProcurement");
        w.annotations
            .insert(keys::PROCURED.into(), "CG-2026-118".into());
        let plan = w.settle();
        assert_eq!(plan.status.phase, Some(TenancyPhase::Trial));
    }
}

#[cfg(test)]
mod reduction_tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn art17_a_reduction_wipes_what_it_removes_and_the_quota_keeps_room_meanwhile() {
        let mut w = World::new();
        w.settle();
        w.now = "2026-12-28T02:00:00Z".parse().unwrap();
        w.status.phase = Some(TenancyPhase::Active);
        // Approved change: one application server less, the volume doubled.
        w.spec.allocation.vm_groups[0].count = 1;
        w.spec.allocation.cloud_storage[0].size_gib = 2048;
        w.spec.changes.push("resize".into());
        let plan = w.step();
        let removing: Vec<&str> = plan
            .status
            .inventory
            .iter()
            .filter(|i| i.removing)
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(removing, ["app-2-system", "app-2"]);
        assert!(needs_view(&w.spec, &plan.status, &w.annotations, w.now));
        assert!(
            plan.status
                .inventory
                .iter()
                .all(|i| !i.removing || i.cause.as_deref() == Some("ChangeRequest/resize"))
        );
        // With the namespace in view: app-2 is halted, and the quota keeps its disk's 40 GiB.
        w.view = Some(release::Namespace {
            exists: true,
            terminating: false,
            vms: vec![
                release::Vm {
                    name: "app-1".into(),
                    halted: false,
                    ours: true,
                    ..release::Vm::default()
                },
                release::Vm {
                    name: "app-2".into(),
                    halted: false,
                    ours: true,
                    ..release::Vm::default()
                },
            ],
            instances: vec![],
            paused: vec![],
            network_policies: vec![],
            pvcs: vec![release::Pvc {
                name: "app-2-system".into(),
                size_gib: 40,
                block: false,
                class: "standard".into(),
            }],
            jobs: vec![],
            ..Default::default()
        });
        let plan = w.step();
        assert_eq!(plan.actions.halt, ["app-2"]);
        let quota = plan
            .actions
            .apply
            .iter()
            .find(|d| d.kind == "ResourceQuota")
            .expect("the quota follows");
        // Disks 40 + 40 + 500, the volume 2048, and app-2's disk still there.
        assert_eq!(
            quota.object["spec"]["hard"]["standard.storageclass.storage.k8s.io/requests.storage"],
            "2668Gi"
        );
    }
}
