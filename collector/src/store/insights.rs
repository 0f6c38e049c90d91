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

/// Checks a `from`/`to` filter: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or
/// `YYYY-MM-DD HH:MM:SS` (a `T` may stand for the space), returned in the
/// stored `created_at` form. `end` picks the last second of a coarser value.
pub fn parse_time(field: &str, text: &str, end: bool) -> Result<String> {
    let t = text.trim().replacen('T', " ", 1);
    let bad = || Error::BadInput(format!("{field} must be YYYY-MM-DD[ HH:MM[:SS]] (UTC), got {text:?}"));
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

/// Header of the scored CSV export: the original upload's columns, then the
/// verdict and what the store knows about the row.
pub const EXPORT_HEADER: &str = "LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed,\
                                 Prediction,Confidence,Reasons,Id,CreatedAt,Source,Device,SourceIp";

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
        for bad in ["", "yesterday", "2026-13-01", "2026-11-25 24:00", "2026-11-25 07:60:00", "2026/11/25", "20261125"]
        {
            let e = parse_time("from", bad, false).unwrap_err();
            assert!(matches!(e, Error::BadInput(ref m) if m.starts_with("from must be")), "{bad:?}: {e}");
        }
    }
}
