//! The device's local time: which wall clock its logs are written in.
//!
//! Syslog lines without an offset (BusyBox, OpenWrt's `logd`, rsyslog's
//! traditional format) are written in the device's local time, and a
//! fingerprint's login hour is an hour of that local time. A fixed offset is
//! right for half the year where daylight saving applies; a [`LocalZone`]
//! holds the zone's rules instead (with `tz-rs`: `jiff` was measured first and
//! cost 142 KB of the armv7 agent, past its size bar; see docs/benchmarks.md,
//! "Agent binary sizes"): a TZif file (Debian's `/etc/localtime`,
//! `/usr/share/zoneinfo/NAME`) or a POSIX `TZ` string (OpenWrt's `/etc/TZ`,
//! e.g. `CET-1CEST,M3.5.0,M10.5.0/3`).
//!
//! Local wall-clock times that do not exist (the hour skipped in spring) are
//! read as if the clock had not moved yet, and those that happen twice (the
//! hour repeated in autumn) as the first: the "compatible" choice RFC 5545
//! and most libraries make.
//!
//! [`ZoneCache`] answers the analyzer's per-line questions without asking
//! the rules each time: it keeps the offset of the last day asked about when
//! the offset is the same at both its ends (a zone changes its offset at
//! most once a day, and never back the same day), else of the quarter hour.

use bfp_common::time::civil_from_days;
use tz::datetime::FoundDateTimeKind;
use tz::{DateTime, TimeZone};

/// Where a device's wall clock stands relative to UTC.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalZone {
    /// A fixed offset from UTC, seconds (e.g. `utc_offset_secs = 3600`).
    Fixed(i32),
    /// A time zone's rules, with where they came from (for messages).
    Rules {
        /// A name (`Europe/Berlin`), a POSIX string or a file path.
        name: String,
        /// The rules.
        tz: TimeZone,
    },
}

impl Default for LocalZone {
    fn default() -> Self {
        LocalZone::Fixed(0)
    }
}

/// What [`LocalZone::detect`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    /// The zone (UTC when nothing names one).
    pub zone: LocalZone,
    /// Where it came from: `the TZ variable`, `/etc/TZ`, `/etc/localtime`.
    pub origin: String,
    /// Places that named a zone that could not be read (each then skipped).
    pub problems: Vec<String>,
}

/// Where IANA zone names are looked up (Debian's tzdata).
pub const ZONEINFO: &str = "/usr/share/zoneinfo";

impl LocalZone {
    /// The rules of a TZif file's contents (`name` for messages).
    pub fn from_tzif(name: &str, bytes: &[u8]) -> Result<LocalZone, String> {
        let tz = TimeZone::from_tz_data(bytes).map_err(|e| format!("{name}: not a TZif time zone file: {e}"))?;
        Ok(LocalZone::Rules { name: name.to_string(), tz })
    }

    /// The rules of a POSIX `TZ` string (`CET-1CEST,M3.5.0,M10.5.0/3`).
    pub fn from_posix(spec: &str) -> Result<LocalZone, String> {
        let spec = spec.trim();
        let tz = TimeZone::from_posix_tz(spec).map_err(|e| format!("{spec:?}: not a POSIX TZ string: {e}"))?;
        Ok(LocalZone::Rules { name: spec.to_string(), tz })
    }

    /// A zone as an operator writes it: a TZif file's path (`/etc/localtime`),
    /// an IANA name found under [`ZONEINFO`] (`Europe/Berlin`, `UTC`), or a
    /// POSIX `TZ` string. A leading `:` (as `TZ` allows) is ignored.
    pub fn parse(spec: &str) -> Result<LocalZone, String> {
        let spec = spec.trim();
        let spec = spec.strip_prefix(':').unwrap_or(spec);
        if spec.is_empty() {
            return Err("an empty time zone".into());
        }
        if spec.starts_with('/') {
            let bytes = std::fs::read(spec).map_err(|e| format!("{spec}: {e}"))?;
            return LocalZone::from_tzif(spec, &bytes);
        }
        // A name has no sign or digit after its letters; a POSIX string does.
        let named = !spec.contains("..") && spec.bytes().all(|b| b.is_ascii_alphabetic() || b"/_-+".contains(&b));
        let path = std::path::Path::new(ZONEINFO).join(spec);
        let file =
            if spec.contains("..") { Err(std::io::ErrorKind::InvalidInput.into()) } else { std::fs::read(&path) };
        match file {
            Ok(bytes) if named || !spec.contains(',') => LocalZone::from_tzif(spec, &bytes),
            _ => LocalZone::from_posix(spec).map_err(|e| {
                if named {
                    format!("{spec}: no such zone in {ZONEINFO} (install tzdata) and {e}")
                } else {
                    e
                }
            }),
        }
    }

