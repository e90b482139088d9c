//! Wall-clock (UTC) time as an input. The engine runs on the monotonic
//! `now` every input carries; where it needs the date (the validity of
//! certificates and CRLs in IKE_AUTH) it derives it from the last anchor the driver gave
//! ([`Endpoint::set_wall_clock`](super::Endpoint::set_wall_clock)): a
//! monotonic instant and the UTC time at that instant. The library never
//! reads a clock itself.
//!
//! The driver gives a new anchor at start and with an input once the last
//! is a second old, so a step of the system clock (NTP, an operator)
//! shows in UTC times within a second, in either direction, while timers
//! (all monotonic) are not moved by it.

use std::time::{Instant, SystemTime};

/// The latest (monotonic, UTC) anchor, if the driver gave one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WallClock {
    anchor: Option<(Instant, SystemTime)>,
}

impl WallClock {
    /// At monotonic `now` the UTC time is `utc`.
    pub(crate) fn set(&mut self, now: Instant, utc: SystemTime) {
        self.anchor = Some((now, utc));
    }

    /// The UTC time of the latest anchor (at most a second old while
    /// the driver runs), for code without a `now` at hand.
    pub(crate) fn latest(&self) -> Option<SystemTime> {
        self.anchor.map(|(_, utc)| utc)
    }

    /// The UTC time at monotonic `now` (`None` without an anchor, or out
    /// of `SystemTime`'s range).
    pub(crate) fn utc(&self, now: Instant) -> Option<SystemTime> {
        let (at, utc) = self.anchor?;
        if now >= at {
            utc.checked_add(now.duration_since(at))
        } else {
            utc.checked_sub(at.duration_since(now))
        }
    }
}

#[cfg(test)]
// A test's base instant: the code under test only compares instants it is
// given, so any one will do (ike/clippy.toml forbids reading the clock).
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_follows_the_monotonic_clock_from_the_anchor() {
        let mut c = WallClock::default();
        let t0 = Instant::now();
        assert_eq!(c.utc(t0), None);
        let u0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        c.set(t0, u0);
        assert_eq!(c.utc(t0), Some(u0));
        let s = Duration::from_secs(90);
        assert_eq!(c.utc(t0 + s), Some(u0 + s));
        // An instant before the anchor (an input stamped earlier).
        if let Some(before) = t0.checked_sub(s) {
            assert_eq!(c.utc(before), Some(u0 - s));
        }
    }

    #[test]
    fn a_step_of_the_system_clock_shows_from_the_next_anchor_on() {
        let mut c = WallClock::default();
        let t0 = Instant::now();
        let u0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        c.set(t0, u0);
        // One second later the system clock was set back an hour.
        let t1 = t0 + Duration::from_secs(1);
        let u1 = u0 + Duration::from_secs(1) - Duration::from_secs(3600);
        assert_eq!(c.utc(t1), Some(u0 + Duration::from_secs(1)));
        c.set(t1, u1);
        assert_eq!(c.utc(t1), Some(u1));
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(c.utc(t2), Some(u1 + Duration::from_secs(10)));
        // UTC went back although the monotonic clock went on.
        assert!(c.utc(t2) < Some(u0));
        // And forward again.
        let u2 = u0 + Duration::from_secs(86_400);
        c.set(t2, u2);
        assert_eq!(
            c.utc(t2 + Duration::from_secs(5)),
            Some(u2 + Duration::from_secs(5))
        );
    }
}
