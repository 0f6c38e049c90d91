//! Syslog line headers and their timestamps.
//!
//! Accepted forms (an optional `<PRI>` prefix is skipped in all of them):
//! - RFC 3164 / BSD: `Mar 27 13:06:56 host prog[pid]: msg` (no year; the day may
//!   be space-padded). BusyBox `syslogd` inserts `facility.level` after the host.
//! - rsyslog's RFC 3339 form (Debian 12's default): `2026-03-27T13:06:56.123+01:00 host prog[pid]: msg`.
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`.
//! - OpenWrt `logread`: `Thu Mar 27 13:06:56 2026 authpriv.info dropbear[99]: msg` (with year, no host).
//! - vsftpd's own log: `Thu Mar 27 13:06:56 2026 [pid 99] [alice] OK LOGIN: ...` (program `vsftpd`).
//!
//! The tag `prog(pam_unix)[pid]` of old Red Hat systems is kept whole in
//! [`Header::program`]; the caller splits it.
//!
//! Year-less timestamps get their year from [`YearResolver`]: the year that puts
//! the first line at most a week after the reference time, then one more each
//! time the month jumps backwards by half a year or more (December → January).

use bfp_common::time::{civil_from_days, days_from_civil};

/// A wall-clock timestamp as the line gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// `None` for year-less RFC 3164 timestamps.
    pub year: Option<i32>,
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–60 (leap second tolerated).
    pub second: u8,
    /// Milliseconds, 0–999.
    pub millis: u16,
    /// Offset from UTC written in the line (`Z` is 0); `None` when the line is
    /// in the device's local time without saying which.
    pub offset_secs: Option<i32>,
}

impl CivilTime {
    /// Unix milliseconds of this wall-clock time in `year`, read at `offset_secs`
    /// from UTC (the line's own offset wins when it has one).
    pub fn to_unix_ms(&self, year: i32, default_offset_secs: i32) -> i64 {
        let offset = self.offset_secs.unwrap_or(default_offset_secs);
        self.wall_clock_ms(year) - i64::from(offset) * 1000
    }

    /// Milliseconds of this wall-clock time in `year` counted as if it were
    /// UTC: the local time a zone's offset is looked up by, and, less that
    /// offset, the unix time.
    pub fn wall_clock_ms(&self, year: i32) -> i64 {
        self.wall_clock_ms_on(days_from_civil(year, self.month, self.day))
    }

    /// As [`CivilTime::wall_clock_ms`], `days` being the date's day count
    /// since 1970-01-01 (for readers that keep the last one).
    pub fn wall_clock_ms_on(&self, days: i64) -> i64 {
        let secs = days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second);
        secs * 1000 + i64::from(self.millis)
    }
}

/// The parts of a syslog line. All borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// When.
    pub time: CivilTime,
    /// The host name, if the form has one.
    pub host: Option<&'a str>,
    /// The tag's program (`sshd`, `sshd(pam_unix)`, `sudo`, ...); empty when
    /// the line has no tag (e.g. "last message repeated 3 times").
    pub program: &'a str,
    /// The tag's process id, if any.
    pub pid: Option<u32>,
    /// The message after the tag, leading spaces removed.
    pub message: &'a str,
}

const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

/// Parses the header of one line; `None` when the line has no known header.
pub fn parse(line: &str) -> Option<Header<'_>> {
    let line = skip_pri(line);
    let b = line.as_bytes();
    if b.len() < 15 {
        return None;
    }
    if b[0].is_ascii_digit() {
        if b.len() > 2 && b[0] == b'1' && b[1] == b' ' {
            return parse_5424(&line[2..]);
        }
        if let Some((time, rest)) = parse_epoch(line) {
            // journalctl -o short-unix: "1714550403.123456 host prog[pid]: message".
            return Some(tagged(time, rest, true));
        }
        let (time, rest) = parse_rfc3339(line)?;
        let rest = rest.strip_prefix(' ')?;
        if rest.starts_with('[') {
            return Some(twisted(time, rest));
        }
        return Some(tagged(time, rest, true));
    }
    if let Some(month) = month_of(&b[..3]) {
        if b[3] != b' ' {
            return None;
        }
        let (time, rest) = parse_day_clock(&line[4..], None, month)?;
        return Some(tagged(time, rest, true));
    }
    if WEEKDAYS.iter().any(|d| &b[..3] == *d) && b[3] == b' ' && b[4].is_ascii_digit() {
        // journalctl -o short-full: "Wed 2024-05-01 10:00:02 CEST host prog[pid]: message".
        let (mut time, rest) = parse_rfc3339(&line[4..])?;
        let (zone, rest) = rest.strip_prefix(' ')?.split_once(' ')?;
        // Only UTC names an offset; other abbreviations (CEST, EST, IST) are
        // ambiguous, so the line is read in the configured local time.
        if matches!(zone, "UTC" | "GMT" | "Z") {
            time.offset_secs = Some(0);
        }
        return Some(tagged(time, rest, true));
    }
    if WEEKDAYS.iter().any(|d| &b[..3] == *d) && b[3] == b' ' {
        // ctime with year: "Thu Mar 27 13:06:56 2026 ..."
        let month = month_of(&b[4..7])?;
        if b.get(7) != Some(&b' ') {
            return None;
        }
        let (mut time, rest) = parse_day_clock(&line[8..], None, month)?;
        let (year, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if year.len() != 4 {
            return None;
        }
        time.year = Some(year.parse().ok()?);
        if is_xferlog(rest) {
            // The transfer log of wu-ftpd, vsftpd (xferlog_std_format) and ProFTPD.
            return Some(Header { time, host: None, program: "xferlog", pid: None, message: rest });
        }
        if let Some(after) = rest.strip_prefix("[pid ") {
            // vsftpd's own log file.
            let (pid, message) = after.split_once(']')?;
            return Some(Header {
                time,
                host: None,
                program: "vsftpd",
                pid: pid.trim().parse().ok(),
                message: message.trim_start(),
            });
        }
        return Some(tagged(time, rest, false));
    }
    None
}

/// Twisted's log format, which Cowrie's text log (`cowrie.log`) uses:
/// `2018-05-19T00:03:09.084318+0000 [CONTEXT] message`. The program is `twistd`, the pid the
/// connection's transport number (`...Transport,3261,ADDR`) when the context names one, and
/// the message keeps its `[CONTEXT]` (it holds the client's address).
fn twisted(time: CivilTime, rest: &str) -> Header<'_> {
    let pid = rest
        .split_once("] ")
        .map_or(rest, |(context, _)| context)
        .split_once("Transport,")
        .and_then(|(_, t)| parse_u32(t.split(',').next().unwrap_or("")));
    Header { time, host: None, program: "twistd", pid, message: rest }
}

/// After the ctime stamp, xferlog's `SECS HOST SIZE FILE TYPE ACTION DIRECTION MODE USER SERVICE
/// AUTH AUTHID STATUS`: a number first, at least 13 fields, `c` or `i` last.
fn is_xferlog(rest: &str) -> bool {
    rest.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && (rest.ends_with(" c") || rest.ends_with(" i"))
        && rest.split(' ').filter(|f| !f.is_empty()).count() >= 13
}

