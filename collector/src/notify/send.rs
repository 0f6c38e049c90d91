//! The three transports: an HTTP POST (optionally signed), an RFC 5424
//! frame over TCP or TLS, an e-mail over SMTP. Each attempt is bounded by
//! the destination's timeout and ends in `Ok` only once the receiver has
//! acknowledged it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::config::{
    split_host_port, Destination, EmailConfig, SmtpSecurity, SyslogConfig, SyslogFormat, WebhookConfig, WebhookFormat,
};
use super::message;
use crate::error::{Error, Result};
use crate::store::outbox::Notification;

/// The header carrying a webhook body's HMAC-SHA256 (`sha256=HEX`).
pub const SIGNATURE_HEADER: &str = "X-BFP-Signature";
/// The header carrying the notification's id.
pub const ID_HEADER: &str = "X-BFP-Notification-Id";

/// One destination, ready to send.
pub struct Sender {
    destination: Destination,
    transport: Transport,
    /// This collector's host name (syslog HOSTNAME, ECS observer).
    host: String,
}

enum Transport {
    Http(reqwest::Client),
    Syslog(Option<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    // ring, as everywhere in the project (no aws-lc build); reqwest takes
    // the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Sender {
    /// Builds the transport of `destination`.
    pub fn new(destination: Destination) -> Result<Sender> {
        let provider = crypto();
        let timeout = Duration::from_secs(destination.timeout_secs());
        let name = destination.name().to_string();
        let bad = |what: String| Error::Config(format!("destination {name:?}: {what}"));
        let transport = match &destination {
            Destination::Webhook(c) => {
                let mut client = reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    // A redirect is the receiver's mistake: report it, don't follow it.
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(path) = &c.ca_file {
                    // Only this CA: the receiver's certificate must chain to it.
                    client = client.tls_backend_preconfigured(tls_client(provider, Some(path)).map_err(bad)?);
                }
                Transport::Http(client.build().map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?)
            }
            Destination::Syslog(c) if c.tls => {
                let tls = tls_client(provider, c.ca_file.as_deref()).map_err(bad)?;
                let (host, _) = split_host_port(&c.address).unwrap_or_default();
                let server = rustls::pki_types::ServerName::try_from(host)
                    .map_err(|e| bad(format!("address {:?} names no TLS server: {e}", c.address)))?;
                Transport::Syslog(Some((tokio_rustls::TlsConnector::from(Arc::new(tls)), server)))
            }
            Destination::Syslog(_) => Transport::Syslog(None),
            Destination::Email(c) => Transport::Smtp(smtp(c, timeout).map_err(|e| bad(format!("SMTP: {e}")))?),
        };
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        Ok(Sender { destination, transport, host })
    }

    /// The destination's name.
    pub fn name(&self) -> &str {
        self.destination.name()
    }

    /// Its configuration.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Where it sends, without secrets.
    pub fn target(&self) -> String {
        match &self.destination {
            Destination::Webhook(c) => match reqwest::Url::parse(&c.url) {
                Ok(mut url) => {
                    let _ = url.set_password(None);
                    let _ = url.set_username("");
                    url.set_query(None);
                    url.to_string()
                }
                Err(_) => String::new(),
            },
            Destination::Syslog(c) => format!("{}{}", if c.tls { "tls://" } else { "tcp://" }, c.address),
            Destination::Email(c) => format!("smtp://{}:{} to {}", c.host, c.port(), c.to.join(", ")),
        }
    }

    /// Sends `n` once; `Err` with a short reason unless the receiver
    /// acknowledged it within the destination's timeout.
    pub async fn send(&self, n: &Notification) -> std::result::Result<(), String> {
        let timeout = Duration::from_secs(self.destination.timeout_secs());
        let attempt = async {
            match (&self.destination, &self.transport) {
                (Destination::Webhook(c), Transport::Http(client)) => webhook(client, c, n).await,
                (Destination::Syslog(c), Transport::Syslog(tls)) => syslog(c, tls.as_ref(), n, &self.host).await,
                (Destination::Email(c), Transport::Smtp(mailer)) => email(mailer, c, n, &self.host).await,
                _ => Err("transport does not match the destination".into()),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("timed out after {}s", timeout.as_secs())),
        }
    }
}

/// A TLS client trusting the CA certificates of `ca_file` (PEM), or the
/// public roots without one.
fn tls_client(
    provider: Arc<rustls::crypto::CryptoProvider>,
    ca_file: Option<&std::path::Path>,
) -> std::result::Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("ca_file {} holds no usable certificate", path.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

async fn webhook(client: &reqwest::Client, c: &WebhookConfig, n: &Notification) -> std::result::Result<(), String> {
    let body = match c.format {
        WebhookFormat::Json => message::json_body(n),
        WebhookFormat::Slack => message::slack_body(n),
        WebhookFormat::Teams => message::teams_body(n),
    }
    .to_string()
    .into_bytes();
    let mut request = client
        .post(&c.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(ID_HEADER, &n.id)
        .header(reqwest::header::USER_AGENT, concat!("bfp-collector/", env!("CARGO_PKG_VERSION")));
    if let Some(secret) = &c.secret {
        request = request.header(SIGNATURE_HEADER, signature(secret, &body));
    }
    let response = request.body(body).send().await.map_err(|e| chain(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    Err(format!("HTTP {status}{}{text}", if text.is_empty() { "" } else { ": " }))
}

async fn syslog(
    c: &SyslogConfig,
    tls: Option<&(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
    n: &Notification,
    host: &str,
) -> std::result::Result<(), String> {
    let msg = match c.format {
        SyslogFormat::Ecs => message::ecs(n, host).to_string(),
        SyslogFormat::Cef => message::cef(n),
    };
    let frame = message::syslog_frame(n, &msg, host, &c.app_name, SystemTime::now());
    let stream = TcpStream::connect(&c.address).await.map_err(|e| format!("connect {}: {e}", c.address))?;
    let _ = stream.set_nodelay(true);
    match tls {
        None => write_frame(stream, &frame).await,
        Some((connector, server)) => {
            let stream = connector.connect(server.clone(), stream).await.map_err(|e| format!("TLS: {}", chain(&e)))?;
            write_frame(stream, &frame).await
        }
    }
}

/// Writes one frame and closes the connection cleanly (a TLS close_notify,
/// a FIN): syslog has no acknowledgement beyond the transport's.
async fn write_frame<S: tokio::io::AsyncWrite + Unpin>(mut stream: S, frame: &[u8]) -> std::result::Result<(), String> {
    stream.write_all(frame).await.map_err(|e| format!("write: {e}"))?;
    stream.flush().await.map_err(|e| format!("write: {e}"))?;
    stream.shutdown().await.map_err(|e| format!("close: {e}"))?;
    Ok(())
}

fn smtp(c: &EmailConfig, timeout: Duration) -> std::result::Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match c.security {
        SmtpSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host).map_err(|e| chain(&e))?
        }
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host).map_err(|e| chain(&e))?,
        SmtpSecurity::Plaintext => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
    };
    let mut builder = builder.port(c.port()).timeout(Some(timeout));
    if let Some(path) = &c.ca_file {
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        let ca = Certificate::from_pem(&pem).map_err(|e| format!("ca_file {}: {}", path.display(), chain(&e)))?;
        let params = TlsParameters::builder(c.host.clone())
            .add_root_certificate(ca)
            .build_rustls()
            .map_err(|e| format!("TLS: {}", chain(&e)))?;
        builder = builder.tls(match c.security {
            SmtpSecurity::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if let (Some(user), Some(password)) = (&c.username, &c.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

async fn email(
    mailer: &AsyncSmtpTransport<Tokio1Executor>,
    c: &EmailConfig,
    n: &Notification,
    host: &str,
) -> std::result::Result<(), String> {
    let (subject, body) = message::email(n);
    let from = c.from.parse().map_err(|e| format!("from: {e}"))?;
    // The Message-ID carries the notification's id: mail clients and
    // scripts drop a second copy by it.
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(subject)
        .message_id(Some(format!("<{}@{}>", n.id, host.trim().replace(['<', '>', ' '], ""))))
        .header(lettre::message::header::ContentType::TEXT_PLAIN);
    for to in &c.to {
        builder = builder.to(to.parse().map_err(|e| format!("to: {e}"))?);
    }
    let mail = builder.body(body).map_err(|e| format!("message: {e}"))?;
    let response = mailer.send(mail).await.map_err(|e| chain(&e))?;
    if response.is_positive() {
        Ok(())
    } else {
        Err(format!("SMTP {}", response.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::config::SyslogConfig;
    use crate::store::outbox::AlertEvent;

    #[tokio::test]
    async fn syslog_over_tls_checks_the_receiver_against_the_ca_file() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, server) = private_ca();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = tokio::spawn(async move {
            let mut frames = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut bytes = Vec::new();
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.read_to_end(&mut bytes).await;
                }
                frames.push(String::from_utf8(bytes).unwrap());
            }
            frames
        });
        let syslog = |ca: Option<std::path::PathBuf>| {
            Destination::Syslog(SyslogConfig {
                name: "siem".into(),
                address: format!("localhost:{port}"),
                tls: true,
                ca_file: ca,
                format: crate::notify::config::SyslogFormat::Cef,
                app_name: "bfp-collector".into(),
                timeout_secs: 5,
            })
        };
        let n = crate::notify::message::tests::sample(AlertEvent::Raised);
        Sender::new(syslog(Some(ca_file))).unwrap().send(&n).await.unwrap();
        // The built-in roots do not know this CA: refused, nothing delivered.
        let err = Sender::new(syslog(None)).unwrap().send(&n).await.unwrap_err();
        assert!(err.starts_with("TLS: ") && err.contains("certificate"), "{err}");
        let frames = received.await.unwrap();
        let (len, rest) = frames[0].split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert!(rest.contains(" - CEF:0|BehavioralFingerprinting|") && rest.contains("externalId=alert-7-raised"));
        assert_eq!(frames[1], "");
    }

    /// A CA and a certificate for `localhost` it signed: (CA PEM, server
    /// TLS config).
    fn private_ca() -> (String, rustls::ServerConfig) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(crypto())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        (ca_cert.pem(), server)
    }

    #[tokio::test]
    async fn https_webhooks_trust_the_ca_file_and_a_wrong_ca_is_a_visible_error() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let (ca, server) = private_ca();
        let (other_ca, _) = private_ca();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let wrong_ca = dir.path().join("other-ca.pem");
        std::fs::write(&wrong_ca, other_ca).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // A real HTTPS receiver: every request that completes a handshake is
        // recorded (its body) and answered 200.
        let bodies = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let handshakes_failed = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (seen, failed) = (bodies.clone(), handshakes_failed.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    continue;
                };
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = tls.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length {
                            break Some(text[end + 4..].to_string());
                        }
                    }
                };
                if let Some(body) = body {
                    seen.lock().unwrap().push(body);
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                    let _ = tls.shutdown().await;
                }
            }
        });
        let hook = |ca: &std::path::Path| {
            let text = format!(
                "[[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"https://localhost:{port}/in\"\n\
                 ca_file = \"{}\"\ntimeout_secs = 5\n",
                ca.display()
            );
            crate::alerts::CollectorConfig::parse(&text).unwrap().destinations.remove(0)
        };
        let n = crate::notify::message::tests::sample(AlertEvent::Raised);
        Sender::new(hook(&ca_file)).unwrap().send(&n).await.unwrap();
        // Another CA: the handshake is refused, the error says why, and
        // nothing more reaches the receiver.
        let err = Sender::new(hook(&wrong_ca)).unwrap().send(&n).await.unwrap_err();
        assert!(err.to_lowercase().contains("certificate"), "{err}");
        // Neither do the public roots know this CA.
        let mut public = hook(&ca_file);
        if let Destination::Webhook(c) = &mut public {
            c.ca_file = None;
        }
        assert!(Sender::new(public).unwrap().send(&n).await.is_err());
        let bodies = bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 1, "received exactly once: {bodies:?}");
        let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(body["id"], "alert-7-raised");
        // Both refusals were handshakes the receiver saw fail (it may note
        // the second a moment after the client gave up).
        for _ in 0..50 {
            if handshakes_failed.load(std::sync::atomic::Ordering::SeqCst) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(handshakes_failed.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A CA file on a plain http:// URL is refused at start.
        let err = crate::alerts::CollectorConfig::parse(&format!(
            "[[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://localhost:{port}/\"\nca_file = \"{}\"\n",
            ca_file.display()
        ))
        .unwrap_err();
        assert!(err.contains("ca_file is set but the url is not https://"), "{err}");
    }

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
