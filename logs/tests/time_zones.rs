//! Local times read in the device's zone, daylight saving included: the same
//! syslog lines (no offset in them, as BusyBox and rsyslog's traditional
//! format write) read with Debian's real TZif file for Europe/Berlin, with
//! the equivalent POSIX `TZ` string (OpenWrt's `/etc/TZ`), and with a fixed
//! offset, which is an hour wrong for the summer half of the year.

use bfp_logs::analyze::{Analyzer, AnalyzerConfig, LogFormat, RecordKind};
use bfp_logs::zone::ZONEINFO;
use bfp_logs::LocalZone;

/// 2026-12-05 00:00 UTC: every line below is read as 2026.
const DEC_5_2026: i64 = 1_796_428_800;

/// Unix seconds of a UTC time (`2026-03-29 01:30:00`).
fn utc(text: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let days = bfp_common::time::days_from_civil(n(0..4) as i32, n(5..7) as u8, n(8..10) as u8);
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// Sessions at Berlin wall-clock times (user, local date and time), each
/// five minutes long, with the UTC start and local login hour they must get.
const SESSIONS: [(&str, &str, &str, &str, u8); 6] = [
    // user, syslog date, local time, UTC start, local hour
    ("winter", "Jan 15", "14:00:00", "2026-01-15 13:00:00", 14),
    ("before", "Mar 29", "01:30:00", "2026-03-29 00:30:00", 1),
    // 02:00-03:00 does not exist that night; 03:30 is summer time.
    ("after", "Mar 29", "03:30:00", "2026-03-29 01:30:00", 3),
    ("summer", "Jul 15", "14:00:00", "2026-07-15 12:00:00", 14),
    // 02:30 happens twice on 25 October: read as the first (summer time).
    ("fold", "Oct 25", "02:30:00", "2026-10-25 00:30:00", 2),
    ("autumn", "Oct 25", "14:00:00", "2026-10-25 13:00:00", 14),
];

fn log() -> String {
    let mut text = String::new();
    for (i, (user, date, time, _, _)) in SESSIONS.iter().enumerate() {
        let pid = 4000 + i;
        let (h, m) = (&time[..2], &time[3..5]);
        let end = format!("{h}:{:02}:00", m.parse::<u32>().unwrap() + 5);
        text.push_str(&format!(
            "{date:>6} {time} gw sshd[{pid}]: Accepted password for {user} from 192.0.2.{i} port 40000 ssh2\n\
             {date:>6} {time} gw sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)\n\
             {date:>6} {end} gw sshd[{pid}]: pam_unix(sshd:session): session closed for user {user}\n"
        ));
    }
    text
}

/// (user, start, login hour) of each session, in log order.
fn sessions(config: AnalyzerConfig) -> Vec<(String, i64, u8)> {
    let mut a = Analyzer::new(AnalyzerConfig { reference_time: Some(DEC_5_2026), ..config });
    let mut out = Vec::new();
    for line in log().lines() {
        a.feed_line(line, LogFormat::Syslog);
        out.extend(a.drain_ready());
    }
    out.extend(a.finish());
    assert_eq!(a.stats().unknown_total(), 0);
    let mut sessions: Vec<_> = out
        .into_iter()
        .filter(|o| o.kind == RecordKind::Session)
        .map(|o| (o.user.unwrap_or_default(), o.start, o.fingerprint.login_hour))
        .collect();
    sessions.sort_by_key(|s| s.1);
    sessions
}

fn expected() -> Vec<(String, i64, u8)> {
    SESSIONS.iter().map(|(user, _, _, start, hour)| (user.to_string(), utc(start), *hour)).collect()
}

#[test]
fn debians_tzif_file_for_berlin_reads_both_sides_of_each_change() {
    let path = std::path::Path::new(ZONEINFO).join("Europe/Berlin");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (Debian's tzdata package)", path.display()));
    let zone = LocalZone::from_tzif("Europe/Berlin", &bytes).unwrap();
    assert_eq!(sessions(AnalyzerConfig { time_zone: Some(zone), ..AnalyzerConfig::default() }), expected());
    // By name, as the agent's `time_zone = "Europe/Berlin"` reads it.
    let named = LocalZone::parse("Europe/Berlin").unwrap();
    assert_eq!(sessions(AnalyzerConfig { time_zone: Some(named), ..AnalyzerConfig::default() }), expected());
}

#[test]
fn openwrts_posix_string_reads_the_same() {
    let zone = LocalZone::from_posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
    assert_eq!(sessions(AnalyzerConfig { time_zone: Some(zone), ..AnalyzerConfig::default() }), expected());
}

#[test]
fn a_fixed_offset_is_an_hour_wrong_in_summer() {
    let fixed = sessions(AnalyzerConfig { utc_offset_secs: 3600, ..AnalyzerConfig::default() });
    let right = expected();
    for (got, want) in fixed.iter().zip(&right) {
        let summer = ["after", "summer", "fold"].contains(&want.0.as_str());
        // The hour is the line's own; the instant is an hour late in summer.
        assert_eq!(got.2, want.2, "{}", want.0);
        assert_eq!(got.1 - want.1, if summer { 3600 } else { 0 }, "{}", want.0);
    }
}
