//! Oversight of a tenancy in service: rectification cases, force-stop and
//! deregistration (Art. 20), isolation (Art. 25) and compliance deadlines
//! (Art. 12 ¶2, 24).
//!
//! A force-stop and an isolation both *hold* the tenancy: what they will take
//! away (how every VM runs, the unit's own NetworkPolicies) is recorded in the
//! status first; only on the next reconcile, with that record safely stored,
//! are the VMs stopped, the network cut and the unit's role narrowed. Lifting
//! the last hold puts back exactly what was recorded.

use jiff::Timestamp;
use jiff::civil::Date;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Builder, annotation};
use crate::api::TenancyPhase;
use crate::api::common::Compliance;
use crate::api::keys;
use crate::api::tenancy::{
    Held, HeldVm, HoldMode, Isolation, Rectification, RectificationTrigger, Retirement,
    RetirementReason, StashedPolicy,
};
use crate::calendar;
use crate::conditions::Wanted;
use crate::config::{IsolationVms, OversightConfig};
use crate::provisioning::{ALLOW_POLICY, UNIT_BINDING, UNIT_BINDING_ISOLATED};

pub mod condition {
    /// A rectification case is open (Art. 20).
    pub const RECTIFICATION_OPEN: &str = "RectificationOpen";
    /// Not rectified in time: VMs stopped and network denied (Art. 20).
    pub const FORCE_STOPPED: &str = "ForceStopped";
    /// Isolated by the vendor or a reviewer (Art. 25).
    pub const ISOLATED: &str = "Isolated";
    /// Compliance evidence missing past its deadline (Art. 12 ¶2, 24).
    pub const COMPLIANCE_OVERDUE: &str = "ComplianceOverdue";
    /// A deregistration was asked for where Art. 20 does not allow it.
    pub const DEREGISTRATION_REFUSED: &str = "DeregistrationRefused";
    /// Part of a hold could not be carried out (set by the controller).
    pub const HOLD_INCOMPLETE: &str = "HoldIncomplete";
}

/// What the five triggers of Art. 20 are called on the forms.
pub fn trigger_text(t: RectificationTrigger) -> &'static str {
    match t {
        RectificationTrigger::LowUsageAfterScaleDown => {
            "usage still low within 3 months after a scale-down"
        }
        RectificationTrigger::SecurityNonCompliance => {
            "not meeting the network-security and cryptography requirements"
        }
        RectificationTrigger::Vulnerabilities => "information-security vulnerabilities",
        RectificationTrigger::MisuseOfResources => "resources used other than as applied for",
        RectificationTrigger::Other => "another breach of the measures",
    }
}

/// The end of the day one calendar month after `opened` (Art. 20: one month
/// to rectify), in Asia/Shanghai.
pub fn rectification_due(opened: Timestamp) -> Timestamp {
    calendar::end_of_day(calendar::local_date(calendar::add_month(opened)))
}

/// The evidence missing on `today` whose deadline has passed, by name, and the
/// next deadline still ahead (when to look again).
pub fn compliance_gaps(
    c: &Compliance,
    today: Date,
    cfg: &OversightConfig,
) -> (Vec<String>, Option<Date>) {
    let mut missing = Vec::new();
    let security = [
        (
            "MLPS filing",
            c.mlps.as_ref().is_some_and(|m| m.filing_number.is_some()),
        ),
        (
            "MLPS evaluation",
            c.mlps.as_ref().is_some_and(|m| m.evaluation.is_some()),
        ),
        ("cryptography assessment", c.crypto_assessment.is_some()),
        ("software testing", c.software_testing.is_some()),
    ];
    let mut next = None;
    for (deadline, items) in [
        (cfg.security_deadline, security.to_vec()),
        (
            cfg.xinchuang_deadline,
            vec![("Xinchuang adaptation", c.xinchuang.is_some())],
        ),
    ] {
        let gaps: Vec<&str> = items
            .iter()
            .filter(|(_, has)| !has)
            .map(|(n, _)| *n)
            .collect();
        if gaps.is_empty() {
            continue;
        }
        if today > deadline {
            missing.extend(gaps.iter().map(|g| format!("{g} (due by {deadline})")));
        } else if next.is_none_or(|n| deadline < n) {
            next = Some(deadline);
        }
    }
    (missing, next)
}

pub(super) fn compliance(b: &mut Builder<'_, '_>) {
    let input = b.input;
    let today = calendar::local_date(input.now);
    let (missing, next) = compliance_gaps(&input.spec.compliance, today, input.oversight);
    if let Some(deadline) = next
        && let Ok(after) = deadline.tomorrow()
    {
        b.wake_at(calendar::start_of_day(after));
    }
    let message = if missing.is_empty() {
        "the compliance evidence due so far is on record".to_owned()
    } else {
        format!(
            "missing past its deadline (Art. 12 ¶2, 24): {}; add the evidence to spec.compliance",
            missing.join(", ")
        )
    };
    let changed = b.cond(Wanted::new(
        condition::COMPLIANCE_OVERDUE,
        !missing.is_empty(),
        if missing.is_empty() {
            "OnRecord"
        } else {
            "EvidenceMissing"
        },
        message.clone(),
    ));
    if changed && !missing.is_empty() {
        b.event(true, "ComplianceOverdue", message);
    }
    b.rec.status.compliance_gaps = missing;
}

