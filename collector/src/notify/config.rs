//! The `[notify]` section and the `[[destinations]]` of the collector's
//! `--config` file, checked at start: an unknown key, a bad URL, address or
//! e-mail address stops the start with an error naming it.
//!
//! ```toml
//! [notify]
//! interval_secs = 1         # how often each destination's queue is looked at
//! max_per_tick = 20         # most messages one destination sends per tick
//! backoff_base_secs = 2     # first retry after ~2 s, then 4, 8, ...
//! backoff_max_secs = 600    # ... at most 10 minutes apart (with jitter)
//! max_attempts = 20         # then the message is dead and the queue moves on
//! retention_days = 7        # delivered and dead messages are deleted after this
//!
//! [[destinations]]
//! name = "ops-chat"
//! type = "webhook"
//! url = "https://hooks.example.org/T000/B000"
//! format = "slack"
//! secret = "a shared secret"
//!
//! [[destinations]]
//! name = "siem"
//! type = "syslog"
//! address = "siem.example.org:6514"
//! tls = true
//! format = "ecs"
//!
//! [[destinations]]
//! name = "on-call"
//! type = "email"
//! host = "smtp.example.org"
//! from = "bfp@example.org"
//! to = ["oncall@example.org"]
//! ```

use std::path::PathBuf;

use serde::Deserialize;

/// The `[notify]` section: how the outbox is delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Seconds between two looks at a destination's queue when it is
    /// empty or waiting for a retry. Default: 1.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Most messages one destination sends per tick (the rest waits for
    /// the next tick), so a backlog is worked off in bounded steps.
    /// Default: 20.
    #[serde(default = "default_per_tick")]
    pub max_per_tick: u32,
    /// Delay before the first retry of a failed message, in seconds; each
    /// further failure doubles it. Default: 2.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_secs: u64,
    /// Longest delay between two attempts, in seconds. Default: 600.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: u64,
    /// Attempts after which a message that keeps failing is given up on
    /// ("dead": counted in `/api/destinations` and `bfp_outbox_dead`, kept
    /// for `retention_days`), so the messages behind it in its
    /// destination's queue go out. Until then the queue waits for it, which
    /// keeps a destination's messages in order. With the default backoff,
    /// 20 attempts span about two hours. Default: 20.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Days delivered messages (since delivery) and dead ones (since they
    /// were written) stay in the outbox before they are deleted; checked
    /// at start and hourly. Default: 7.
    #[serde(default = "default_retention_days")]
    pub retention_days: u64,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            interval_secs: default_interval(),
            max_per_tick: default_per_tick(),
            backoff_base_secs: default_backoff_base(),
            backoff_max_secs: default_backoff_max(),
            max_attempts: default_max_attempts(),
            retention_days: default_retention_days(),
        }
    }
}

fn default_interval() -> u64 {
    1
}
fn default_per_tick() -> u32 {
    20
}
fn default_backoff_base() -> u64 {
    2
}
fn default_backoff_max() -> u64 {
    600
}
fn default_max_attempts() -> u32 {
    20
}
fn default_retention_days() -> u64 {
    7
}
fn default_timeout() -> u64 {
    10
}

impl NotifyConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.interval_secs == 0 || self.interval_secs > 3600 {
            return Err("notify.interval_secs must be within 1..3600".into());
        }
        if self.max_per_tick == 0 || self.max_per_tick > 10_000 {
            return Err("notify.max_per_tick must be within 1..10000".into());
        }
        if self.backoff_base_secs == 0 {
            return Err("notify.backoff_base_secs must be at least 1".into());
        }
        if self.backoff_max_secs < self.backoff_base_secs {
            return Err("notify.backoff_max_secs must be at least notify.backoff_base_secs".into());
        }
        if self.max_attempts == 0 || self.max_attempts > 10_000 {
            return Err("notify.max_attempts must be within 1..10000".into());
        }
        if self.retention_days == 0 || self.retention_days > 3650 {
            return Err("notify.retention_days must be within 1..3650".into());
        }
        Ok(())
    }
}

