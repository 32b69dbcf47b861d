//! Working days and deadlines on any calendar: counting never panics, lands
//! on a working day, and counts back to what was asked.
#![no_main]

use arbitrary::Arbitrary;
use govcloud::calendar::Calendar;
use jiff::Timestamp;
use jiff::civil::Date;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Years with their holidays and adjusted working days, as (month, day).
    years: Vec<(i16, Vec<(i8, i8)>, Vec<(i8, i8)>)>,
    from: (i16, i8, i8),
    n: u16,
    /// Seconds since the epoch of an instant to count a deadline from.
    instant: i64,
}

fn date(y: i16, m: i8, d: i8) -> Option<Date> {
    Date::new(y, m, d).ok()
}

fuzz_target!(|input: Input| {
    let mut calendar = Calendar::new();
    for (year, holidays, working) in input.years.iter().take(6) {
        let holidays = holidays.iter().filter_map(|(m, d)| date(*year, *m, *d));
        let working = working.iter().filter_map(|(m, d)| date(*year, *m, *d));
        // A second calendar for a year may conflict: refused, not a panic.
        let _ = calendar.add_year(i32::from(*year), holidays, working);
    }
    let Some(from) = date(input.from.0, input.from.1, input.from.2) else {
        return;
    };
    let n = u32::from(input.n);
    let counted = calendar.add_working_days(from, n);
    assert!(counted.date >= from);
    if n > 0 && counted.date < Date::MAX {
        assert!(calendar.is_working_day(counted.date));
        assert_eq!(calendar.working_days_between(from, counted.date), n);
    }
    if let Ok(at) = Timestamp::from_second(input.instant) {
        let deadline = calendar.deadline(at, n.min(400));
        assert!(deadline.at >= at || deadline.day == Date::MAX);
    }
});
