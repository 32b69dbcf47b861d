//! The review of an application (Art. 11-14), as a pure function: from the
//! request, the decision annotations, the unit and the clock, the status the
//! request should have and what should happen to tenancies.
//!
//! Rules:
//! * a request is taken into review as soon as it is filed in a unit
//!   namespace whose applications are not suspended (Art. 15);
//! * a decision counts only when `decided-generation` equals the request's
//!   generation and `decided-by` names the reviewer; anything else is reported
//!   in a condition and changes nothing;
//! * `expert-review` holds the request until an expert opinion is recorded;
//!   `reject` and `return` need an opinion saying why or what to supplement;
//! * `emergency-open` applies only to a request the unit marked urgent, and
//!   starts the 10-working-day paperwork clock (Art. 13 ¶2);
//! * approval provisions exactly the approved generation; a spec edited
//!   afterwards is not provisioned until approved again.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::common::ReviewRecord;
use crate::api::keys;
use crate::api::request::{CloudResourceRequestSpec, CloudResourceRequestStatus};
use crate::api::tenancy::{EmergencyOpening, TenancyPhase};
use crate::api::{Decision, RequestPhase, Resources, TenancySpec};
use crate::calendar::Calendar;
use crate::conditions::{self, Wanted};
use crate::decision::{Written, read_decision};
use crate::record::{Note, Recorder};

/// Working days a unit has to complete the paperwork of an emergency opening.
pub const PAPERWORK_WORKING_DAYS: u32 = 10;

pub mod condition {
    /// The request is filed where it can be reviewed.
    pub const ACCEPTED: &str = "Accepted";
    /// The review's outcome so far.
    pub const APPROVED: &str = "Approved";
    /// Whether the decision annotations can be acted on.
    pub const DECISION_VALID: &str = "DecisionValid";
    /// The approved generation is the current one.
    pub const SPEC_APPROVED: &str = "SpecApproved";
    /// Art. 13 ¶2: the paperwork of an emergency opening is late.
    pub const PAPERWORK_OVERDUE: &str = "PaperworkOverdue";
    /// A deadline was counted without a WorkCalendar for its year.
    pub const CALENDAR_COMPLETE: &str = "CalendarComplete";
}

/// The unit namespace a request is filed in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unit {
    /// The `govcloud.dev/unit` label; `None` outside a unit namespace.
    pub id: Option<String>,
    /// Why and since when the unit's applications are suspended (Art. 15).
    pub suspended: Option<String>,
}

/// The tenancy an extension request adds to, as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Target<'a> {
    pub spec: &'a TenancySpec,
    pub phase: Option<TenancyPhase>,
}

pub struct Input<'a> {
    pub name: &'a str,
    pub generation: i64,
    pub spec: &'a CloudResourceRequestSpec,
    pub status: &'a CloudResourceRequestStatus,
    pub annotations: &'a BTreeMap<String, String>,
    pub unit: &'a Unit,
    /// For `spec.extends`: the tenancy, if it exists.
    pub target: Option<Target<'a>>,
    /// The tenancy this request created, if any (for re-approval).
    pub own_tenancy: Option<&'a TenancySpec>,
    /// The storage classes on offer: the cluster's and the price list's.
    pub storage_classes: &'a std::collections::BTreeSet<String>,
    pub calendar: &'a Calendar,
    pub now: Timestamp,
}

