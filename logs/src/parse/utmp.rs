//! Binary wtmp/btmp records: glibc's `struct utmp`.
//!
//! On x86_64, aarch64 and armv7 glibc uses one 384-byte little-endian layout
//! (64-bit glibc keeps 32-bit time fields here for compatibility,
//! `__WORDSIZE_TIME64_COMPAT32`):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 2 | `ut_type` (i16) + 2 bytes padding |
//! | 4 | 4 | `ut_pid` (i32) |
//! | 8 | 32 | `ut_line` (tty, e.g. `pts/0`, `ssh:notty`) |
//! | 40 | 4 | `ut_id` |
//! | 44 | 32 | `ut_user` |
//! | 76 | 256 | `ut_host` |
//! | 332 | 4 | `ut_exit` (two i16) |
//! | 336 | 4 | `ut_session` (i32) |
//! | 340 | 8 | `ut_tv` (i32 seconds, i32 microseconds) |
//! | 348 | 16 | `ut_addr_v6` (IPv4 in the first 4 bytes, network order) |
//! | 364 | 20 | reserved |
//!
//! wtmp holds `USER_PROCESS` (7) at login and `DEAD_PROCESS` (8) at logout,
//! matched by `ut_line`; btmp holds failed logins, written by sshd and login
//! as `LOGIN_PROCESS` (6) records with the user name tried (getty's own
//! LOGIN_PROCESS records in wtmp carry the name `LOGIN` and are skipped).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::parse_ip;
use crate::error::{Error, Result};

/// Size of one record.
pub const RECORD_SIZE: usize = 384;

/// `ut_type` values used.
pub const BOOT_TIME: i16 = 2;
/// A getty waiting, or (in btmp) a failed login.
pub const LOGIN_PROCESS: i16 = 6;
/// A login.
pub const USER_PROCESS: i16 = 7;
/// A logout.
pub const DEAD_PROCESS: i16 = 8;

/// The machine a wtmp file was written on. glibc's layout is the same on all
/// three (see the module doc); the variant documents where a file came from
/// and keeps room for a layout that differs (musl, big-endian) later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UtmpArch {
    /// x86_64 glibc.
    #[default]
    X86_64,
    /// aarch64 glibc.
    Aarch64,
    /// armv7 (armhf) glibc.
    Armv7,
}

impl UtmpArch {
    /// The record size on this machine.
    pub fn record_size(self) -> usize {
        RECORD_SIZE
    }
}

/// One record, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// `ut_type`.
    pub ut_type: i16,
    /// `ut_pid`.
    pub pid: i32,
    /// `ut_line`.
    pub line: Cow<'a, str>,
    /// `ut_user`.
    pub user: Cow<'a, str>,
    /// `ut_host`.
    pub host: Cow<'a, str>,
    /// `ut_tv` in unix milliseconds.
    pub ts_ms: i64,
    /// The remote address (`ut_addr_v6`, else `ut_host` if it is an address).
    pub ip: Option<IpAddr>,
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    let end = memchr::memchr(0, bytes).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads one record; a record of the wrong size or with a `ut_type` outside
/// 0–9 is an error.
pub fn parse(record: &[u8], arch: UtmpArch) -> Result<Record<'_>> {
    let bad = |detail: String| Error::LogRecord { format: "utmp", detail };
    if record.len() != arch.record_size() {
        return Err(bad(format!("{} bytes, expected {}", record.len(), arch.record_size())));
    }
    let ut_type = i16::from_le_bytes([record[0], record[1]]);
    if !(0..=9).contains(&ut_type) {
        return Err(bad(format!("ut_type {ut_type} is not 0-9")));
    }
    let secs = i64::from(i32_at(record, 340)) & 0xffff_ffff; // unsigned: past 2038 on 32-bit time
    let usecs = i64::from(i32_at(record, 344)).clamp(0, 999_999);
    let addr = &record[348..364];
    let ip = if addr[4..].iter().all(|&b| b == 0) {
        let v4 = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
        (!v4.is_unspecified()).then_some(IpAddr::V4(v4))
    } else {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(addr);
        let v6 = Ipv6Addr::from(octets);
        Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
    };
    let host = text(&record[76..332]);
    let ip = ip.or_else(|| parse_ip(&host));
    Ok(Record {
        ut_type,
        pid: i32_at(record, 4),
        line: text(&record[8..40]),
        user: text(&record[44..76]),
        host,
        ts_ms: secs * 1000 + usecs / 1000,
        ip,
    })
}

/// Builds a record (for tests, fixtures and benchmarks).
pub fn encode(
    ut_type: i16,
    pid: i32,
    line: &str,
    user: &str,
    host: &str,
    secs: i32,
    ip: Option<IpAddr>,
) -> [u8; RECORD_SIZE] {
    let mut r = [0u8; RECORD_SIZE];
    r[0..2].copy_from_slice(&ut_type.to_le_bytes());
    r[4..8].copy_from_slice(&pid.to_le_bytes());
    let put = |r: &mut [u8; RECORD_SIZE], at: usize, len: usize, s: &str| {
        let n = s.len().min(len);
        r[at..at + n].copy_from_slice(&s.as_bytes()[..n]);
    };
    put(&mut r, 8, 32, line);
    put(&mut r, 44, 32, user);
    put(&mut r, 76, 256, host);
    r[340..344].copy_from_slice(&secs.to_le_bytes());
    match ip {
        Some(IpAddr::V4(v4)) => r[348..352].copy_from_slice(&v4.octets()),
        Some(IpAddr::V6(v6)) => r[348..364].copy_from_slice(&v6.octets()),
        None => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_v4_and_v6_records() {
        let v4: IpAddr = "198.51.100.20".parse().unwrap();
        let r = encode(USER_PROCESS, 4242, "pts/0", "alice", "198.51.100.20", 1_774_613_216, Some(v4));
        let rec = parse(&r, UtmpArch::Armv7).unwrap();
        assert_eq!(
            (rec.ut_type, rec.pid, rec.line.as_ref(), rec.user.as_ref()),
            (USER_PROCESS, 4242, "pts/0", "alice")
        );
        assert_eq!((rec.ts_ms, rec.ip), (1_774_613_216_000, Some(v4)));
        let v6: IpAddr = "2001:db8::44".parse().unwrap();
        let r = encode(LOGIN_PROCESS, 1, "ssh:notty", "admin", "2001:db8::44", 5, Some(v6));
        assert_eq!(parse(&r, UtmpArch::Aarch64).unwrap().ip, Some(v6));
        let r = encode(DEAD_PROCESS, 1, "pts/0", "", "", 5, None);
        assert_eq!(parse(&r, UtmpArch::X86_64).unwrap().ip, None);
    }

    #[test]
    fn rejects_wrong_sizes_and_types() {
        assert_eq!(
            parse(&[0u8; 100], UtmpArch::X86_64).unwrap_err().to_string(),
            "utmp record: 100 bytes, expected 384"
        );
        let mut r = encode(USER_PROCESS, 1, "x", "y", "", 0, None);
        r[0] = 0x7f;
        assert_eq!(parse(&r, UtmpArch::X86_64).unwrap_err().to_string(), "utmp record: ut_type 127 is not 0-9");
    }
}