fn skip_pri(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix('<') {
        if let Some(end) = rest.as_bytes().iter().take(4).position(|&c| c == b'>') {
            if end > 0 && rest.as_bytes()[..end].iter().all(u8::is_ascii_digit) {
                return &rest[end + 1..];
            }
        }
    }
    line
}

fn month_of(b: &[u8]) -> Option<u8> {
    MONTHS.iter().position(|m| b == *m).map(|i| i as u8 + 1)
}

#[inline]
fn two_digits(b: &[u8]) -> Option<u8> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some((a - b'0') * 10 + (c - b'0')),
        _ => None,
    }
}

/// `dd hh:mm:ss rest` (day may be space-padded or single-digit).
fn parse_day_clock(s: &str, year: Option<i32>, month: u8) -> Option<(CivilTime, &str)> {
    let b = s.as_bytes();
    let (day, at) = match b {
        [b' ', d @ b'0'..=b'9', b' ', ..] => (d - b'0', 3),
        [d @ b'0'..=b'9', b' ', ..] => (d - b'0', 2),
        [_, _, b' ', ..] => (two_digits(&b[..2])?, 3),
        _ => return None,
    };
    let clock = b.get(at..at + 8)?;
    if clock[2] != b':' || clock[5] != b':' {
        return None;
    }
    let (hour, minute, second) = (two_digits(&clock[..2])?, two_digits(&clock[3..5])?, two_digits(&clock[6..8])?);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[at + 8..];
    let mut millis = 0;
    // Some syslogds add fractions to the BSD form: "13:06:56.123".
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        millis = frac_millis(&frac[..digits]);
        rest = &frac[digits..];
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    Some((CivilTime { year, month, day, hour, minute, second, millis, offset_secs: None }, rest))
}