/// What should happen to a tenancy because of this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// Create the request's tenancy with this spec (or replace its spec on
    /// the re-approval of an unchanged tenancy).
    Provision(Box<TenancySpec>),
    /// Add the approved extension `request` to the tenancy `tenancy` (its
    /// allocation grows by the request's), unless it is already among its
    /// extensions. The planner has checked that it fits the tenancy as seen;
    /// the executor merges it into the tenancy as it is then.
    Extend { tenancy: String, request: String },
    /// The emergency opening's paperwork is complete: clear `spec.emergency`.
    Regularize { tenancy: String },
    /// The request opened in an emergency was rejected: retire its tenancy.
    Retire { tenancy: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub status: CloudResourceRequestStatus,
    pub events: Vec<Note>,
    pub orders: Vec<Order>,
    /// When to look again even if nothing changes (a deadline).
    pub requeue_at: Option<Timestamp>,
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

/// The tenancy spec an approval of this request provisions.
pub fn tenancy_spec(input: &Input<'_>, unit_id: &str) -> TenancySpec {
    let spec = input.spec;
    TenancySpec {
        unit: unit_id.to_owned(),
        unit_name: spec.unit.name.clone(),
        system_name: spec.system.name.clone(),
        purpose: spec.system.purpose.clone(),
        request: input.name.into(),
        request_generation: input.generation,
        service_types: spec.service_types.clone(),
        allocation: spec.resources.clone(),
        compliance: spec.compliance.clone(),
        extensions: Vec::new(),
        changes: Vec::new(),
        emergency: None,
        retirement: None,
    }
}

/// The allocation of `target` grown by an extension request: new VM groups
/// and volumes, more backup storage, public IPs and bandwidth, and the new
/// service types. Names must not collide with what the tenancy has.
pub fn extend(
    target: &TenancySpec,
    name: &str,
    add: &CloudResourceRequestSpec,
) -> Result<TenancySpec, String> {
    let mut spec = target.clone();
    let have = &target.allocation;
    for g in &add.resources.vm_groups {
        if have.vm_groups.iter().any(|h| h.name == g.name) {
            return Err(format!(
                "VM group {} already exists in tenancy {}; name the new group differently",
                g.name, target.request
            ));
        }
    }
    for v in &add.resources.cloud_storage {
        if have.cloud_storage.iter().any(|h| h.name == v.name) {
            return Err(format!(
                "volume {} already exists in tenancy {}; name the new volume differently",
                v.name, target.request
            ));
        }
    }
    let a: &mut Resources = &mut spec.allocation;
    a.vm_groups.extend(add.resources.vm_groups.iter().cloned());
    a.cloud_storage
        .extend(add.resources.cloud_storage.iter().cloned());
    a.backup_storage_gib = a
        .backup_storage_gib
        .saturating_add(add.resources.backup_storage_gib);
    a.public_ips = a.public_ips.saturating_add(add.resources.public_ips);
    a.bandwidth_mbps = a
        .bandwidth_mbps
        .saturating_add(add.resources.bandwidth_mbps);
    for t in &add.service_types {
        if !spec.service_types.contains(t) {
            spec.service_types.push(*t);
        }
    }
    spec.service_types.sort();
    spec.extensions.push(name.into());
    Ok(spec)
}

fn describe(r: &Resources) -> String {
    let vcpu: u32 = r.vm_groups.iter().map(|g| g.count * g.vcpu).sum();
    let mem: u32 = r.vm_groups.iter().map(|g| g.count * g.memory_gib).sum();
    let storage: u32 = r.cloud_storage.iter().map(|v| v.size_gib).sum();
    format!(
        "{} VMs ({vcpu} vCPU, {mem} GiB), {storage} GiB storage, {} GiB backup, {} public IPs, {} Mbps",
        r.vm_count(),
        r.backup_storage_gib,
        r.public_ips,
        r.bandwidth_mbps
    )
}

struct Builder<'a, 'b> {
    input: &'b Input<'a>,
    rec: Recorder<CloudResourceRequestStatus>,
    orders: Vec<Order>,
}

impl Builder<'_, '_> {
    fn cond(&mut self, w: Wanted<'_>) -> bool {
        self.rec.cond(w)
    }

    fn phase(&self) -> Option<RequestPhase> {
        self.rec.status.phase
    }

    fn enter(&mut self, phase: RequestPhase, reason: &'static str, message: String) {
        self.rec.status.phase = Some(phase);
        let (approved, why) = match phase {
            RequestPhase::Approved => (true, "Approved"),
            RequestPhase::Rejected => (false, "Rejected"),
            RequestPhase::Returned => (false, "Returned"),
            RequestPhase::ExpertReview => (false, "ExpertReview"),
            RequestPhase::EmergencyOpened => (false, "EmergencyOpened"),
            RequestPhase::UnderReview | RequestPhase::Submitted => (false, "UnderReview"),
        };
        self.cond(Wanted::new(
            condition::APPROVED,
            approved,
            why,
            message.clone(),
        ));
        let warning = matches!(phase, RequestPhase::Rejected | RequestPhase::Returned);
        self.rec.note(if warning {
            Note::warning(reason, message)
        } else {
            Note::normal(reason, message)
        });
    }

    fn record(&mut self, w: &Written) {
        self.rec.status.reviews.push(ReviewRecord {
            decision: w.decision,
            reviewer: w.by.clone(),
            generation: w.generation,
            decided_at: time(self.input.now),
            opinion: w.opinion.clone(),
            expert_opinion: w.expert_opinion.clone(),
        });
    }

    /// `DecisionValid` says the decision `w` is applied.
    fn applied(&mut self, w: &Written) {
        let message = format!(
            "{} of generation {} by {}",
            w.decision.as_str(),
            w.generation,
            w.by
        );
        self.cond(Wanted::new(
            condition::DECISION_VALID,
            true,
            "Applied",
            message,
        ));
    }

    fn already_applied(&self, w: &Written) -> bool {
        self.rec
            .status
            .reviews
            .iter()
            .any(|r| r.decision == w.decision && r.generation == w.generation && r.reviewer == w.by)
    }

    fn refuse(&mut self, reason: &'static str, message: String) {
        let wanted = Wanted::new(condition::DECISION_VALID, false, reason, message);
        self.rec.flag(wanted, true, reason);
    }

    fn deadline_note(&mut self, assumed: &std::collections::BTreeSet<i32>) {
        self.rec
            .calendar_assumed(condition::CALENDAR_COMPLETE, assumed);
    }
}

/// Decides what the request's status should be and what to do.
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
    let Some(unit_id) = filed(&mut b) else {
        return finish(b);
    };
    b.cond(Wanted::new(
        condition::ACCEPTED,
        true,
        "Filed",
        "filed in a unit namespace",
    ));
    into_review(&mut b);
    apply_decision(&mut b, &unit_id);
    paperwork(&mut b);
    spec_approved(&mut b);
    finish(b)
}

