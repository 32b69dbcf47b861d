//! Tests against a real control plane (etcd, kube-apiserver,
//! kube-controller-manager built from the Go module proxy). One control plane
//! serves the whole run; each test gets its own namespaces.
//!
//! `cargo test --test e2e -- <filter>` runs a subset; `--list` lists them.

mod admission;
mod api;
mod boundaries;
mod changes;
mod failover;
mod lifecycle;
mod node;
mod operations;
mod oversight;
mod plugin;
mod rbac;
mod support;
mod trial;
mod utilisation;

use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use support::{Ctx, TestFn};

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$(
            (
                concat!(stringify!($module), "::", stringify!($name)),
                (|ctx| Box::pin($module::$name(ctx))) as TestFn,
            )
        ),*]
    };
}

fn all() -> Vec<(&'static str, TestFn)> {
    tests![
        node::chart_installs_an_operator_that_runs_hardened_and_hands_over_its_lease,
        node::art19_a_retired_tenancys_volumes_are_overwritten_on_the_node_filesystem_and_block,
        node::art15_an_unused_trial_is_reclaimed_and_a_failed_wipe_keeps_the_bytes_until_one_succeeds,
        node::a_node_left_by_a_crashed_run_is_cleaned_before_the_next_starts_and_after_it_stops,
        api::crds_are_established_with_names_columns_and_category,
        api::samples_are_accepted_and_listed_by_category,
        api::art5_a_request_without_data_platform_access_is_refused,
        api::invalid_manifests_are_rejected_with_actionable_messages,
        api::values_at_the_edges_are_accepted,
        api::art6_published_prices_are_superseded_never_edited,
        api::art12_materials_are_required_unless_the_request_is_urgent,
        api::art19_a_termination_names_one_of_the_five_reasons,
        rbac::a_unit_member_is_refused_what_rbac_does_not_grant,
        admission::art7_only_reviewers_decide_in_their_own_name_on_the_current_generation,
        admission::art8_a_unit_acts_in_its_own_namespace_and_edits_only_before_the_decision,
        admission::art9_auditors_read_everything_and_change_nothing,
        admission::art10_vendors_isolate_and_acknowledge_but_decide_nothing,
        admission::art11_a_system_goes_from_application_to_exit_by_the_users_the_measures_name,
        admission::art19_nothing_is_deleted_without_the_decision_the_measures_require,
        boundaries::art8_no_two_tenancies_share_a_namespace_and_none_is_taken_over,
        boundaries::art8_a_unit_runs_nothing_privileged_and_passes_the_multi_tenancy_benchmark,
        boundaries::art8_what_the_operator_owns_is_the_units_to_use_not_to_change,
        boundaries::art7_reviewers_decide_but_never_grant_access,
        boundaries::art19_a_removed_label_frees_nothing,
        boundaries::art19_removed_marks_come_back_and_volumes_lost_without_a_wipe_are_reported,
        boundaries::art19_a_wipe_record_comes_only_from_the_operators_own_job,
        boundaries::art13_a_reviewer_decides_nothing_of_their_own_unit,
        boundaries::art14_nothing_beyond_the_approved_envelope_is_had,
        boundaries::art14_a_unit_uses_nothing_in_its_namespace_before_the_quota_is_in_force,
        boundaries::art6_prices_and_calendars_are_the_platform_administrators_to_publish,
        boundaries::art12_the_unit_and_reviewers_add_compliance_evidence,
        boundaries::art19_dates_are_refused_at_apply_or_left_open_to_correction,
        plugin::art13_the_plugin_approves_as_a_reviewer_and_is_refused_as_a_tenant,
        plugin::art17_pending_lists_an_overdue_change_first,
        plugin::art25_the_plugin_isolates_as_a_vendor_and_rectifies_as_a_reviewer,
        plugin::art16_bill_prints_a_statement_whose_total_is_the_sum_of_its_lines,
        lifecycle::art13_nothing_is_provisioned_before_an_approval_of_the_current_generation,
        lifecycle::art14_an_approval_provisions_exactly_the_approved_objects,
        lifecycle::art14_a_charge_left_by_a_cut_off_create_holds_delivery_seconds_not_minutes,
        lifecycle::art13_a_reviewer_amendment_is_what_gets_provisioned,
        lifecycle::art13_expert_review_return_and_rejection_follow_the_reviewers,
        trial::art13_an_urgent_mark_alone_opens_nothing_and_emergency_open_starts_the_paperwork_clock,
        trial::art13_an_approval_after_an_emergency_opening_must_keep_what_was_opened,
        trial::art13_a_rejection_after_an_emergency_opening_retires_the_tenancy_wiped,
        trial::art16_a_used_trial_becomes_active_billed_from_the_trial_end,
        trial::art15_an_unused_trial_is_reclaimed_wiped_and_the_unit_suspended,
        trial::art14_high_end_items_wait_for_the_vendors_procurement,
        trial::art17_an_approved_extension_grows_the_tenancy_without_a_new_trial,
        operations::caches_stream_their_first_lists_where_the_apiserver_can_and_page_where_not,
        operations::a_settled_tenancy_receives_no_writes,
        operations::an_operator_killed_while_provisioning_ends_with_exactly_the_approved_objects,
        operations::an_unreadable_object_does_not_stop_the_others,
        operations::an_event_repeated_within_six_minutes_is_one_series_on_the_apiserver,
        failover::two_replicas_have_one_writer_and_a_takeover_within_the_lease_duration,
        changes::art17_a_change_filed_on_2025_09_26_is_due_by_the_end_of_2025_10_16,
        changes::art17_a_change_that_adds_or_shrinks_is_refused_with_what_to_do,
        changes::art17_an_approved_change_resizes_reduces_and_wipes_what_it_removes,
        changes::art17_changes_of_one_tenancy_apply_in_order_of_approval,
        changes::art19_a_termination_five_working_days_out_waits_for_the_earliest_date,
        changes::art19_an_approved_termination_releases_everything_wiped_at_its_effective_date,
        changes::art19_a_tenancy_deleted_by_hand_keeps_everything_until_released,
        changes::art19_a_failed_wipe_keeps_the_volume_and_says_so,
        changes::art19_delete_mode_trusts_the_storage_to_erase,
        utilisation::art18_daily_peaks_follow_beijing_days_in_a_real_prometheus,
        utilisation::art18_spikes_at_23_59_and_00_01_count_on_their_own_days_through_the_default_queries,
        utilisation::art18_each_rule_recommends_on_a_tenancy_from_four_queries,
        utilisation::art18_recorded_series_give_the_daily_peaks_of_the_raw_queries,
        utilisation::art18_an_unreachable_prometheus_keeps_the_last_recommendations_without_flapping,
        oversight::art20_an_overdue_rectification_force_stops_and_deregistration_retires_it_wiped,
        oversight::art20_a_rectified_case_lifts_the_force_stop_and_restores_what_it_held,
        oversight::art25_isolation_cuts_and_halts_at_once_and_lifting_restores_exactly,
        oversight::art25_pausing_without_kubevirt_api_still_cuts_the_network_and_says_what_failed,
        oversight::art12_and_art24_missing_evidence_past_its_deadline_is_overdue_until_added,
    ]
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".to_owned())
}