fn decided_by(b: &Builder<'_, '_>) -> Option<String> {
    annotation(b.input.annotations, keys::DECIDED_BY).map(str::to_owned)
}

/// Opens, closes and enforces the deadline of a rectification case.
///
/// `govcloud.dev/rectification=<1..5>` opens a case (when none is open and
/// `govcloud.dev/rectified` is absent); `govcloud.dev/rectified=<note>` closes
/// it; removing the trigger annotation withdraws it. A case is opened only on
/// a tenancy in formal operation.
pub(super) fn rectification(b: &mut Builder<'_, '_>) {
    let input = b.input;
    let code = annotation(input.annotations, keys::RECTIFICATION);
    let rectified = annotation(input.annotations, keys::RECTIFIED);
    let open = b
        .rec
        .status
        .rectification
        .clone()
        .filter(|c| c.closed_at.is_none());
    match (open, code, rectified) {
        (Some(case), None, _) | (Some(case), _, Some(_)) => close_case(b, &case, rectified),
        (Some(case), Some(_), None) => force_stop_when_due(b, &case),
        (None, Some(code), None) => open_case(b, code),
        (None, _, _) => {}
    }
}

/// A case closed: rectified (`govcloud.dev/rectified`) or withdrawn (its
/// trigger removed); what a force-stop held is restored.
fn close_case(b: &mut Builder<'_, '_>, case: &Rectification, rectified: Option<&str>) {
    let now = b.input.now;
    let by = decided_by(b);
    let (reason, note) = match rectified {
        Some(n) => ("Rectified", n.to_owned()),
        None => (
            "Withdrawn",
            format!("withdrawn: {} was removed", keys::RECTIFICATION),
        ),
    };
    if let Some(c) = b.rec.status.rectification.as_mut() {
        c.closed_at = Some(Time(now));
        c.closed_note = Some(note.clone());
        c.closed_by = by.clone();
    }
    let stopped = case.force_stopped_at.is_some();
    if matches!(
        b.rec.status.phase,
        Some(TenancyPhase::Rectifying | TenancyPhase::ForceStopped)
    ) {
        b.rec.status.phase = Some(TenancyPhase::Active);
    }
    let message = format!(
        "rectification case ({}) closed{}: {note}{}",
        trigger_text(case.trigger),
        by.map(|b| format!(" by {b}")).unwrap_or_default(),
        if stopped {
            "; VMs and network are restored as they were"
        } else {
            ""
        }
    );
    b.cond(Wanted::new(
        condition::RECTIFICATION_OPEN,
        false,
        reason,
        message.clone(),
    ));
    if stopped {
        b.cond(Wanted::new(
            condition::FORCE_STOPPED,
            false,
            reason,
            message.clone(),
        ));
    }
    b.event(false, reason, message);
}

/// Art. 20: a case not rectified by its deadline force-stops the tenancy.
fn force_stop_when_due(b: &mut Builder<'_, '_>, case: &Rectification) {
    let now = b.input.now;
    if case.force_stopped_at.is_none() {
        if now >= case.due_at.0 {
            if let Some(c) = b.rec.status.rectification.as_mut() {
                c.force_stopped_at = Some(Time(now));
            }
            let message = format!(
                "not rectified by {} (Art. 20): force-stopped, VMs stopped and all traffic denied; a reviewer may deregister it ({}) or close the case ({})",
                calendar::display(case.due_at.0),
                keys::DEREGISTER,
                keys::RECTIFIED
            );
            b.cond(Wanted::new(
                condition::FORCE_STOPPED,
                true,
                "Overdue",
                message.clone(),
            ));
            b.enter(TenancyPhase::ForceStopped, "ForceStopped", message);
        } else {
            b.wake_at(case.due_at.0);
        }
    }
}