fn frac_millis(digits: &str) -> u16 {
    let mut ms = 0u16;
    for (i, c) in digits.bytes().take(3).enumerate() {
        ms += u16::from(c - b'0') * [100, 10, 1][i];
    }
    ms
}

/// Unix seconds (`1714550403` or `1714550403.123456`, at least 9 digits so a
/// bare number is not taken for a time) at the start of `s`, as UTC; returns
/// the rest after the following space.
fn parse_epoch(s: &str) -> Option<(CivilTime, &str)> {
    let (stamp, rest) = s.split_once(' ')?;
    let (secs, frac) = stamp.split_once('.').unwrap_or((stamp, ""));
    if !(9..=11).contains(&secs.len())
        || !secs.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    let time = CivilTime {
        year: Some(year),
        month,
        day,
        hour: (of_day / 3600) as u8,
        minute: (of_day % 3600 / 60) as u8,
        second: (of_day % 60) as u8,
        millis: frac_millis(frac),
        offset_secs: Some(0),
    };
    Some((time, rest))
}

/// Parses an RFC 3339 timestamp at the start of `s`: `YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM)`.
/// A missing offset is taken as local time. Returns the rest after it.
pub fn parse_rfc3339(s: &str) -> Option<(CivilTime, &str)> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = i32::from(two_digits(&b[..2])?) * 100 + i32::from(two_digits(&b[2..4])?);
    let (month, day) = (two_digits(&b[5..7])?, two_digits(&b[8..10])?);
    let (hour, minute, second) = (two_digits(&b[11..13])?, two_digits(&b[14..16])?, two_digits(&b[17..19])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    // ISO 8601 allows a comma before the fraction: ProFTPD's own log writes "18:08:01,124".
    if let Some(frac) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        millis = frac_millis(&frac[..digits]);
        rest = &frac[digits..];
    }
    let offset_secs = match rest.as_bytes().first() {
        Some(b'Z' | b'z') => {
            rest = &rest[1..];
            Some(0)
        }
        Some(&sign @ (b'+' | b'-')) => {
            // `+01:00`, or `+0100` (ISO 8601 basic form: Cowrie's own log, older journalctl -o short-iso).
            let o = rest.as_bytes();
            let (hh, mm, len) = match o.get(3) {
                Some(b':') => (o.get(1..3)?, o.get(4..6)?, 6),
                _ => (o.get(1..3)?, o.get(3..5)?, 5),
            };
            let secs = i32::from(two_digits(hh)?) * 3600 + i32::from(two_digits(mm)?) * 60;
            rest = &rest[len..];
            Some(if sign == b'-' { -secs } else { secs })
        }
        _ => None,
    };
    Some((CivilTime { year: Some(year), month, day, hour, minute, second, millis, offset_secs }, rest))
}

/// `[host] [facility.level] prog[pid]: message` after a timestamp.
fn tagged(time: CivilTime, rest: &str, may_have_host: bool) -> Header<'_> {
    let mut h = tagged_colon(time, rest, may_have_host);
    if h.program.is_empty() {
        if let Some(found) = tag_without_colon(time, rest, may_have_host) {
            h = found;
        }
    }
    // Solaris and macOS syslogd put a message id first: "[ID 800047 auth.info] Failed ...".
    if let Some(after) = h.message.strip_prefix("[ID ") {
        if let Some((id, msg)) = after.split_once("] ") {
            if id.split(' ').next().is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())) {
                h.message = msg;
            }
        }
    }
    h
}

