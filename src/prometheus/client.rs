//! The Prometheus HTTP API client: sends range queries and hands the
//! answers to the pure readers of [`super`]. The only I/O of utilisation.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use super::{
    Answers, Combine, Error, PrometheusConfig, Series, by_label, daily_peak, day_end, halves,
    naming, parse_matrix, range_form, too_large,
};
use crate::rightsizing::{Back, Daily, Namespaces, Plan};

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// A client of one Prometheus.
#[derive(Clone)]
pub struct Client {
    url: String,
    token: Option<String>,
    timeout: Duration,
    http: hyper_util::client::legacy::Client<Https, Full<Bytes>>,
    queries_sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Client {
    pub fn new(url: &str, config: &PrometheusConfig) -> Result<Self, Error> {
        let unreachable = |message: String| Error::Unreachable {
            url: url.to_owned(),
            message,
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| unreachable(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let token = match &config.bearer_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| unreachable(format!("reading {}: {e}", path.display())))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            token,
            timeout: Duration::from_secs(u64::from(config.timeout_seconds)),
            http: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector),
            queries_sent: Default::default(),
        })
    }

    /// Range queries sent so far.
    pub fn queries_sent(&self) -> u64 {
        self.queries_sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `/api/v1/query_range`, by POST so that long queries fit.
    pub async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: SignedDuration,
    ) -> Result<Vec<Series>, Error> {
        self.queries_sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let unreachable = |message: String| Error::Unreachable {
            url: self.url.clone(),
            message,
        };
        let mut request = hyper::Request::post(format!("{}/api/v1/query_range", self.url)).header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(range_form(query, start, end, step))))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = tokio::time::timeout(self.timeout, self.http.request(request))
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = tokio::time::timeout(self.timeout, response.into_body().collect())
            .await
            .map_err(|_| unreachable("body timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        parse_matrix(&self.url, query, status, &bytes)
    }

    /// Daily peaks of `inner` for each namespace over the Beijing days
    /// `[first, last]`: one range query, whatever the number of namespaces,
    /// unless Prometheus refuses it as too large (its `--query.max-samples`
    /// or timeout): then each half of the days is asked for on its own.
    pub async fn daily(
        &self,
        inner: &str,
        first: Date,
        last: Date,
        config: &PrometheusConfig,
        combine: Combine,
    ) -> Result<BTreeMap<String, Daily>, Error> {
        let query = daily_peak(inner, config.resolution_seconds, config.lookback_seconds).map_err(
            |message| Error::Query {
                query: inner.to_owned(),
                message,
            },
        )?;
        let series = self.days(&query, first, last).await?;
        Ok(by_label(&series, &config.namespace_label, combine))
    }

    fn days(
        &self,
        query: &str,
        first: Date,
        last: Date,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Series>, Error>> {
        let query = query.to_owned();
        Box::pin(async move {
            let day = SignedDuration::from_hours(24);
            let answer = self.range(&query, day_end(first), day_end(last), day).await;
            match (answer, halves(first, last)) {
                (Err(Error::Query { message, .. }), Some((a, b))) if too_large(&message) => {
                    let mut series = self.days(&query, a.0, a.1).await?;
                    series.extend(self.days(&query, b.0, b.1).await?);
                    Ok(series)
                }
                (other, _) => other,
            }
        })
    }

    /// Reads what `plan` asks for: each of the four series over the recent
    /// days and, for the namespaces that need them, the months and the
    /// history before; then a week of bytes used a year back, when a
    /// year-on-year value may be there. The four series are asked for
    /// together; a read back in time of a few namespaces names them.
    pub async fn answers(&self, config: &PrometheusConfig, plan: &Plan) -> Result<Answers, Error> {
        let q = &config.queries;
        let months = [&plan.months];
        let (cpu, memory, disk_used, disk_capacity) = futures::try_join!(
            self.spans(&q.cpu, config, plan, &months, Combine::Max),
            self.spans(&q.memory, config, plan, &months, Combine::Max),
            self.used(config, plan),
            self.spans(&q.disk_capacity, config, plan, &months, Combine::Sum),
        )?;
        Ok(Answers {
            plan: Some(plan.clone()),
            cpu,
            memory,
            disk_used,
            disk_capacity,
        })
    }

    /// `inner` over the recent days of every namespace, and over each read
    /// back of `backs` for its namespaces.
    async fn spans(
        &self,
        inner: &str,
        config: &PrometheusConfig,
        plan: &Plan,
        backs: &[&Option<Back>],
        combine: Combine,
    ) -> Result<BTreeMap<String, Daily>, Error> {
        let mut all = self
            .daily(inner, plan.recent, plan.last, config, combine)
            .await?;
        let Ok(before) = plan.recent.yesterday() else {
            return Ok(all);
        };
        for back in backs {
            let Some(back) = back else { continue };
            let query = naming(inner, &config.namespace_label, &back.namespaces);
            let read = self
                .daily(&query, back.from, before, config, combine)
                .await?;
            merge(&mut all, read);
        }
        Ok(all)
    }

    async fn used(
        &self,
        config: &PrometheusConfig,
        plan: &Plan,
    ) -> Result<BTreeMap<String, Daily>, Error> {
        let q = &config.queries.disk_used;
        // The history reaches further back than the months: read of every
        // namespace, it holds them.
        let all = |b: &Option<Back>| b.as_ref().is_some_and(|b| b.namespaces == Namespaces::All);
        let none = None;
        let months = if all(&plan.history) {
            &none
        } else {
            &plan.months
        };
        let backs = [months, &plan.history];
        let mut used = self.spans(q, config, plan, &backs, Combine::Sum).await?;
        let latest = used
            .values()
            .filter_map(|d| d.range(plan.recent..).next_back().map(|(day, _)| *day));
        if let Some((first, last)) = plan.year_ago(latest) {
            let read = self.daily(q, first, last, config, Combine::Sum).await?;
            merge(&mut used, read);
        }
        Ok(used)
    }
}

/// Adds the days of `more` to those of each namespace in `all`.
fn merge(all: &mut BTreeMap<String, Daily>, more: BTreeMap<String, Daily>) {
    for (ns, days) in more {
        all.entry(ns).or_default().extend(days);
    }
}
