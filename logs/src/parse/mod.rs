//! Line parsers, one flat module per log format or program (Laurel-style).
//!
//! Every parser borrows from its input and returns an [`Event`] (or `None` for
//! a line it does not know, which the caller counts): no allocation on the hot
//! path except where a JSON string must be unescaped.
//!
//! - [`syslog`]: the line header (RFC 3164, RFC 5424, RFC 3339 "high precision"
//!   rsyslog, BusyBox/OpenWrt `logread`, vsftpd's own log) and the year-less
//!   timestamp's year.
//! - [`sshd`], [`dropbear`], [`su`], [`sudo`], [`login`], [`pam`], [`ftp`],
//!   [`web`] (OpenWrt LuCI via uhttpd), [`account`] (`useradd`, `passwd`, ...),
//!   [`logind`] (systemd-logind's session lines, known noise):
//!   the message of one syslog program.
//! - [`journald`] (`journalctl -o json`), [`cowrie`] (honeypot JSON) and
//!   [`utmp`] (binary wtmp/btmp records): whole-record formats.

use std::borrow::Cow;
use std::net::IpAddr;

pub mod account;
pub mod cowrie;
pub mod dropbear;
pub mod ftp;
pub mod journald;
pub mod login;
pub mod logind;
pub mod pam;
pub mod sshd;
pub mod su;
pub mod sudo;
pub mod syslog;
pub mod utmp;
pub mod web;

/// How a login was authenticated (as the log names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// Password (sshd `password`, dropbear, FTP, Cowrie, PAM).
    Password,
    /// Public key.
    Publickey,
    /// Keyboard-interactive (often PAM behind it).
    KeyboardInteractive,
    /// `none` (a probe of allowed methods) or host-based and others.
    Other,
    /// The log does not say.
    Unknown,
}

impl AuthMethod {
    /// Reads sshd's method word (`password`, `publickey`, `keyboard-interactive/pam`, ...).
    pub fn from_sshd(word: &str) -> AuthMethod {
        match word {
            "password" => AuthMethod::Password,
            "publickey" => AuthMethod::Publickey,
            w if w.starts_with("keyboard-interactive") => AuthMethod::KeyboardInteractive,
            _ => AuthMethod::Other,
        }
    }
}

/// Why sudo refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// `user NOT in sudoers`.
    NotInSudoers,
    /// `command not allowed`.
    CommandNotAllowed,
    /// `N incorrect password attempts` (sudo gave up asking): N failed
    /// authentications as well as a refusal.
    IncorrectPassword(u32),
    /// su's own failure line (`FAILED SU (to root) alice on pts/2` and the
    /// other systems' forms): one failed authentication of the target as
    /// well as a refused switch by the invoking user. `command` is the target.
    SuFailed,
}

