//! Changes and terminations (Art. 17, 19), as a pure function of the
//! ChangeRequest, its tenancy, the other changes of that tenancy, the
//! calendar and the clock.
//!
//! Rules:
//! * a change is reviewed within 10 working days of its submission; past that
//!   without a decision, `ReviewOverdue` (Art. 17);
//! * a Modify resizes what the tenancy has and may reduce anything; more VMs,
//!   more public IPs, new VM groups or volumes, or backup storage where there
//!   was none (a new service type) are the full application process: "file a
//!   CloudResourceRequest with `extends`" (Art. 17, last sentence); volumes
//!   grow but never shrink, since a volume cannot shrink without moving data;
//! * the change a Modify makes is what its `after` differs from the
//!   configuration at its submission; applied on the tenancy as it is at
//!   approval, so a later approval builds on what an earlier one left;
//!   changes of one tenancy are applied in the order of their approval;
//! * a termination takes effect no earlier than 10 working days after its
//!   submission (Art. 19); approved, the tenancy is released at the start of
//!   the effective date, its volumes wiped, and billing stops then.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::change::{ChangeAction, ChangePhase, ChangeRequestSpec, ChangeRequestStatus};
use crate::api::common::{ReviewRecord, StorageVolume, VmGroup};
use crate::api::tenancy::TenancyStatus;
use crate::api::{Decision, Resources, TenancyPhase, TenancySpec, keys};
use crate::calendar::{self, Calendar};
use crate::conditions::{self, Wanted};
use crate::decision::read_decision;
use crate::provisioning;
use crate::record::{Note, Recorder};

/// Working days for the review of a change (Art. 17) and the notice of a
/// termination (Art. 19).
pub const WORKING_DAYS: u32 = 10;

pub mod condition {
    pub const ACCEPTED: &str = "Accepted";
    pub const APPROVED: &str = "Approved";
    pub const DECISION_VALID: &str = "DecisionValid";
    pub const REVIEW_OVERDUE: &str = "ReviewOverdue";
    pub const APPLIED: &str = "Applied";
    pub const CALENDAR_COMPLETE: &str = "CalendarComplete";
}

/// The tenancy a change concerns.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub spec: &'a TenancySpec,
    pub status: &'a TenancyStatus,
}

pub struct Input<'a> {
    pub name: &'a str,
    pub generation: i64,
    pub spec: &'a ChangeRequestSpec,
    pub status: &'a ChangeRequestStatus,
    pub annotations: &'a BTreeMap<String, String>,
    /// `None`: no such tenancy in the namespace.
    pub tenancy: Option<Target<'a>>,
    /// Other changes of the same tenancy approved before this one and not yet
    /// applied: this one waits for them.
    pub waiting_for: Vec<String>,
    pub calendar: &'a Calendar,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// Set the tenancy's allocation to `allocation` and record the change,
    /// unless the change is already recorded.
    Modify {
        tenancy: String,
        change: String,
        /// The allocation the change was merged onto: if the tenancy no
        /// longer has it, the plan is stale and must be made again.
        base: Box<Resources>,
        allocation: Box<Resources>,
    },
    /// Retire the tenancy from `effective_at`.
    Terminate {
        tenancy: String,
        change: String,
        effective_at: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub status: ChangeRequestStatus,
    pub orders: Vec<Order>,
    pub events: Vec<Note>,
    pub requeue_at: Option<Timestamp>,
}

fn extend_message(tenancy: &str, what: String) -> String {
    format!(
        "{what} adds to the tenancy: file a CloudResourceRequest with `extends: {tenancy}` (Art. 17)"
    )
}

/// Whether `after` only resizes or reduces what `before` has.
pub fn check_modify(tenancy: &str, before: &Resources, after: &Resources) -> Result<(), String> {
    for g in &after.vm_groups {
        let Some(old) = before.vm_groups.iter().find(|o| o.name == g.name) else {
            return Err(extend_message(tenancy, format!("VM group {}", g.name)));
        };
        if g.count > old.count {
            return Err(extend_message(
                tenancy,
                format!("{} more VMs in group {}", g.count - old.count, g.name),
            ));
        }
        if g.image != old.image || g.architecture != old.architecture {
            return Err(format!(
                "VM group {} would change its image or architecture: that is a new system, not a resize; file a CloudResourceRequest",
                g.name
            ));
        }
        if g.high_end != old.high_end {
            return Err(format!(
                "VM group {} would change its high-end mark; high-end items are procured separately (Art. 14): file a CloudResourceRequest",
                g.name
            ));
        }
        for (disk, new, was) in [
            ("system disk", g.system_disk_gib, old.system_disk_gib),
            ("data disk", g.data_disk_gib, old.data_disk_gib),
        ] {
            if new < was {
                return Err(format!(
                    "the {disk} of VM group {} would shrink from {was} GiB to {new} GiB: a volume cannot shrink without moving its data, and nothing is done by deleting data; keep it at {was} GiB or larger",
                    g.name
                ));
            }
            if was == 0 && new > 0 {
                return Err(extend_message(
                    tenancy,
                    format!("a data disk for VM group {}", g.name),
                ));
            }
        }
    }
    for v in &after.cloud_storage {
        let Some(old) = before.cloud_storage.iter().find(|o| o.name == v.name) else {
            return Err(extend_message(tenancy, format!("volume {}", v.name)));
        };
        if v.size_gib < old.size_gib {
            return Err(format!(
                "volume {} would shrink from {} GiB to {} GiB: a volume cannot shrink without moving its data, and nothing is done by deleting data; keep it at {} GiB or larger",
                v.name, old.size_gib, v.size_gib, old.size_gib
            ));
        }
        if v.class != old.class || v.high_end != old.high_end {
            return Err(format!(
                "volume {} would change its storage class or high-end mark: file a CloudResourceRequest for a new volume",
                v.name
            ));
        }
    }
    if after.public_ips > before.public_ips {
        return Err(extend_message(
            tenancy,
            format!("{} more public IPs", after.public_ips - before.public_ips),
        ));
    }
    if before.backup_storage_gib == 0 && after.backup_storage_gib > 0 {
        return Err(extend_message(
            tenancy,
            "backup storage (the CloudBackup service)".into(),
        ));
    }
    Ok(())
}

