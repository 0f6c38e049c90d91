//! Reasons for a verdict on an agent-schema vector, in words an operator can
//! act on: the seed features as [`bfp_common::explain`] words them, and the
//! novelty, source-context and escalation features ("from a network new to
//! this user", "this address tried 4 user names", "sudo refused 2 commands").

use bfp_common::explain::{describe as describe_seed, number, MACHINE_TYPING_WPM};
use bfp_common::schema::{CONTEXT_START, ESCALATION_START, NOVELTY_START};
use bfp_common::{Fingerprint, Protocol, Verdict};

use crate::baseline::Novelty;
use crate::features::SourceContext;
use crate::privilege::Escalation;

/// Up to `max` reasons for an agent-schema `verdict` (see [`crate::features`]):
/// the seed features as [`bfp_common::explain`] words them, with the
/// novelty, source-context and escalation features in words.
/// Novelty features of an observation without a user (a source or device
/// window, where they are all 0) say nothing and are skipped.
///
/// For a Suspicious verdict, features that show something (failures, a new
/// network, a risky command) come before those that only show an absence
/// or an unknown ("ran no commands", "the device has no history yet"), which
/// the forest may weigh but an operator cannot act on; the latter only fill
/// up to `max`.
pub fn reasons(
    fp: &Fingerprint,
    novelty: Option<&Novelty>,
    context: &SourceContext,
    escalation: &Escalation,
    window: bool,
    verdict: &Verdict,
    max: usize,
) -> Vec<String> {
    let mut ranked: Vec<(bool, String)> = verdict
        .top_features(verdict.contributions().len())
        .filter_map(|(feature, _)| {
            let words = describe(fp, novelty, context, escalation, window, feature)?;
            Some((verdict.suspicious && !shows_something(fp, novelty, context, escalation, feature), words))
        })
        .collect();
    // Stable: within each group, strongest first.
    ranked.sort_by_key(|(absence, _)| *absence);
    let mut out: Vec<String> = ranked.into_iter().map(|(_, words)| words).take(max).collect();
    if out.is_empty() && max > 0 {
        out.push("no single feature stood out".to_string());
    }
    out
}

