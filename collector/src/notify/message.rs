//! What a notification looks like on each kind of destination: the
//! collector's JSON, Slack- and Teams-shaped webhook bodies, ECS JSON and
//! CEF for a SIEM, the RFC 5424 frame around them, and an e-mail's text.
//! Every form carries the notification's stable `id`.

use serde_json::{json, Value};

use crate::store::alerts::Alert;
use crate::store::outbox::{AlertEvent, Notification};

/// The product's name in CEF headers and the ECS `observer`.
const PRODUCT: &str = "bfp-collector";

/// The link to the results an alert groups (relative to the collector).
pub fn results_link(a: &Alert) -> String {
    format!("/api/results?min_id={}&max_id={}", a.first_result_id, a.last_result_id)
}

/// One line saying what happened.
pub fn summary(n: &Notification) -> String {
    let a = &n.alert;
    let what = match n.event {
        AlertEvent::Raised => "raised",
        AlertEvent::Escalated => "escalated",
        AlertEvent::Test => "test message (no real alert)",
    };
    format!(
        "Alert {} {what}: rule {}, {} {}, {} matching result{} ({} to {} UTC)",
        a.id,
        a.rule,
        group_word(a),
        a.group_key,
        a.count,
        if a.count == 1 { "" } else { "s" },
        a.first_seen,
        a.last_seen
    )
}

fn group_word(a: &Alert) -> &'static str {
    if a.source_ip.as_deref() == Some(a.group_key.as_str()) {
        "source"
    } else if a.user.as_deref() == Some(a.group_key.as_str()) {
        "user"
    } else if a.device.as_deref() == Some(a.group_key.as_str()) {
        "device"
    } else {
        "group"
    }
}

/// The collector's own webhook body (`format = "json"`), documented in
/// docs/alerts.md.
pub fn json_body(n: &Notification) -> Value {
    let mut alert = serde_json::to_value(&n.alert).unwrap_or(Value::Null);
    alert["results"] = json!(results_link(&n.alert));
    json!({
        "id": n.id,
        "event": n.event.as_str(),
        "summary": summary(n),
        "alert": alert,
    })
}

fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let a = &n.alert;
    let mut facts = vec![
        ("Rule", a.rule.clone()),
        ("Group", a.group_key.clone()),
        ("Count", a.count.to_string()),
        ("State", a.state.as_str().to_string()),
        ("First seen (UTC)", a.first_seen.clone()),
        ("Last seen (UTC)", a.last_seen.clone()),
    ];
    for (name, value) in [("Source", &a.source_ip), ("User", &a.user), ("Device", &a.device)] {
        if let Some(v) = value {
            facts.push((name, v.clone()));
        }
    }
    facts.push(("Results", results_link(a)));
    facts.push(("Id", n.id.clone()));
    facts
}

/// A Slack-compatible incoming-webhook body: `text` for notifications and
/// clients without blocks, `blocks` for the message itself.
pub fn slack_body(n: &Notification) -> Value {
    let fields: Vec<Value> = facts(n)
        .into_iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(&v))}))
        .collect();
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&summary(n))}})];
    // Slack allows at most 10 fields per section.
    for chunk in fields.chunks(10) {
        blocks.push(json!({"type": "section", "fields": chunk}));
    }
    json!({"text": summary(n), "blocks": blocks})
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Microsoft Teams MessageCard (Office 365 connector / workflow
/// webhooks accept it).
pub fn teams_body(n: &Notification) -> Value {
    let facts: Vec<Value> = facts(n).into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": summary(n),
        "themeColor": if n.event == AlertEvent::Test { "0076D7" } else { "D70000" },
        "title": format!("bfp alert {}: {}", n.event.as_str(), n.alert.rule),
        "text": summary(n),
        "sections": [{"facts": facts}],
    })
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) as RFC 3339.
fn rfc3339(stored: &str) -> String {
    format!("{}Z", stored.replacen(' ', "T", 1))
}

/// The ECS-shaped JSON message of a syslog destination.
pub fn ecs(n: &Notification, observer_host: &str) -> Value {
    let a = &n.alert;
    let mut v = json!({
        "@timestamp": rfc3339(&a.last_seen),
        "message": summary(n),
        "ecs": {"version": "8.11.0"},
        "event": {
            "id": n.id,
            "kind": "alert",
            "category": ["authentication", "intrusion_detection"],
            "type": ["info"],
            "action": format!("alert-{}", n.event.as_str()),
            // An alert groups suspicious results: what they tried is not
            // known to have succeeded or failed as a whole.
            "outcome": "unknown",
            "severity": if n.event == AlertEvent::Test { 1 } else { 7 },
            "count": a.count,
            "start": rfc3339(&a.first_seen),
            "end": rfc3339(&a.last_seen),
            "reference": results_link(a),
        },
        "rule": {"name": a.rule},
        "observer": {"product": PRODUCT, "hostname": observer_host, "type": "ids"},
        "labels": {"alert_id": a.id.to_string(), "group_key": a.group_key, "state": a.state.as_str()},
    });
    if let Some(ip) = &a.source_ip {
        v["source"] = json!({"ip": ip});
    }
    if let Some(user) = &a.user {
        v["user"] = json!({"name": user});
    }
    if let Some(device) = &a.device {
        v["host"] = json!({"name": device});
    }
    v
}

fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|").replace(['\r', '\n'], " ")
}

fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('=', "\\=").replace('\r', "\\r").replace('\n', "\\n")
}

