//! Billing (Art. 6, 16): what a tenancy costs in a month, from the prices in
//! force each day, prorated by day. Pure: no Kubernetes client, no clock.
//!
//! * A day is a calendar day in Asia/Shanghai. A day is billed when billing
//!   covers all of it: from `billingStartedAt` (the end of the trial, so the
//!   day the trial ends on belongs to the trial and is never billed) until
//!   `billingEndedAt` (a termination's effective date, 00:00, so that day is
//!   not billed).
//! * Each day takes the prices of the period in force on it (the latest
//!   `effectiveFrom` on or before it) and the allocation in force at its
//!   start.
//! * A line is one item of one tenancy at one price and quantity over the
//!   days of the month it applies to: monthly price x quantity x days / days
//!   in the month, computed exactly and rounded once, half up, to the fen.
//!   A statement's total is the sum of its lines.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use crate::api::tenancy::{Accrual, TenancyStatus};
use crate::api::{
    ChangeAction, ChangeRequest, CloudResourceRequest, PricePeriod, Resources, ServiceType, Tenancy,
};
use crate::calendar::{local_date, start_of_day};

/// An amount in fen (0.01 yuan).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}

/// A catalog price in ten-thousandths of a yuan (prices have at most four
/// decimal places).
fn parse_price(text: &str) -> Result<i128, Error> {
    let bad = || Error::Price(text.to_owned());
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || frac.len() > 4 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i128 = whole.parse().map_err(|_| bad())?;
    let frac: i128 = format!("{frac:0<4}").parse().map_err(|_| bad())?;
    Ok(whole * 10_000 + frac)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("price {0:?} is not an amount of yuan")]
    Price(String),
    #[error("no price period is in force on {0}: the ServiceCatalog's first period starts later")]
    NoPeriod(Date),
    #[error(
        "the price period from {period} has no price for storage class {class:?}: add it to the ServiceCatalog"
    )]
    NoStoragePrice { period: Date, class: String },
}

/// What a tenancy holds from an instant on: its allocation and service types.
#[derive(Clone, Debug, PartialEq)]
pub struct Holding {
    pub from: Timestamp,
    pub resources: Resources,
    pub service_types: Vec<ServiceType>,
}

/// One tenancy's billing facts.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub unit: String,
    pub tenancy: String,
    /// When billing started (the end of the trial), if it has.
    pub billing_started_at: Option<Timestamp>,
    /// When billing ended (a termination's effective date), if it has.
    pub billing_ended_at: Option<Timestamp>,
    /// What it held, in time order (the first from delivery or earlier).
    pub holdings: Vec<Holding>,
}

/// One line of a statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub unit: String,
    pub tenancy: String,
    /// What is billed: `vcpu`, `memoryGiB`, `diskGiB`, `storageGiB/<class>`,
    /// `backupGiB`, `publicIP`, `bandwidthMbps`, `service/<type>`.
    pub item: String,
    pub quantity: u64,
    /// Yuan per unit per month, as the catalog states it.
    pub unit_price: String,
    /// The price period it was billed at.
    pub price_from: Date,
    /// The first and last day billed on this line.
    pub first_day: Date,
    pub last_day: Date,
    pub days: u32,
    pub days_in_month: u32,
    pub amount: Fen,
}

fn as_month<S: serde::Serializer>(day: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:04}-{:02}", day.year(), day.month()))
}

/// A month's statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    /// The first day of the month; written as the month, `2026-03`.
    #[serde(serialize_with = "as_month")]
    pub month: Date,
    pub lines: Vec<Line>,
    pub total: Fen,
}

impl Statement {
    /// The total per unit, then per tenancy.
    pub fn totals(&self) -> BTreeMap<(String, String), Fen> {
        let mut out: BTreeMap<(String, String), Fen> = BTreeMap::new();
        for l in &self.lines {
            out.entry((l.unit.clone(), l.tenancy.clone()))
                .or_default()
                .0 += l.amount.0;
        }
        out
    }
}