/// One `[[destinations]]` entry; `type` says which kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Destination {
    /// An HTTP(S) POST of a JSON body.
    Webhook(WebhookConfig),
    /// RFC 5424 syslog over TCP or TLS.
    Syslog(SyslogConfig),
    /// E-mail over SMTP.
    Email(EmailConfig),
}

impl Destination {
    /// Its unique name.
    pub fn name(&self) -> &str {
        match self {
            Destination::Webhook(c) => &c.name,
            Destination::Syslog(c) => &c.name,
            Destination::Email(c) => &c.name,
        }
    }

    /// `webhook`, `syslog` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Webhook(_) => "webhook",
            Destination::Syslog(_) => "syslog",
            Destination::Email(_) => "email",
        }
    }

    /// Seconds one attempt may take.
    pub fn timeout_secs(&self) -> u64 {
        match self {
            Destination::Webhook(c) => c.timeout_secs,
            Destination::Syslog(c) => c.timeout_secs,
            Destination::Email(c) => c.timeout_secs,
        }
    }

    fn check(&self) -> Result<(), String> {
        let name = self.name();
        let at = |what: String| format!("destination {name:?}: {what}");
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!("destination name {name:?} must be 1-64 characters of A-Z a-z 0-9 - _ ."));
        }
        if !(1..=300).contains(&self.timeout_secs()) {
            return Err(at("timeout_secs must be within 1..300".into()));
        }
        match self {
            Destination::Webhook(c) => {
                let url = reqwest::Url::parse(&c.url).map_err(|e| at(format!("bad url {:?}: {e}", c.url)))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
                    return Err(at(format!("bad url {:?}: it must be http:// or https:// with a host", c.url)));
                }
                if c.secret.as_deref().is_some_and(str::is_empty) {
                    return Err(at("secret is empty (leave it out for no signature)".into()));
                }
                if let Some(ca) = &c.ca_file {
                    if url.scheme() != "https" {
                        return Err(at("ca_file is set but the url is not https://".into()));
                    }
                    if !ca.is_file() {
                        return Err(at(format!("ca_file {} is not a readable file", ca.display())));
                    }
                }
            }
            Destination::Syslog(c) => {
                let (host, port) = split_host_port(&c.address)
                    .ok_or_else(|| at(format!("bad address {:?}: expected HOST:PORT", c.address)))?;
                if host.is_empty() || port == 0 {
                    return Err(at(format!("bad address {:?}: expected HOST:PORT", c.address)));
                }
                if c.ca_file.is_some() && !c.tls {
                    return Err(at("ca_file is set but tls is false".into()));
                }
                if let Some(ca) = &c.ca_file {
                    if !ca.is_file() {
                        return Err(at(format!("ca_file {} is not a readable file", ca.display())));
                    }
                }
                if c.app_name.is_empty() || c.app_name.len() > 48 || !c.app_name.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(at("app_name must be 1-48 printable ASCII characters".into()));
                }
            }
            Destination::Email(c) => {
                if c.host.is_empty() {
                    return Err(at("host is empty".into()));
                }
                c.from.parse::<lettre::message::Mailbox>().map_err(|e| at(format!("bad from {:?}: {e}", c.from)))?;
                if c.to.is_empty() {
                    return Err(at("to lists no address".into()));
                }
                for to in &c.to {
                    to.parse::<lettre::message::Mailbox>().map_err(|e| at(format!("bad to {to:?}: {e}")))?;
                }
                if c.username.is_some() != c.password.is_some() {
                    return Err(at("username and password go together".into()));
                }
                if let Some(ca) = &c.ca_file {
                    if c.security == SmtpSecurity::Plaintext {
                        return Err(at("ca_file is set but security is plaintext".into()));
                    }
                    if !ca.is_file() {
                        return Err(at(format!("ca_file {} is not a readable file", ca.display())));
                    }
                }
                if c.security == SmtpSecurity::Plaintext && !is_loopback_host(&c.host) {
                    return Err(at(format!(
                        "security = \"plaintext\" is for a test server on loopback only, not {:?}",
                        c.host
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Splits `host:port` (`[v6]:port` for IPv6).
pub(crate) fn split_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host.to_string(), port.parse().ok()?))
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The body a webhook sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The collector's own JSON (docs/alerts.md).
    Json,
    /// A Slack-compatible `{"text": ..., "blocks": [...]}` (Slack,
    /// Mattermost, Rocket.Chat incoming webhooks).
    Slack,
    /// A Microsoft Teams MessageCard.
    Teams,
}

/// `type = "webhook"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique name (A-Z a-z 0-9 - _ .), used in the API and metrics. Required.
    pub name: String,
    /// Where to POST: an `http://` or `https://` URL. Required.
    pub url: String,
    /// `json`, `slack` or `teams`. Default: `json`.
    #[serde(default = "default_webhook_format")]
    pub format: WebhookFormat,
    /// With a secret, every request carries `X-BFP-Signature: sha256=HEX`,
    /// the HMAC-SHA256 of the exact body under this secret. Default: none.
    #[serde(default)]
    pub secret: Option<String>,
    /// Seconds one request may take (connecting included). Default: 10.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// For an `https://` URL: a PEM file of the CA certificates the
    /// receiver's certificate must chain to, instead of the public roots
    /// (a receiver with a private CA). Checked at start. Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_webhook_format() -> WebhookFormat {
    WebhookFormat::Json
}

/// The message a syslog destination carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// JSON with Elastic Common Schema field names.
    Ecs,
    /// ArcSight Common Event Format.
    Cef,
}