    /// The device's own zone, as its C library would find it: the `TZ`
    /// variable (`env_tz`), else OpenWrt's `/etc/TZ` (a POSIX string), else
    /// `/etc/localtime` (a TZif file), else UTC.
    pub fn detect(env_tz: Option<&str>) -> Detected {
        LocalZone::detect_in(env_tz, std::path::Path::new("/etc"))
    }

    /// [`LocalZone::detect`] with `etc` in place of `/etc` (for tests).
    pub fn detect_in(env_tz: Option<&str>, etc: &std::path::Path) -> Detected {
        let mut problems = Vec::new();
        if let Some(tz) = env_tz.filter(|t| !t.trim().is_empty()) {
            match LocalZone::parse(tz) {
                Ok(zone) => return Detected { zone, origin: "the TZ variable".into(), problems },
                Err(e) => problems.push(format!("TZ: {e}")),
            }
        }
        let openwrt = etc.join("TZ");
        if let Ok(text) = std::fs::read_to_string(&openwrt) {
            if !text.trim().is_empty() {
                match LocalZone::from_posix(&text) {
                    Ok(zone) => return Detected { zone, origin: openwrt.display().to_string(), problems },
                    Err(e) => problems.push(format!("{}: {e}", openwrt.display())),
                }
            }
        }
        let localtime = etc.join("localtime");
        if let Ok(bytes) = std::fs::read(&localtime) {
            // Named after the zone the link points to, where it is one.
            let name = std::fs::read_link(&localtime)
                .ok()
                .and_then(|t| t.to_str().and_then(|t| t.split_once("zoneinfo/")).map(|(_, n)| n.to_string()))
                .unwrap_or_else(|| localtime.display().to_string());
            match LocalZone::from_tzif(&name, &bytes) {
                Ok(zone) => return Detected { zone, origin: localtime.display().to_string(), problems },
                Err(e) => problems.push(e),
            }
        }
        Detected { zone: LocalZone::Fixed(0), origin: "no zone configured: UTC".into(), problems }
    }