/// A tenancy's billing facts from the objects that record them: the request
/// it was created from (what was approved), its extension requests (what
/// each added, from its delivery) and its applied Modify changes (the whole
/// allocation from when each was applied). `requests` and `changes` may hold
/// others; only the tenancy's are used.
pub fn account(
    unit: &str,
    tenancy: &Tenancy,
    requests: &[CloudResourceRequest],
    changes: &[ChangeRequest],
) -> Account {
    let name = tenancy.metadata.name.clone().unwrap_or_default();
    let status = tenancy.status.clone().unwrap_or_default();
    let find = |n: &str| {
        requests
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(n))
    };
    let origin = find(&tenancy.spec.request.0);
    let base = Holding {
        from: Timestamp::MIN,
        resources: origin
            .and_then(|r| r.status.as_ref()?.approved.clone())
            .unwrap_or_else(|| tenancy.spec.allocation.clone()),
        service_types: origin
            .map(|r| r.spec.service_types.clone())
            .unwrap_or_else(|| tenancy.spec.service_types.clone()),
    };
    // (when, what happened), in time order.
    enum Step<'a> {
        Extension(&'a CloudResourceRequest),
        Change(&'a ChangeRequest),
    }
    let mut steps: Vec<(Timestamp, Step<'_>)> = Vec::new();
    for d in &status.extension_deliveries {
        if let Some(r) = find(&d.request) {
            steps.push((d.delivered_at.0, Step::Extension(r)));
        }
    }
    for c in changes {
        let Some(s) = c.status.as_ref() else { continue };
        if c.spec.tenancy.0 == name
            && c.spec.action == ChangeAction::Modify
            && s.applied.is_some()
            && let Some(at) = &s.applied_at
        {
            steps.push((at.0, Step::Change(c)));
        }
    }
    steps.sort_by_key(|(at, _)| *at);
    let mut holdings = vec![base];
    for (at, step) in steps {
        let last = holdings.last().cloned().unwrap_or_else(|| unreachable!());
        let mut next = Holding { from: at, ..last };
        match step {
            Step::Extension(r) => {
                // Grown as the operator grows it.
                let mut spec = tenancy.spec.clone();
                spec.allocation = next.resources.clone();
                spec.service_types = next.service_types.clone();
                let name = r.metadata.name.clone().unwrap_or_default();
                if let Ok(grown) = crate::review::extend(&spec, &name, &r.spec) {
                    next.resources = grown.allocation;
                    next.service_types = grown.service_types;
                }
            }
            Step::Change(c) => {
                if let Some(applied) = c.status.as_ref().and_then(|s| s.applied.clone()) {
                    next.resources = applied;
                }
            }
        }
        holdings.push(next);
    }
    Account {
        unit: unit.to_owned(),
        tenancy: name,
        billing_started_at: status.billing_started_at.map(|t| t.0),
        billing_ended_at: status.billing_ended_at.map(|t| t.0),
        holdings,
    }
}

/// The days of `month` (any date in it) that `account` is billed for.
pub fn billed_days(account: &Account, month: Date) -> Vec<Date> {
    let first = month.first_of_month();
    let Some(started) = account.billing_started_at else {
        return Vec::new();
    };
    (0..i32::from(first.days_in_month()))
        .filter_map(|i| first.checked_add(jiff::Span::new().days(i)).ok())
        .filter(|d| {
            let begins = start_of_day(*d);
            let ends = d.tomorrow().map(start_of_day).unwrap_or(begins);
            begins >= started && account.billing_ended_at.is_none_or(|e| ends <= e)
        })
        .collect()
}

/// The prices in force on `day`.
pub fn period_on(periods: &[PricePeriod], day: Date) -> Option<&PricePeriod> {
    periods
        .iter()
        .filter(|p| p.effective_from <= day)
        .max_by_key(|p| p.effective_from)
}

/// The holding in force at the start of `day`.
fn holding_on(holdings: &[Holding], day: Date) -> Option<&Holding> {
    let at = start_of_day(day);
    holdings
        .iter()
        .filter(|h| h.from <= at)
        .max_by_key(|h| h.from)
        .or_else(|| holdings.first())
}

/// The items of a holding at one period's prices: (item, quantity, price).
fn items(h: &Holding, p: &PricePeriod) -> Result<Vec<(String, u64, String)>, Error> {
    let r = &h.resources;
    let sum = |f: &dyn Fn(&crate::api::VmGroup) -> u64| -> u64 {
        r.vm_groups.iter().map(|g| u64::from(g.count) * f(g)).sum()
    };
    let mut out = vec![
        (
            "vcpu".to_owned(),
            sum(&|g| g.vcpu.into()),
            p.vcpu.to_string(),
        ),
        (
            "memoryGiB".to_owned(),
            sum(&|g| g.memory_gib.into()),
            p.memory_gib.to_string(),
        ),
        (
            "diskGiB".to_owned(),
            sum(&|g| u64::from(g.system_disk_gib) + u64::from(g.data_disk_gib)),
            p.disk_gib.to_string(),
        ),
    ];
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    for v in &r.cloud_storage {
        *by_class.entry(v.class.to_string()).or_default() += u64::from(v.size_gib);
    }
    for (class, gib) in by_class {
        let price = p
            .storage
            .iter()
            .find(|s| s.class.to_string() == class)
            .ok_or_else(|| Error::NoStoragePrice {
                period: p.effective_from,
                class: class.clone(),
            })?;
        out.push((
            format!("storageGiB/{class}"),
            gib,
            price.per_gib.to_string(),
        ));
    }
    out.push((
        "backupGiB".to_owned(),
        r.backup_storage_gib.into(),
        p.backup_gib.to_string(),
    ));
    out.push((
        "publicIP".to_owned(),
        r.public_ips.into(),
        p.public_ip.to_string(),
    ));
    out.push((
        "bandwidthMbps".to_owned(),
        r.bandwidth_mbps.into(),
        p.bandwidth_mbps.to_string(),
    ));
    for s in &p.services {
        if h.service_types.contains(&s.service) {
            out.push((format!("service/{:?}", s.service), 1, s.monthly.to_string()));
        }
    }
    out.retain(|(_, q, _)| *q > 0);
    Ok(out)
}

/// Half-up rounding of `num / den` (both non-negative) to an integer.
fn round_half_up(num: i128, den: i128) -> i128 {
    (2 * num + den) / (2 * den)
}

/// The statement of `month` (any date in it) for these accounts.
pub fn statement(
    accounts: &[Account],
    periods: &[PricePeriod],
    month: Date,
) -> Result<Statement, Error> {
    let first = month.first_of_month();
    let days_in_month = u32::try_from(first.days_in_month()).unwrap_or(31);
    let mut lines = Vec::new();
    for account in accounts {
        // The days at the same item, quantity and price make one line:
        // (item, quantity, price, period) -> (first day, last day, days).
        type Days = (Date, Date, u32);
        let mut open: BTreeMap<(String, u64, String, Date), Days> = BTreeMap::new();
        for day in billed_days(account, first) {
            let period = period_on(periods, day).ok_or(Error::NoPeriod(day))?;
            let Some(holding) = holding_on(&account.holdings, day) else {
                continue;
            };
            for (item, quantity, price) in items(holding, period)? {
                let e = open
                    .entry((item, quantity, price, period.effective_from))
                    .or_insert((day, day, 0));
                e.1 = day;
                e.2 += 1;
            }
        }
        for ((item, quantity, price, price_from), (first_day, last_day, days)) in open {
            let amount = round_half_up(
                parse_price(&price)? * i128::from(quantity) * i128::from(days),
                100 * i128::from(days_in_month),
            );
            lines.push(Line {
                unit: account.unit.clone(),
                tenancy: account.tenancy.clone(),
                item,
                quantity,
                unit_price: price,
                price_from,
                first_day,
                last_day,
                days,
                days_in_month,
                amount: Fen(i64::try_from(amount).unwrap_or(i64::MAX)),
            });
        }
    }
    lines.sort_by(|a, b| {
        (&a.unit, &a.tenancy, &a.item, a.first_day).cmp(&(
            &b.unit,
            &b.tenancy,
            &b.item,
            b.first_day,
        ))
    });
    let total = lines.iter().map(|l| l.amount).sum();
    Ok(Statement {
        month: first,
        lines,
        total,
    })
}

impl Statement {
    /// As CSV: a header, one row per line, then one `total` row.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "unit,tenancy,item,quantity,unit_price,price_from,first_day,last_day,days,days_in_month,amount\n",
        );
        for l in &self.lines {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(&l.unit),
                csv_field(&l.tenancy),
                l.item,
                l.quantity,
                l.unit_price,
                l.price_from,
                l.first_day,
                l.last_day,
                l.days,
                l.days_in_month,
                l.amount
            ));
        }
        out.push_str(&format!("total,,,,,,,,,,{}\n", self.total));
        out
    }

    /// As a table: the lines of each tenancy, its subtotal, then the total.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ["UNIT", "TENANCY", "ITEM", "QTY", "PRICE", "DAYS", "AMOUNT"]
                .map(str::to_owned)
                .to_vec(),
        ];
        let totals = self.totals();
        let mut last: Option<(String, String)> = None;
        let subtotal = |key: &(String, String)| {
            vec![
                String::new(),
                String::new(),
                "subtotal".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                totals.get(key).copied().unwrap_or_default().to_string(),
            ]
        };
        for l in &self.lines {
            let key = (l.unit.clone(), l.tenancy.clone());
            if let Some(prev) = last.as_ref().filter(|p| **p != key) {
                rows.push(subtotal(prev));
            }
            last = Some(key);
            rows.push(vec![
                l.unit.clone(),
                l.tenancy.clone(),
                l.item.clone(),
                l.quantity.to_string(),
                l.unit_price.clone(),
                format!("{}/{}", l.days, l.days_in_month),
                l.amount.to_string(),
            ]);
        }
        if let Some(prev) = &last {
            rows.push(subtotal(prev));
        }
        rows.push(vec![
            format!("TOTAL {}", &self.month.to_string()[..7]),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            self.total.to_string(),
        ]);
        crate::plugin::table(&rows)
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// What `account` has accrued in the month of `now`, up to the end of the
/// last whole day before `now`.
pub fn accrued(account: &Account, periods: &[PricePeriod], now: Timestamp) -> Result<Fen, Error> {
    let today = local_date(now);
    let mut upto = account.clone();
    let cut = start_of_day(today);
    upto.billing_ended_at = Some(account.billing_ended_at.map_or(cut, |e| e.min(cut)));
    Ok(statement(&[upto], periods, today)?.total)
}

