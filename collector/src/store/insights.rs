//! The dashboard's read models beyond the original contract: charts over
//! time, by protocol, source, device and source address, and the scored CSV
//! export's form. A store answers them from aggregates it keeps in the same
//! transactions as the rows, so their cost does not grow with stored
//! predictions.

use crate::error::{Error, Result};

/// Time buckets of the over-time chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// One bar per hour, over the [`HOURS_SHOWN`] hours up to the latest prediction.
    Hour,
    /// One bar per day, over the [`DAYS_SHOWN`] days up to the latest prediction.
    Day,
}

/// Hours the hourly chart covers.
pub const HOURS_SHOWN: u32 = 48;
/// Days the daily chart covers.
pub const DAYS_SHOWN: u32 = 30;
/// Bars of the by-device and top-source charts.
pub const TOP_N: u32 = 10;

/// Normal/Suspicious counts under one key (an hour, a protocol, a device...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The bucket or category.
    pub key: String,
    /// Normal predictions.
    pub normal: u64,
    /// Suspicious predictions.
    pub suspicious: u64,
}

/// Everything the analytics page charts, in one read.
#[derive(Debug, Clone, PartialEq)]
pub struct Insights {
    /// Buckets in time order, gaps filled with zeros; empty on an empty store.
    pub over_time: Vec<Split>,
    /// First and last bucket shown, when there is any.
    pub window: Option<(String, String)>,
    /// All-time counts per protocol, in schema order.
    pub by_protocol: Vec<Split>,
    /// All-time counts per source (`single`, `csv`, `agent`).
    pub by_source: Vec<Split>,
    /// All-time counts of the [`TOP_N`] devices with the most predictions.
    pub by_device: Vec<Split>,
    /// Source addresses with the most suspicious predictions (key, suspicious, total).
    pub top_sources: Vec<(String, u64, u64)>,
}