fn main() -> ExitCode {
    if std::env::var_os(node::CRASH_CHILD).is_some() {
        // Run by a node test as a node to crash; never returns.
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        runtime.block_on(node::child_to_crash());
        return ExitCode::FAILURE;
    }
    let args = Arguments::from_args();
    // The operator's logs, when asked for: RUST_LOG=info cargo test --test e2e
    if std::env::var_os("RUST_LOG").is_some() {
        govcloud::telemetry::init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = runtime.handle().clone();
    let trials: Vec<Trial> = all()
        .into_iter()
        .map(|(name, test)| {
            let handle = handle.clone();
            Trial::test(name, move || {
                handle.block_on(async move {
                    let ctx = Ctx::new().await;
                    let outcome = tokio::spawn(test(ctx.clone())).await;
                    ctx.cleanup().await;
                    match outcome {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(Failed::from(e.to_string())),
                        Err(join) if join.is_panic() => {
                            Err(Failed::from(panic_message(join.into_panic())))
                        }
                        Err(join) => Err(Failed::from(join.to_string())),
                    }
                })
            })
        })
        .collect();

    // Start the control plane on this thread (it lives for the whole run)
    // unless no test will run.
    if !args.list && trials.iter().any(|t| !args.is_filtered_out(t)) {
        runtime.block_on(support::env());
    }
    let conclusion = libtest_mimic::run(&args, trials);
    support::shutdown();
    utilisation::shutdown();
    conclusion.exit_code()
}