/// What one log line means for sessions and sources. Strings borrow from the
/// line (or are unescaped copies for JSON).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A failed authentication. `count` > 1 for "message repeated N times".
    /// `tentative` marks PAM's own failure line, which sshd usually repeats as
    /// "Failed password" for the same process: the analyzer counts the pair once.
    AuthFailed {
        /// User name tried, if the line says.
        user: Option<Cow<'a, str>>,
        /// Remote address, if the line says.
        ip: Option<IpAddr>,
        /// The user does not exist on the system.
        invalid_user: bool,
        /// How many attempts the line stands for.
        count: u32,
        /// PAM's line (see above).
        tentative: bool,
    },
    /// sshd `Failed publickey` / `Failed none`: a key (or no credential)
    /// offered and refused. Clients try their keys before a password, so in a
    /// connection that then logs in this is not a failed login; in one that
    /// never does it counts as one (see `crate::session::FailureLog`).
    KeyRejected {
        /// User name tried.
        user: Option<Cow<'a, str>>,
        /// Remote address, if the line says.
        ip: Option<IpAddr>,
        /// The user does not exist on the system.
        invalid_user: bool,
        /// How many attempts the line stands for.
        count: u32,
    },
    /// "Invalid user X from IP": the next failures of this process are for a
    /// user that does not exist.
    InvalidUser {
        /// User name tried.
        user: Cow<'a, str>,
        /// Remote address.
        ip: Option<IpAddr>,
    },
    /// A successful authentication: a session starts.
    Accepted {
        /// The user logged in.
        user: Cow<'a, str>,
        /// Remote address, if any.
        ip: Option<IpAddr>,
        /// How.
        method: AuthMethod,
    },
    /// PAM (or wtmp) says a session opened for `user`.
    SessionOpened {
        /// The session's user.
        user: Cow<'a, str>,
        /// Who opened it (`by ubuntu(uid=1000)` for su/sudo), if named.
        by: Option<&'a str>,
    },
    /// PAM (or wtmp) says a session closed.
    SessionClosed {
        /// The session's user, if the line says.
        user: Option<Cow<'a, str>>,
        /// Length the log itself reports, in seconds (Cowrie).
        duration_secs: Option<f64>,
    },
    /// sshd gave up on the connection after MaxAuthTries failures ("maximum
    /// authentication attempts exceeded"), which also ends it. sshd logs each
    /// failure before this line, except attempts it does not log at the
    /// default level (keys, `none`): then this line is the only trace.
    TooManyFailures {
        /// User name tried.
        user: Option<Cow<'a, str>>,
        /// Remote address.
        ip: Option<IpAddr>,
        /// The user does not exist on the system.
        invalid_user: bool,
    },
    /// The connection of this process ended.
    Disconnected {
        /// Remote address, if the line says.
        ip: Option<IpAddr>,
        /// Before authentication (`[preauth]`, dropbear "Exit before auth").
        preauth: bool,
    },
    /// A new connection (no authentication yet).
    Connected {
        /// Remote address.
        ip: IpAddr,
    },
    /// A scanner: connected and never spoke the protocol (no identification
    /// string, bad protocol version).
    Probe {
        /// Remote address.
        ip: IpAddr,
    },
    /// A command run by `user` (sudo `COMMAND=`, su, Cowrie input).
    Command {
        /// Who ran it (the session's user), if known.
        user: Option<&'a str>,
        /// The terminal it was run on (`pts/1`, without `/dev/`), if the line says:
        /// what tells concurrent sessions of one user apart.
        tty: Option<&'a str>,
        /// The command line.
        command: Cow<'a, str>,
    },
    /// sshd's monitor of a logged-in connection names the process that runs
    /// the user's session ("User child is on pid N"): that process's lines
    /// (its terminal, its disconnect) are the same session's.
    SessionChild {
        /// The child's pid.
        pid: u32,
    },
    /// sshd started the user's shell or command ("Starting session: shell
    /// on pts/0 for U from H port P id N", logged at `LogLevel VERBOSE` by
    /// the session's child): the session's terminal, for certain.
    SessionStarted {
        /// The session's user.
        user: &'a str,
        /// Remote address.
        ip: Option<IpAddr>,
        /// The terminal, when the session has one (a shell; not `ssh host cmd`).
        tty: Option<&'a str>,
    },
    /// A file the session downloaded (Cowrie `session.file_download`).
    Download {
        /// Where from.
        url: Cow<'a, str>,
    },
    /// PAM's "N more authentication failures" at the end of a connection
    /// (RHEL and others): pam_unix logs the first failure of a connection on its
    /// own line and the other N only here. sshd's own `Failed` lines usually
    /// name them too: the analyzer counts what they did not.
    PamMoreFailures {
        /// User name tried, if the line says.
        user: Option<Cow<'a, str>>,
        /// Remote address, if the line says.
        ip: Option<IpAddr>,
        /// N.
        count: u32,
    },
    /// sshd refused an existing user by its configuration (`AllowUsers`,
    /// `DenyUsers`, `AllowGroups`, `DenyGroups`, a locked account). Not an
    /// attempt itself (the password tries that follow are logged as failures,
    /// which sshd words "for invalid user" although the user exists).
    NotAllowed {
        /// The user refused.
        user: Cow<'a, str>,
        /// Remote address, if the line says.
        ip: Option<IpAddr>,
    },
    /// sudo refused to run a command (the user is not in sudoers, the
    /// command is not allowed to them, or the password was wrong every
    /// time), or su refused a switch. Privilege-escalation evidence.
    PrivilegeRefused {
        /// Who asked.
        user: &'a str,
        /// Why.
        reason: Refusal,
        /// The terminal (`TTY=pts/1`), if the line says.
        tty: Option<&'a str>,
        /// The account asked for (`USER=root`), if the line says.
        target: Option<&'a str>,
        /// The command line attempted.
        command: &'a str,
    },
    /// An account or group was created, changed or deleted, or a password
    /// changed (`useradd`, `usermod`, `passwd`, `chage`, `gpasswd`, ...):
    /// persistence evidence.
    AccountChange {
        /// The tool that logged it.
        tool: &'a str,
        /// The account (or group) changed, if the line names it.
        account: Option<&'a str>,
        /// Who made the change, if the line says (`gpasswd`: `by root`).
        by: Option<&'a str>,
        /// The message, as the tool wrote it.
        detail: &'a str,
    },
    /// `pam_faillock` locked an account after consecutive failures
    /// (the failures themselves were logged, and counted, before it).
    AccountLocked {
        /// The account locked.
        user: Cow<'a, str>,
    },
    /// A debug-level line (`debug1:` ... `debug3:`): known and ignored, counted
    /// apart so a daemon left at `LogLevel DEBUG` shows.
    Debug,
    /// A known line that bears on no session or source (server start, reverse
    /// DNS warnings, PAM's bookkeeping, ...).
    Noise,
}