/// Checks a `from`/`to` filter: RFC 3339 with a zone (`Z` or an offset,
/// turned into UTC), or `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or
/// `YYYY-MM-DD HH:MM:SS` in UTC (a `T` may stand for the space), returned in
/// the stored form. `end` picks the last second of a coarser value.
pub fn parse_time(field: &str, text: &str, end: bool) -> Result<String> {
    let bad = || {
        Error::BadInput(format!(
            "{field} must be RFC 3339 (2026-03-27T13:08:00Z, or with an offset such as +02:00) \
             or YYYY-MM-DD[ HH:MM[:SS]] (UTC), got {text:?}"
        ))
    };
    if let Some(zoned) = rfc3339_utc(text.trim()) {
        return zoned.ok_or_else(bad);
    }
    let t = text.trim().replacen('T', " ", 1);
    let full = match t.len() {
        10 => format!("{t} {}", if end { "23:59:59" } else { "00:00:00" }),
        16 => format!("{t}:{}", if end { "59" } else { "00" }),
        19 => t.clone(),
        _ => return Err(bad()),
    };
    let b = full.as_bytes();
    let shape_ok = full.char_indices().all(|(i, ch)| match i {
        4 | 7 => ch == '-',
        10 => ch == ' ',
        13 | 16 => ch == ':',
        _ => ch.is_ascii_digit(),
    });
    if !shape_ok {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| std::str::from_utf8(&b[r]).ok().and_then(|s| s.parse::<u32>().ok());
    let (mo, d, h, mi, s) = (num(5..7), num(8..10), num(11..13), num(14..16), num(17..19));
    let in_range = matches!((mo, d, h, mi, s), (Some(1..=12), Some(1..=31), Some(0..=23), Some(0..=59), Some(0..=59)));
    if !in_range {
        return Err(bad());
    }
    Ok(full)
}

/// An RFC 3339 time with a zone (`Z` or `±HH:MM`; fractions of a second
/// dropped) as the stored UTC form; `None` when `text` has no zone (one of
/// the zoneless forms), `Some(None)` when it has one but is not a valid time.
fn rfc3339_utc(text: &str) -> Option<Option<String>> {
    let b = text.as_bytes();
    let (base, offset) = if text.ends_with(['Z', 'z']) {
        (&text[..text.len() - 1], 0i64)
    } else if b.len() > 6 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':' {
        let zone = &text[text.len() - 6..];
        let num = |r: std::ops::Range<usize>| zone.get(r).and_then(|s| s.parse::<i64>().ok());
        let (h, m) = match (num(1..3), num(4..6)) {
            (Some(h @ 0..=23), Some(m @ 0..=59)) => (h, m),
            _ => return Some(None),
        };
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        (&text[..text.len() - 6], sign * (h * 3600 + m * 60))
    } else {
        return None;
    };
    // A date alone has no zone: `2026-03-27` stays with the plain forms.
    if base.len() < 19 {
        return (base.len() > 10).then_some(None);
    }
    let (seconds, fraction) = base.split_at(19);
    if !(fraction.is_empty() || fraction.starts_with('.') && fraction[1..].bytes().all(|c| c.is_ascii_digit())) {
        return Some(None);
    }
    let utc = format!("{}Z", seconds.replacen(' ', "T", 1));
    let Ok(at) = humantime::parse_rfc3339(&utc) else { return Some(None) };
    let secs = match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    Some(Some(bfp_common::time::format_utc(secs - offset)))
}

/// Header of the scored CSV export: the original upload's columns, then the
/// verdict and what the store knows about the row: when it was stored
/// (`CreatedAt`) and when it happened (`EventAt`), where from, whose, what
/// kind of record, and its commands (`; `-separated).
pub const EXPORT_HEADER: &str = "LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed,\
                                 Prediction,Confidence,Reasons,Id,CreatedAt,Source,Device,SourceIp,\
                                 EventAt,User,Kind,Commands";

/// A stored command list (JSON) as one export cell.
pub fn commands_cell(json: Option<&str>) -> String {
    let list: Vec<String> = json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
    spreadsheet_safe(list.join("; "))
}

/// A text cell of a CSV export made safe to open in a spreadsheet: text
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return would be
/// taken as a formula (OWASP's CSV injection), so it gets a leading `'`,
/// which spreadsheets show as text. Only free text goes through this (notes,
/// reasons, addresses, user names); numbers such as `-1` stay numbers.
pub fn spreadsheet_safe(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_starts_are_neutralised_and_other_text_kept() {
        use super::spreadsheet_safe;
        for bad in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(spreadsheet_safe(bad.into()), format!("'{bad}"));
        }
        for fine in ["", "192.0.2.7", "8 failed logins", "a=b"] {
            assert_eq!(spreadsheet_safe(fine.into()), fine);
        }
    }

    use super::*;

    #[test]
    fn time_filters_accept_the_stored_form_and_coarser_ones() {
        assert_eq!(parse_time("from", "2026-11-25", false).unwrap(), "2026-11-25 00:00:00");
        assert_eq!(parse_time("to", "2026-11-25", true).unwrap(), "2026-11-25 23:59:59");
        assert_eq!(parse_time("to", "2026-11-25T07:05", true).unwrap(), "2026-11-25 07:05:59");
        assert_eq!(parse_time("from", "2026-11-25 07:05:09", false).unwrap(), "2026-11-25 07:05:09");
        assert_eq!(parse_time("from", "2026-12-05T15:00:00Z", false).unwrap(), "2026-12-05 15:00:00");
        assert_eq!(parse_time("to", "2026-12-05T15:00:00.250Z", true).unwrap(), "2026-12-05 15:00:00");
        assert_eq!(parse_time("from", "2026-12-05T01:30:00+02:00", false).unwrap(), "2026-12-04 23:30:00");
        assert_eq!(parse_time("from", "2026-12-05T23:30:00-01:00", false).unwrap(), "2026-12-06 00:30:00");
        for bad in ["2026-12-05T15:00Z", "2026-13-05T15:00:00Z", "2026-12-05T15:00:00+25:00", "2026-12-05T15:00:00.x1Z"]
        {
            let e = parse_time("from", bad, false).unwrap_err();
            assert!(matches!(e, Error::BadInput(ref m) if m.contains("RFC 3339")), "{bad:?}: {e}");
        }
        for bad in ["", "yesterday", "2026-13-01", "2026-11-25 24:00", "2026-11-25 07:60:00", "2026/11/25", "20261125"]
        {
            let e = parse_time("from", bad, false).unwrap_err();
            assert!(matches!(e, Error::BadInput(ref m) if m.starts_with("from must be")), "{bad:?}: {e}");
        }
    }
}