/// What the change asks for, applied on `current`: every field `after`
/// changed relative to `before` takes `after`'s value; everything else stays
/// as `current` has it.
pub fn merge(
    before: &Resources,
    after: &Resources,
    current: &Resources,
) -> Result<Resources, String> {
    let mut out = current.clone();
    let mut groups: Vec<VmGroup> = Vec::new();
    for cur in &current.vm_groups {
        let old = before.vm_groups.iter().find(|g| g.name == cur.name);
        let new = after.vm_groups.iter().find(|g| g.name == cur.name);
        match (old, new) {
            // Removed by this change.
            (Some(_), None) => {}
            (Some(old), Some(new)) => {
                let mut g = cur.clone();
                if new.count != old.count {
                    g.count = new.count.min(cur.count);
                }
                if new.vcpu != old.vcpu {
                    g.vcpu = new.vcpu;
                }
                if new.memory_gib != old.memory_gib {
                    g.memory_gib = new.memory_gib;
                }
                if new.system_disk_gib != old.system_disk_gib {
                    g.system_disk_gib = new.system_disk_gib.max(cur.system_disk_gib);
                }
                if new.data_disk_gib != old.data_disk_gib {
                    g.data_disk_gib = new.data_disk_gib.max(cur.data_disk_gib);
                }
                groups.push(g);
            }
            // Added since this change was filed (an extension): untouched.
            (None, _) => groups.push(cur.clone()),
        }
    }
    for old in &before.vm_groups {
        if after.vm_groups.iter().any(|g| g.name == old.name)
            && !current.vm_groups.iter().any(|g| g.name == old.name)
        {
            return Err(format!(
                "VM group {} no longer exists: a change approved earlier removed it; file a new ChangeRequest from the tenancy as it is",
                old.name
            ));
        }
    }
    out.vm_groups = groups;
    let mut volumes: Vec<StorageVolume> = Vec::new();
    for cur in &current.cloud_storage {
        let old = before.cloud_storage.iter().find(|v| v.name == cur.name);
        let new = after.cloud_storage.iter().find(|v| v.name == cur.name);
        match (old, new) {
            (Some(_), None) => {}
            (Some(old), Some(new)) => {
                let mut v = cur.clone();
                if new.size_gib != old.size_gib {
                    v.size_gib = new.size_gib.max(cur.size_gib);
                }
                volumes.push(v);
            }
            (None, _) => volumes.push(cur.clone()),
        }
    }
    out.cloud_storage = volumes;
    if after.backup_storage_gib != before.backup_storage_gib {
        out.backup_storage_gib = after.backup_storage_gib;
    }
    if after.public_ips != before.public_ips {
        out.public_ips = after.public_ips.min(current.public_ips);
    }
    if after.bandwidth_mbps != before.bandwidth_mbps {
        out.bandwidth_mbps = after.bandwidth_mbps;
    }
    Ok(out)
}

/// The VMs and volumes `after` no longer has (by their object names).
pub fn removed(before: &Resources, after: &Resources) -> Vec<String> {
    let mut out = Vec::new();
    for g in &before.vm_groups {
        let keep = after
            .vm_groups
            .iter()
            .find(|a| a.name == g.name)
            .map_or(0, |a| a.count);
        for n in keep + 1..=g.count {
            out.push(provisioning::vm_name(g.name.as_str(), n));
        }
    }
    for v in &before.cloud_storage {
        if !after.cloud_storage.iter().any(|a| a.name == v.name) {
            out.push(provisioning::volume_pvc(v.name.as_str()));
        }
    }
    out
}

/// The earliest effective date of a termination filed at `submitted`.
pub fn earliest_effective(calendar: &Calendar, submitted: Timestamp) -> jiff::civil::Date {
    calendar
        .add_working_days(calendar::local_date(submitted), WORKING_DAYS)
        .date
}

struct Builder<'a, 'b> {
    input: &'b Input<'a>,
    rec: Recorder<ChangeRequestStatus>,
    orders: Vec<Order>,
}