/// `type = "syslog"`: RFC 5424 messages, octet-counted (RFC 6587) on one
/// TCP or TLS connection per tick.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Unique name. Required.
    pub name: String,
    /// The receiver, `HOST:PORT`. Required.
    pub address: String,
    /// TLS (RFC 5425) instead of plain TCP. Default: false.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA certificates that sign the receiver's certificate
    /// (with `tls`). Default: the Mozilla roots built in.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `ecs` or `cef`. Default: `ecs`.
    #[serde(default = "default_syslog_format")]
    pub format: SyslogFormat,
    /// The APP-NAME field. Default: `bfp-collector`.
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Seconds one connection and its writes may take. Default: 10.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_syslog_format() -> SyslogFormat {
    SyslogFormat::Ecs
}

fn default_app_name() -> String {
    "bfp-collector".into()
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS, required: a server that does not offer it is an error.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: only for a test server on loopback (refused for any
    /// other host).
    Plaintext,
}

/// `type = "email"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Unique name. Required.
    pub name: String,
    /// The SMTP server's host name. Required.
    pub host: String,
    /// Its port. Default: 587 (465 with `security = "tls"`).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls`, `tls` or `plaintext` (loopback test servers only).
    /// Default: `starttls`.
    #[serde(default = "default_security")]
    pub security: SmtpSecurity,
    /// The sender, `name <addr>` or `addr`. Required.
    pub from: String,
    /// The recipients. Required (at least one).
    pub to: Vec<String>,
    /// PEM file of the CA certificates that sign the server's certificate
    /// (with `starttls` or `tls`). Default: the Mozilla roots built in.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// SMTP user name, with `password`. Default: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP password, with `username`. Default: none.
    #[serde(default)]
    pub password: Option<String>,
    /// Seconds one delivery may take. Default: 10.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_security() -> SmtpSecurity {
    SmtpSecurity::Starttls
}

impl EmailConfig {
    /// The port in use.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(if self.security == SmtpSecurity::Tls { 465 } else { 587 })
    }
}

