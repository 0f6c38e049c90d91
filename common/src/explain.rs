//! Human-readable reasons for a verdict: the features that drove it, in words
//! an operator can act on ("4 failed logins before this session", "arrived
//! over Tor") rather than feature indices and weights.

use crate::fingerprint::{Fingerprint, Protocol};
use crate::model::Verdict;
use crate::schema::PREDICT_FEATURE_COUNT as FEATURE_COUNT;

/// Typing faster than this (words per minute) is beyond sustained human
/// typing and reads as a script or a bot pasting commands.
pub const MACHINE_TYPING_WPM: f32 = 100.0;

/// Up to `max` reasons for `verdict`, strongest first: one sentence per
/// feature that pushed the model towards the predicted class. When no
/// feature stands out (a flat forest), one sentence says so, so a stored
/// prediction never has an empty explanation.
pub fn reasons(fp: &Fingerprint, verdict: &Verdict, max: usize) -> Vec<String> {
    let mut out: Vec<String> = verdict.top_features(max).map(|(feature, _)| describe(fp, feature)).collect();
    if out.is_empty() && max > 0 {
        out.push("no single feature stood out".to_string());
    }
    out
}

/// One feature of `fp` in words. `feature` is an index into
/// [`PREDICT_FEATURE_NAMES`](crate::schema::PREDICT_FEATURE_NAMES); an index outside the schema gets a
/// generic sentence instead of a panic.
pub fn describe(fp: &Fingerprint, feature: usize) -> String {
    match feature {
        0 => {
            let h = fp.login_hour;
            let when = if !(6..22).contains(&h) { "night hours" } else { "daytime" };
            format!("logged in at {h:02}:00 ({when})")
        }
        1 => {
            let m = fp.session_duration_min;
            let note = if m < 2.0 {
                " (very short)"
            } else if m > 240.0 {
                " (very long)"
            } else {
                ""
            };
            format!("session lasted {} min{note}", number(m))
        }
        2 => match fp.commands {
            0 => "ran no commands".to_string(),
            1 => "ran 1 command".to_string(),
            n => format!("ran {n} commands"),
        },
        3 => match fp.failed_logins {
            0 => "no failed logins before this session".to_string(),
            1 => "1 failed login before this session".to_string(),
            n => format!("{n} failed logins before this session"),
        },
        4 => match fp.protocol {
            Protocol::Tor => "arrived over Tor".to_string(),
            p => format!("arrived over {p}"),
        },
        5 => match fp.typing_speed_wpm {
            None => "typing speed unknown".to_string(),
            Some(w) if w > MACHINE_TYPING_WPM => format!("typing at {} wpm (machine-like)", number(w)),
            Some(w) => format!("typing at {} wpm (human pace)", number(w)),
        },
        6 => match fp.risky_commands {
            None => "which commands ran is unknown".to_string(),
            Some(0) => "no risky commands (downloads, chmod +x, persistence, log wiping)".to_string(),
            Some(1) => "1 risky command (download, chmod +x, persistence or log wiping)".to_string(),
            Some(n) => format!("{n} risky commands (downloads, chmod +x, persistence, log wiping)"),
        },
        other => format!("feature {other} (not in schema of {FEATURE_COUNT} features)"),
    }
}

/// `5` rather than `5.0`, `2.5` rather than `2.5000`.
pub fn number(x: f32) -> String {
    if x.fract() == 0.0 && x.abs() < 1e9 {
        format!("{}", x as i64)
    } else {
        format!("{:.1}", x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> Fingerprint {
        Fingerprint {
            login_hour: 3,
            session_duration_min: 5.0,
            commands: 3,
            failed_logins: 4,
            protocol: Protocol::Tor,
            typing_speed_wpm: Some(120.0),
            risky_commands: Some(0),
        }
    }

    fn verdict(suspicious: bool, contributions: [f32; FEATURE_COUNT]) -> Verdict {
        Verdict::with_contributions(suspicious, 0.9, &contributions)
    }

    #[test]
    fn names_the_features_that_drove_a_suspicious_verdict_strongest_first() {
        let v = verdict(true, [0.0, 0.0, 0.0, 0.3, 0.2, 0.1, -0.05]);
        assert_eq!(
            reasons(&fp(), &v, 3),
            vec!["4 failed logins before this session", "arrived over Tor", "typing at 120 wpm (machine-like)"]
        );
        assert_eq!(reasons(&fp(), &v, 1).len(), 1);
    }

    #[test]
    fn a_normal_verdict_cites_what_pushed_towards_normal() {
        let mut normal = fp();
        normal.login_hour = 14;
        normal.failed_logins = 0;
        normal.typing_speed_wpm = Some(45.0);
        let v = verdict(false, [-0.2, 0.0, 0.0, -0.3, 0.4, -0.1, 0.0]);
        assert_eq!(
            reasons(&normal, &v, 5),
            vec![
                "no failed logins before this session",
                "logged in at 14:00 (daytime)",
                "typing at 45 wpm (human pace)"
            ]
        );
    }

    #[test]
    fn never_empty_and_never_panics() {
        let v = verdict(false, [0.0; FEATURE_COUNT]);
        assert_eq!(reasons(&fp(), &v, 3), vec!["no single feature stood out"]);
        assert!(reasons(&fp(), &v, 0).is_empty());
        assert!(describe(&fp(), 99).contains("99"));
        let mut unknown = fp();
        unknown.typing_speed_wpm = None;
        unknown.risky_commands = None;
        unknown.session_duration_min = 2.5;
        assert_eq!(describe(&unknown, 5), "typing speed unknown");
        assert_eq!(describe(&unknown, 6), "which commands ran is unknown");
        assert_eq!(describe(&unknown, 1), "session lasted 2.5 min");
        assert_eq!(describe(&unknown, 0), "logged in at 03:00 (night hours)");
    }
}