/// Filing: where, and whether the unit may apply. The unit's id, if the
/// request goes on to review.
fn filed(b: &mut Builder<'_, '_>) -> Option<String> {
    let input = b.input;
    // Filing: where, and whether the unit may apply.
    let Some(unit_id) = input.unit.id.clone() else {
        b.rec.status.phase.get_or_insert(RequestPhase::Submitted);
        b.cond(Wanted::new(
            condition::ACCEPTED,
            false,
            "NotAUnitNamespace",
            format!(
                "file requests in a unit's namespace (labelled {})",
                keys::UNIT
            ),
        ));
        return None;
    };
    if b.phase().is_none() {
        b.rec.status.submitted_at = Some(time(input.now));
        if let Some(why) = &input.unit.suspended {
            let message = format!(
                "the unit's applications are suspended ({why}); a reviewer lifts the suspension with {} on the unit namespace, then file again",
                keys::SUSPENSION_LIFTED
            );
            b.cond(Wanted::new(
                condition::ACCEPTED,
                false,
                "UnitSuspended",
                message.clone(),
            ));
            b.enter(RequestPhase::Rejected, "UnitSuspended", message);
            return None;
        }
    }
    if b.phase() == Some(RequestPhase::Rejected) {
        // Final, whether refused on filing or by a reviewer.
        return None;
    }
    if let Some(extends) = &input.spec.extends {
        match &input.target {
            None => {
                b.rec.status.phase.get_or_insert(RequestPhase::Submitted);
                b.cond(Wanted::new(
                    condition::ACCEPTED,
                    false,
                    "UnknownTenancy",
                    format!("spec.extends names {extends}, which is no tenancy in this namespace"),
                ));
                return None;
            }
            Some(t) if !matches!(t.phase, Some(TenancyPhase::Trial | TenancyPhase::Active)) => {
                b.rec.status.phase.get_or_insert(RequestPhase::Submitted);
                b.cond(Wanted::new(
                    condition::ACCEPTED,
                    false,
                    "TenancyNotInService",
                    format!(
                        "tenancy {extends} is {}; only a tenancy in trial or active service can be extended",
                        t.phase.map(|p| format!("{p:?}")).unwrap_or_else(|| "not yet provisioned".into())
                    ),
                ));
                return None;
            }
            Some(_) => {}
        }
    }
    Some(unit_id)
}

/// Into review: on filing, and when a returned request has been edited.
fn into_review(b: &mut Builder<'_, '_>) {
    let input = b.input;
    let last_return = input
        .status
        .reviews
        .iter()
        .rev()
        .find(|r| r.decision == Decision::Return)
        .map(|r| r.generation);
    match b.phase() {
        None | Some(RequestPhase::Submitted) => {
            b.rec.status.requested = Some(input.spec.resources.clone());
            b.enter(
                RequestPhase::UnderReview,
                "UnderReview",
                format!("under review: {}", describe(&input.spec.resources)),
            );
        }
        Some(RequestPhase::Returned) if last_return.is_some_and(|g| input.generation > g) => {
            b.rec.status.requested = Some(input.spec.resources.clone());
            b.enter(
                RequestPhase::UnderReview,
                "Resubmitted",
                format!(
                    "resubmitted at generation {}: {}",
                    input.generation,
                    describe(&input.spec.resources)
                ),
            );
        }
        _ => {}
    }
}

