//! The letters from any text and quantities a unit or the operator may put
//! in the objects: rendering never panics, and text from the objects never
//! reaches the HTML unescaped.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use govcloud::api::{ChangeRequest, CloudResourceRequest, Tenancy};
use govcloud::letters;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    unit: String,
    system: String,
    purpose: String,
    basis: String,
    requirements: String,
    reason: String,
    opinion: Option<String>,
    sizes: [u32; 4],
    counts: [u32; 3],
    seconds: [i64; 3],
}

struct Fixtures {
    request: CloudResourceRequest,
    tenancy: Tenancy,
    change: ChangeRequest,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| Fixtures {
        request: serde_saphyr::from_str(include_str!("../../tests/letters/request.yaml")).unwrap(),
        tenancy: serde_saphyr::from_str(include_str!("../../tests/letters/tenancy.yaml")).unwrap(),
        change: serde_saphyr::from_str(include_str!("../../tests/letters/change-modify.yaml"))
            .unwrap(),
    })
}

fn time(seconds: i64) -> Option<Time> {
    jiff::Timestamp::from_second(seconds).ok().map(Time)
}

fuzz_target!(|input: Input| {
    let f = fixtures();
    let mut request = f.request.clone();
    // Each text carries a tag of its own, which must never reach the HTML as one.
    let tagged = |text: &str| format!("{text}<fuzz-tag>{text}");
    request.spec.unit.name = tagged(&input.unit);
    request.spec.system.name = tagged(&input.system);
    request.spec.system.purpose = tagged(&input.purpose);
    request.spec.basis = tagged(&input.basis);
    request.spec.requirements = tagged(&input.requirements);
    let r = &mut request.spec.resources;
    r.vm_groups[0].system_disk_gib = input.sizes[0];
    r.vm_groups[1].data_disk_gib = input.sizes[1];
    r.cloud_storage[0].size_gib = input.sizes[2];
    r.backup_storage_gib = input.sizes[3];
    r.vm_groups[0].count = input.counts[0];
    r.public_ips = input.counts[1];
    r.bandwidth_mbps = input.counts[2];
    if let Some(status) = request.status.as_mut() {
        status.submitted_at = time(input.seconds[0]);
        status.reviews[0].opinion = input.opinion.as_deref().map(tagged);
        if let Some(t) = time(input.seconds[1]) {
            status.reviews[0].decided_at = t;
        }
    }
    let letter = letters::application(&request);
    let html = letter.html();
    let _ = letter.markdown();
    assert!(!html.contains("<fuzz-tag>"), "unescaped text in the HTML");

    let mut tenancy = f.tenancy.clone();
    tenancy.spec.unit_name = tagged(&input.unit);
    tenancy.spec.system_name = tagged(&input.system);
    tenancy.spec.allocation = request.spec.resources.clone();
    if let Some(status) = tenancy.status.as_mut() {
        status.delivered_at = time(input.seconds[1]);
        status.delivery_confirmed_at = time(input.seconds[2]);
    }
    if let Ok(letter) = letters::opening(&tenancy, letters::filed_on(&request)) {
        assert!(
            !letter.html().contains("<fuzz-tag>"),
            "unescaped text in the HTML"
        );
        let _ = letter.markdown();
    }

    let mut change = f.change.clone();
    change.spec.reason = tagged(&input.reason);
    if let Some(status) = change.status.as_mut() {
        status.unit_name = Some(tagged(&input.unit));
        status.before = Some(request.spec.resources.clone());
    }
    if let Ok(letter) = letters::change(&change) {
        let html = letter.html();
        let _ = letter.markdown();
        assert!(!html.contains("<fuzz-tag>"), "unescaped text in the HTML");
    }
});