/// The CEF message of a syslog destination.
pub fn cef(n: &Notification) -> String {
    let a = &n.alert;
    let mut ext = vec![
        ("externalId", n.id.clone()),
        ("act", format!("alert-{}", n.event.as_str())),
        ("cnt", a.count.to_string()),
        ("start", rfc3339(&a.first_seen)),
        ("end", rfc3339(&a.last_seen)),
        ("cs1Label", "rule".into()),
        ("cs1", a.rule.clone()),
        ("cs2Label", "group".into()),
        ("cs2", a.group_key.clone()),
        ("msg", summary(n)),
    ];
    for (key, value) in [("src", &a.source_ip), ("suser", &a.user), ("dhost", &a.device)] {
        if let Some(v) = value {
            ext.push((key, v.clone()));
        }
    }
    let ext: Vec<String> = ext.into_iter().map(|(k, v)| format!("{k}={}", cef_value(&v))).collect();
    format!(
        "CEF:0|BehavioralFingerprinting|{PRODUCT}|{}|alert-{}|{}|{}|{}",
        env!("CARGO_PKG_VERSION"),
        n.event.as_str(),
        cef_header(&a.rule),
        if n.event == AlertEvent::Test { 1 } else { 7 },
        ext.join(" ")
    )
}

/// One RFC 5424 message, octet-counted for TCP (RFC 6587 3.4.1):
/// `LEN SP <PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`. Facility local0,
/// severity warning (test messages: notice).
pub fn syslog_frame(n: &Notification, msg: &str, host: &str, app_name: &str, now: std::time::SystemTime) -> Vec<u8> {
    let severity = if n.event == AlertEvent::Test { 5 } else { 4 };
    let pri = 16 * 8 + severity;
    let host = header_field(host, 255);
    let line = format!(
        "<{pri}>1 {} {host} {app_name} {} alert - {msg}",
        humantime::format_rfc3339_seconds(now),
        std::process::id()
    );
    let mut frame = format!("{} ", line.len()).into_bytes();
    frame.extend_from_slice(line.as_bytes());
    frame
}

/// A header field of RFC 5424: printable ASCII without spaces, or `-`.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v
    }
}

/// The subject and text of an e-mail.
pub fn email(n: &Notification) -> (String, String) {
    let a = &n.alert;
    let subject =
        format!("[bfp] alert {} {}: {} ({}, {} matches)", a.id, n.event.as_str(), a.rule, a.group_key, a.count);
    let mut body = format!("{}\n\n", summary(n));
    for (k, v) in facts(n) {
        body.push_str(&format!("{k}: {v}\n"));
    }
    (subject, body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::alerts::AlertState;

    pub(crate) fn sample(event: AlertEvent) -> Notification {
        let alert = Alert {
            id: 7,
            rule: "ssh-brute-force".into(),
            group_key: "203.0.113.7".into(),
            state: AlertState::Open,
            count: 42,
            first_result_id: 10,
            last_result_id: 99,
            first_seen: "2026-12-07 04:33:36".into(),
            last_seen: "2026-12-07 04:40:00".into(),
            source_ip: Some("203.0.113.7".into()),
            user: Some("root".into()),
            device: Some("bastion".into()),
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
        };
        Notification { id: Notification::id_of(event, &alert), event, alert }
    }

    #[test]
    fn every_form_carries_the_id_and_the_ecs_fields() {
        let n = sample(AlertEvent::Raised);
        assert_eq!(n.id, "alert-7-raised");
        assert_eq!(json_body(&n)["alert"]["results"], "/api/results?min_id=10&max_id=99");
        assert!(slack_body(&n)["text"].as_str().unwrap().contains("source 203.0.113.7, 42 matching results"));
        assert!(slack_body(&n).to_string().contains("alert-7-raised"));
        assert_eq!(teams_body(&n)["@type"], "MessageCard");
        assert!(teams_body(&n).to_string().contains("alert-7-raised"));
        let e = ecs(&n, "collector-1");
        assert_eq!(
            (&e["source"]["ip"], &e["user"]["name"], &e["host"]["name"], &e["event"]["action"], &e["rule"]["name"]),
            (
                &json!("203.0.113.7"),
                &json!("root"),
                &json!("bastion"),
                &json!("alert-raised"),
                &json!("ssh-brute-force")
            )
        );
        assert_eq!(
            (&e["event"]["kind"], &e["event"]["outcome"], &e["event"]["id"]),
            (&json!("alert"), &json!("unknown"), &json!(n.id))
        );
        assert_eq!(e["@timestamp"], "2026-12-07T04:40:00Z");
        let c = cef(&n);
        assert!(c.starts_with("CEF:0|BehavioralFingerprinting|bfp-collector|"), "{c}");
        assert!(c.contains("|alert-raised|ssh-brute-force|7|externalId=alert-7-raised "), "{c}");
        assert!(c.contains(" src=203.0.113.7 suser=root dhost=bastion"), "{c}");
        let mut esc = sample(AlertEvent::Escalated);
        esc.alert.rule = "a|b=c".into();
        assert!(cef(&esc).contains("|a\\|b=c|") && cef(&esc).contains("cs1=a|b\\=c"), "{}", cef(&esc));
        assert_eq!(esc.id, "alert-7-escalated-42");
    }

    #[test]
    fn syslog_frames_are_octet_counted_rfc5424() {
        let n = sample(AlertEvent::Raised);
        let frame = syslog_frame(&n, "{\"a\":1}", "my host", "bfp-collector", std::time::UNIX_EPOCH);
        let text = String::from_utf8(frame).unwrap();
        let (len, rest) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert!(rest.starts_with("<132>1 1970-01-01T00:00:00Z myhost bfp-collector "), "{rest}");
        assert!(rest.ends_with(" alert - {\"a\":1}"), "{rest}");
    }
}