/// Approved, then edited: `SpecApproved` says which generation is.
fn spec_approved(b: &mut Builder<'_, '_>) {
    let input = b.input;
    if let (Some(RequestPhase::Approved), Some(approved)) =
        (b.phase(), b.rec.status.approved_generation)
    {
        if input.generation != approved {
            b.cond(Wanted::new(
                condition::SPEC_APPROVED,
                false,
                "SpecChangedAfterApproval",
                format!(
                    "generation {approved} is approved and provisioned; generation {} is not, until a reviewer approves it",
                    input.generation
                ),
            ));
        } else {
            b.cond(Wanted::new(
                condition::SPEC_APPROVED,
                true,
                "Approved",
                format!("generation {approved} is approved"),
            ));
        }
    }
}

fn finish(b: Builder<'_, '_>) -> Plan {
    Plan {
        status: b.rec.status,
        events: b.rec.events,
        orders: b.orders,
        requeue_at: b.rec.requeue_at,
    }
}

fn apply_decision(b: &mut Builder<'_, '_>, unit_id: &str) {
    let Some(written) = decision_to_apply(b) else {
        return;
    };
    let phase = b.phase();
    use Decision::{Approve, EmergencyOpen, Reject, Return};
    use RequestPhase::{Approved, EmergencyOpened, Rejected, Returned, UnderReview};
    let applied = match (written.decision, phase) {
        (EmergencyOpen, Some(UnderReview)) => emergency_open(b, &written, unit_id),
        (Decision::ExpertReview, Some(UnderReview)) => {
            b.record(&written);
            b.enter(
                RequestPhase::ExpertReview,
                "ExpertReviewRequested",
                format!(
                    "sent to expert review by {}; approval waits for {}",
                    written.by,
                    keys::EXPERT_OPINION
                ),
            );
            true
        }
        (Approve, Some(UnderReview | RequestPhase::ExpertReview | EmergencyOpened)) => {
            approve(b, &written, unit_id)
        }
        (Approve, Some(Approved)) => reapprove(b, &written, unit_id),
        (Reject | Return, _) if written.opinion.is_none() => {
            b.refuse(
                "OpinionMissing",
                format!(
                    "a {} needs the review opinion in {}: why, or what to supplement",
                    written.decision.as_str(),
                    keys::OPINION
                ),
            );
            false
        }
        (Reject, Some(UnderReview | RequestPhase::ExpertReview | EmergencyOpened)) => {
            b.record(&written);
            if phase == Some(EmergencyOpened) {
                b.orders.push(Order::Retire {
                    tenancy: b.input.name.to_owned(),
                });
                b.cond(Wanted::new(
                    condition::PAPERWORK_OVERDUE,
                    false,
                    "Rejected",
                    "the application was rejected; the tenancy opened in the emergency is retired",
                ));
            }
            let opinion = written.opinion.as_deref().unwrap_or_default();
            b.enter(
                Rejected,
                "Rejected",
                format!("rejected by {}: {opinion}", written.by),
            );
            true
        }
        (Return, Some(UnderReview | RequestPhase::ExpertReview)) => {
            b.record(&written);
            let opinion = written.opinion.as_deref().unwrap_or_default();
            b.enter(
                Returned,
                "Returned",
                format!("returned by {} to supplement: {opinion}", written.by),
            );
            true
        }
        (decision, phase) => {
            let phase = phase.map_or_else(|| "new".into(), |p| format!("{p:?}"));
            b.refuse(
                "NotApplicable",
                format!(
                    "{} does not apply to a request that is {phase}",
                    decision.as_str()
                ),
            );
            false
        }
    };
    if applied {
        b.applied(&written);
    }
}

/// The decision written on the request, if it is one to apply now: valid,
/// not yet applied, of the current generation, and (approving) naming only
/// storage classes on offer. Otherwise `DecisionValid` says why not.
fn decision_to_apply(b: &mut Builder<'_, '_>) -> Option<Written> {
    let input = b.input;
    let written = match read_decision(input.annotations) {
        Ok(Some(w)) => w,
        Ok(None) => {
            b.rec.clear(condition::DECISION_VALID);
            return None;
        }
        Err(message) => {
            b.refuse("InvalidDecision", message);
            return None;
        }
    };
    if b.already_applied(&written) {
        // Expert review waits for the opinion; nothing else to do.
        b.applied(&written);
        return None;
    }
    if written.generation != input.generation {
        b.refuse(
            "StaleDecision",
            format!(
                "the decision names generation {} but the request is at generation {}; review the current generation and decide again",
                written.generation, input.generation
            ),
        );
        return None;
    }
    if matches!(
        written.decision,
        Decision::Approve | Decision::EmergencyOpen
    ) {
        let unknown: Vec<&str> = input
            .spec
            .resources
            .cloud_storage
            .iter()
            .map(|v| v.class.as_str())
            .filter(|c| !input.storage_classes.contains(*c))
            .collect();
        if !unknown.is_empty() {
            let offered: Vec<&str> = input.storage_classes.iter().map(String::as_str).collect();
            b.refuse(
                "StorageClassNotOffered",
                format!(
                    "storage class {} is not offered here (neither the cluster nor the price list has it): amend spec.resources.cloudStorage to one of {}",
                    unknown.join(", "),
                    offered.join(", ")
                ),
            );
            return None;
        }
    }
    Some(written)
}