/// Opens a case from `govcloud.dev/rectification=<1..5>` on a tenancy in
/// formal operation; anything else is refused and said.
fn open_case(b: &mut Builder<'_, '_>, code: &str) {
    let now = b.input.now;
    let by = decided_by(b);
    let refuse = |b: &mut Builder<'_, '_>, reason: &'static str, message: String| {
        b.rec.flag(
            Wanted::new(condition::RECTIFICATION_OPEN, false, reason, message),
            true,
            "RectificationRefused",
        );
    };
    let Some(trigger) = RectificationTrigger::from_code(code) else {
        refuse(
            b,
            "InvalidTrigger",
            format!(
                "{}={code:?} is not a case of Art. 20: use 1 (low usage after a scale-down), 2 (security or cryptography), 3 (vulnerabilities), 4 (use other than applied for) or 5 (other)",
                keys::RECTIFICATION
            ),
        );
        return;
    };
    if b.rec.status.phase != Some(TenancyPhase::Active) {
        let phase = b
            .rec
            .status
            .phase
            .map_or_else(|| "not yet provisioned".to_owned(), |p| format!("{p:?}"));
        refuse(
            b,
            "NotInService",
            format!(
                "a rectification case is opened on a tenancy in formal operation (Active); this one is {phase}"
            ),
        );
        return;
    }
    let due = rectification_due(now);
    b.rec.status.rectification = Some(Rectification {
        trigger,
        opened_at: Time(now),
        opened_by: by.clone(),
        due_at: Time(due),
        closed_at: None,
        closed_note: None,
        closed_by: None,
        force_stopped_at: None,
    });
    let message = format!(
        "rectification case opened{} (Art. 20 ({}): {}): rectify by {}, or the tenancy is force-stopped",
        by.map(|b| format!(" by {b}")).unwrap_or_default(),
        trigger.code(),
        trigger_text(trigger),
        calendar::display(due)
    );
    b.cond(Wanted::new(
        condition::RECTIFICATION_OPEN,
        true,
        "Open",
        message.clone(),
    ));
    b.rec.status.phase = Some(TenancyPhase::Rectifying);
    b.event(true, "RectificationOpened", message);
    b.wake_at(due);
}

/// A reviewer's `govcloud.dev/deregister` on a force-stopped tenancy retires
/// it through the termination path (wiped).
pub(super) fn deregistration(b: &mut Builder<'_, '_>) {
    let input = b.input;
    let Some(note) = annotation(input.annotations, keys::DEREGISTER) else {
        b.rec.clear(condition::DEREGISTRATION_REFUSED);
        return;
    };
    if input.spec.retirement.is_some() {
        return;
    }
    let overdue = b
        .rec
        .status
        .rectification
        .as_ref()
        .is_some_and(|c| c.closed_at.is_none() && c.force_stopped_at.is_some());
    if !overdue {
        let message = "deregistration (Art. 20) follows a rectification case not rectified within its month; this tenancy has no such case, so nothing is released".to_owned();
        b.rec.flag(
            Wanted::new(
                condition::DEREGISTRATION_REFUSED,
                true,
                "NotForceStopped",
                message,
            ),
            true,
            "DeregistrationRefused",
        );
        return;
    }
    b.rec.clear(condition::DEREGISTRATION_REFUSED);
    let by = decided_by(b);
    b.todo.retire = Some(Retirement {
        reason: RetirementReason::Deregistered,
        reference: format!(
            "Tenancy/{}: deregistered{}: {note}",
            input.name,
            by.map(|b| format!(" by {b}")).unwrap_or_default()
        ),
        decided_at: Time(input.now),
        effective_at: None,
    });
}

/// Starts, updates and lifts an isolation from `govcloud.dev/isolate`.
pub(super) fn isolation(b: &mut Builder<'_, '_>) {
    let input = b.input;
    let reason = annotation(input.annotations, keys::ISOLATE);
    let by = decided_by(b);
    let current = b.rec.status.isolation.clone();
    let mode = match b.rec.status.held.as_ref().map(|h| h.mode) {
        Some(HoldMode::Pause) => "paused",
        Some(HoldMode::Halt) => "halted",
        None if input.oversight.isolation_vms == IsolationVms::Pause => "paused",
        None => "halted",
    };
    match (reason, current) {
        (Some(reason), None) => {
            b.rec.status.isolation = Some(Isolation {
                reason: reason.to_owned(),
                by: by.clone(),
                since: Time(input.now),
            });
            let message = format!(
                "isolated at once{}: {reason} (Art. 25): all traffic in and out denied, VMs {mode}; removing {} restores them as they were",
                by.map(|b| format!(" by {b}")).unwrap_or_default(),
                keys::ISOLATE
            );
            b.cond(Wanted::new(
                condition::ISOLATED,
                true,
                "Isolated",
                message.clone(),
            ));
            b.event(true, "Isolated", message);
        }
        (Some(reason), Some(cur)) => {
            if cur.reason != reason {
                if let Some(i) = b.rec.status.isolation.as_mut() {
                    i.reason = reason.to_owned();
                }
                let message = format!("isolated (Art. 25): {reason}");
                b.cond(Wanted::new(
                    condition::ISOLATED,
                    true,
                    "Isolated",
                    message.clone(),
                ));
                b.event(true, "IsolationReason", message);
            }
        }
        (None, Some(cur)) => {
            b.rec.status.isolation = None;
            let message = format!(
                "isolation lifted{} after {}: network and VMs restored as they were",
                by.map(|b| format!(" by {b}")).unwrap_or_default(),
                calendar::display(cur.since.0)
            );
            b.cond(Wanted::new(
                condition::ISOLATED,
                false,
                "Lifted",
                message.clone(),
            ));
            b.event(false, "IsolationLifted", message);
        }
        (None, None) => {}
    }
}

