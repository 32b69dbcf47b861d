//! Working days and deadlines, as the measures count them.
//!
//! Pure functions of a [`Calendar`] (the State Council's holiday arrangements, one
//! [`WorkCalendar`](crate::api::WorkCalendar) per year) and the instants passed
//! in. Decisions of `regulation/MAP.md`:
//!
//! * weekends are off except the adjusted working days; listed holidays are off;
//! * "N working days after D" counts from the day after D, and the deadline is
//!   the end (23:59:59 Asia/Shanghai) of the N-th working day;
//! * a year without a calendar falls back to Monday to Friday, and every answer
//!   that relied on the fallback says which years it assumed;
//! * days and months are counted in Asia/Shanghai; "30 days" are calendar days,
//!   "1 month" is the same day of the next month, clamped to its last day.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, Time, Weekday};
use jiff::{Span, Timestamp, ToSpan};

use crate::api::WorkCalendarSpec;
pub use crate::beijing::{display, rfc3339, zone};

/// The calendar day (in Asia/Shanghai) that an instant falls on.
pub fn local_date(at: Timestamp) -> Date {
    at.to_zoned(zone().clone()).date()
}

/// The last second (23:59:59 Asia/Shanghai) of a day.
pub fn end_of_day(day: Date) -> Timestamp {
    day.to_datetime(Time::constant(23, 59, 59, 0))
        .to_zoned(zone().clone())
        .map(|z| z.timestamp())
        // A fixed-offset zone has every local time exactly once.
        .unwrap_or_else(|_| Timestamp::MAX)
}

/// The first instant (00:00 Asia/Shanghai) of a day.
pub fn start_of_day(day: Date) -> Timestamp {
    day.to_datetime(Time::midnight())
        .to_zoned(zone().clone())
        .map(|z| z.timestamp())
        .unwrap_or_else(|_| Timestamp::MIN)
}

/// `at` plus `days` calendar days, counted in Asia/Shanghai (Art. 15: the trial).
pub fn add_days(at: Timestamp, days: i64) -> Timestamp {
    shift(at, days.days())
}

/// `at` plus one calendar month: the same day of the next month, clamped to that
/// month's last day (Art. 20: the rectification period).
pub fn add_month(at: Timestamp) -> Timestamp {
    shift(at, 1.month())
}

fn shift(at: Timestamp, span: Span) -> Timestamp {
    let zoned = at.to_zoned(zone().clone());
    zoned
        .checked_add(span)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

/// Two calendars for the same year disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("two WorkCalendars give different dates for {year}")]
pub struct ConflictingYear {
    pub year: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Year {
    holidays: BTreeSet<Date>,
    working_days: BTreeSet<Date>,
}

/// The holiday arrangements known for each year.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    years: BTreeMap<i32, Year>,
}

/// A working day found by counting, and the years it had to assume
/// Monday-to-Friday for because no calendar was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub date: Date,
    pub assumed_years: BTreeSet<i32>,
}

/// A deadline: the end of a working day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub day: Date,
    pub at: Timestamp,
    pub assumed_years: BTreeSet<i32>,
}

impl Calendar {
    /// A calendar that knows no year: every year is Monday to Friday.
    pub fn new() -> Self {
        Self::default()
    }