    /// How the zone is named in messages: `UTC+01:00` or its name.
    pub fn describe(&self) -> String {
        match self {
            LocalZone::Fixed(secs) => {
                let sign = if *secs < 0 { '-' } else { '+' };
                let abs = secs.unsigned_abs();
                format!("UTC{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
            }
            LocalZone::Rules { name, .. } => name.clone(),
        }
    }

    /// The offset from UTC, seconds, in force at `unix_ms`.
    pub fn offset_at(&self, unix_ms: i64) -> i32 {
        match self {
            LocalZone::Fixed(secs) => *secs,
            LocalZone::Rules { tz, .. } => {
                tz.find_local_time_type(unix_ms.div_euclid(1000)).map_or(0, |t| t.ut_offset())
            }
        }
    }

    /// The offset to read the wall-clock time `local_ms` (a civil time
    /// counted as if it were UTC) with: skipped times take the offset before
    /// the change, repeated times the first.
    pub fn offset_of_local(&self, local_ms: i64) -> i32 {
        self.local_offset(local_ms).0
    }

    /// [`LocalZone::offset_of_local`], and whether the time is ordinary
    /// (neither skipped nor repeated).
    fn local_offset(&self, local_ms: i64) -> (i32, bool) {
        let tz = match self {
            LocalZone::Fixed(secs) => return (*secs, true),
            LocalZone::Rules { tz, .. } => tz,
        };
        let secs = local_ms.div_euclid(1000);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let t = secs.rem_euclid(86_400);
        let (h, m, s) = ((t / 3600) as u8, (t % 3600 / 60) as u8, (t % 60) as u8);
        let found = match DateTime::find(year, month, day, h, m, s, 0, tz.as_ref()) {
            Ok(found) => found.into_inner(),
            Err(_) => return (self.offset_at(local_ms), false),
        };
        let normal = found.iter().filter_map(|f| match f {
            FoundDateTimeKind::Normal(dt) => Some(dt),
            FoundDateTimeKind::Skipped { .. } => None,
        });
        // Repeated: the earlier instant, i.e. the larger offset.
        if let Some(first) = normal.min_by_key(|dt| dt.unix_time()) {
            let ordinary = found.len() == 1;
            return (first.local_time_type().ut_offset(), ordinary);
        }
        match found.first() {
            Some(FoundDateTimeKind::Skipped { before_transition, .. }) => {
                (before_transition.local_time_type().ut_offset(), false)
            }
            _ => (self.offset_at(local_ms), false),
        }
    }
}

/// The spans whose offset is kept when it is the same at both ends: a day
/// (a zone changes its offset at most once a day and never back the same
/// day, so such a day has no change in it), else, on the day of a change,
/// the quarter hour (changes of today's zones fall on quarter hours).
const SPANS_MS: [i64; 2] = [86_400_000, 900_000];

/// A [`LocalZone`] with the offsets of the last span (of UTC, and of local
/// time) it was asked about: lines come in time order, so nearly every
/// question is answered without consulting the rules.
#[derive(Debug, Clone)]
pub struct ZoneCache {
    zone: LocalZone,
    /// UTC ms `[start, end)` and the offset all through it.
    utc: (i64, i64, i32),
    /// Local ms `[start, end)` and the offset all through it.
    local: (i64, i64, i32),
}

impl ZoneCache {
    /// An empty cache over `zone`.
    pub fn new(zone: LocalZone) -> ZoneCache {
        ZoneCache { zone, utc: (0, 0, 0), local: (0, 0, 0) }
    }

    /// The zone.
    pub fn zone(&self) -> &LocalZone {
        &self.zone
    }

    /// [`LocalZone::offset_at`].
    pub fn offset_at(&mut self, unix_ms: i64) -> i32 {
        if let LocalZone::Fixed(secs) = self.zone {
            return secs;
        }
        let (start, end, offset) = self.utc;
        if (start..end).contains(&unix_ms) {
            return offset;
        }
        for span in SPANS_MS {
            let start = unix_ms.div_euclid(span) * span;
            let first = self.zone.offset_at(start);
            if first == self.zone.offset_at(start + span - 1) {
                self.utc = (start, start + span, first);
                return first;
            }
        }
        self.zone.offset_at(unix_ms)
    }