impl Builder<'_, '_> {
    fn cond(&mut self, w: Wanted<'_>) -> bool {
        self.rec.cond(w)
    }

    fn finish(self) -> Plan {
        Plan {
            status: self.rec.status,
            orders: self.orders,
            events: self.rec.events,
            requeue_at: self.rec.requeue_at,
        }
    }

    fn note(&mut self, warning: bool, reason: &'static str, message: String) {
        self.rec.event(warning, reason, message);
    }

    fn reject(&mut self, reason: &'static str, message: String) {
        self.rec.status.phase = Some(ChangePhase::Rejected);
        self.cond(Wanted::new(
            condition::ACCEPTED,
            false,
            reason,
            message.clone(),
        ));
        self.cond(Wanted::new(
            condition::APPROVED,
            false,
            "Rejected",
            message.clone(),
        ));
        self.note(true, reason, message);
    }

    /// Refused at filing, before any reviewer saw it: it stays `Submitted`,
    /// so that the unit corrects it (spec edits are allowed then) or
    /// withdraws it (deleting it is too).
    fn hold_back(&mut self, reason: &'static str, message: String) {
        if self
            .rec
            .status
            .phase
            .is_some_and(|p| p != ChangePhase::Submitted)
        {
            return self.reject(reason, message);
        }
        self.rec.status.phase = Some(ChangePhase::Submitted);
        self.rec.status.review_due_at = None;
        let name = self.input.name;
        let message = if reason == "UnknownTenancy" {
            format!(
                "{message}: withdraw it (kubectl delete changerequest {name}) and file one against a tenancy of this unit; no reviewer has seen it"
            )
        } else {
            format!(
                "{message}; correct the ChangeRequest and apply it again, or withdraw it (kubectl delete changerequest {name}): no reviewer has seen it"
            )
        };
        self.rec.flag(
            Wanted::new(condition::ACCEPTED, false, reason, message),
            true,
            reason,
        );
    }

    fn refuse(&mut self, reason: &'static str, message: String) {
        let wanted = Wanted::new(condition::DECISION_VALID, false, reason, message);
        self.rec.flag(wanted, true, reason);
    }

    fn wake_at(&mut self, at: Timestamp) {
        self.rec.wake_at(at);
    }
}

/// A deadline counted without the State Council's notice for its year is
/// flagged, never silently guessed.
fn calendar_note(b: &mut Builder<'_, '_>, assumed: &std::collections::BTreeSet<i32>) {
    b.rec
        .calendar_assumed(condition::CALENDAR_COMPLETE, assumed);
}

/// Whether the tenancy's phase admits this action.
fn admits(action: ChangeAction, phase: Option<TenancyPhase>) -> Result<(), String> {
    use TenancyPhase::*;
    match (action, phase) {
        (ChangeAction::Modify, Some(Active | Rectifying)) => Ok(()),
        (ChangeAction::Modify, Some(Trial)) => Err(
            "the tenancy is in its trial; changes apply during formal operation (Art. 17), once the trial has ended".into(),
        ),
        (ChangeAction::Terminate, Some(Provisioning | Trial | Active | Rectifying | ForceStopped)) => Ok(()),
        (_, Some(p @ (Terminating | Retired | Reclaimed))) => Err(format!("the tenancy is {p:?}: it holds nothing to change")),
        (_, p) => Err(format!(
            "the tenancy is {}: it cannot be changed now",
            p.map(|p| format!("{p:?}")).unwrap_or_else(|| "not yet provisioned".into())
        )),
    }
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
        orders: Vec::new(),
    };
    b.rec.status.observed_generation = Some(input.generation);
    let tenancy_name = input.spec.tenancy.to_string();

    match b.rec.status.phase {
        Some(ChangePhase::Rejected) => return b.finish(),
        Some(ChangePhase::Applied) => {
            // What it removed is wiped after it applied: follow the records.
            if let Some(target) = input.tenancy {
                b.rec.status.wipe_records = records_of(target, input.name);
            }
            return b.finish();
        }
        _ => {}
    }

    // Filing: what the form says the operator knows, and whether it may go on.
    let Some(target) = input.tenancy else {
        b.rec.status.submitted_at.get_or_insert(Time(input.now));
        b.hold_back(
            "UnknownTenancy",
            format!("there is no tenancy {tenancy_name} in this namespace"),
        );
        return b.finish();
    };
    if b.rec.status.phase.is_none() {
        b.rec.status.submitted_at = Some(Time(input.now));
        b.rec.status.before = Some(target.spec.allocation.clone());
        b.rec.status.unit_name = Some(target.spec.unit_name.clone());
        b.rec.status.system_name = Some(target.spec.system_name.clone());
        b.rec.status.purpose = Some(target.spec.purpose.clone());
    }
    // Whether it can go on, before approval (re-checked on every edit).
    if b.rec
        .status
        .phase
        .is_none_or(|p| p == ChangePhase::Submitted || p == ChangePhase::UnderReview)
    {
        if !admissible(&mut b, target, &tenancy_name) {
            return b.finish();
        }
        b.cond(Wanted::new(
            condition::ACCEPTED,
            true,
            "Filed",
            "filed against a tenancy that can take it",
        ));
        if b.rec
            .status
            .phase
            .is_none_or(|p| p == ChangePhase::Submitted)
        {
            into_review(&mut b, &tenancy_name);
        }
    }

    decide(&mut b, &tenancy_name);
    overdue(&mut b);
    apply(&mut b, target, &tenancy_name);
    b.finish()
}

