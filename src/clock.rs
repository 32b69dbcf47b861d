//! Where `now` comes from. Everything below the controllers takes time as an
//! argument; the controllers read it here, once per reconcile.
//!
//! In production the clock is the system's. For demos and black-box tests a
//! development clock can stand in, so that 30 days pass in seconds:
//!
//! * `offset`: the system time plus a fixed span (`--dev-clock-offset 31d`);
//! * `file`: an RFC 3339 instant read from a file, re-read every second
//!   (`--dev-clock-file /tmp/now`); writing a later instant moves time;
//! * `manual`: set in-process by tests.
//!
//! A development clock is logged loudly at start and whenever it moves, and
//! every move wakes all controllers, since deadlines may have passed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Clone)]
pub struct Clock {
    source: Source,
    /// Bumped whenever a development clock moves.
    moved: watch::Sender<u64>,
}

#[derive(Clone)]
enum Source {
    System,
    Offset(SignedDuration),
    File(PathBuf, Arc<Mutex<Timestamp>>),
    Manual(Arc<Mutex<Timestamp>>),
}

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    fn with(source: Source) -> Self {
        Self {
            source,
            moved: watch::channel(0).0,
        }
    }

    pub fn system() -> Self {
        Self::with(Source::System)
    }

    /// The system time shifted by `offset`.
    pub fn offset(offset: SignedDuration) -> Self {
        Self::with(Source::Offset(offset))
    }

    /// A clock set by whoever holds it.
    pub fn manual(start: Timestamp) -> Self {
        Self::with(Source::Manual(Arc::new(Mutex::new(start))))
    }

    /// A clock read from a file holding an RFC 3339 instant. Call
    /// [`Clock::follow_file`] to notice later writes.
    pub fn file(path: PathBuf) -> Result<Self, ClockError> {
        let now = read_instant(&path)?;
        Ok(Self::with(Source::File(path, Arc::new(Mutex::new(now)))))
    }

    pub fn is_development(&self) -> bool {
        !matches!(self.source, Source::System)
    }

    /// Whether the clock runs with real time (the system's, or an offset
    /// from it) rather than standing at an instant until moved.
    pub fn runs(&self) -> bool {
        matches!(self.source, Source::System | Source::Offset(_))
    }

    pub fn describe(&self) -> String {
        match &self.source {
            Source::System => "system".into(),
            Source::Offset(o) => format!("development: system time {o:+}"),
            Source::File(p, _) => format!("development: read from {}", p.display()),
            Source::Manual(_) => "development: set by the test".into(),
        }
    }

    /// Now, in whole seconds: the precision of Kubernetes timestamps, so that
    /// what is computed and what is read back agree.
    pub fn now(&self) -> Timestamp {
        let now = self.exact();
        Timestamp::from_second(now.as_second()).unwrap_or(now)
    }

    fn exact(&self) -> Timestamp {
        match &self.source {
            Source::System => Timestamp::now(),
            Source::Offset(o) => Timestamp::now()
                .saturating_add(*o)
                .unwrap_or(Timestamp::MAX),
            Source::File(_, t) | Source::Manual(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a manual clock (no effect on the others).
    pub fn set(&self, to: Timestamp) {
        if let Source::Manual(t) = &self.source {
            *t.lock().unwrap_or_else(|p| p.into_inner()) = to;
            tracing::warn!(now = %to, "development clock moved");
            self.moved.send_modify(|n| *n += 1);
        }
    }

    /// Advances a manual clock.
    pub fn advance(&self, by: SignedDuration) {
        let to = self.now().saturating_add(by).unwrap_or(Timestamp::MAX);
        self.set(to);
    }

    /// Notified whenever the clock moves other than by the passing of time.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.moved.subscribe()
    }

    /// For a file clock: re-reads the file every second until `stop` and
    /// notifies subscribers when the instant changes.
    pub async fn follow_file(self) {
        let Source::File(path, current) = &self.source else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            match read_instant(path) {
                Ok(now) => {
                    let changed = {
                        let mut t = current.lock().unwrap_or_else(|p| p.into_inner());
                        let changed = *t != now;
                        *t = now;
                        changed
                    };
                    if changed {
                        tracing::warn!(now = %now, "development clock moved");
                        self.moved.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "development clock file unreadable; keeping the last instant")
                }
            }
        }
    }
}

/// A development clock as the operator publishes it for its clients (the
/// plugin), in the ConfigMap [`Published::NAME`] of its namespace: its
/// reading at each move, so that a client reads the operator's time and
/// places an instant of real time (an event's) on it. No ConfigMap, the
/// operator's clock is the system's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// Whether the clock runs with real time after each move (an offset) or
    /// stands at each reading until the next move (a file or a test's).
    pub runs: bool,
    /// The moves, oldest first: the last [`Published::KEPT`].
    pub moves: Vec<Move>,
}

/// A clock's reading at an instant of real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub real: Timestamp,
    pub now: Timestamp,
}

impl Published {
    pub const NAME: &str = "govcloud-clock";
    pub const KEY: &str = "clock.json";
    pub const KEPT: usize = 200;