/// Art. 13 ¶2: an urgent request opened before review; its paperwork is due
/// within 10 working days. Whether it was applied.
fn emergency_open(b: &mut Builder<'_, '_>, written: &Written, unit_id: &str) -> bool {
    let input = b.input;
    use RequestPhase::EmergencyOpened;
    if input.spec.emergency.is_none() {
        b.refuse(
            "NotUrgent",
            "emergency-open applies only to a request the unit marked urgent (spec.emergency.reason); review it normally".into(),
        );
        return false;
    }
    if input.spec.extends.is_some() {
        b.refuse(
            "NotUrgent",
            "an extension of a running tenancy is not opened in an emergency; review it normally"
                .into(),
        );
        return false;
    }
    let due = input.calendar.deadline(input.now, PAPERWORK_WORKING_DAYS);
    b.deadline_note(&due.assumed_years);
    b.record(written);
    b.rec.status.opened_at = Some(time(input.now));
    b.rec.status.paperwork_due_at = Some(time(due.at));
    b.rec.status.approved = Some(input.spec.resources.clone());
    b.rec.status.approved_generation = Some(input.generation);
    b.rec.status.tenancy = Some(input.name.to_owned());
    let mut spec = tenancy_spec(input, unit_id);
    spec.emergency = Some(EmergencyOpening {
        opened_at: time(input.now),
        paperwork_due_at: time(due.at),
    });
    b.orders.push(Order::Provision(Box::new(spec)));
    b.enter(
        EmergencyOpened,
        "EmergencyOpened",
        format!(
            "opened in an emergency by {}; the full application is due by {} (Art. 13)",
            written.by, due.day
        ),
    );
    true
}

/// An approval (Art. 13): provisions the tenancy, extends one, or completes
/// an emergency opening's paperwork. Whether it was applied.
fn approve(b: &mut Builder<'_, '_>, written: &Written, unit_id: &str) -> bool {
    let input = b.input;
    let phase = b.phase();
    use RequestPhase::{Approved, EmergencyOpened};
    if phase == Some(RequestPhase::ExpertReview) && written.expert_opinion.is_none() {
        b.refuse(
            "AwaitingExpertOpinion",
            format!(
                "the request is in expert review: record the expert opinion in {} before approving (Art. 13)",
                keys::EXPERT_OPINION
            ),
        );
        return false;
    }
    let missing = input.spec.documents.missing();
    if !missing.is_empty() {
        b.refuse(
            "MaterialsMissing",
            format!(
                "the materials of Art. 12 are incomplete: spec.documents lacks {}",
                missing.join(", ")
            ),
        );
        return false;
    }
    if let Some(extends) = &input.spec.extends {
        let Some(target) = &input.target else {
            return false;
        };
        match extend(target.spec, input.name, input.spec) {
            Ok(_) => b.orders.push(Order::Extend {
                tenancy: extends.to_string(),
                request: input.name.to_owned(),
            }),
            Err(message) => {
                b.refuse("ExtensionConflict", message);
                return false;
            }
        }
        b.rec.status.tenancy = Some(extends.to_string());
    } else if phase == Some(EmergencyOpened) {
        if input.status.approved.as_ref() != Some(&input.spec.resources) {
            b.refuse(
                "ChangedSinceOpening",
                "the resources differ from those opened in the emergency: restore them and approve, then change them with a ChangeRequest (Art. 17)".into(),
            );
            return false;
        }
        b.orders.push(Order::Regularize {
            tenancy: input.name.to_owned(),
        });
        b.cond(Wanted::new(
            condition::PAPERWORK_OVERDUE,
            false,
            "PaperworkCompleted",
            "the full application was approved",
        ));
    } else {
        b.orders
            .push(Order::Provision(Box::new(tenancy_spec(input, unit_id))));
        b.rec.status.tenancy = Some(input.name.to_owned());
    }
    b.record(written);
    b.rec.status.approved = Some(input.spec.resources.clone());
    b.rec.status.approved_generation = Some(input.generation);
    let amended = b.rec.status.requested.as_ref() != Some(&input.spec.resources);
    b.enter(
        Approved,
        "Approved",
        format!(
            "generation {} approved by {}{}: {}",
            input.generation,
            written.by,
            if amended { " as amended in review" } else { "" },
            describe(&input.spec.resources)
        ),
    );
    true
}