/// Whether the change can go on: the tenancy's phase admits it, a
/// modification only resizes or reduces, a termination is dated at least
/// 10 working days out. Otherwise it is held back and says why.
fn admissible(b: &mut Builder<'_, '_>, target: Target<'_>, tenancy_name: &str) -> bool {
    let input = b.input;
    let submitted = b
        .rec
        .status
        .submitted_at
        .as_ref()
        .map_or(input.now, |t| t.0);
    let before = b.rec.status.before.clone().unwrap_or_default();
    if let Err(why) = admits(input.spec.action, target.status.phase) {
        b.hold_back("WrongPhase", why);
        return false;
    }
    let valid = match input.spec.action {
        ChangeAction::Modify => {
            let after = input.spec.after.clone().unwrap_or_default();
            check_modify(tenancy_name, &before, &after)
        }
        ChangeAction::Terminate => {
            let counted = input
                .calendar
                .add_working_days(calendar::local_date(submitted), WORKING_DAYS);
            calendar_note(b, &counted.assumed_years);
            let earliest = counted.date;
            match input.spec.effective_date {
                Some(d) if d < earliest => Err(format!(
                    "a termination takes effect at least 10 working days after it is filed (Art. 19): the earliest effective date is {earliest}"
                )),
                _ => Ok(()),
            }
        }
    };
    if let Err(why) = valid {
        let reason = if why.contains("extends") {
            "FileAnExtension"
        } else {
            "NotAllowed"
        };
        b.hold_back(reason, why);
        return false;
    }
    true
}

/// The review's 10 working days run from when it can be reviewed.
fn into_review(b: &mut Builder<'_, '_>, tenancy_name: &str) {
    let input = b.input;
    let due = input.calendar.deadline(input.now, WORKING_DAYS);
    calendar_note(b, &due.assumed_years);
    b.rec.status.review_due_at = Some(Time(due.at));
    b.rec.status.phase = Some(ChangePhase::UnderReview);
    let due = b
        .rec
        .status
        .review_due_at
        .as_ref()
        .map_or(input.now, |t| t.0);
    let message = format!(
        "{:?} of tenancy {tenancy_name} under review; the review is due by {} (Art. 17, 19)",
        input.spec.action,
        calendar::local_date(due)
    );
    b.cond(Wanted::new(
        condition::APPROVED,
        false,
        "UnderReview",
        message.clone(),
    ));
    b.note(false, "UnderReview", message);
}

fn decide(b: &mut Builder<'_, '_>, tenancy: &str) {
    let input = b.input;
    if b.rec.status.phase != Some(ChangePhase::UnderReview) {
        return;
    }
    let written = match read_decision(input.annotations) {
        Ok(Some(w)) => w,
        Ok(None) => return,
        Err(message) => return b.refuse("InvalidDecision", message),
    };
    if written.generation != input.generation {
        return b.refuse(
            "StaleDecision",
            format!(
                "the decision names generation {} but the change is at generation {}; decide again",
                written.generation, input.generation
            ),
        );
    }
    let record = ReviewRecord {
        decision: written.decision,
        reviewer: written.by.clone(),
        generation: written.generation,
        decided_at: Time(input.now),
        opinion: written.opinion.clone(),
        expert_opinion: written.expert_opinion.clone(),
    };
    match written.decision {
        Decision::Approve => {
            b.rec.status.reviews.push(record);
            b.rec.status.phase = Some(ChangePhase::Approved);
            let message = format!(
                "approved by {} (generation {})",
                written.by, written.generation
            );
            b.cond(Wanted::new(
                condition::APPROVED,
                true,
                "Approved",
                message.clone(),
            ));
            b.cond(Wanted::new(
                condition::DECISION_VALID,
                true,
                "Applied",
                message.clone(),
            ));
            b.note(
                false,
                "Approved",
                format!("{:?} of tenancy {tenancy} {message}", input.spec.action),
            );
        }
        Decision::Reject => {
            let Some(opinion) = written.opinion.clone() else {
                return b.refuse(
                    "OpinionMissing",
                    format!("a rejection needs the review opinion in {}", keys::OPINION),
                );
            };
            b.rec.status.reviews.push(record);
            b.rec.status.phase = Some(ChangePhase::Rejected);
            let message = format!("rejected by {}: {opinion}", written.by);
            b.cond(Wanted::new(
                condition::APPROVED,
                false,
                "Rejected",
                message.clone(),
            ));
            b.cond(Wanted::new(
                condition::DECISION_VALID,
                true,
                "Applied",
                message.clone(),
            ));
            b.note(true, "Rejected", message);
        }
        other => b.refuse(
            "NotApplicable",
            format!(
                "a ChangeRequest is approved or rejected; {} does not apply",
                other.as_str()
            ),
        ),
    }
}

