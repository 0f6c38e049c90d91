//! The device's local time: which wall clock its logs are written in.
//!
//! Syslog lines without an offset (BusyBox, OpenWrt's `logd`, rsyslog's
//! traditional format) are written in the device's local time, and a
//! fingerprint's login hour is an hour of that local time. A fixed offset is
//! right for half the year where daylight saving applies; a [`LocalZone`]
//! holds the zone's rules instead (with `jiff`): a TZif file (Debian's
//! `/etc/localtime`, `/usr/share/zoneinfo/NAME`) or a POSIX `TZ` string
//! (OpenWrt's `/etc/TZ`, e.g. `CET-1CEST,M3.5.0,M10.5.0/3`).
//!
//! Local wall-clock times that do not exist (the hour skipped in spring) are
//! read as if the clock had not moved yet, and those that happen twice (the
//! hour repeated in autumn) as the first: `jiff`'s "compatible" choice, the
//! one RFC 5545 and most libraries make.
//!
//! [`ZoneCache`] answers the analyzer's per-line questions without asking
//! the rules each time: an offset holds between two transitions.

use jiff::tz::TimeZone;
use jiff::Timestamp;

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
        let tz = TimeZone::tzif(name, bytes).map_err(|e| format!("{name}: not a TZif time zone file: {e}"))?;
        Ok(LocalZone::Rules { name: name.to_string(), tz })
    }

    /// The rules of a POSIX `TZ` string (`CET-1CEST,M3.5.0,M10.5.0/3`).
    pub fn from_posix(spec: &str) -> Result<LocalZone, String> {
        let spec = spec.trim();
        let tz = TimeZone::posix(spec).map_err(|e| format!("{spec:?}: not a POSIX TZ string: {e}"))?;
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
                Timestamp::from_millisecond(unix_ms).map_or(0, |t| tz.to_offset(t).seconds())
            }
        }
    }

    /// The offset to read the wall-clock time `local_ms` (a civil time
    /// counted as if it were UTC) with: skipped times take the offset before
    /// the change, repeated times the first.
    pub fn offset_of_local(&self, local_ms: i64) -> i32 {
        match self {
            LocalZone::Fixed(secs) => *secs,
            LocalZone::Rules { tz, .. } => {
                let Ok(local) = Timestamp::from_millisecond(local_ms) else { return 0 };
                let civil = TimeZone::UTC.to_datetime(local);
                match tz.to_ambiguous_timestamp(civil).compatible() {
                    Ok(utc) => ((local_ms - utc.as_millisecond()) / 1000) as i32,
                    Err(_) => tz.to_offset(local).seconds(),
                }
            }
        }
    }

    /// The UTC instants (milliseconds) of the transitions around `unix_ms`:
    /// the last at or before it and the next after it (`i64::MIN`/`MAX`
    /// where there is none).
    fn transitions_around(&self, unix_ms: i64) -> (i64, i64) {
        match self {
            LocalZone::Fixed(_) => (i64::MIN, i64::MAX),
            LocalZone::Rules { tz, .. } => {
                let Ok(at) = Timestamp::from_millisecond(unix_ms) else { return (unix_ms, unix_ms) };
                // `preceding` is strictly before: a transition at `at` itself is found from one ms later.
                let after = at.checked_add(jiff::SignedDuration::from_millis(1)).unwrap_or(at);
                let lo = tz.preceding(after).next().map_or(i64::MIN, |t| t.timestamp().as_millisecond());
                let hi = tz.following(at).next().map_or(i64::MAX, |t| t.timestamp().as_millisecond());
                (lo, hi)
            }
        }
    }
}

/// Largest distance (ms) between a transition's UTC instant and a local
/// time it makes skipped or repeated: offsets change by less than a day.
const NEAR_TRANSITION_MS: i64 = 86_400_000;

/// A [`LocalZone`] with the offset of the last span between two transitions
/// it was asked about: lines come in time order, so nearly every question is
/// answered from the span without consulting the rules.
#[derive(Debug, Clone)]
pub struct ZoneCache {
    zone: LocalZone,
    /// UTC milliseconds `[lo, hi)` in which the offset is `offset`.
    lo: i64,
    hi: i64,
    offset: i32,
}

impl ZoneCache {
    /// An empty cache over `zone`.
    pub fn new(zone: LocalZone) -> ZoneCache {
        ZoneCache { zone, lo: 0, hi: 0, offset: 0 }
    }

    /// The zone.
    pub fn zone(&self) -> &LocalZone {
        &self.zone
    }

    fn fill(&mut self, unix_ms: i64) {
        let (lo, hi) = self.zone.transitions_around(unix_ms);
        self.lo = lo;
        self.hi = hi;
        self.offset = self.zone.offset_at(unix_ms);
    }

    /// [`LocalZone::offset_at`].
    pub fn offset_at(&mut self, unix_ms: i64) -> i32 {
        if let LocalZone::Fixed(secs) = self.zone {
            return secs;
        }
        if !(self.lo..self.hi).contains(&unix_ms) {
            self.fill(unix_ms);
        }
        self.offset
    }

    /// [`LocalZone::offset_of_local`].
    pub fn offset_of_local(&mut self, local_ms: i64) -> i32 {
        if let LocalZone::Fixed(secs) = self.zone {
            return secs;
        }
        let guess = local_ms.saturating_sub(i64::from(self.offset) * 1000);
        // Well inside the cached span, the local time is neither skipped nor
        // repeated: its offset is the span's.
        if self.lo.saturating_add(NEAR_TRANSITION_MS) <= guess && guess < self.hi.saturating_sub(NEAR_TRANSITION_MS) {
            return self.offset;
        }
        let offset = self.zone.offset_of_local(local_ms);
        self.fill(local_ms.saturating_sub(i64::from(offset) * 1000));
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `2026-03-29 01:59:59` style wall-clock times as local milliseconds.
    fn local(text: &str) -> i64 {
        let dt: jiff::civil::DateTime = text.parse().unwrap();
        TimeZone::UTC.to_timestamp(dt).unwrap().as_millisecond()
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