/// An approval of a spec edited after approval: the tenancy follows while
/// nothing else has changed it. Whether it was applied.
fn reapprove(b: &mut Builder<'_, '_>, written: &Written, unit_id: &str) -> bool {
    let input = b.input;
    // Re-approval of a spec edited after approval.
    match input.own_tenancy {
        // Only while nothing has changed it since: a re-approval must
        // not undo an applied change or extension.
        Some(t) if t.extensions.is_empty() && t.changes.is_empty() && t.retirement.is_none() => {
            let mut spec = tenancy_spec(input, unit_id);
            spec.emergency = t.emergency.clone();
            b.orders.push(Order::Provision(Box::new(spec)));
            b.record(written);
            b.rec.status.approved = Some(input.spec.resources.clone());
            b.rec.status.approved_generation = Some(input.generation);
            b.rec.note(Note::normal(
                "Reapproved",
                format!(
                    "generation {} approved by {}: {}",
                    input.generation,
                    written.by,
                    describe(&input.spec.resources)
                ),
            ));
        }
        _ => {
            b.refuse(
                "FileAChangeRequest",
                "the tenancy has changed since its approval; change it with a ChangeRequest (Art. 17)".into(),
            );
            return false;
        }
    }
    true
}

/// Art. 13 ¶2: the paperwork deadline of an emergency opening.
fn paperwork(b: &mut Builder<'_, '_>) {
    if b.phase() != Some(RequestPhase::EmergencyOpened) {
        return;
    }
    let Some(due) = b.rec.status.paperwork_due_at.as_ref().map(|t| t.0) else {
        return;
    };
    if b.input.now > due {
        let message = format!(
            "the full application was due by {} (10 working days after the emergency opening, Art. 13); it is not yet approved",
            crate::calendar::local_date(due)
        );
        b.rec.flag(
            Wanted::new(condition::PAPERWORK_OVERDUE, true, "Overdue", message),
            true,
            "PaperworkOverdue",
        );
    } else {
        b.cond(Wanted::new(
            condition::PAPERWORK_OVERDUE,
            false,
            "WithinDeadline",
            format!(
                "the full application is due by {}",
                crate::calendar::local_date(due)
            ),
        ));
        b.rec.wake_at(
            due.saturating_add(jiff::SignedDuration::from_secs(1))
                .unwrap_or(due),
        );
    }
}

/// Whether a request with this status has nothing in progress: an approved
/// or emergency-opened one is not until its tenancy exists, an extension
/// not until it is accepted.
pub fn settled(status: &CloudResourceRequestStatus, has_tenancy: bool) -> bool {
    let opened = matches!(
        status.phase,
        Some(RequestPhase::Approved | RequestPhase::EmergencyOpened)
    );
    let waiting = conditions::get(&status.conditions, condition::ACCEPTED)
        .is_some_and(|c| c.status == "False");
    (!opened || has_tenancy) && !waiting
}

