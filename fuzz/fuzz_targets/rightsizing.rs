//! The four rules of Art. 18 on any usage, allocation and thresholds: an
//! evaluation never panics, whatever Prometheus or a configuration says
//! (NaN, infinities, negative peaks, empty months, huge disks).
#![no_main]

use arbitrary::Arbitrary;
use govcloud::api::Resources;
use govcloud::rightsizing::{self, Daily, Thresholds, Usage};
use jiff::civil::Date;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    cpu: Vec<(u16, f64)>,
    memory: Vec<(u16, f64)>,
    disk: Vec<(u16, f64)>,
    disk_used: Vec<(u16, f64)>,
    disk_capacity: Option<f64>,
    /// vCPU, memory GiB, data disk GiB and count of each VM group.
    groups: Vec<(u8, u16, u32, u8)>,
    today: u16,
    thresholds: [f64; 6],
    windows: [u8; 4],
}

fn daily(start: Date, points: &[(u16, f64)]) -> Daily {
    points
        .iter()
        .take(800)
        .filter_map(|(offset, v)| {
            let day = start
                .checked_add(jiff::Span::new().days(i64::from(*offset % 1000)))
                .ok()?;
            Some((day, *v))
        })
        .collect()
}

fuzz_target!(|input: Input| {
    let start = Date::constant(2025, 1, 1);
    let usage = Usage {
        cpu: daily(start, &input.cpu),
        memory: daily(start, &input.memory),
        disk: daily(start, &input.disk),
        disk_used: daily(start, &input.disk_used),
        disk_capacity: input.disk_capacity,
    };
    let groups: Vec<_> = input
        .groups
        .iter()
        .take(8)
        .enumerate()
        .map(|(i, (vcpu, memory, data, count))| group(i, *vcpu, *memory, *data, *count))
        .collect();
    let allocation = Resources {
        vm_groups: groups,
        ..Resources::default()
    };
    let [up, cpu_mean, cpu_peak, mem_mean, mem_peak, free] = input.thresholds;
    let [up_days, months, min_days, growth_days] = input.windows;
    let thresholds = Thresholds {
        scale_up: up,
        scale_up_days: u32::from(up_days),
        cpu_mean_peak: cpu_mean,
        cpu_peak,
        memory_mean_peak: mem_mean,
        memory_peak: mem_peak,
        months: u32::from(months % 24),
        disk_free_gib: free,
        min_days: u32::from(min_days),
        min_growth_days: u32::from(growth_days),
    };
    let today = start
        .checked_add(jiff::Span::new().days(i64::from(input.today % 1200)))
        .unwrap_or(start);
    let evaluation = rightsizing::evaluate(&usage, &allocation, today, &thresholds);
    let _ = rightsizing::low_after_scale_down(&evaluation, None, None);
});

/// A VM group with the given sizes (the schema's bounds are not assumed).
fn group(i: usize, vcpu: u8, memory: u16, data: u32, count: u8) -> govcloud::api::VmGroup {
    govcloud::api::VmGroup {
        name: format!("g{i}").as_str().into(),
        count: u32::from(count),
        vcpu: u32::from(vcpu),
        memory_gib: u32::from(memory),
        system_disk_gib: 40,
        data_disk_gib: data,
        image: "kylin".into(),
        architecture: govcloud::api::common::Architecture::Arm64,
        high_end: false,
    }
}