/// Whether the tenancy is to be held, and whether the hold is recorded and
/// may be enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hold {
    pub wanted: bool,
    pub enforce: bool,
}

fn wanted(b: &Builder<'_, '_>) -> bool {
    b.rec.status.isolation.is_some()
        || b.rec
            .status
            .rectification
            .as_ref()
            .is_some_and(|c| c.closed_at.is_none() && c.force_stopped_at.is_some())
}

/// Records what a new hold will take away (from the namespace in view), or
/// says whether a recorded one is to be enforced.
pub(super) fn hold(b: &mut Builder<'_, '_>) -> Hold {
    let wanted = wanted(b);
    let recorded = b.rec.status.held.is_some();
    if wanted && !recorded {
        b.wake_at(b.input.now);
        let Some(view) = &b.input.observed.view else {
            return Hold {
                wanted,
                enforce: false,
            };
        };
        let mode = match b.input.oversight.isolation_vms {
            IsolationVms::Halt => HoldMode::Halt,
            IsolationVms::Pause => HoldMode::Pause,
        };
        b.rec.status.held = Some(Held {
            since: Time(b.input.now),
            mode,
            vms: view
                .vms
                .iter()
                .map(|vm| HeldVm {
                    name: vm.name.clone(),
                    run_strategy: vm.run_strategy.clone(),
                    running: vm.running,
                    paused: view.paused.contains(&vm.name),
                })
                .collect(),
            network_policies: view
                .network_policies
                .iter()
                .filter(|p| !p.ours)
                .map(|p| StashedPolicy {
                    name: p.name.clone(),
                    manifest: p.manifest.clone(),
                })
                .collect(),
        });
        return Hold {
            wanted,
            enforce: false,
        };
    }
    Hold {
        wanted,
        enforce: wanted && recorded,
    }
}

/// How a VM is stopped without losing how it ran: `running: false` for a VM
/// that uses `spec.running`, else `runStrategy: Halted`.
fn halted(vm: &crate::release::Vm) -> HeldVm {
    if vm.run_strategy.is_none() && vm.running.is_some() {
        HeldVm {
            name: vm.name.clone(),
            run_strategy: None,
            running: Some(false),
            paused: false,
        }
    } else {
        HeldVm {
            name: vm.name.clone(),
            run_strategy: Some("Halted".into()),
            running: None,
            paused: false,
        }
    }
}

/// Carries out a recorded hold, or puts back what a lifted one took. Runs
/// after the desired objects are known (they leave out the allow policy and
/// bind the isolated role while the hold is enforced).
pub(super) fn enforce(b: &mut Builder<'_, '_>, hold: Hold) {
    if hold.enforce {
        hold_in_force(b);
    } else {
        lift(b, hold);
    }
}

/// A hold in force: the allow policy and the unit's binding gone, VMs
/// halted or paused, the unit's own policies stashed and removed.
fn hold_in_force(b: &mut Builder<'_, '_>) {
    let input = b.input;
    let exists = |kind: &str, name: &str| input.observed.lookup.object(kind, name).is_some();
    // VMs keep their runStrategy through the hold, whatever an approved
    // change would apply meanwhile: that waits until the hold is lifted.
    b.todo.apply.retain(|d| d.kind != "VirtualMachine");
    for (kind, name) in [
        ("NetworkPolicy", ALLOW_POLICY),
        ("RoleBinding", UNIT_BINDING),
    ] {
        if exists(kind, name) {
            b.todo.delete.push(deletion(kind, input, name));
        }
    }
    let Some(view) = &input.observed.view else {
        b.wake_at(input.now);
        return;
    };
    let mode = b
        .rec
        .status
        .held
        .as_ref()
        .map_or(HoldMode::Halt, |h| h.mode);
    let mut busy = false;
    match mode {
        HoldMode::Halt => {
            for vm in view.vms.iter().filter(|v| !v.halted) {
                b.todo.run_states.push(halted(vm));
                busy = true;
            }
        }
        HoldMode::Pause => {
            for i in view.instances.iter().filter(|i| !view.paused.contains(i)) {
                b.todo.pause.push(i.clone());
                busy = true;
            }
        }
    }
    let stash: Vec<String> = b
        .rec
        .status
        .held
        .as_ref()
        .map(|h| h.network_policies.iter().map(|p| p.name.clone()).collect())
        .unwrap_or_default();
    for p in view.network_policies.iter().filter(|p| !p.ours) {
        busy = true;
        if stash.contains(&p.name) {
            b.todo
                .delete
                .push(deletion("NetworkPolicy", input, &p.name));
        } else if let Some(h) = b.rec.status.held.as_mut() {
            // Created since the hold was recorded: kept first, removed next.
            h.network_policies.push(StashedPolicy {
                name: p.name.clone(),
                manifest: p.manifest.clone(),
            });
        }
    }
    b.todo.poll |= busy;
    if busy {
        b.wake_at(input.now);
    }
    // What holds the network is the policies as they are: the deny
    // policy in place as written (put back if someone changed it), the
    // allow policy and the unit's own gone.
    let denied = b.rec.status.inventory.iter().any(|i| {
        i.kind == "NetworkPolicy" && i.name == crate::provisioning::DENY_POLICY && i.ready
    });
    let open =
        exists("NetworkPolicy", ALLOW_POLICY) || view.network_policies.iter().any(|p| !p.ours);
    let message = if busy || !denied || open {
        "the tenancy is being held: stopping VMs and cutting all traffic (not yet in force)"
    } else {
        "the tenancy is held: VMs stopped and all traffic denied"
    };
    b.cond(Wanted::new(
        super::condition::READY,
        false,
        if b.rec.status.isolation.is_some() {
            "Isolated"
        } else {
            "ForceStopped"
        },
        message,
    ));
}