/// Whether two statuses say the same thing (condition times aside).
pub fn same_status(a: &CloudResourceRequestStatus, b: &CloudResourceRequestStatus) -> bool {
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
    fn a_request_is_settled_once_its_tenancy_exists() {
        use crate::api::request::CloudResourceRequestStatus;
        let at = |phase| CloudResourceRequestStatus {
            phase: Some(phase),
            ..Default::default()
        };
        assert!(!settled(&at(RequestPhase::Approved), false));
        assert!(!settled(&at(RequestPhase::EmergencyOpened), false));
        assert!(settled(&at(RequestPhase::Approved), true));
        assert!(
            settled(&at(RequestPhase::UnderReview), false),
            "waits for people"
        );
        let mut extension = at(RequestPhase::Approved);
        let now: Timestamp = "2026-12-07T02:00:00Z".parse().unwrap();
        conditions::set(
            &mut extension.conditions,
            Wanted::new(condition::ACCEPTED, false, "TenancyNotReady", "m"),
            1,
            now,
        );
        assert!(!settled(&extension, true));
    }
    use crate::api::CloudResourceRequest;
    use crate::api::common::Decision;

    fn spec(path: &str) -> CloudResourceRequestSpec {
        let text =
            std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let crr: CloudResourceRequest = serde_saphyr::from_str(&text).unwrap();
        crr.spec
    }

    fn calendar() -> Calendar {
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

    struct Case {
        spec: CloudResourceRequestSpec,
        generation: i64,
        status: CloudResourceRequestStatus,
        annotations: BTreeMap<String, String>,
        unit: Unit,
        now: Timestamp,
    }

    impl Case {
        fn new(path: &str) -> Self {
            Self {
                spec: spec(path),
                generation: 1,
                status: CloudResourceRequestStatus::default(),
                annotations: BTreeMap::new(),
                unit: Unit {
                    id: Some("finance".into()),
                    suspended: None,
                },
                now: "2026-02-12T02:00:00Z".parse().unwrap(),
            }
        }

        fn decide(&mut self, decision: &str, generation: i64) -> &mut Self {
            self.annotations
                .insert(keys::DECISION.into(), decision.into());
            self.annotations
                .insert(keys::DECIDED_GENERATION.into(), generation.to_string());
            self.annotations
                .insert(keys::DECIDED_BY.into(), "wang".into());
            self
        }

        /// Plans, and takes the planned status as the new current one.
        fn step(&mut self) -> Plan {
            let cal = calendar();
            let plan = plan(&Input {
                name: "oa",
                generation: self.generation,
                spec: &self.spec,
                status: &self.status,
                annotations: &self.annotations,
                unit: &self.unit,
                target: None,
                own_tenancy: None,
                storage_classes: &offered(),
                calendar: &cal,
                now: self.now,
            });
            self.status = plan.status.clone();
            plan
        }
    }

    /// The classes of the shipped price list and configuration.
    fn offered() -> std::collections::BTreeSet<String> {
        ["backup", "ssd", "standard"].map(String::from).into()
    }

    fn reason(status: &CloudResourceRequestStatus, t: &str) -> String {
        conditions::get(&status.conditions, t)
            .map(|c| c.reason.clone())
            .unwrap_or_default()
    }

    #[test]
    fn art17_a_reapproval_never_undoes_an_applied_change() {
        let mut c = Case::new("config/samples/20-cloudresourcerequest-oa.yaml");
        c.step();
        c.decide("approve", 1);
        let approved = c.step();
        let Some(Order::Provision(spec)) = approved.orders.first() else {
            panic!("{:?}", approved.orders)
        };
        let mut tenancy = (**spec).clone();
        let reapprove = |c: &Case, tenancy: &TenancySpec| {
            plan(&Input {
                name: "oa",
                generation: 2,
                spec: &c.spec,
                status: &c.status,
                annotations: &c.annotations,
                unit: &c.unit,
                target: None,
                own_tenancy: Some(tenancy),
                storage_classes: &offered(),
                calendar: &calendar(),
                now: c.now,
            })
        };
        c.generation = 2;
        c.decide("approve", 2);
        // Untouched since: the edited spec is provisioned.
        assert!(matches!(
            reapprove(&c, &tenancy).orders.first(),
            Some(Order::Provision(_))
        ));
        // Resized by an applied ChangeRequest: refused, nothing ordered.
        tenancy.changes.push("memory".into());
        let plan = reapprove(&c, &tenancy);
        assert!(plan.orders.is_empty(), "{:?}", plan.orders);
        assert_eq!(reason(&plan.status, "DecisionValid"), "FileAChangeRequest");
    }

    #[test]
    fn art13_a_filed_request_is_under_review_and_nothing_is_ordered() {
        let mut c = Case::new("config/samples/20-cloudresourcerequest-oa.yaml");
        let plan = c.step();
        assert_eq!(plan.status.phase, Some(RequestPhase::UnderReview));
        assert!(plan.orders.is_empty());
        assert_eq!(plan.status.requested, Some(c.spec.resources.clone()));
        // Planning again changes nothing: a settled request is not rewritten.
        let again = c.step();
        assert!(same_status(&plan.status, &again.status));
        assert!(again.events.is_empty());
    }

    #[test]
    fn art13_an_approval_of_an_old_generation_orders_nothing() {
        let mut c = Case::new("config/samples/20-cloudresourcerequest-oa.yaml");
        c.step();
        c.generation = 2;
        c.decide("approve", 1);
        let plan = c.step();
        assert!(plan.orders.is_empty());
        assert_eq!(
            reason(&plan.status, condition::DECISION_VALID),
            "StaleDecision"
        );
        c.decide("approve", 2);
        let plan = c.step();
        assert!(matches!(&plan.orders[..], [Order::Provision(s)] if s.request_generation == 2));
        assert_eq!(plan.status.phase, Some(RequestPhase::Approved));
    }

    #[test]
    fn art13_emergency_open_needs_an_urgent_request_and_sets_the_deadline() {
        let mut c = Case::new("config/samples/20-cloudresourcerequest-oa.yaml");
        c.step();
        c.decide("emergency-open", 1);
        let plan = c.step();
        assert!(plan.orders.is_empty());
        assert_eq!(reason(&plan.status, condition::DECISION_VALID), "NotUrgent");

        let mut c = Case::new("config/samples/21-cloudresourcerequest-emergency.yaml");
        c.step();
        // Unmarked by a reviewer, the urgent request waits.
        assert!(c.step().orders.is_empty());
        c.decide("emergency-open", 1);
        let plan = c.step();
        assert_eq!(plan.status.phase, Some(RequestPhase::EmergencyOpened));
        assert_eq!(
            plan.status.paperwork_due_at.as_ref().unwrap().0.to_string(),
            "2026-03-04T15:59:59Z"
        );
        let Some(Order::Provision(spec)) = plan.orders.first() else {
            panic!("no provisioning order: {:?}", plan.orders)
        };
        assert!(spec.emergency.is_some());
        assert_eq!(plan.requeue_at.unwrap().to_string(), "2026-03-04T16:00:00Z");

        c.now = "2026-03-04T16:00:00Z".parse().unwrap();
        let plan = c.step();
        assert!(conditions::is_true(
            &plan.status.conditions,
            condition::PAPERWORK_OVERDUE
        ));
        assert!(plan.events.iter().any(|e| e.reason == "PaperworkOverdue"));
        // The overdue mark is reported once.
        assert!(c.step().events.is_empty());
    }

    #[test]
    fn art13_expert_review_waits_for_the_opinion_and_rejection_keeps_it() {
        let mut c = Case::new("config/samples/20-cloudresourcerequest-oa.yaml");
        c.step();
        c.decide("expert-review", 1);
        assert_eq!(c.step().status.phase, Some(RequestPhase::ExpertReview));
        c.decide("approve", 1);
        let plan = c.step();
        assert_eq!(
            reason(&plan.status, condition::DECISION_VALID),
            "AwaitingExpertOpinion"
        );
        c.decide("reject", 1);
        assert_eq!(
            reason(&c.step().status, condition::DECISION_VALID),
            "OpinionMissing"
        );
        c.annotations
            .insert(keys::OPINION.into(), "功能重复".into());
        let plan = c.step();
        assert_eq!(plan.status.phase, Some(RequestPhase::Rejected));
        let last = plan.status.reviews.last().unwrap();
        assert_eq!(
            (last.decision, last.opinion.as_deref()),
            (Decision::Reject, Some("功能重复"))
        );
    }

    #[test]
    fn art15_a_suspended_unit_cannot_apply() {
        let mut c = Case::new("config/samples/20-cloudresourcerequest-oa.yaml");
        c.unit.suspended = Some("since 2026-01-01: unused trial".into());
        let plan = c.step();
        assert_eq!(plan.status.phase, Some(RequestPhase::Rejected));
        assert_eq!(reason(&plan.status, condition::ACCEPTED), "UnitSuspended");
        // Lifting the suspension later does not revive this request.
        c.unit.suspended = None;
        c.decide("approve", 1);
        assert!(c.step().orders.is_empty());
    }

    #[test]
    fn art17_an_extension_may_not_reuse_a_name() {
        let base = spec("config/samples/20-cloudresourcerequest-oa.yaml");
        let target = TenancySpec {
            unit: "finance".into(),
            unit_name: base.unit.name.clone(),
            system_name: base.system.name.clone(),
            purpose: base.system.purpose.clone(),
            request: "finance-oa".into(),
            request_generation: 1,
            service_types: base.service_types.clone(),
            allocation: base.resources.clone(),
            compliance: base.compliance.clone(),
            extensions: vec![],
            changes: vec![],
            emergency: None,
            retirement: None,
        };
        let ext = spec("config/samples/22-cloudresourcerequest-extension.yaml");
        let grown = extend(&target, "finance-oa-expansion", &ext).unwrap();
        assert_eq!(grown.allocation.vm_count(), 4);
        assert_eq!(grown.extensions.len(), 1);
        let err = extend(&grown, "again", &ext).unwrap_err();
        assert!(err.contains("VM group app-extra already exists"), "{err}");
    }
}