/// ProFTPD's tag has no colon after it (`proftpd[12345] host (client[addr]): USER ...`), in
/// syslog and in its own log alike: `[host] prog[pid] message`, the tag ending in `[digits]`.
fn tag_without_colon(time: CivilTime, rest: &str, may_have_host: bool) -> Option<Header<'_>> {
    let (first, after) = rest.split_once(' ')?;
    let (host, tag, message) = match split_tag(first) {
        (_, Some(_)) => (None, first, after),
        _ if may_have_host => {
            let (tag, message) = after.split_once(' ')?;
            (Some(first), tag, message)
        }
        _ => return None,
    };
    match split_tag(tag) {
        (program, Some(pid)) if !program.is_empty() && !program.contains(['[', ':']) => {
            Some(Header { time, host, program, pid: Some(pid), message: skip_spaces(message) })
        }
        _ => None,
    }
}

fn tagged_colon(time: CivilTime, rest: &str, may_have_host: bool) -> Header<'_> {
    let no_tag = |host| Header { time, host, program: "", pid: None, message: rest };
    let Some(colon) = memchr::memchr(b':', rest.as_bytes()) else { return no_tag(None) };
    let before = &rest[..colon];
    let message = skip_spaces(&rest[colon + 1..]);
    let (lead, tag) = match memchr::memrchr(b' ', before.as_bytes()) {
        Some(i) => (&before[..i], &before[i + 1..]),
        None => ("", before),
    };
    // At most a host and a BusyBox "facility.level" before the tag.
    let mut host = None;
    let mut leads = 0;
    if tag.is_empty() {
        return no_tag(None);
    }
    if !lead.is_empty() && memchr::memchr(b' ', lead.as_bytes()).is_none() {
        // The common case: just a host name (or just a facility.level).
        return if is_facility_level(lead) {
            {
                let (program, pid) = split_tag(tag);
                Header { time, host: None, program, pid, message }
            }
        } else if may_have_host {
            {
                let (program, pid) = split_tag(tag);
                Header { time, host: Some(lead), program, pid, message }
            }
        } else {
            no_tag(None)
        };
    }
    for token in lead.split(' ').filter(|t| !t.is_empty()) {
        leads += 1;
        if !is_facility_level(token) {
            if host.is_some() || !may_have_host {
                return no_tag(host);
            }
            host = Some(token);
        }
    }
    if leads > 2 {
        return no_tag(host);
    }
    let (program, pid) = split_tag(tag);
    Header { time, host, program, pid, message }
}

/// `prog[pid]` → (`prog`, pid); `[prog]` → (`prog`, none); a tag without `[pid]` is all
/// program. (SONiC's `container#prog` tags are kept whole here; see [`program_in_container`].)
fn split_tag(tag: &str) -> (&str, Option<u32>) {
    if let Some(t) = tag.strip_suffix(']') {
        if let Some(program) = t.strip_prefix('[') {
            return (program, None);
        }
        // Tags are short: a plain backwards scan beats a SIMD search's set-up.
        if let Some(i) = t.bytes().rposition(|c| c == b'[') {
            return (&tag[..i], parse_u32(&t[i + 1..]));
        }
    }
    (tag, None)
}

/// SONiC (and other container hosts) tag `container#prog[pid]`: the program is the part after
/// the `#`, if there is one. Called for unknown programs only, off the hot path.
pub fn program_in_container(program: &str) -> Option<&str> {
    program.split_once('#').map(|(_, p)| p).filter(|p| !p.is_empty() && !p.contains('#'))
}

fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut n: u64 = 0;
    for c in s.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    u32::try_from(n).ok()
}

fn skip_spaces(s: &str) -> &str {
    let n = s.bytes().take_while(|&c| c == b' ').count();
    &s[n..]
}