/// A hold lifted: what it stopped, paused or removed is put back as it was.
fn lift(b: &mut Builder<'_, '_>, hold: Hold) {
    let input = b.input;
    let exists = |kind: &str, name: &str| input.observed.lookup.object(kind, name).is_some();
    let Some(held) = b.rec.status.held.clone() else {
        return;
    };
    if hold.wanted {
        // Being recorded: nothing is touched yet.
        return;
    }
    let Some(view) = &input.observed.view else {
        b.wake_at(input.now);
        return;
    };
    if exists("RoleBinding", UNIT_BINDING_ISOLATED) {
        b.todo
            .delete
            .push(deletion("RoleBinding", input, UNIT_BINDING_ISOLATED));
    }
    for h in &held.vms {
        let Some(vm) = view.vms.iter().find(|v| v.name == h.name) else {
            continue;
        };
        if (vm.run_strategy.as_ref(), vm.running) != (h.run_strategy.as_ref(), h.running) {
            b.todo.run_states.push(HeldVm {
                paused: false,
                ..h.clone()
            });
        }
        if view.paused.contains(&h.name) && !h.paused {
            b.todo.unpause.push(h.name.clone());
        }
    }
    for p in &held.network_policies {
        if !view.network_policies.iter().any(|v| v.name == p.name) {
            b.todo.restore_policies.push(p.clone());
        }
    }
    b.rec.status.held = None;
}