/// One agent-schema feature in words; `None` for a novelty or escalation
/// feature of an observation without a user. For a source or device
/// `window` the seed features speak of the window, not of a session.
pub fn describe(
    fp: &Fingerprint,
    novelty: Option<&Novelty>,
    c: &SourceContext,
    e: &Escalation,
    window: bool,
    feature: usize,
) -> Option<String> {
    if window {
        match feature {
            0 => return Some(format!("activity starting at {:02}:00", fp.login_hour)),
            1 => return Some(format!("activity over {} min", number(fp.session_duration_min))),
            3 => {
                return Some(match fp.failed_logins {
                    1 => "1 failed login in this window".to_string(),
                    n => format!("{n} failed logins in this window"),
                })
            }
            _ => {}
        }
    }
    if feature < NOVELTY_START {
        return Some(describe_seed(fp, feature));
    }
    let yes_no = |on: bool, yes: &str, no: &str| Some(if on { yes } else { no }.to_string());
    if feature < CONTEXT_START {
        let n = novelty?;
        return match feature - NOVELTY_START {
            0 if !n.device_has_history => None,
            0 => yes_no(n.never_seen_user, "first login by this user on this device", "a user this device knows"),
            1 => yes_no(n.rare_hour_for_user, "an hour this user rarely logs in at", "an hour usual for this user"),
            2 => yes_no(
                n.new_network_for_user,
                "from a network new to this user",
                "from a network this user has logged in from before",
            ),
            3 => yes_no(n.new_protocol_for_user, "over a protocol new to this user", "over a protocol this user uses"),
            4 => yes_no(
                n.unusual_session_length,
                "a session length unusual for this user",
                "a session length usual for this user",
            ),
            5 => yes_no(
                n.unusual_command_cadence,
                "a command pace unusual for this user",
                "a command pace usual for this user",
            ),
            6 => Some(match n.new_commands {
                0 => "only commands this user has run before".to_string(),
                1 => "1 command this user never ran before".to_string(),
                k => format!("{k} commands this user never ran before"),
            }),
            7 => yes_no(
                n.first_risky_command,
                "a risky command this user never ran before",
                "no risky command new to this user",
            ),
            8 => yes_no(n.failure_spike, "a spike of failed logins on this device", "no spike of failed logins"),
            9 => yes_no(n.login_spike, "a spike of logins on this device", "no spike of logins"),
            _ => yes_no(
                n.network_churn,
                "this account arrived from many new networks within a day",
                "this account keeps to its networks",
            ),
        };
    }
    let count =
        |k: u32, one: &str, many: &str| Some(if k == 1 { one.to_string() } else { many.replace('#', &k.to_string()) });
    if feature >= ESCALATION_START {
        let n = novelty?;
        return match feature - ESCALATION_START {
            0 => count(e.refused_by_sudo, "sudo refused 1 command", "sudo refused # commands"),
            1 => count(e.refused_by_su, "su refused 1 switch of user", "su refused # switches of user"),
            2 => count(
                e.refused_dangerous,
                "1 refused command would have given root, changed accounts or was risky",
                "# refused commands would have given root, changed accounts or were risky",
            ),
            3 => count(e.account_changes, "1 account change", "# account changes"),
            4 => yes_no(
                n.first_root_shell,
                "a root shell this user never opened before",
                "no root shell new to this user",
            ),
            _ => yes_no(
                n.first_account_change,
                "an account change this user never made before",
                "no account change new to this user",
            ),
        };
    }
    match feature - CONTEXT_START {
        0 => count(
            c.failures_last_hour,
            "1 failed login from this address in the last hour",
            "# failed logins from this address in the last hour",
        ),
        1 => count(
            c.failures_last_day,
            "1 failed login from this address in the last day",
            "# failed logins from this address in the last day",
        ),
        2 => count(
            c.failure_hours,
            "failures from this address in 1 hour of the last day",
            "failures from this address in # distinct hours of the last day",
        ),
        3 => count(c.users_tried, "this address tried 1 user name", "this address tried # user names"),
        4 => count(
            c.device_failing_sources,
            "1 address failing against this device in the last hour",
            "# addresses failing against this device in the last hour",
        ),
        5 => yes_no(
            c.in_campaign,
            "this address is part of a brute-force campaign",
            "this address is in no brute-force campaign",
        ),
        6 => Some(match c.known_users_from_network {
            None => "the device has no history yet".to_string(),
            Some(0) => "a network no known user of this device comes from".to_string(),
            Some(1) => "a network 1 known user of this device comes from".to_string(),
            Some(k) => format!("a network {k} known users of this device come from"),
        }),
        other => Some(format!("feature {} (not in schema 3)", other + CONTEXT_START)),
    }
}