/// Checks every destination and that their names are unique.
pub(crate) fn check_destinations(list: &[Destination]) -> Result<(), String> {
    for (i, d) in list.iter().enumerate() {
        d.check()?;
        if list[..i].iter().any(|o| o.name() == d.name()) {
            return Err(format!("destination name {:?} is used twice", d.name()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::alerts::CollectorConfig;

    #[test]
    fn destinations_parse_with_their_defaults() {
        let c = CollectorConfig::parse(
            "[[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n\
             [[destinations]]\nname = \"siem\"\ntype = \"syslog\"\naddress = \"127.0.0.1:6514\"\n\
             [[destinations]]\nname = \"mail\"\ntype = \"email\"\nhost = \"smtp.example.org\"\n\
             from = \"bfp@example.org\"\nto = [\"a@example.org\"]\n",
        )
        .unwrap();
        assert_eq!(c.destinations.len(), 3);
        let super::Destination::Webhook(w) = &c.destinations[0] else { panic!() };
        assert_eq!((w.format, w.timeout_secs, w.secret.is_none()), (super::WebhookFormat::Json, 10, true));
        let super::Destination::Syslog(s) = &c.destinations[1] else { panic!() };
        assert_eq!((s.tls, s.format, s.app_name.as_str()), (false, super::SyslogFormat::Ecs, "bfp-collector"));
        let super::Destination::Email(e) = &c.destinations[2] else { panic!() };
        assert_eq!((e.port(), e.security), (587, super::SmtpSecurity::Starttls));
        assert_eq!(c.notify.backoff_max_secs, 600);
        // The rules' pass writes one outbox row per destination.
        assert_eq!(c.alert.notify, ["hook", "siem", "mail"]);
    }

    #[test]
    fn the_documented_example_parses() {
        let err = CollectorConfig::parse(include_str!("../../testdata/notify.toml")).unwrap_err();
        // Everything but the example CA file, which does not exist here.
        assert!(err.contains("destination \"siem\": ca_file /etc/bfp/siem-ca.pem"), "{err}");
        let text = include_str!("../../testdata/notify.toml")
            .replace("ca_file = \"/etc/bfp/siem-ca.pem\"", "")
            .replace("ca_file = \"/etc/bfp/smtp-ca.pem\"", "");
        let c = CollectorConfig::parse(&text).unwrap();
        assert_eq!(c.alert.notify, ["ops-chat", "siem", "on-call"]);
    }

    #[test]
    fn unknown_keys_bad_urls_and_addresses_are_refused_with_their_name() {
        let err = |text: &str| CollectorConfig::parse(text).unwrap_err();
        let e = err("[[destinations]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"http://x/\"\nsecrett = \"s\"\n");
        assert!(e.contains("unknown field `secrett`"), "{e}");
        let e = err("[[destinations]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"not a url\"\n");
        assert!(e.contains("destination \"h\": bad url \"not a url\""), "{e}");
        let e = err("[[destinations]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"ftp://host/x\"\n");
        assert!(e.contains("bad url"), "{e}");
        let e = err("[[destinations]]\nname = \"h\"\ntype = \"pager\"\n");
        assert!(e.contains("pager"), "{e}");
        let e = err("[[destinations]]\nname = \"s\"\ntype = \"syslog\"\naddress = \"siem\"\n");
        assert!(e.contains("bad address"), "{e}");
        let e = err("[[destinations]]\nname = \"m\"\ntype = \"email\"\nhost = \"smtp.example.org\"\n\
                     from = \"bfp@example.org\"\nto = [\"a@example.org\"]\nsecurity = \"plaintext\"\n");
        assert!(e.contains("loopback only"), "{e}");
        let e = err("[[destinations]]\nname = \"m\"\ntype = \"email\"\nhost = \"h\"\nfrom = \"nobody\"\nto = []\n");
        assert!(e.contains("bad from"), "{e}");
        let e = err("[[destinations]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://x/\"\n\
                     [[destinations]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://y/\"\n");
        assert!(e.contains("used twice"), "{e}");
        let e = err("[notify]\nbackoff_max_secs = 1\nbackoff_base_secs = 5\n");
        assert!(e.contains("backoff_max_secs"), "{e}");
    }
}