fn is_facility_level(token: &str) -> bool {
    token.split_once('.').is_some_and(|(f, l)| {
        !f.is_empty()
            && !l.is_empty()
            && f.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && l.bytes().all(|c| c.is_ascii_lowercase())
    })
}

/// `TIMESTAMP HOST APP PROCID MSGID SD MSG` (after "1 ").
fn parse_5424(s: &str) -> Option<Header<'_>> {
    let (time, rest) = if let Some(rest) = s.strip_prefix("- ") {
        // A nil timestamp: the receiver's clock is all there is; take the epoch
        // so the line is still counted and parsed (it will not open a window).
        (
            CivilTime {
                year: Some(1970),
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                millis: 0,
                offset_secs: Some(0),
            },
            rest,
        )
    } else {
        let (time, rest) = parse_rfc3339(s)?;
        (time, rest.strip_prefix(' ')?)
    };
    fn nil(f: &str) -> Option<&str> {
        (f != "-").then_some(f)
    }
    let mut parts = rest.splitn(5, ' ');
    let host = nil(parts.next()?);
    let app = nil(parts.next()?).unwrap_or("");
    let procid = nil(parts.next()?);
    let _msgid = parts.next()?;
    let rest = parts.next().unwrap_or("");
    let message = skip_structured_data(rest)?;
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Some(Header { time, host, program: app, pid: procid.and_then(|p| p.parse().ok()), message })
}

fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut in_quotes = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let rest = &s[i..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// `N` of syslogd's "last message repeated N times" (sysklogd, BusyBox;
/// macOS wraps it in `--- ... ---`), or `None` for any other line. Untagged,
/// [`parse`] may leave the host name in front of it.
pub fn repeated_times(h: &Header<'_>) -> Option<u32> {
    const REPEATED: &str = "last message repeated ";
    // Cheap test first: this runs on every line.
    if !(h.program.is_empty() || h.message.starts_with(REPEATED) || h.message.starts_with("--- ")) {
        return None;
    }
    let text = h.message.trim();
    let at = memchr::memmem::find(text.as_bytes(), REPEATED.as_bytes())?;
    let before = text[..at].trim_end();
    let before = before.strip_suffix("---").unwrap_or(before).trim_end();
    // Nothing, or a lone host name, may come before it.
    if before.contains(' ') || before.contains(':') {
        return None;
    }
    let text = &text[at..];
    let text = text.strip_suffix(" ---").unwrap_or(text);
    let (count, unit) = text.strip_prefix(REPEATED)?.split_once(' ')?;
    matches!(unit, "times" | "time").then(|| count.parse().ok()).flatten()
}

/// Gives year-less timestamps a year (see the module doc).
#[derive(Debug, Clone)]
pub struct YearResolver {
    reference_secs: i64,
    current: Option<(i32, u8)>,
}

impl YearResolver {
    /// `reference_secs`: unix time the log is read at (or was written up to);
    /// a line cannot be more than a week in its future.
    pub fn new(reference_secs: i64) -> YearResolver {
        YearResolver { reference_secs, current: None }
    }

    /// The year of a line dated `month`/`day`, in file order.
    pub fn year_for(&mut self, month: u8, day: u8) -> i32 {
        match self.current {
            None => {
                let (ref_year, _, _) = civil_from_days(self.reference_secs.div_euclid(86_400));
                let ahead = days_from_civil(ref_year, month, day) * 86_400 - self.reference_secs;
                let year = if ahead > 7 * 86_400 { ref_year - 1 } else { ref_year };
                self.current = Some((year, month));
                year
            }
            Some((year, last)) if month + 6 <= last => {
                // December → January: a new year.
                self.current = Some((year + 1, month));
                year + 1
            }
            Some((year, last)) if month >= last + 6 => year - 1, // a late line from the old year
            Some((year, _)) => {
                self.current = Some((year, month));
                year
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bsd_headers_with_padded_days_and_pam_tags() {
        let h = parse("Jun  9 06:06:20 combo sshd(pam_unix)[19939]: authentication failure; logname=").unwrap();
        assert_eq!((h.time.month, h.time.day, h.time.hour, h.time.second), (6, 9, 6, 20));
        assert_eq!((h.host, h.program, h.pid), (Some("combo"), "sshd(pam_unix)", Some(19939)));
        assert_eq!(h.message, "authentication failure; logname=");
        let h = parse("Mar 27 13:09:37 ip-10-77-20-248 sudo:   ubuntu : TTY=pts/0 ; COMMAND=/bin/ls").unwrap();
        assert_eq!((h.program, h.pid, h.message), ("sudo", None, "ubuntu : TTY=pts/0 ; COMMAND=/bin/ls"));
        let h = parse("Aug 17 12:10:23 caccaaf proftpd: pam_unix(proftpd:session): session opened").unwrap();
        assert_eq!((h.program, h.message), ("proftpd", "pam_unix(proftpd:session): session opened"));
    }

    #[test]
    fn reads_busybox_logread_and_syslogd_forms() {
        let h = parse("Thu Jan  1 00:00:52 2026 authpriv.info dropbear[1039]: Child connection from 192.168.1.5:51234")
            .unwrap();
        assert_eq!(h.time.year, Some(2026));
        assert_eq!((h.host, h.program, h.pid), (None, "dropbear", Some(1039)));
        assert_eq!(h.message, "Child connection from 192.168.1.5:51234");
        let h = parse("<86>Jan  1 00:00:52 OpenWrt authpriv.info dropbear[1039]: Exit (root): Disconnect received")
            .unwrap();
        assert_eq!((h.host, h.program, h.message), (Some("OpenWrt"), "dropbear", "Exit (root): Disconnect received"));
    }

    #[test]
    fn reads_rfc3339_and_rfc5424_with_offsets() {
        let h =
            parse("2026-03-27T13:06:56.250+01:00 pi sshd-session[812]: Accepted publickey for pi from ::1 port 2 ssh2")
                .unwrap();
        assert_eq!((h.time.offset_secs, h.time.millis, h.program, h.pid), (Some(3600), 250, "sshd-session", Some(812)));
        assert_eq!(h.time.to_unix_ms(2026, 0), 1_774_613_216_250);
        let h = parse(r#"<34>1 2026-03-27T12:06:56Z host sshd 812 - [x@1 a="]\"]"] Failed password for root"#).unwrap();
        assert_eq!(
            (h.host, h.program, h.pid, h.message),
            (Some("host"), "sshd", Some(812), "Failed password for root")
        );
        let h = parse("<34>1 2026-03-27T12:06:56Z host su - - - \u{feff}FAILED su").unwrap();
        assert_eq!((h.program, h.pid, h.message), ("su", None, "FAILED su"));
    }

    #[test]
    fn reads_vsftpd_own_log() {
        let h = parse(r#"Mon Mar 23 10:00:01 2026 [pid 3301] [alice] OK LOGIN: Client "203.0.113.9""#).unwrap();
        assert_eq!((h.program, h.pid, h.message), ("vsftpd", Some(3301), r#"[alice] OK LOGIN: Client "203.0.113.9""#));
    }

    #[test]
    fn journalctl_short_unix_and_short_full_headers() {
        let h =
            parse("1714550403.123456 host sshd[14]: Failed password for root from 203.0.113.5 port 1 ssh2").unwrap();
        assert_eq!((h.host, h.program, h.pid), (Some("host"), "sshd", Some(14)));
        assert_eq!(h.time.to_unix_ms(2024, 0), 1_714_550_403_123);
        assert!(h.message.starts_with("Failed password"));
        let h = parse("Wed 2024-05-01 10:00:02 UTC host sshd[13]: Accepted password for a from 192.0.2.1 port 2 ssh2")
            .unwrap();
        assert_eq!((h.host, h.program, h.pid, h.time.offset_secs), (Some("host"), "sshd", Some(13), Some(0)));
        assert_eq!(h.time.to_unix_ms(2024, 0), 1_714_557_602_000);
        // An abbreviation that is not UTC is read in the configured local time.
        let h = parse("Wed 2024-05-01 10:00:02 CEST host sshd[13]: x").unwrap();
        assert_eq!((h.time.offset_secs, h.time.hour), (None, 10));
        // Not a time: too few digits, or a ctime line.
        assert!(parse("12345678 host sshd[1]: x").is_none());
        assert_eq!(parse("Thu Mar 27 13:06:56 2026 host sshd[1]: x").unwrap().time.year, Some(2026));
    }

    #[test]
    fn repeat_lines_give_their_count_and_nothing_else_does() {
        let times = |line: &str| repeated_times(&parse(line).unwrap());
        assert_eq!(times("Mar 27 13:06:56 host last message repeated 3 times"), Some(3));
        assert_eq!(times("Mar 27 13:06:56 host pure-ftpd: last message repeated 4 times"), Some(4));
        assert_eq!(times("Mar 27 13:06:56 host sshd[9]: last message repeated 1 time"), Some(1));
        assert_eq!(times("Mar 27 13:06:56 host --- last message repeated 2 times ---"), Some(2));
        // rsyslog's own form names what it repeats: sshd's parser reads it.
        assert_eq!(
            times("Mar 27 13:06:56 host sshd[9]: message repeated 5 times: [ Failed password for root from 192.0.2.1 port 1 ssh2]"),
            None
        );
        assert_eq!(times("Mar 27 13:06:56 host last message repeated many times"), None);
        assert_eq!(times("Mar 27 13:06:56 host last message repeated 99999999999 times"), None);
        assert_eq!(times("Mar 27 13:06:56 host last message repeated 4 timesx"), None);
        assert_eq!(times("Mar 27 13:06:56 host su: user said last message repeated 3 times"), None);
    }

    #[test]
    fn lines_without_tag_or_header_are_told_apart() {
        assert_eq!(parse("Mar 27 13:06:56 host last message repeated 3 times").unwrap().program, "");
        assert!(parse("hello world, this is not syslog").is_none());
        assert!(parse("Mar 32 13:06:56 host x: y").is_none());
        assert!(parse("").is_none());
    }

    #[test]
    fn year_turns_over_at_new_year_and_is_never_in_the_future() {
        let nov_2026 = days_from_civil(2026, 11, 25) * 86_400;
        let mut years = YearResolver::new(nov_2026);
        assert_eq!(years.year_for(12, 30), 2025, "December is ahead of November: last year");
        assert_eq!(years.year_for(12, 31), 2025);
        assert_eq!(years.year_for(1, 1), 2026, "new year");
        assert_eq!(years.year_for(12, 31), 2025, "a late line from before midnight");
        assert_eq!(years.year_for(1, 2), 2026);
        let mut years = YearResolver::new(nov_2026);
        assert_eq!(years.year_for(11, 20), 2026);
        assert_eq!(years.year_for(11, 30), 2026, "within the week of slack, same year");
    }

    // Verbatim lines from logs nobody here wrote (logs/testdata/unseen/SOURCES.md).

    #[test]
    fn reads_proftpd_tags_without_a_colon_and_its_own_log() {
        let h = parse("Jan 10 00:00:00 myhost proftpd[12345] myhost.domain.com (123.123.123.123[123.123.123.123]): USER username (Login failed): User in /etc/ftpusers").unwrap();
        assert_eq!((h.host, h.program, h.pid), (Some("myhost"), "proftpd", Some(12345)));
        assert!(h.message.starts_with("myhost.domain.com (123.123.123.123[123.123.123.123]): USER"), "{h:?}");
        let h = parse("2021-05-28 18:08:01,124 mantis proftpd[498625] mantis (192.168.1.142[192.168.1.142]): USER asd: no such user found from 192.168.1.142 [192.168.1.142] to ::ffff:192.168.1.23:21").unwrap();
        assert_eq!((h.time.year, h.time.second, h.time.millis, h.time.offset_secs), (Some(2021), 1, 124, None));
        assert_eq!((h.host, h.program, h.pid), (Some("mantis"), "proftpd", Some(498625)));
        // An IPv6 client puts colons before the message: still the tag without a colon.
        let h = parse("Jun 09 07:30:58 platypus.ace-hosting.com.au proftpd[11864] platypus.ace-hosting.com.au (mail.bloodymonster.net[::ffff:67.227.224.66]): USER username (Login failed): Incorrect password.").unwrap();
        assert_eq!((h.program, h.pid), ("proftpd", Some(11864)));
    }

    #[test]
    fn drops_solaris_message_ids_and_reads_bracket_tags() {
        let h = parse("Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive for <invalid username> from 205.186.180.55 port 42742 ssh2").unwrap();
        assert_eq!(h.message, "Failed keyboard-interactive for <invalid username> from 205.186.180.55 port 42742 ssh2");
        let h =
            parse("Mar  3 00:17:22 [sshd]: User root from 211.188.220.49 not allowed because not listed in AllowUsers")
                .unwrap();
        assert_eq!((h.host, h.program, h.pid), (None, "sshd", None));
    }

    #[test]
    fn reads_rfc3339_without_offset_or_host() {
        // Ubuntu 26.04's rsyslog with a local template: no offset, no host name.
        let h = parse("2026-08-04T17:40:12 sshd-session[1893]: Connection closed by authenticating user root 139.19.117.130 port 35736 [preauth]").unwrap();
        assert_eq!((h.time.offset_secs, h.host, h.program, h.pid), (None, None, "sshd-session", Some(1893)));
        let h = parse("2025-03-04T01:06:36.645577 ip-172-31-3-150.ap-southeast-2.compute.internal vsftpd[1658]: [username] FAIL LOGIN: Client \"192.0.2.222\"").unwrap();
        assert_eq!((h.time.millis, h.program, h.pid), (645, "vsftpd", Some(1658)));
    }

    #[test]
    fn lines_that_only_look_like_tags_stay_untagged() {
        // BusyBox syslogd's own start line and OpenWrt's empty tag are counted as unknown.
        assert_eq!(
            parse("Jan  1 00:00:02 buildroot syslog.info syslogd started: BusyBox v1.36.1").unwrap().program,
            ""
        );
        assert_eq!(parse("Mon Aug 31 00:02:33 2026 user.notice : Added device handler type: vrf").unwrap().program, "");
    }

    #[test]
    fn offsets_without_a_colon() {
        // Verbatim first line of a Cowrie text log (kareiva/cowrie-logs, cowrie.log.2018-05-19).
        let (t, rest) =
            parse_rfc3339("2018-05-19T00:03:08.823875+0000 [cowrie.ssh.factory.CowrieSSHFactory] No moduli").unwrap();
        assert_eq!((t.offset_secs, t.millis), (Some(0), 823));
        assert!(rest.starts_with(" [cowrie"));
        let (t, _) = parse_rfc3339("2021-03-04T10:11:12-0130 host").unwrap();
        assert_eq!(t.offset_secs, Some(-5400));
        assert!(parse_rfc3339("2021-03-04T10:11:12+01").is_none());
    }

    #[test]
    fn drops_sonic_container_prefixes() {
        // Verbatim SONiC lines (logs/testdata/unseen/sonic-auth.log).
        let h = parse("2025-02-19T22:48:41.710776+00:00 sonic auth.info inbandmgr#sshd[2566322]: Accepted password for admin from 2001:4860:f803:3fd::3 port 60924 ssh2").unwrap();
        assert_eq!((h.host, h.program, h.pid), (Some("sonic"), "inbandmgr#sshd", Some(2_566_322)));
        assert_eq!(program_in_container(h.program), Some("sshd"));
        assert_eq!(program_in_container("x#"), None);
        assert_eq!(program_in_container("sshd"), None);
        assert_eq!(program_in_container("a#b#c"), None);
    }

    #[test]
    fn reads_xferlog() {
        // Verbatim (logs/testdata/unseen/xferlog).
        let h = parse("Fri Mar 15 17:22:05 2024 0 10.10.14.119 6147 /var/www/metapress.htb/blog/wp-admin/js/application-passwords.js b _ o r metapress.htb ftp 0 * c").unwrap();
        assert_eq!((h.time.year, h.time.day, h.program, h.pid), (Some(2024), 15, "xferlog", None));
        assert!(h.message.starts_with("0 10.10.14.119 6147 /var/www/"), "{h:?}");
    }
}
