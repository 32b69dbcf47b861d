//! Beijing time: the zone every day of the measures is counted in, and
//! instants as people here read them. A leaf: the API's status columns and
//! the calendar both use it.

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};

/// The zone every day of the measures is counted in.
pub fn zone() -> &'static TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    // Asia/Shanghai has been UTC+8 without daylight saving since 1991; the
    // fixed offset stands in should the bundled database ever lack the name.
    ZONE.get_or_init(|| {
        TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| TimeZone::fixed(Offset::constant(8)))
    })
}

/// An instant as people here read it: `2026-12-27 20:38:08 +08:00`.
pub fn display(at: Timestamp) -> String {
    at.to_zoned(zone().clone())
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// An instant in RFC 3339 at Beijing's offset, for what people read and
/// machines parse (annotations): `2026-12-27T20:38:08+08:00`.
pub fn rfc3339(at: Timestamp) -> String {
    at.to_zoned(zone().clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}