    /// The clock's reading at the real instant `real`: from the last move
    /// made by then (the first, for an instant before any).
    pub fn at(&self, real: Timestamp) -> Timestamp {
        let Some(m) = self
            .moves
            .iter()
            .rev()
            .find(|m| m.real <= real)
            .or(self.moves.first())
        else {
            return real;
        };
        if self.runs {
            m.now
                .saturating_add(real.duration_since(m.real))
                .unwrap_or(m.now)
        } else {
            m.now
        }
    }

    /// What to publish when the clock reads `now` at the real instant
    /// `real`, given what is published: `None` when that already says so
    /// (to the second).
    pub fn record(
        published: Option<&Self>,
        runs: bool,
        real: Timestamp,
        now: Timestamp,
    ) -> Option<Self> {
        if let Some(p) = published
            && p.runs == runs
            && p.at(real).duration_since(now).abs() < SignedDuration::from_secs(1)
        {
            return None;
        }
        let mut moves = published
            .filter(|p| p.runs == runs)
            .map(|p| p.moves.clone())
            .unwrap_or_default();
        moves.push(Move { real, now });
        let excess = moves.len().saturating_sub(Self::KEPT);
        moves.drain(..excess);
        Some(Self { runs, moves })
    }
}

fn read_instant(path: &std::path::Path) -> Result<Timestamp, ClockError> {
    let err = |message: String| ClockError::File {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    text.trim()
        .parse::<Timestamp>()
        .map_err(|e| err(format!("not an RFC 3339 instant: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_clock_reads_the_operators_time_and_places_real_instants_on_it() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        // A test's clock: set to 27 November at 10:00 real time, moved 31
        // days on at 10:05.
        let first = Published::record(
            None,
            false,
            at("2026-12-05T10:00:00Z"),
            at("2026-11-27T02:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            Published::record(
                Some(&first),
                false,
                at("2026-12-05T10:03:00Z"),
                at("2026-11-27T02:00:00Z")
            ),
            None,
            "standing still is what it said"
        );
        let moved = Published::record(
            Some(&first),
            false,
            at("2026-12-05T10:05:00Z"),
            at("2026-12-28T02:00:00Z"),
        )
        .unwrap();
        assert_eq!(moved.moves.len(), 2);
        // An event of 10:02 real time happened on 27 November by the clock,
        // one of 10:06 on 28 December; now is 28 December.
        assert_eq!(
            moved.at(at("2026-12-05T10:02:00Z")),
            at("2026-11-27T02:00:00Z")
        );
        assert_eq!(
            moved.at(at("2026-12-05T10:06:00Z")),
            at("2026-12-28T02:00:00Z")
        );
        // An offset clock runs: 30 days ahead, then and later.
        let ahead = Published::record(
            None,
            true,
            at("2026-12-05T10:00:00Z"),
            at("2027-01-04T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            ahead.at(at("2026-12-05T11:30:00Z")),
            at("2027-01-04T11:30:00Z")
        );
        assert_eq!(
            Published::record(
                Some(&ahead),
                true,
                at("2026-12-06T10:00:00Z"),
                at("2027-01-05T10:00:00Z")
            ),
            None
        );
        // Only the last moves are kept.
        let mut p = first;
        for i in 1..=(Published::KEPT as i64 + 10) {
            let real = at("2026-12-05T10:00:00Z")
                .saturating_add(SignedDuration::from_mins(i))
                .unwrap();
            let now = at("2026-11-27T02:00:00Z")
                .saturating_add(SignedDuration::from_hours(i))
                .unwrap();
            p = Published::record(Some(&p), false, real, now).unwrap();
        }
        assert_eq!(p.moves.len(), Published::KEPT);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_says_so() {
        let start: Timestamp = "2026-02-12T02:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        let moved = clock.subscribe();
        assert_eq!(clock.now(), start);
        clock.advance(SignedDuration::from_hours(24 * 31));
        assert_eq!(clock.now().to_string(), "2026-03-15T02:00:00Z");
        assert!(moved.has_changed().unwrap());
        assert!(clock.is_development());
        assert!(!Clock::system().is_development());
    }

    #[test]
    fn a_file_clock_reads_rfc3339_and_refuses_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        std::fs::write(&path, "2026-11-27T08:00:00+08:00\n").unwrap();
        let clock = Clock::file(path.clone()).unwrap();
        assert_eq!(clock.now().to_string(), "2026-11-27T00:00:00Z");
        std::fs::write(&path, "tomorrow").unwrap();
        let err = Clock::file(path).err().unwrap();
        assert!(err.to_string().contains("not an RFC 3339 instant"), "{err}");
    }

    #[test]
    fn an_offset_clock_runs_ahead_of_the_system() {
        let clock = Clock::offset(SignedDuration::from_hours(24 * 30));
        let ahead = clock.now().duration_since(Timestamp::now());
        assert!(ahead > SignedDuration::from_hours(24 * 30 - 1), "{ahead:?}");
    }
}