/// Art. 17: the review is due 10 working days after submission.
fn overdue(b: &mut Builder<'_, '_>) {
    if b.rec.status.phase != Some(ChangePhase::UnderReview) {
        b.rec.clear(condition::REVIEW_OVERDUE);
        return;
    }
    let Some(due) = b.rec.status.review_due_at.as_ref().map(|t| t.0) else {
        return;
    };
    if b.input.now > due {
        let message = format!(
            "the review was due by {} (10 working days after submission, Art. 17)",
            calendar::local_date(due)
        );
        b.rec.flag(
            Wanted::new(condition::REVIEW_OVERDUE, true, "Overdue", message),
            true,
            "ReviewOverdue",
        );
    } else {
        b.cond(Wanted::new(
            condition::REVIEW_OVERDUE,
            false,
            "WithinDeadline",
            format!("the review is due by {}", calendar::local_date(due)),
        ));
        b.wake_at(
            due.saturating_add(jiff::SignedDuration::from_secs(1))
                .unwrap_or(due),
        );
    }
}

/// An approved change takes effect: a Modify at once (after any change
/// approved before it), a termination at its effective date.
fn apply(b: &mut Builder<'_, '_>, target: Target<'_>, tenancy: &str) {
    if b.rec.status.phase != Some(ChangePhase::Approved) {
        return;
    }
    match b.input.spec.action {
        ChangeAction::Modify => modify(b, target, tenancy),
        ChangeAction::Terminate => terminate(b, target, tenancy),
    }
}

/// An approved modification, merged into the tenancy's allocation as it is
/// now, after the changes approved before it.
fn modify(b: &mut Builder<'_, '_>, target: Target<'_>, tenancy: &str) {
    let input = b.input;
    if target.spec.changes.iter().any(|c| c.as_str() == input.name) {
        // Applied (by an earlier reconcile that did not get to write).
        applied(b, target.spec.allocation.clone(), tenancy);
        return;
    }
    if !input.waiting_for.is_empty() {
        b.cond(Wanted::new(
            condition::APPLIED,
            false,
            "WaitingForEarlierChanges",
            format!(
                "applied after {}, approved earlier",
                input.waiting_for.join(", ")
            ),
        ));
        return;
    }
    if let Err(why) = admits(ChangeAction::Modify, target.status.phase) {
        b.cond(Wanted::new(condition::APPLIED, false, "WrongPhase", why));
        return;
    }
    let before = b.rec.status.before.clone().unwrap_or_default();
    let after = input.spec.after.clone().unwrap_or_default();
    let merged = merge(&before, &after, &target.spec.allocation)
        .and_then(|m| check_modify(tenancy, &target.spec.allocation, &m).map(|()| m));
    match merged {
        Ok(allocation) => {
            b.rec.status.removes = removed(&target.spec.allocation, &allocation);
            b.orders.push(Order::Modify {
                tenancy: tenancy.to_owned(),
                change: input.name.to_owned(),
                base: Box::new(target.spec.allocation.clone()),
                allocation: Box::new(allocation.clone()),
            });
            applied(b, allocation, tenancy);
        }
        Err(why) => {
            b.rec.flag(
                Wanted::new(condition::APPLIED, false, "Conflict", why),
                true,
                "Conflict",
            );
        }
    }
}

/// An approved termination: the tenancy retired from its effective date;
/// applied once it is retired.
fn terminate(b: &mut Builder<'_, '_>, target: Target<'_>, tenancy: &str) {
    let input = b.input;
    let change = format!("ChangeRequest/{}", input.name);
    let effective = input
        .spec
        .effective_date
        .map_or(input.now, calendar::start_of_day);
    if target.spec.retirement.is_none() {
        b.orders.push(Order::Terminate {
            tenancy: tenancy.to_owned(),
            change: change.clone(),
            effective_at: effective,
        });
        b.note(
            false,
            "TerminationScheduled",
            format!(
                "tenancy {tenancy} is released from {}: VMs stopped, every volume wiped and deleted (Art. 19)",
                calendar::display(effective)
            ),
        );
    }
    b.rec.status.wipe_records = records_of(target, input.name);
    match target.status.retired_at.as_ref() {
        Some(at) if target.status.phase == Some(TenancyPhase::Retired) => {
            b.rec.status.phase = Some(ChangePhase::Applied);
            b.rec.status.applied_at = Some(at.clone());
            let message = format!(
                "tenancy {tenancy} retired; {} volumes wiped",
                b.rec.status.wipe_records.len()
            );
            b.cond(Wanted::new(
                condition::APPLIED,
                true,
                "Retired",
                message.clone(),
            ));
            b.note(false, "Applied", message);
        }
        _ => {
            let message = if input.now < effective {
                format!("takes effect {}", calendar::display(effective))
            } else {
                "releasing the tenancy's resources".to_owned()
            };
            b.cond(Wanted::new(condition::APPLIED, false, "Scheduled", message));
            if input.now < effective {
                b.wake_at(effective);
            }
        }
    }
}