    /// [`LocalZone::offset_of_local`].
    pub fn offset_of_local(&mut self, local_ms: i64) -> i32 {
        if let LocalZone::Fixed(secs) = self.zone {
            return secs;
        }
        let (start, end, offset) = self.local;
        if (start..end).contains(&local_ms) {
            return offset;
        }
        for span in SPANS_MS {
            let start = local_ms.div_euclid(span) * span;
            let (first, ordinary_first) = self.zone.local_offset(start);
            let (last, ordinary_last) = self.zone.local_offset(start + span - 1);
            if first == last && ordinary_first && ordinary_last {
                self.local = (start, start + span, first);
                return first;
            }
        }
        self.zone.offset_of_local(local_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::time::days_from_civil;

    /// `2026-03-29 01:59:59` style wall-clock times as local milliseconds.
    fn local(text: &str) -> i64 {
        let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
        let days = days_from_civil(n(0..4) as i32, n(5..7) as u8, n(8..10) as u8);
        (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) * 1000
    }

    fn utc(text: &str) -> i64 {
        local(text)
    }

    const BERLIN_POSIX: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

    #[test]
    fn a_posix_string_changes_offset_on_the_last_sundays_of_march_and_october() {
        let zone = LocalZone::from_posix(BERLIN_POSIX).unwrap();
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(zone.offset_at(utc("2026-03-29 00:59:59")), 3600);
        assert_eq!(zone.offset_at(utc("2026-03-29 01:00:00")), 7200);
        assert_eq!(zone.offset_at(utc("2026-10-25 00:59:59")), 7200);
        assert_eq!(zone.offset_at(utc("2026-10-25 01:00:00")), 3600);
        // Wall-clock times: 02:30 on 29 March does not exist (read as CET,
        // i.e. 03:30 CEST); 02:30 on 25 October happens twice (the first, CEST).
        assert_eq!(zone.offset_of_local(local("2026-03-29 01:59:00")), 3600);
        assert_eq!(zone.offset_of_local(local("2026-03-29 02:30:00")), 3600);
        assert_eq!(zone.offset_of_local(local("2026-03-29 03:00:00")), 7200);
        assert_eq!(zone.offset_of_local(local("2026-10-25 02:30:00")), 7200);
        assert_eq!(zone.offset_of_local(local("2026-10-25 03:00:00")), 3600);
        assert_eq!(zone.describe(), BERLIN_POSIX);
    }

    #[test]
    fn the_cache_answers_as_the_rules_do_across_a_year_in_either_order() {
        let zone = LocalZone::from_posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        let mut cache = ZoneCache::new(zone.clone());
        let start = utc("2026-01-01 00:00:00");
        // Every 7 minutes for a year, forwards then a backwards stretch.
        let mut times: Vec<i64> = (0..75_000).map(|i| start + i * 420_000).collect();
        times.extend((0..2000).rev().map(|i| utc("2026-03-08 00:00:00") + i * 60_000));
        for t in times {
            assert_eq!(cache.offset_at(t), zone.offset_at(t), "offset_at {t}");
            assert_eq!(cache.offset_of_local(t), zone.offset_of_local(t), "offset_of_local {t}");
        }
    }

    #[test]
    fn fixed_offsets_and_bad_specs() {
        let mut cache = ZoneCache::new(LocalZone::Fixed(-12_600));
        assert_eq!(cache.offset_at(0), -12_600);
        assert_eq!(cache.offset_of_local(0), -12_600);
        assert_eq!(LocalZone::Fixed(-12_600).describe(), "UTC-03:30");
        assert_eq!(LocalZone::default().describe(), "UTC+00:00");
        assert!(LocalZone::from_posix("not a zone, 1").is_err());
        assert!(LocalZone::from_tzif("x", b"TZif nonsense").is_err());
        assert!(LocalZone::parse("").is_err());
        assert!(LocalZone::parse("/nonexistent/zone").unwrap_err().contains("/nonexistent/zone"));
    }

    #[test]
    fn detection_prefers_tz_then_openwrt_then_localtime() {
        let etc = tempfile_dir();
        // Nothing there: UTC.
        assert_eq!(LocalZone::detect_in(None, &etc).zone, LocalZone::Fixed(0));
        // OpenWrt's /etc/TZ.
        std::fs::write(etc.join("TZ"), format!("{BERLIN_POSIX}\n")).unwrap();
        let found = LocalZone::detect_in(None, &etc);
        assert_eq!((found.zone.describe(), found.problems.len()), (BERLIN_POSIX.to_string(), 0));
        assert!(found.origin.ends_with("/TZ"), "{}", found.origin);
        // TZ wins; a bad TZ is reported and the next place is used.
        assert_eq!(LocalZone::detect_in(Some("EST5EDT,M3.2.0,M11.1.0"), &etc).zone.offset_at(0), -5 * 3600);
        let found = LocalZone::detect_in(Some("1,2,3"), &etc);
        assert_eq!(found.zone.describe(), BERLIN_POSIX);
        assert!(found.problems[0].starts_with("TZ: "), "{:?}", found.problems);
        let _ = std::fs::remove_dir_all(&etc);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bfp-zone-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