/// The first instant of the month after the one `now` falls in (Beijing
/// time): when a tenancy's [`Accrual`] turns over.
pub fn next_month(now: Timestamp) -> Timestamp {
    let first = local_date(now).first_of_month();
    start_of_day(
        first
            .checked_add(jiff::Span::new().months(1))
            .unwrap_or(first),
    )
}

/// The month's charge (Art. 6, 16) of a tenancy whose status becomes
/// `status`, from the requests and changes that made its allocation and the
/// catalog's price periods (`None` when the catalog `catalog` is missing).
pub fn tenancy_accrual(
    tenancy: &Tenancy,
    status: &TenancyStatus,
    requests: &[CloudResourceRequest],
    changes: &[ChangeRequest],
    periods: Option<&[PricePeriod]>,
    catalog: &str,
    now: Timestamp,
) -> Option<Accrual> {
    let mut as_planned = tenancy.clone();
    as_planned.status = Some(status.clone());
    let account = account(&tenancy.spec.unit_name, &as_planned, requests, changes);
    month_accrual(&account, status.accrual.as_ref(), periods, catalog, now)
}

/// What a Tenancy's status shows of the month `now` falls in. `None` before
/// billing starts; `previous` unchanged once billing ended before this month
/// (a retired tenancy's last month stays as it was). `periods` is `None` when
/// the ServiceCatalog named `catalog` does not exist.
pub fn month_accrual(
    account: &Account,
    previous: Option<&Accrual>,
    periods: Option<&[PricePeriod]>,
    catalog: &str,
    now: Timestamp,
) -> Option<Accrual> {
    account.billing_started_at?;
    let today = local_date(now);
    let first = today.first_of_month();
    if account
        .billing_ended_at
        .is_some_and(|end| end <= start_of_day(first))
    {
        return previous.cloned();
    }
    let days = billed_days(account, today);
    let mut accrual = Accrual {
        month: format!("{:04}-{:02}", first.year(), first.month()),
        amount: None,
        billed_days: u32::try_from(days.len()).unwrap_or(u32::MAX),
        first_day: days.first().copied(),
        last_day: days.last().copied(),
        problem: None,
    };
    match periods.map(|p| statement(std::slice::from_ref(account), p, today)) {
        Some(Ok(s)) => accrual.amount = Some(s.total.to_string()),
        Some(Err(e)) => accrual.problem = Some(e.to_string()),
        None => {
            accrual.problem = Some(format!(
                "the ServiceCatalog {catalog:?} holding the prices does not exist"
            ))
        }
    }
    Some(accrual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn art16_a_statement_names_its_month_as_a_month() {
        let statement = Statement {
            month: jiff::civil::date(2026, 3, 1),
            lines: Vec::new(),
            total: Fen(0),
        };
        let json = serde_json::to_value(&statement).unwrap();
        assert_eq!(json["month"], "2026-03");
    }

    fn period(from: &str, vcpu: &str) -> PricePeriod {
        serde_json::from_value(serde_json::json!({
            "effectiveFrom": from,
            "vcpu": vcpu, "memoryGiB": "18.00", "diskGiB": "0.60",
            "storage": [{ "class": "standard", "perGiB": "0.50" }],
            "backupGiB": "0.30", "publicIP": "40.00", "bandwidthMbps": "80.00",
            "services": [{ "service": "Database", "monthly": "800.00" }],
        }))
        .unwrap()
    }

    /// One VM of 2 vCPU, 4 GiB, 40 + 0 GiB disk; nothing else.
    fn small() -> Resources {
        serde_json::from_value(serde_json::json!({
            "vmGroups": [{ "name": "app", "count": 1, "vcpu": 2, "memoryGiB": 4,
                "systemDiskGiB": 40, "image": "kylin", "architecture": "arm64" }],
        }))
        .unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn account(start: &str, end: Option<&str>) -> Account {
        Account {
            unit: "finance".into(),
            tenancy: "oa".into(),
            billing_started_at: Some(at(start)),
            billing_ended_at: end.map(at),
            holdings: vec![Holding {
                from: at("2026-01-01T00:00:00Z"),
                resources: small(),
                service_types: vec![],
            }],
        }
    }

    fn amounts(s: &Statement) -> Vec<(String, String, u32, String)> {
        s.lines
            .iter()
            .map(|l| {
                (
                    l.item.clone(),
                    l.unit_price.clone(),
                    l.days,
                    l.amount.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn art16_a_whole_month_costs_the_monthly_prices() {
        let s = statement(
            &[account("2026-10-31T16:00:00Z", None)],
            &[period("2025-01-01", "35.00")],
            jiff::civil::date(2026, 11, 1),
        )
        .unwrap();
        // 2 vCPU x 35 = 70.00; 4 GiB x 18 = 72.00; 40 GiB x 0.60 = 24.00.
        assert_eq!(
            amounts(&s),
            [
                ("diskGiB".into(), "0.60".into(), 30, "24.00".into()),
                ("memoryGiB".into(), "18.00".into(), 30, "72.00".into()),
                ("vcpu".into(), "35.00".into(), 30, "70.00".into()),
            ]
        );
        assert_eq!(s.total.to_string(), "166.00");
    }

    #[test]
    fn art6_a_price_change_in_mid_month_bills_each_day_at_its_price() {
        // vCPU from 35.00 to 31.00 on 2026-11-16: 15 days at each price.
        let s = statement(
            &[account("2026-10-31T16:00:00Z", None)],
            &[period("2025-01-01", "35.00"), period("2026-11-16", "31.00")],
            jiff::civil::date(2026, 11, 20),
        )
        .unwrap();
        let vcpu: Vec<_> = amounts(&s).into_iter().filter(|l| l.0 == "vcpu").collect();
        // 2 x 35.00 x 15/30 = 35.00; 2 x 31.00 x 15/30 = 31.00.
        assert_eq!(
            vcpu,
            [
                ("vcpu".into(), "35.00".into(), 15, "35.00".into()),
                ("vcpu".into(), "31.00".into(), 15, "31.00".into()),
            ]
        );
        // Memory and disk did not change price: one line each, 30 days.
        assert_eq!(s.total.to_string(), "162.00");
        assert_eq!(s.total, s.lines.iter().map(|l| l.amount).sum());
    }

    #[test]
    fn art15_trial_days_are_never_billed_when_the_trial_ends_mid_month() {
        // Delivered 2026-10-19 10:30 Beijing; the trial ends 2026-11-18 10:30
        // Beijing: 18 November belongs to the trial, 19-30 November are
        // billed (12 days).
        let s = statement(
            &[account("2026-11-18T02:30:00Z", None)],
            &[period("2025-01-01", "35.00")],
            jiff::civil::date(2026, 11, 1),
        )
        .unwrap();
        // 2 x 35 x 12/30 = 28.00; 4 x 18 x 12/30 = 28.80; 40 x 0.60 x 12/30 = 9.60.
        assert_eq!(
            amounts(&s),
            [
                ("diskGiB".into(), "0.60".into(), 12, "9.60".into()),
                ("memoryGiB".into(), "18.00".into(), 12, "28.80".into()),
                ("vcpu".into(), "35.00".into(), 12, "28.00".into()),
            ]
        );
        assert_eq!(s.total.to_string(), "66.40");
        // October: still in the trial, nothing.
        let october = statement(
            &[account("2026-11-18T02:30:00Z", None)],
            &[period("2025-01-01", "35.00")],
            jiff::civil::date(2026, 10, 1),
        )
        .unwrap();
        assert!(october.lines.is_empty());
        assert_eq!(october.total, Fen(0));
    }

    #[test]
    fn art19_billing_stops_at_the_effective_date_of_a_termination() {
        // Effective 2026-11-11 (00:00 Beijing): 1-10 November billed.
        let s = statement(
            &[account(
                "2026-06-30T16:00:00Z",
                Some("2026-11-10T16:00:00Z"),
            )],
            &[period("2025-01-01", "35.00")],
            jiff::civil::date(2026, 11, 1),
        )
        .unwrap();
        // 70 x 10/30 = 23.333.. -> 23.33; 72 x 10/30 = 24.00; 24 x 10/30 = 8.00.
        assert_eq!(
            amounts(&s),
            [
                ("diskGiB".into(), "0.60".into(), 10, "8.00".into()),
                ("memoryGiB".into(), "18.00".into(), 10, "24.00".into()),
                ("vcpu".into(), "35.00".into(), 10, "23.33".into()),
            ]
        );
        assert_eq!(s.total.to_string(), "55.33");
        let december = statement(
            &[account(
                "2026-06-30T16:00:00Z",
                Some("2026-11-10T16:00:00Z"),
            )],
            &[period("2025-01-01", "35.00")],
            jiff::civil::date(2026, 12, 1),
        )
        .unwrap();
        assert_eq!(december.total, Fen(0));
    }

    #[test]
    fn art16_the_month_shown_follows_the_status_the_plan_leaves_not_the_stored_one() {
        let tenancy: Tenancy = serde_json::from_value(serde_json::json!({
            "apiVersion": "govcloud.dev/v1alpha1", "kind": "Tenancy",
            "metadata": { "name": "oa", "namespace": "finance" },
            "spec": {
                "unit": "u-finance", "unitName": "财政局", "systemName": "OA",
                "purpose": "office", "request": "oa", "requestGeneration": 1,
                "serviceTypes": ["CloudServer"], "allocation": small(),
            },
        }))
        .unwrap();
        let periods = [period("2025-01-01", "35.00")];
        let now = at("2026-11-27T12:00:00Z");
        // Stored: still in its trial. Planned: the trial ended 18 November.
        let planned = TenancyStatus {
            billing_started_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(
                "2026-11-18T02:30:00Z",
            ))),
            ..Default::default()
        };
        let shown =
            tenancy_accrual(&tenancy, &planned, &[], &[], Some(&periods), "default", now).unwrap();
        // 19-30 November: 2 x 35 x 12/30 + 4 x 18 x 12/30 + 40 x 0.60 x 12/30.
        assert_eq!(shown.amount.as_deref(), Some("66.40"));
        assert_eq!(shown.billed_days, 12);
        let trial = TenancyStatus::default();
        assert_eq!(
            tenancy_accrual(&tenancy, &trial, &[], &[], Some(&periods), "default", now),
            None
        );
    }

    #[test]
    fn art16_the_status_shows_the_month_as_it_stands_and_turns_over_with_the_month() {
        let periods = [period("2025-01-01", "35.00"), period("2026-11-16", "31.00")];
        // Trial ended 2026-11-18 10:30 Beijing; 19-30 November billed.
        let a = account("2026-11-18T02:30:00Z", None);
        let now = at("2026-11-27T12:00:00Z");
        let shown = month_accrual(&a, None, Some(&periods), "default", now).unwrap();
        // 12 days: 2 x 31 x 12/30 = 24.80; 4 x 18 x 12/30 = 28.80; 40 x 0.60 x 12/30 = 9.60.
        assert_eq!(shown.month, "2026-11");
        assert_eq!(shown.amount.as_deref(), Some("63.20"));
        assert_eq!(shown.billed_days, 12);
        assert_eq!(shown.first_day, Some(jiff::civil::date(2026, 11, 19)));
        assert_eq!(shown.last_day, Some(jiff::civil::date(2026, 11, 30)));
        // Any moment of the month shows the same: nothing to write daily.
        assert_eq!(
            month_accrual(
                &a,
                None,
                Some(&periods),
                "default",
                at("2026-11-30T15:59:59Z")
            ),
            Some(shown.clone())
        );
        // 1 December 00:00 Beijing is when it turns over.
        assert_eq!(next_month(now), at("2026-11-30T16:00:00Z"));
        let december = month_accrual(
            &a,
            Some(&shown),
            Some(&periods),
            "default",
            at("2026-11-30T16:00:00Z"),
        )
        .unwrap();
        assert_eq!(december.month, "2026-12");
        // 31 days: 62.00 + 72.00 + 24.00.
        assert_eq!(december.amount.as_deref(), Some("158.00"));
        // Before billing, nothing; after billing ended, the last month stays.
        let mut trial = a.clone();
        trial.billing_started_at = None;
        assert_eq!(
            month_accrual(&trial, None, Some(&periods), "default", now),
            None
        );
        let mut ended = a.clone();
        ended.billing_ended_at = Some(at("2026-11-24T16:00:00Z"));
        let last = month_accrual(&ended, None, Some(&periods), "default", now).unwrap();
        // 19-24 November: 6 days: 12.40 + 14.40 + 4.80.
        assert_eq!(last.amount.as_deref(), Some("31.60"));
        assert_eq!(
            month_accrual(
                &ended,
                Some(&last),
                Some(&periods),
                "default",
                at("2027-01-05T00:00:00Z")
            ),
            Some(last)
        );
        // A missing catalog is said, not priced at zero.
        let unpriced = month_accrual(&a, None, None, "default", now).unwrap();
        assert_eq!(unpriced.amount, None);
        assert!(
            unpriced
                .problem
                .unwrap()
                .contains("ServiceCatalog \"default\"")
        );
    }

    #[test]
    fn an_allocation_change_and_a_service_fee_split_the_month() {
        let mut a = account("2026-10-31T16:00:00Z", None);
        let mut bigger = small();
        bigger.vm_groups[0].vcpu = 4;
        bigger.cloud_storage = serde_json::from_value(serde_json::json!([
            { "name": "files", "sizeGiB": 100, "class": "standard" }
        ]))
        .unwrap();
        a.holdings.push(Holding {
            // Applied 2026-11-21 09:00 Beijing: counts from 22 November.
            from: at("2026-11-21T01:00:00Z"),
            resources: bigger,
            service_types: vec![ServiceType::Database],
        });
        let s = statement(
            &[a],
            &[period("2025-01-01", "35.00")],
            jiff::civil::date(2026, 11, 1),
        )
        .unwrap();
        let got: Vec<_> = amounts(&s)
            .into_iter()
            .filter(|l| l.0 != "memoryGiB" && l.0 != "diskGiB")
            .collect();
        assert_eq!(
            got,
            [
                // 800 x 9/30 = 240.00
                (
                    "service/Database".into(),
                    "800.00".into(),
                    9,
                    "240.00".into()
                ),
                // 100 x 0.50 x 9/30 = 15.00
                (
                    "storageGiB/standard".into(),
                    "0.50".into(),
                    9,
                    "15.00".into()
                ),
                // 2 x 35 x 21/30 = 49.00; 4 x 35 x 9/30 = 42.00
                ("vcpu".into(), "35.00".into(), 21, "49.00".into()),
                ("vcpu".into(), "35.00".into(), 9, "42.00".into()),
            ]
        );
    }

    #[test]
    fn prices_parse_exactly_and_amounts_round_half_up_to_the_fen() {
        assert_eq!(parse_price("35"), Ok(350_000));
        assert_eq!(parse_price("0.6"), Ok(6_000));
        assert_eq!(parse_price("0.0001"), Ok(1));
        assert!(parse_price("1.23456").is_err());
        assert!(parse_price("-1").is_err());
        assert!(parse_price("").is_err());
        // 0.005 yuan rounds up to 0.01, 0.0049 down to 0.00.
        assert_eq!(round_half_up(50, 100), 1);
        assert_eq!(round_half_up(49, 100), 0);
        assert_eq!(Fen(-1234).to_string(), "-12.34");
    }

    #[test]
    fn a_storage_class_without_a_price_is_an_error_that_says_what_to_add() {
        let mut a = account("2026-10-31T16:00:00Z", None);
        a.holdings[0].resources.cloud_storage = serde_json::from_value(serde_json::json!([
            { "name": "fast", "sizeGiB": 10, "class": "nvme" }
        ]))
        .unwrap();
        let e = statement(
            &[a],
            &[period("2025-01-01", "35.00")],
            jiff::civil::date(2026, 11, 1),
        )
        .unwrap_err();
        assert!(e.to_string().contains("storage class \"nvme\""), "{e}");
    }

    #[test]
    fn the_csv_and_the_table_end_with_the_total_of_their_lines() {
        let mut b = account("2026-10-31T16:00:00Z", None);
        b.tenancy = "portal".into();
        let s = statement(
            &[account("2026-10-31T16:00:00Z", None), b],
            &[period("2025-01-01", "35.00")],
            jiff::civil::date(2026, 11, 1),
        )
        .unwrap();
        let csv = s.csv();
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows.len(), 1 + 6 + 1);
        let sum: f64 = rows[1..7]
            .iter()
            .map(|r| r.rsplit(',').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert_eq!(rows[7], "total,,,,,,,,,,332.00");
        assert!((sum - 332.0).abs() < 1e-9);
        let table = s.table();
        assert_eq!(table.matches("subtotal").count(), 2, "{table}");
        assert!(
            table.lines().last().unwrap().starts_with("TOTAL 2026-11"),
            "{table}"
        );
        assert!(table.lines().last().unwrap().ends_with("332.00"), "{table}");
    }

    #[test]
    fn the_accrual_counts_whole_days_before_now() {
        let a = account("2026-10-31T16:00:00Z", None);
        // 2026-11-11 15:00 Beijing: 1-10 November accrued.
        let f = accrued(
            &a,
            &[period("2025-01-01", "35.00")],
            at("2026-11-11T07:00:00Z"),
        )
        .unwrap();
        // 166.00 x 10/30 with each line rounded: 23.33 + 24.00 + 8.00.
        assert_eq!(f.to_string(), "55.33");
    }
}