/// Whether agent-schema `feature` shows something present (a count above
/// zero, a flag that is set, a known hostile value) rather than an absence
/// or an unknown. Login hour and session length are always circumstances.
fn shows_something(
    fp: &Fingerprint,
    novelty: Option<&Novelty>,
    c: &SourceContext,
    e: &Escalation,
    feature: usize,
) -> bool {
    if feature < NOVELTY_START {
        return match feature {
            1 => !(2.0..=240.0).contains(&fp.session_duration_min),
            2 => fp.commands > 0,
            3 => fp.failed_logins > 0,
            4 => fp.protocol == Protocol::Tor,
            5 => fp.typing_speed_wpm.is_some_and(|w| w > MACHINE_TYPING_WPM),
            6 => fp.risky_commands.is_some_and(|r| r > 0),
            _ => false,
        };
    }
    if feature < CONTEXT_START {
        let Some(n) = novelty else { return false };
        return match feature - NOVELTY_START {
            0 => n.never_seen_user,
            1 => n.rare_hour_for_user,
            2 => n.new_network_for_user,
            3 => n.new_protocol_for_user,
            4 => n.unusual_session_length,
            5 => n.unusual_command_cadence,
            6 => n.new_commands > 0,
            7 => n.first_risky_command,
            8 => n.failure_spike,
            9 => n.login_spike,
            _ => n.network_churn,
        };
    }
    if feature >= ESCALATION_START {
        return match feature - ESCALATION_START {
            0 => e.refused_by_sudo > 0,
            1 => e.refused_by_su > 0,
            2 => e.refused_dangerous > 0,
            3 => e.account_changes > 0,
            4 => novelty.is_some_and(|n| n.first_root_shell),
            _ => novelty.is_some_and(|n| n.first_account_change),
        };
    }
    match feature - CONTEXT_START {
        0 => c.failures_last_hour > 0,
        1 => c.failures_last_day > 0,
        2 => c.failure_hours > 0,
        3 => c.users_tried > 0,
        4 => c.device_failing_sources > 0,
        5 => c.in_campaign,
        6 => c.known_users_from_network == Some(0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::schema::AGENT_FEATURE_COUNT;

    /// The original README's example: 03:00 over Tor, 4 failures, 120 wpm.
    fn fp() -> Fingerprint {
        let body = r#"{"login_time":"03:00","session_duration":5,"commands":["ls","sudo","chmod"],
                      "failed_logins":4,"protocol":"TOR","typing_speed":120}"#;
        Fingerprint::from_json(&serde_json::from_str(body).unwrap()).unwrap().0
    }

    #[test]
    fn agent_schema_reasons_speak_of_the_user_and_the_address() {
        let none = Escalation::default();
        let mut c = [0f32; AGENT_FEATURE_COUNT];
        c[NOVELTY_START + 2] = 0.4; // new network
        c[CONTEXT_START + 3] = 0.3; // users tried
        c[NOVELTY_START] = 0.2; // never-seen user: skipped for a source window
        let v = Verdict::with_contributions(true, 0.9, &c);
        let n = Novelty { new_network_for_user: true, device_has_history: true, ..Novelty::default() };
        let ctx = SourceContext { users_tried: 4, ..SourceContext::default() };
        assert_eq!(
            reasons(&fp(), Some(&n), &ctx, &none, false, &v, 3),
            vec!["from a network new to this user", "this address tried 4 user names", "a user this device knows"]
        );
        assert_eq!(reasons(&fp(), None, &ctx, &none, false, &v, 3), vec!["this address tried 4 user names"]);
        // A source window: the forest weighed the missing history and the
        // missing commands most, but the failures are what an operator acts on.
        let mut window = fp();
        window.commands = 0;
        let mut c = [0f32; AGENT_FEATURE_COUNT];
        c[CONTEXT_START + 6] = 0.3; // known users from the network: unknown
        c[2] = 0.2; // no commands
        c[CONTEXT_START + 1] = 0.1; // failures in the last day
        let ctx = SourceContext { failures_last_day: 7, known_users_from_network: None, ..SourceContext::default() };
        let suspicious = Verdict::with_contributions(true, 0.9, &c);
        assert_eq!(
            reasons(&window, None, &ctx, &none, true, &suspicious, 2),
            vec!["7 failed logins from this address in the last day", "the device has no history yet"]
        );
        // A Normal verdict keeps the forest's order: absences are its evidence.
        let normal = Verdict::with_contributions(false, 0.9, &c.map(|x| -x));
        assert_eq!(reasons(&window, None, &ctx, &none, true, &normal, 1), vec!["the device has no history yet"]);
        // A window's length and failures are the window's, not a session's.
        window.failed_logins = 12;
        assert_eq!(describe(&window, None, &ctx, &none, true, 3).unwrap(), "12 failed logins in this window");
        assert_eq!(describe(&window, None, &ctx, &none, true, 1).unwrap(), "activity over 5 min");
        assert_eq!(describe(&window, None, &ctx, &none, false, 3).unwrap(), "12 failed logins before this session");
        let flat = Verdict::flat(false, 0.9, AGENT_FEATURE_COUNT);
        assert_eq!(reasons(&fp(), None, &ctx, &none, false, &flat, 3), vec!["no single feature stood out"]);
    }

    #[test]
    fn escalation_reasons_say_what_was_refused_and_what_is_a_first() {
        let lines: Vec<String> =
            ["sudo(denied) /usr/bin/passwd root", "sudo(denied) /bin/bash", "su(denied) root", "/usr/bin/id"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let e = Escalation::of(&lines);
        let n = Novelty { device_has_history: true, ..Novelty::default() };
        let mut c = [0f32; AGENT_FEATURE_COUNT];
        c[ESCALATION_START + 2] = 0.5; // dangerous commands refused
        c[ESCALATION_START] = 0.3; // sudo refusals
        c[ESCALATION_START + 4] = 0.2; // no first root shell: an absence
        c[ESCALATION_START + 1] = 0.1; // su refusals
        let v = Verdict::with_contributions(true, 0.9, &c);
        let ctx = SourceContext::default();
        assert_eq!(
            reasons(&fp(), Some(&n), &ctx, &e, false, &v, 4),
            vec![
                "3 refused commands would have given root, changed accounts or were risky",
                "sudo refused 2 commands",
                "su refused 1 switch of user",
                "no root shell new to this user",
            ]
        );
        // A window has no user: its escalation features say nothing.
        assert_eq!(describe(&fp(), None, &ctx, &e, true, ESCALATION_START), None);
    }
}