fn deletion(kind: &'static str, input: &super::Input<'_>, name: &str) -> crate::release::Deletion {
    let api_version = match kind {
        "RoleBinding" => "rbac.authorization.k8s.io/v1",
        _ => "networking.k8s.io/v1",
    };
    crate::release::Deletion {
        api_version,
        kind,
        namespace: Some(input.namespace.to_owned()),
        name: name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::common::Evidence;

    fn evidence() -> Evidence {
        Evidence {
            completed_on: jiff::civil::date(2025, 6, 1),
            reference: "R-1".into(),
            document: None,
        }
    }

    #[test]
    fn art12_security_evidence_is_due_by_the_end_of_2025() {
        let cfg = OversightConfig::default();
        let mut c = Compliance::default();
        let (missing, next) = compliance_gaps(&c, jiff::civil::date(2025, 12, 31), &cfg);
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(next, Some(jiff::civil::date(2025, 12, 31)));
        let (missing, next) = compliance_gaps(&c, jiff::civil::date(2026, 1, 1), &cfg);
        assert_eq!(
            missing,
            [
                "MLPS filing (due by 2025-12-31)",
                "MLPS evaluation (due by 2025-12-31)",
                "cryptography assessment (due by 2025-12-31)",
                "software testing (due by 2025-12-31)"
            ]
        );
        assert_eq!(next, Some(jiff::civil::date(2026, 12, 31)));
        c.crypto_assessment = Some(evidence());
        c.software_testing = Some(evidence());
        let (missing, _) = compliance_gaps(&c, jiff::civil::date(2026, 1, 1), &cfg);
        assert_eq!(missing.len(), 2);
    }

    #[test]
    fn art24_xinchuang_is_due_by_the_end_of_2026_and_configurable() {
        let mut cfg = OversightConfig::default();
        let mut c = Compliance {
            crypto_assessment: Some(evidence()),
            software_testing: Some(evidence()),
            mlps: Some(crate::api::common::Mlps {
                level: 2,
                filing_number: Some("37-1".into()),
                evaluation: Some(evidence()),
            }),
            xinchuang: None,
        };
        assert!(
            compliance_gaps(&c, jiff::civil::date(2026, 12, 31), &cfg)
                .0
                .is_empty()
        );
        assert_eq!(
            compliance_gaps(&c, jiff::civil::date(2027, 1, 1), &cfg).0,
            ["Xinchuang adaptation (due by 2026-12-31)"]
        );
        cfg.xinchuang_deadline = jiff::civil::date(2027, 6, 30);
        assert!(
            compliance_gaps(&c, jiff::civil::date(2027, 1, 1), &cfg)
                .0
                .is_empty()
        );
        c.xinchuang = Some(evidence());
        assert_eq!(
            compliance_gaps(&c, jiff::civil::date(2030, 1, 1), &cfg),
            (vec![], None)
        );
    }

    #[test]
    fn art20_one_month_ends_with_the_same_day_of_the_next_month() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        // 27 November 10:00 Beijing: due by the end of 27 December.
        assert_eq!(
            rectification_due(at("2026-11-27T02:00:00Z")),
            at("2026-12-27T15:59:59Z")
        );
        // 31 January: February has no 31st, so the end of 28 February.
        assert_eq!(
            rectification_due(at("2027-01-31T02:00:00Z")),
            at("2027-02-28T15:59:59Z")
        );
    }

    use crate::api::tenancy::TenancyStatus;
    use crate::lifecycle::tests_support::World;
    use crate::release::{Namespace, Policy, Vm};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A tenancy in formal operation with its objects in place, and in its
    /// namespace: app-1 running (ours), one of the unit's own VMs halted by
    /// the unit, and one of the unit's NetworkPolicies.
    fn active() -> World {
        let mut w = World::new();
        w.settle();
        w.status.phase = Some(TenancyPhase::Active);
        w.step();
        for (kind, name) in [
            ("NetworkPolicy", ALLOW_POLICY),
            ("RoleBinding", UNIT_BINDING),
        ] {
            assert!(
                w.fake
                    .objects
                    .contains_key(&(kind.to_owned(), name.to_owned()))
            );
        }
        w.view = Some(Namespace {
            exists: true,
            vms: vec![
                Vm {
                    name: "app-1".into(),
                    ours: true,
                    run_strategy: Some("Always".into()),
                    ..Vm::default()
                },
                Vm {
                    name: "tool".into(),
                    halted: true,
                    run_strategy: None,
                    running: Some(false),
                    ..Vm::default()
                },
                Vm {
                    name: "batch".into(),
                    run_strategy: Some("RerunOnFailure".into()),
                    ..Vm::default()
                },
            ],
            instances: vec!["app-1".into(), "batch".into()],
            network_policies: vec![
                Policy {
                    name: "govcloud-default-deny".into(),
                    ours: true,
                    manifest: "{}".into(),
                },
                Policy {
                    name: "allow-web".into(),
                    ours: false,
                    manifest: r#"{"spec":{"podSelector":{}}}"#.into(),
                },
            ],
            ..Namespace::default()
        });
        w
    }

    fn cond<'a>(
        s: &'a TenancyStatus,
        t: &str,
    ) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        s.conditions.iter().find(|c| c.type_ == t)
    }

    #[test]
    fn art20_a_case_is_due_in_a_month_then_force_stops_and_rectified_restores() {
        let mut w = active();
        w.annotations.insert(keys::RECTIFICATION.into(), "3".into());
        w.annotations
            .insert(keys::DECIDED_BY.into(), "zhang@dcd".into());
        let plan = w.step();
        assert_eq!(plan.status.phase, Some(TenancyPhase::Rectifying));
        let case = plan.status.rectification.clone().unwrap();
        assert_eq!(case.trigger, RectificationTrigger::Vulnerabilities);
        assert_eq!(case.opened_by.as_deref(), Some("zhang@dcd"));
        assert_eq!(case.due_at.0, at("2026-12-27T15:59:59Z"));
        assert_eq!(plan.requeue_at, Some(case.due_at.0));
        assert!(plan.events.iter().any(
            |e| e.reason == "RectificationOpened" && e.message.contains("2026-12-27 23:59:59")
        ));
        // Nothing is stopped while the month runs.
        assert!(plan.actions.run_states.is_empty() && plan.actions.delete.is_empty());

        // One instant before the end of the month: still rectifying.
        w.now = at("2026-12-27T15:59:58Z");
        assert_eq!(w.step().status.phase, Some(TenancyPhase::Rectifying));
        // Overdue: force-stopped. First what will be taken is recorded ...
        w.now = at("2026-12-28T01:00:00Z");
        let plan = w.step();
        assert_eq!(plan.status.phase, Some(TenancyPhase::ForceStopped));
        assert_eq!(
            cond(&plan.status, condition::FORCE_STOPPED).unwrap().status,
            "True"
        );
        let held = plan.status.held.clone().unwrap();
        assert_eq!(held.mode, HoldMode::Halt);
        assert_eq!(held.vms.len(), 3);
        assert_eq!(
            held.network_policies.len(),
            1,
            "only the unit's own policy is kept aside"
        );
        assert!(
            plan.actions.run_states.is_empty() && plan.actions.delete.is_empty(),
            "nothing touched before the record is stored"
        );
        // ... then, the record stored, VMs stop and the network is cut.
        let plan = w.step();
        let stopped: Vec<(&str, Option<&str>, Option<bool>)> = plan
            .actions
            .run_states
            .iter()
            .map(|v| (v.name.as_str(), v.run_strategy.as_deref(), v.running))
            .collect();
        assert_eq!(
            stopped,
            [
                ("app-1", Some("Halted"), None),
                ("batch", Some("Halted"), None)
            ]
        );
        let deleted: Vec<(&str, &str)> = plan
            .actions
            .delete
            .iter()
            .map(|d| (d.kind, d.name.as_str()))
            .collect();
        assert_eq!(
            deleted,
            [
                ("NetworkPolicy", ALLOW_POLICY),
                ("RoleBinding", UNIT_BINDING),
                ("NetworkPolicy", "allow-web")
            ]
        );
        let isolated_binding = plan
            .actions
            .apply
            .iter()
            .find(|d| d.kind == "RoleBinding")
            .unwrap();
        assert_eq!(isolated_binding.name, UNIT_BINDING_ISOLATED);
        assert_eq!(isolated_binding.object["roleRef"]["name"], "view");
        assert!(!plan.actions.apply.iter().any(|d| d.name == ALLOW_POLICY));
        assert_eq!(cond(&plan.status, "Ready").unwrap().reason, "ForceStopped");
        assert!(
            cond(&plan.status, "Ready")
                .unwrap()
                .message
                .contains("not yet in force"),
            "the network is not cut until the policies say so"
        );
        w.fake.applied(&plan, true);
        for d in &plan.actions.delete {
            w.fake.objects.remove(&(d.kind.to_owned(), d.name.clone()));
        }
        w.view
            .as_mut()
            .unwrap()
            .vms
            .iter_mut()
            .filter(|v| v.name != "tool")
            .for_each(|v| v.halted = true);
        w.view.as_mut().unwrap().network_policies.retain(|p| p.ours);
        let held = w.step();
        assert_eq!(
            cond(&held.status, "Ready").unwrap().message,
            "the tenancy is held: VMs stopped and all traffic denied"
        );
        // Someone opens the deny policy: put back, and not called held meanwhile.
        let key = (
            "NetworkPolicy".to_owned(),
            crate::provisioning::DENY_POLICY.to_owned(),
        );
        w.fake.objects.get_mut(&key).unwrap().live = Some("opened".into());
        let opened = w.step();
        assert!(
            opened
                .actions
                .apply
                .iter()
                .any(|d| d.name == crate::provisioning::DENY_POLICY)
        );
        assert!(
            cond(&opened.status, "Ready")
                .unwrap()
                .message
                .contains("not yet in force")
        );
        w.fake.applied(&opened, true);
        w.view
            .as_mut()
            .unwrap()
            .vms
            .iter_mut()
            .for_each(|v| v.halted = false);

        // The reviewer finds it rectified: everything back as it was.
        w.annotations
            .insert(keys::RECTIFIED.into(), "patched, re-scanned clean".into());
        w.view
            .as_mut()
            .unwrap()
            .vms
            .iter_mut()
            .filter(|v| v.name != "tool")
            .for_each(|v| {
                v.halted = true;
                v.run_strategy = Some("Halted".into());
            });
        w.view.as_mut().unwrap().network_policies.retain(|p| p.ours);
        let plan = w.step();
        assert_eq!(plan.status.phase, Some(TenancyPhase::Active));
        assert!(plan.status.held.is_none());
        let restored: Vec<(&str, Option<&str>, Option<bool>)> = plan
            .actions
            .run_states
            .iter()
            .map(|v| (v.name.as_str(), v.run_strategy.as_deref(), v.running))
            .collect();
        assert_eq!(
            restored,
            [
                ("app-1", Some("Always"), None),
                ("batch", Some("RerunOnFailure"), None)
            ]
        );
        assert_eq!(plan.actions.restore_policies.len(), 1);
        assert_eq!(
            plan.actions.restore_policies[0].manifest,
            r#"{"spec":{"podSelector":{}}}"#
        );
        assert!(plan.actions.apply.iter().any(|d| d.name == ALLOW_POLICY));
        assert!(plan.actions.apply.iter().any(|d| d.name == UNIT_BINDING));
        assert_eq!(plan.actions.delete.len(), 1);
        assert_eq!(plan.actions.delete[0].name, UNIT_BINDING_ISOLATED);
        let case = plan.status.rectification.unwrap();
        assert_eq!(
            case.closed_note.as_deref(),
            Some("patched, re-scanned clean")
        );
    }

    #[test]
    fn art20_a_case_needs_a_valid_trigger_and_a_tenancy_in_operation() {
        let mut w = World::new();
        w.settle();
        w.annotations.insert(keys::RECTIFICATION.into(), "1".into());
        let plan = w.step();
        assert_eq!(plan.status.phase, Some(TenancyPhase::Trial));
        assert!(plan.status.rectification.is_none());
        assert_eq!(
            cond(&plan.status, condition::RECTIFICATION_OPEN)
                .unwrap()
                .reason,
            "NotInService"
        );
        let mut w = active();
        w.annotations.insert(keys::RECTIFICATION.into(), "6".into());
        let plan = w.step();
        assert!(plan.status.rectification.is_none());
        let c = cond(&plan.status, condition::RECTIFICATION_OPEN).unwrap();
        assert_eq!(c.reason, "InvalidTrigger");
        assert!(c.message.contains("use 1 (low usage"), "{}", c.message);
        // Warned once, not on every reconcile.
        assert!(w.step().events.is_empty());
    }

    #[test]
    fn art20_deregistration_follows_only_an_overdue_case() {
        let mut w = active();
        w.annotations
            .insert(keys::DEREGISTER.into(), "not rectified".into());
        let plan = w.step();
        assert!(plan.actions.retire.is_none());
        assert_eq!(
            cond(&plan.status, condition::DEREGISTRATION_REFUSED)
                .unwrap()
                .status,
            "True"
        );
        w.annotations.remove(keys::DEREGISTER);
        w.annotations.insert(keys::RECTIFICATION.into(), "2".into());
        w.step();
        w.now = at("2027-01-01T00:00:00Z");
        w.step();
        assert_eq!(w.status.phase, Some(TenancyPhase::ForceStopped));
        w.annotations
            .insert(keys::DEREGISTER.into(), "not rectified".into());
        let plan = w.step();
        let r = plan.actions.retire.unwrap();
        assert_eq!(r.reason, RetirementReason::Deregistered);
        assert!(r.reference.contains("not rectified"), "{}", r.reference);
        assert!(cond(&plan.status, condition::DEREGISTRATION_REFUSED).is_none());
    }

    #[test]
    fn art25_isolation_holds_at_once_and_lifting_restores_exactly() {
        let mut w = active();
        w.annotations
            .insert(keys::ISOLATE.into(), "outbound attack traffic".into());
        w.annotations
            .insert(keys::DECIDED_BY.into(), "ops@vendor".into());
        let plan = w.step();
        let isolation = plan.status.isolation.clone().unwrap();
        assert_eq!(
            (isolation.reason.as_str(), isolation.by.as_deref()),
            ("outbound attack traffic", Some("ops@vendor"))
        );
        assert!(
            plan.events
                .iter()
                .any(|e| e.reason == "Isolated" && e.warning)
        );
        assert_eq!(
            plan.requeue_at,
            Some(w.now),
            "enforced on the very next reconcile"
        );
        assert_eq!(
            plan.status.phase,
            Some(TenancyPhase::Active),
            "isolation is not a phase"
        );
        let plan = w.step();
        assert_eq!(plan.actions.run_states.len(), 2);
        assert_eq!(plan.actions.delete.len(), 3);
        assert_eq!(cond(&plan.status, "Ready").unwrap().reason, "Isolated");
        w.fake.applied(&plan, true);
        // The unit created one more policy meanwhile (before its role narrowed): kept aside too.
        w.view.as_mut().unwrap().network_policies.push(Policy {
            name: "late".into(),
            ours: false,
            manifest: "{}".into(),
        });
        let plan = w.step();
        assert_eq!(plan.status.held.as_ref().unwrap().network_policies.len(), 2);
        assert!(plan.actions.poll);

        w.annotations.remove(keys::ISOLATE);
        w.view.as_mut().unwrap().network_policies.retain(|p| p.ours);
        for vm in &mut w.view.as_mut().unwrap().vms {
            if vm.run_strategy.is_some() {
                vm.run_strategy = Some("Halted".into());
            }
        }
        let plan = w.step();
        assert!(plan.status.isolation.is_none() && plan.status.held.is_none());
        assert_eq!(
            cond(&plan.status, condition::ISOLATED).unwrap().reason,
            "Lifted"
        );
        let names: Vec<&str> = plan
            .actions
            .restore_policies
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["allow-web", "late"]);
        // The unit's own VM that it had stopped stays stopped.
        assert!(!plan.actions.run_states.iter().any(|v| v.name == "tool"));
    }

    #[test]
    fn art25_pause_mode_pauses_running_instances_and_unpauses_only_those() {
        let mut w = active();
        w.view.as_mut().unwrap().paused = vec!["batch".into()];
        w.annotations.insert(keys::ISOLATE.into(), "risk".into());
        let cfg = OversightConfig {
            isolation_vms: IsolationVms::Pause,
            ..OversightConfig::default()
        };
        w.oversight = cfg;
        w.step();
        let plan = w.step();
        assert_eq!(plan.actions.pause, ["app-1"]);
        assert!(plan.actions.run_states.is_empty());
        w.view.as_mut().unwrap().paused = vec!["app-1".into(), "batch".into()];
        w.annotations.remove(keys::ISOLATE);
        let plan = w.step();
        assert_eq!(plan.actions.unpause, ["app-1"], "batch was paused before");
    }
}