/// The tenancy's wipe records caused by the change `name`.
fn records_of(target: Target<'_>, name: &str) -> Vec<crate::api::tenancy::WipeRecord> {
    let cause = format!("ChangeRequest/{name}");
    target
        .status
        .wipe_records
        .iter()
        .filter(|r| r.cause.as_deref() == Some(cause.as_str()))
        .cloned()
        .collect()
}

fn applied(b: &mut Builder<'_, '_>, allocation: Resources, tenancy: &str) {
    b.rec.status.phase = Some(ChangePhase::Applied);
    b.rec.status.applied_at = Some(Time(b.input.now));
    b.rec.status.applied = Some(allocation);
    let removes = &b.rec.status.removes;
    let message = if removes.is_empty() {
        format!("tenancy {tenancy} changed")
    } else {
        format!(
            "tenancy {tenancy} changed; removing {} (wiped first)",
            removes.join(", ")
        )
    };
    b.cond(Wanted::new(
        condition::APPLIED,
        true,
        "Applied",
        message.clone(),
    ));
    b.note(false, "Applied", message);
}

/// Whether a change with this status has nothing in progress: an approved
/// one is until it is applied to its tenancy.
pub fn settled(status: &ChangeRequestStatus) -> bool {
    status.phase != Some(ChangePhase::Approved)
}