    /// The calendar of the given WorkCalendar specs. Two specs for one year
    /// must agree.
    pub fn from_specs<'a>(
        specs: impl IntoIterator<Item = &'a WorkCalendarSpec>,
    ) -> Result<Self, ConflictingYear> {
        let mut calendar = Self::new();
        for spec in specs {
            calendar.add_year(
                spec.year,
                spec.holidays.iter().map(|d| d.date),
                spec.working_days.iter().map(|d| d.date),
            )?;
        }
        Ok(calendar)
    }

    /// Adds one year's holidays and adjusted working days.
    pub fn add_year(
        &mut self,
        year: i32,
        holidays: impl IntoIterator<Item = Date>,
        working_days: impl IntoIterator<Item = Date>,
    ) -> Result<(), ConflictingYear> {
        let new = Year {
            holidays: holidays.into_iter().collect(),
            working_days: working_days.into_iter().collect(),
        };
        match self.years.get(&year) {
            Some(old) if *old != new => Err(ConflictingYear { year }),
            _ => {
                self.years.insert(year, new);
                Ok(())
            }
        }
    }

    /// Whether a calendar for the year is loaded.
    pub fn knows_year(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The years with a calendar.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// Whether people work on this day.
    pub fn is_working_day(&self, day: Date) -> bool {
        match self.years.get(&i32::from(day.year())) {
            Some(year) if year.holidays.contains(&day) => false,
            Some(year) if year.working_days.contains(&day) => true,
            _ => !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday),
        }
    }

    /// The `n`-th working day after `from` (counting starts the day after).
    /// With `n == 0`, `from` itself.
    pub fn add_working_days(&self, from: Date, n: u32) -> Counted {
        let mut assumed_years = BTreeSet::new();
        let mut day = from;
        let mut left = n;
        while left > 0 {
            day = match day.tomorrow() {
                Ok(next) => next,
                Err(_) => break, // the end of jiff's range, 9999-12-31
            };
            if !self.knows_year(i32::from(day.year())) {
                assumed_years.insert(i32::from(day.year()));
            }
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        Counted {
            date: day,
            assumed_years,
        }
    }

    /// The deadline `n` working days after the instant `from`: the end of the
    /// `n`-th working day after the day `from` falls on in Asia/Shanghai.
    pub fn deadline(&self, from: Timestamp, n: u32) -> Deadline {
        let counted = self.add_working_days(local_date(from), n);
        Deadline {
            day: counted.date,
            at: end_of_day(counted.date),
            assumed_years: counted.assumed_years,
        }
    }

    /// The number of working days in `(from, to]`.
    pub fn working_days_between(&self, from: Date, to: Date) -> u32 {
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = match day.tomorrow() {
                Ok(next) => next,
                Err(_) => break,
            };
            if self.is_working_day(day) {
                count += 1;
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_for_an_annotation_reads_in_beijing_and_parses_back() {
        let at: Timestamp = "2026-10-09T15:59:59Z".parse().unwrap();
        assert_eq!(rfc3339(at), "2026-10-09T23:59:59+08:00");
        assert_eq!(rfc3339(at).parse::<Timestamp>().unwrap(), at);
    }
    use jiff::civil::date;
    use proptest::prelude::*;

    /// The shipped calendars, read from `charts/govcloud-operator/files/calendar/`.
    fn shipped() -> &'static Calendar {
        static SHIPPED: std::sync::OnceLock<Calendar> = std::sync::OnceLock::new();
        SHIPPED.get_or_init(load_shipped)
    }

    fn load_shipped() -> Calendar {
        let specs: Vec<WorkCalendarSpec> = ["2025", "2026"]
            .iter()
            .map(|y| {
                let path = format!(
                    "{}/charts/govcloud-operator/files/calendar/{y}.yaml",
                    env!("CARGO_MANIFEST_DIR")
                );
                let text = std::fs::read_to_string(&path).unwrap();
                let cal: crate::api::WorkCalendar = serde_saphyr::from_str(&text).unwrap();
                cal.spec
            })
            .collect();
        Calendar::from_specs(&specs).unwrap()
    }

    #[test]
    fn worked_example_spring_festival_2026() {
        let cal = shipped();
        let got = cal.add_working_days(date(2026, 2, 12), 10);
        assert_eq!(got.date, date(2026, 3, 4));
        assert!(got.assumed_years.is_empty());
        // The working days counted, as listed in calendar/README.md.
        let expected = [
            date(2026, 2, 13),
            date(2026, 2, 14),
            date(2026, 2, 24),
            date(2026, 2, 25),
            date(2026, 2, 26),
            date(2026, 2, 27),
            date(2026, 2, 28),
            date(2026, 3, 2),
            date(2026, 3, 3),
            date(2026, 3, 4),
        ];
        for (i, day) in expected.iter().enumerate() {
            assert_eq!(
                cal.add_working_days(date(2026, 2, 12), i as u32 + 1).date,
                *day
            );
        }
    }

    #[test]
    fn worked_example_national_day_2025() {
        let cal = shipped();
        let got = cal.deadline("2025-09-26T10:00:00+08:00".parse().unwrap(), 10);
        assert_eq!(got.day, date(2025, 10, 16));
        assert_eq!(
            got.at,
            "2025-10-16T23:59:59+08:00".parse::<Timestamp>().unwrap()
        );
        assert_eq!(got.at.to_string(), "2025-10-16T15:59:59Z");
    }

    #[test]
    fn adjusted_weekend_days_are_worked_and_holidays_are_not() {
        let cal = shipped();
        assert!(cal.is_working_day(date(2025, 9, 28))); // Sunday, adjusted
        assert!(cal.is_working_day(date(2026, 1, 4))); // Sunday, adjusted
        assert!(!cal.is_working_day(date(2025, 10, 1))); // National Day
        assert!(!cal.is_working_day(date(2026, 2, 16))); // Monday in Spring Festival
        assert!(!cal.is_working_day(date(2026, 3, 7))); // ordinary Saturday
        assert!(cal.is_working_day(date(2026, 3, 9))); // ordinary Monday
    }

    #[test]
    fn a_year_without_calendar_is_monday_to_friday_and_says_so() {
        let cal = shipped();
        // 2027-01-01 is a Friday; without the 2027 notice it counts as worked.
        assert!(cal.is_working_day(date(2027, 1, 1)));
        let got = cal.add_working_days(date(2026, 12, 30), 3);
        assert_eq!(got.date, date(2027, 1, 4));
        assert_eq!(got.assumed_years, BTreeSet::from([2027]));
        let within = cal.add_working_days(date(2026, 12, 1), 3);
        assert!(within.assumed_years.is_empty());
    }

    #[test]
    fn a_deadline_follows_the_beijing_day_not_the_utc_day() {
        let cal = shipped();
        // 2026-03-05 23:30 Beijing is still 15:30 UTC on the 5th; 00:30 Beijing on
        // the 6th is 16:30 UTC on the 5th, but counts from the 6th.
        let late = cal.deadline("2026-03-05T15:30:00Z".parse().unwrap(), 1);
        let early = cal.deadline("2026-03-05T16:30:00Z".parse().unwrap(), 1);
        assert_eq!(late.day, date(2026, 3, 6));
        assert_eq!(early.day, date(2026, 3, 9)); // Friday -> Monday
    }

    #[test]
    fn thirty_days_and_one_month_are_counted_in_beijing() {
        let delivered: Timestamp = "2026-01-10T20:00:00Z".parse().unwrap(); // 04:00 on the 11th
        assert_eq!(add_days(delivered, 30).to_string(), "2026-02-09T20:00:00Z");
        let opened: Timestamp = "2026-01-31T02:00:00Z".parse().unwrap();
        // 31 January + 1 month = 28 February (clamped).
        assert_eq!(local_date(add_month(opened)), date(2026, 2, 28));
        assert_eq!(
            end_of_day(date(2026, 2, 28)).to_string(),
            "2026-02-28T15:59:59Z"
        );
        assert_eq!(
            start_of_day(date(2026, 2, 28)).to_string(),
            "2026-02-27T16:00:00Z"
        );
    }

    #[test]
    fn conflicting_calendars_for_one_year_are_refused() {
        let mut cal = Calendar::new();
        cal.add_year(2026, [date(2026, 1, 1)], []).unwrap();
        cal.add_year(2026, [date(2026, 1, 1)], []).unwrap();
        assert_eq!(
            cal.add_year(2026, [date(2026, 1, 2)], []),
            Err(ConflictingYear { year: 2026 })
        );
    }

    fn any_day() -> impl Strategy<Value = Date> {
        (0i64..(365 * 4)).prop_map(|d| date(2024, 6, 1).checked_add(d.days()).unwrap())
    }

    proptest! {
        #[test]
        fn counted_day_is_a_working_day_with_exactly_n_working_days_before_it(
            from in any_day(), n in 1u32..40,
        ) {
            let cal = shipped();
            let got = cal.add_working_days(from, n);
            prop_assert!(got.date > from);
            prop_assert!(cal.is_working_day(got.date));
            prop_assert_eq!(cal.working_days_between(from, got.date), n);
        }

        #[test]
        fn counting_composes(from in any_day(), a in 0u32..20, b in 0u32..20) {
            let cal = shipped();
            let step = cal.add_working_days(from, a).date;
            prop_assert_eq!(
                cal.add_working_days(step, b).date,
                cal.add_working_days(from, a + b).date
            );
        }

        #[test]
        fn more_days_never_end_sooner(from in any_day(), n in 0u32..30) {
            let cal = shipped();
            prop_assert!(cal.add_working_days(from, n).date < cal.add_working_days(from, n + 1).date);
        }

        #[test]
        fn without_calendars_ten_working_days_are_two_weeks(from in any_day()) {
            let cal = Calendar::new();
            let got = cal.add_working_days(from, 10).date;
            // Ten weekdays take 14 days, or 12 to 13 when counting starts on a weekend.
            let span = (got - from).get_days();
            prop_assert!((12..=14).contains(&span), "{from} -> {got} is {span} days");
            prop_assert!(!matches!(got.weekday(), Weekday::Saturday | Weekday::Sunday));
        }

        #[test]
        fn a_deadline_is_the_last_second_of_a_beijing_day(secs in 1_735_689_600i64..1_798_761_600) {
            let cal = shipped();
            let from = Timestamp::from_second(secs).unwrap();
            let d = cal.deadline(from, 10);
            let local = d.at.to_zoned(zone().clone());
            prop_assert_eq!((local.hour(), local.minute(), local.second()), (23, 59, 59));
            prop_assert_eq!(local.date(), d.day);
            prop_assert!(d.at > from);
        }
    }
}
