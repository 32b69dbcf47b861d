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