/// Whether two statuses say the same thing (condition times aside).
pub fn same_status(a: &ChangeRequestStatus, b: &ChangeRequestStatus) -> bool {
    conditions::same(&a.conditions, &b.conditions) && {
        let mut a = a.clone();
        let mut b = b.clone();
        a.conditions.clear();
        b.conditions.clear();
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_settled_once_applied() {
        let at = |phase| ChangeRequestStatus {
            phase: Some(phase),
            ..Default::default()
        };
        assert!(!settled(&at(ChangePhase::Approved)));
        assert!(settled(&at(ChangePhase::Applied)));
        assert!(settled(&at(ChangePhase::UnderReview)));
    }
    use crate::api::CloudResourceRequest;
    use jiff::civil::date;

    fn resources() -> Resources {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/samples/20-cloudresourcerequest-oa.yaml"
        ))
        .unwrap();
        let crr: CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        crr.spec.resources
    }

    pub(super) fn calendar() -> Calendar {
        let mut cal = Calendar::new();
        for year in ["2025", "2026"] {
            let text = std::fs::read_to_string(format!(
                "{}/charts/govcloud-operator/files/calendar/{year}.yaml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let c: crate::api::WorkCalendar = serde_saphyr::from_str(&text).unwrap();
            cal.add_year(
                c.spec.year,
                c.spec.holidays.iter().map(|d| d.date),
                c.spec.working_days.iter().map(|d| d.date),
            )
            .unwrap();
        }
        cal
    }

    #[test]
    fn art17_resizing_and_reducing_are_changes() {
        let before = resources();
        let mut after = before.clone();
        after.vm_groups[0].count = 1;
        after.vm_groups[1].memory_gib = 32;
        after.vm_groups[1].vcpu = 4;
        after.cloud_storage[0].size_gib = 2048;
        after.public_ips = 0;
        after.bandwidth_mbps = 100;
        after.backup_storage_gib = 0;
        assert_eq!(check_modify("oa", &before, &after), Ok(()));
        assert_eq!(removed(&before, &after), ["app-2"]);
        after.cloud_storage.clear();
        assert_eq!(removed(&before, &after), ["app-2", "vol-files"]);
    }

    #[test]
    fn art17_anything_added_is_an_extension() {
        let before = resources();
        type Edit = Box<dyn Fn(&mut Resources)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("more VMs", Box::new(|r| r.vm_groups[0].count = 3)),
            (
                "a new VM group",
                Box::new(|r| {
                    let mut g = r.vm_groups[0].clone();
                    g.name = "cache".into();
                    r.vm_groups.push(g);
                }),
            ),
            (
                "a new volume",
                Box::new(|r| {
                    let mut v = r.cloud_storage[0].clone();
                    v.name = "archive".into();
                    r.cloud_storage.push(v);
                }),
            ),
            ("more public IPs", Box::new(|r| r.public_ips = 2)),
            (
                "a data disk where there was none",
                Box::new(|r| r.vm_groups[0].data_disk_gib = 100),
            ),
        ];
        for (what, edit) in cases {
            let mut after = before.clone();
            edit(&mut after);
            let err = check_modify("finance-oa", &before, &after).expect_err(what);
            assert!(
                err.contains("file a CloudResourceRequest with `extends: finance-oa`"),
                "{what}: {err}"
            );
        }
        let mut none = before.clone();
        none.backup_storage_gib = 0;
        let err = check_modify("oa", &none, &before).unwrap_err();
        assert!(err.contains("CloudBackup"), "{err}");
    }

    #[test]
    fn art17_no_volume_shrinks() {
        let before = resources();
        let mut after = before.clone();
        after.vm_groups[1].data_disk_gib = 200;
        let err = check_modify("oa", &before, &after).unwrap_err();
        assert!(
            err.contains("would shrink from 500 GiB to 200 GiB"),
            "{err}"
        );
        assert!(err.contains("nothing is done by deleting data"), "{err}");
        let mut after = before.clone();
        after.cloud_storage[0].size_gib = 10;
        assert!(
            check_modify("oa", &before, &after)
                .unwrap_err()
                .contains("volume files would shrink")
        );
    }

    #[test]
    fn later_approvals_build_on_earlier_ones() {
        let base = resources();
        // Two changes filed against the same configuration.
        let mut memory = base.clone();
        memory.vm_groups[1].memory_gib = 32;
        let mut bandwidth = base.clone();
        bandwidth.bandwidth_mbps = 50;
        // Memory approved first, bandwidth second: both hold.
        let first = merge(&base, &memory, &base).unwrap();
        let second = merge(&base, &bandwidth, &first).unwrap();
        assert_eq!(
            (second.vm_groups[1].memory_gib, second.bandwidth_mbps),
            (32, 50)
        );
        // The other order gives the same result: the changes do not touch the same field.
        let other = merge(&base, &memory, &merge(&base, &bandwidth, &base).unwrap()).unwrap();
        assert_eq!(other, second);
        // Both set the bandwidth: the later approval's value stands.
        let mut thirty = base.clone();
        thirty.bandwidth_mbps = 30;
        let mut forty = base.clone();
        forty.bandwidth_mbps = 40;
        let d_then_c = merge(&base, &thirty, &merge(&base, &forty, &base).unwrap()).unwrap();
        assert_eq!(d_then_c.bandwidth_mbps, 30);
        // A group an earlier change removed cannot be resized by a later one.
        let mut drop_db = base.clone();
        drop_db.vm_groups.remove(1);
        let without_db = merge(&base, &drop_db, &base).unwrap();
        let err = merge(&base, &memory, &without_db).unwrap_err();
        assert!(err.contains("VM group db no longer exists"), "{err}");
    }

    #[test]
    fn art19_the_earliest_effective_date_is_ten_working_days_out() {
        let cal = calendar();
        let filed: Timestamp = "2025-09-26T02:00:00Z".parse().unwrap();
        assert_eq!(earliest_effective(&cal, filed), date(2025, 10, 16));
        assert_eq!(
            cal.deadline(filed, WORKING_DAYS).at.to_string(),
            "2025-10-16T15:59:59Z"
        );
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::api::ChangeRequest;
    use crate::api::tenancy::TenancyStatus;

    fn spec_of(path: &str) -> ChangeRequestSpec {
        let text =
            std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let c: ChangeRequest = serde_saphyr::from_str(&text).unwrap();
        c.spec
    }

    fn tenancy() -> TenancySpec {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/samples/20-cloudresourcerequest-oa.yaml"
        ))
        .unwrap();
        let crr: crate::api::CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        TenancySpec {
            unit: "finance".into(),
            unit_name: crr.spec.unit.name.clone(),
            system_name: crr.spec.system.name.clone(),
            purpose: crr.spec.system.purpose.clone(),
            request: "finance-oa".into(),
            request_generation: 1,
            service_types: crr.spec.service_types.clone(),
            allocation: crr.spec.resources.clone(),
            compliance: crr.spec.compliance.clone(),
            extensions: vec![],
            changes: vec![],
            emergency: None,
            retirement: None,
        }
    }

    #[test]
    fn art17_only_an_approval_of_the_current_generation_applies_a_change() {
        let spec = spec_of("config/samples/30-changerequest-modify.yaml");
        let t = tenancy();
        let active = TenancyStatus {
            phase: Some(TenancyPhase::Active),
            ..Default::default()
        };
        let cal = super::tests::calendar();
        let run = |generation: i64, status: &ChangeRequestStatus, decided: Option<i64>| {
            let mut annotations = BTreeMap::new();
            if let Some(g) = decided {
                annotations.insert(keys::DECISION.to_owned(), "approve".to_owned());
                annotations.insert(keys::DECIDED_GENERATION.to_owned(), g.to_string());
                annotations.insert(keys::DECIDED_BY.to_owned(), "wang".to_owned());
            }
            plan(&Input {
                name: "resize",
                generation,
                spec: &spec,
                status,
                annotations: &annotations,
                tenancy: Some(Target {
                    spec: &t,
                    status: &active,
                }),
                waiting_for: vec![],
                calendar: &cal,
                now: "2026-11-27T02:00:00Z".parse().unwrap(),
            })
        };
        let filed = run(1, &ChangeRequestStatus::default(), None).status;
        assert_eq!(filed.phase, Some(ChangePhase::UnderReview));
        // Approved as generation 1, but the unit has since edited it.
        let stale = run(2, &filed, Some(1));
        assert!(stale.orders.is_empty(), "{:?}", stale.orders);
        assert_eq!(stale.status.phase, Some(ChangePhase::UnderReview));
        let c = conditions::get(&stale.status.conditions, condition::DECISION_VALID).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "StaleDecision")
        );
        assert!(c.message.contains("decide again"), "{}", c.message);
        // Approved as it stands: applied in the same pass.
        let current = run(2, &stale.status, Some(2));
        assert_eq!(current.status.phase, Some(ChangePhase::Applied));
        assert!(
            matches!(current.orders.first(), Some(Order::Modify { .. })),
            "{:?}",
            current.orders
        );
    }

    #[test]
    fn a_year_without_calendar_is_flagged_not_guessed() {
        let spec = spec_of("config/samples/31-changerequest-terminate.yaml");
        let t = tenancy();
        let status = TenancyStatus {
            phase: Some(TenancyPhase::Active),
            ..Default::default()
        };
        let cal = Calendar::new();
        let plan = plan(&Input {
            name: "stop",
            generation: 1,
            spec: &spec,
            status: &ChangeRequestStatus::default(),
            annotations: &BTreeMap::new(),
            tenancy: Some(Target {
                spec: &t,
                status: &status,
            }),
            waiting_for: vec![],
            calendar: &cal,
            now: "2026-12-28T02:00:00Z".parse().unwrap(),
        });
        let c = conditions::get(&plan.status.conditions, condition::CALENDAR_COMPLETE).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "YearNotLoaded")
        );
        assert!(c.message.contains("2027"), "{}", c.message);
        assert!(plan.events.iter().any(|e| e.reason == "YearNotLoaded"));
        // The sample's 2027-01-15 is past the (assumed) earliest date: under review.
        assert_eq!(plan.status.phase, Some(ChangePhase::UnderReview));
    }

    #[test]
    fn art19_a_termination_dated_too_early_waits_for_correction_or_withdrawal() {
        let mut spec = spec_of("config/samples/31-changerequest-terminate.yaml");
        spec.effective_date = Some(jiff::civil::date(2025, 10, 10));
        let t = tenancy();
        let active = TenancyStatus {
            phase: Some(TenancyPhase::Active),
            ..Default::default()
        };
        let cal = super::tests::calendar();
        let run = |spec: &ChangeRequestSpec, status: &ChangeRequestStatus, now: &str| {
            plan(&Input {
                name: "stop",
                generation: 1,
                spec,
                status,
                annotations: &BTreeMap::new(),
                tenancy: Some(Target {
                    spec: &t,
                    status: &active,
                }),
                waiting_for: vec![],
                calendar: &cal,
                now: now.parse().unwrap(),
            })
        };
        // Filed on Friday 26 September 2025: the earliest date is 16 October.
        let filed = run(
            &spec,
            &ChangeRequestStatus::default(),
            "2025-09-26T02:00:00Z",
        );
        assert_eq!(
            filed.status.phase,
            Some(ChangePhase::Submitted),
            "not rejected: still the unit's"
        );
        assert_eq!(filed.status.review_due_at, None, "nothing to review yet");
        let c = conditions::get(&filed.status.conditions, condition::ACCEPTED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NotAllowed")
        );
        assert!(
            c.message
                .contains("the earliest effective date is 2025-10-16"),
            "{}",
            c.message
        );
        assert!(
            c.message.contains("kubectl delete changerequest stop"),
            "{}",
            c.message
        );
        assert_eq!(filed.events.len(), 1);
        // Said once.
        let again = run(&spec, &filed.status, "2025-09-29T02:00:00Z");
        assert!(again.events.is_empty());
        // Corrected: under review from then, its 10 working days from then.
        spec.effective_date = Some(jiff::civil::date(2025, 10, 16));
        let corrected = run(&spec, &again.status, "2025-09-29T02:00:00Z");
        assert_eq!(corrected.status.phase, Some(ChangePhase::UnderReview));
        assert_eq!(
            crate::calendar::local_date(corrected.status.review_due_at.unwrap().0),
            // 30 September, then 9-11 (a Saturday worked) and 13-17 and 20
            // October, after the National Day holiday.
            jiff::civil::date(2025, 10, 20)
        );
        // As people read it (printer column Review-Due).
        assert_eq!(
            corrected.status.shown.review_due.as_deref(),
            Some("2025-10-20 23:59:59 +08:00")
        );
    }

    #[test]
    fn art17_a_modify_filed_during_the_trial_waits_and_goes_to_review_after_it() {
        let spec = spec_of("config/samples/30-changerequest-modify.yaml");
        let t = tenancy();
        let cal = super::tests::calendar();
        let run = |phase: TenancyPhase, status: &ChangeRequestStatus| {
            let tenancy_status = TenancyStatus {
                phase: Some(phase),
                ..Default::default()
            };
            plan(&Input {
                name: "resize",
                generation: 1,
                spec: &spec,
                status,
                annotations: &BTreeMap::new(),
                tenancy: Some(Target {
                    spec: &t,
                    status: &tenancy_status,
                }),
                waiting_for: vec![],
                calendar: &cal,
                now: "2025-09-26T02:00:00Z".parse().unwrap(),
            })
        };
        let early = run(TenancyPhase::Trial, &ChangeRequestStatus::default());
        assert_eq!(early.status.phase, Some(ChangePhase::Submitted));
        let c = conditions::get(&early.status.conditions, condition::ACCEPTED).unwrap();
        assert_eq!(c.reason, "WrongPhase");
        let later = run(TenancyPhase::Active, &early.status);
        assert_eq!(later.status.phase, Some(ChangePhase::UnderReview));
    }
}