/// A terminal name as logs write it (`pts/1`, `/dev/pts/1`, `ttyp1`) in the
/// one form sessions compare (`pts/1`); `None` for none at all (sudo's
/// `TTY=unknown`, PAM's empty `tty=`, `ssh`/`NODEVssh` pseudo-names).
pub fn tty_name(s: &str) -> Option<&str> {
    let s = s.strip_prefix("/dev/").unwrap_or(s);
    match s {
        "" | "unknown" | "ssh" | "NODEVssh" | "none" => None,
        s => Some(s),
    }
}

/// Splits `s` at the first occurrence of `pat`.
#[inline]
pub(crate) fn split_once_str<'a>(s: &'a str, pat: &str) -> Option<(&'a str, &'a str)> {
    let i = memchr::memmem::find(s.as_bytes(), pat.as_bytes())?;
    Some((&s[..i], &s[i + pat.len()..]))
}

/// Splits `s` at the last occurrence of `pat`.
#[inline]
pub(crate) fn rsplit_once_str<'a>(s: &'a str, pat: &str) -> Option<(&'a str, &'a str)> {
    let i = memchr::memmem::rfind(s.as_bytes(), pat.as_bytes())?;
    Some((&s[..i], &s[i + pat.len()..]))
}

/// The first space-separated word of `s` and the rest (after the space).
#[inline]
pub(crate) fn word(s: &str) -> (&str, &str) {
    match memchr::memchr(b' ', s.as_bytes()) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// Parses an address as logs write it: bare IPv4/IPv6, `[v6]`, or an
/// IPv4-mapped `::ffff:1.2.3.4` (reported as the IPv4 address, so one source
/// is one source whichever socket family saw it).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
    // A link-local IPv6 address names its interface: "fe80::1%eth0". The
    // zone is not part of the address (and std does not parse it).
    let s = match s.split_once('%') {
        Some((addr, zone)) if addr.contains(':') && !zone.is_empty() && zone.len() <= 16 => addr,
        _ => s,
    };
    if s.is_empty() || s.len() > 45 {
        return None;
    }
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// Parses `ip:port`, `[v6]:port` or `v6:port` (dropbear writes IPv6 with its
/// port appended after one more colon) into the address; a bare address
/// without port is accepted too.
pub fn parse_ip_port(s: &str) -> Option<IpAddr> {
    if let Some((host, port)) = s.rsplit_once(':') {
        if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(ip) = parse_ip(host) {
                return Some(ip);
            }
        }
    }
    parse_ip(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses_in_every_form_logs_use() {
        assert_eq!(parse_ip("203.0.113.7"), "203.0.113.7".parse().ok());
        assert_eq!(parse_ip("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("fe80::1%eth0"), "fe80::1".parse().ok(), "link-local with its zone");
        assert_eq!(parse_ip("[fe80::1%br-lan]"), "fe80::1".parse().ok());
        assert_eq!(parse_ip("203.0.113.7%eth0"), None, "zones are IPv6's");
        assert_eq!(parse_ip("fe80::1%"), None);
        assert_eq!(parse_ip("::ffff:198.51.100.2"), "198.51.100.2".parse().ok());
        assert_eq!(parse_ip_port("198.51.100.2:5022"), "198.51.100.2".parse().ok());
        assert_eq!(parse_ip_port("[2001:db8::1]:22"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip_port("2001:db8::1:22"), "2001:db8::1".parse().ok(), "dropbear's v6:port");
        assert_eq!(parse_ip_port("::ffff:198.51.100.2:40000"), "198.51.100.2".parse().ok());
        assert_eq!(parse_ip_port("2001:db8::"), "2001:db8::".parse().ok(), "no port");
        assert_eq!(parse_ip("ec2-52-80-34-196.cn-north-1.compute"), None);
        assert_eq!(parse_ip(""), None);
    }

    #[test]
    fn tty_names_lose_dev_and_pseudo_names_are_none() {
        assert_eq!(tty_name("pts/1"), Some("pts/1"));
        assert_eq!(tty_name("/dev/pts/4"), Some("pts/4"));
        assert_eq!(tty_name("/dev/ttyp1"), Some("ttyp1"));
        assert_eq!(tty_name("unknown"), None, "sudo without a terminal (cron, scripts)");
        assert_eq!(tty_name("ssh"), None, "PAM's service name in tty= for sshd");
        assert_eq!(tty_name(""), None);
    }
}
