//! The agent schema's feature vector of a log-derived fingerprint, as the
//! agent scores it (names and order: [`bfp_common::schema`]).
//!
//! The predict schema is the seed six plus risky commands: all a single
//! `/api/predict` body or CSV row can tell, and still the contract of the
//! collector. On the device the agent knows more at scoring time: how the
//! session differs from its user's baseline ([`Novelty`]) and what the
//! source did before it ([`SourceContext`]), and what the session shows of
//! privilege escalation ([`Escalation`]). The agent schema (3) is the
//! predict schema's seven first (same order), then the novelty flags, then
//! the source context (schema 2 ends there), then the escalation features.
//!
//! [`vector`] is the ONE place the vector is built: the agent calls it on
//! live logs and the trainer (`bfp-models`) on simulated logs run through the
//! same analyzer and detectors, so training and inference cannot drift.

use bfp_common::schema::{
    AGENT_FEATURE_COUNT, CONTEXT_FEATURE_COUNT, CONTEXT_START, ESCALATION_FEATURE_COUNT, ESCALATION_START,
    NOVELTY_START,
};
use bfp_common::{Fingerprint, UNKNOWN};

use crate::baseline::Novelty;
use crate::campaign::SourceSummary;
use crate::privilege::Escalation;

/// What the device knows of a session's (or a source window's) address at
/// scoring time, beyond the session itself. All zeros for a local login or
/// an address that never failed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SourceContext {
    /// Failed logins from the address in the current hour.
    pub failures_last_hour: u32,
    /// Failed logins from the address in the last 24 hours (a user's
    /// forgiven typos excluded).
    pub failures_last_day: u32,
    /// Distinct hours with failures from the address in the last 24 hours:
    /// a slow brute force spreads over many.
    pub failure_hours: u32,
    /// Distinct user names the address tried (capped at 8).
    pub users_tried: u32,
    /// Distinct addresses failing against the device in the last hour.
    pub device_failing_sources: u32,
    /// The address was judged part of a slow or distributed brute force.
    pub in_campaign: bool,
    /// Users whose baselines know the address's network (sessions judged
    /// Normal came from it): 0 for a network new to the whole device; `None`
    /// while the device has no history (everything is new on a fresh
    /// install), which the model sees as [`UNKNOWN`].
    pub known_users_from_network: Option<u32>,
}

impl SourceContext {
    /// The context from the campaign detector's view of the address, the
    /// device's failing sources in the last hour, and how many known users
    /// come from the address's network.
    pub fn new(summary: &SourceSummary, device_failing_sources: u32, known_users_from_network: Option<u32>) -> Self {
        SourceContext {
            failures_last_hour: summary.failures_last_hour,
            failures_last_day: summary.failures_last_day,
            failure_hours: summary.failure_hours,
            users_tried: summary.users_tried,
            device_failing_sources,
            in_campaign: summary.campaign.is_some(),
            known_users_from_network,
        }
    }

    /// The context as features, in [`CONTEXT_FEATURE_NAMES`] order.
    pub fn features(&self) -> [f32; CONTEXT_FEATURE_COUNT] {
        [
            self.failures_last_hour as f32,
            self.failures_last_day as f32,
            self.failure_hours as f32,
            self.users_tried as f32,
            self.device_failing_sources as f32,
            if self.in_campaign { 1.0 } else { 0.0 },
            self.known_users_from_network.map_or(UNKNOWN, |k| k as f32),
        ]
    }
}

/// The escalation features ([`ESCALATION_FEATURE_NAMES`](bfp_common::schema::ESCALATION_FEATURE_NAMES)
/// order) of a session's escalation and its novelty: refusals and account
/// changes need no history; a first root shell or account change comes from
/// the user's baseline (0 without one, and in the learning period, where
/// the novelty passed is the hidden one).
pub fn escalation_features(e: &Escalation, novelty: Option<&Novelty>) -> [f32; ESCALATION_FEATURE_COUNT] {
    let f = |b: bool| if b { 1.0 } else { 0.0 };
    [
        e.refused_by_sudo as f32,
        e.refused_by_su as f32,
        e.refused_dangerous as f32,
        e.account_changes as f32,
        f(novelty.is_some_and(|n| n.first_root_shell)),
        f(novelty.is_some_and(|n| n.first_account_change)),
    ]
}

/// The schema-3 vector of one observation: its fingerprint, its novelty
/// against the user's baseline (`None` for a source or device window, or a
/// session without a user: all novelty flags 0), its source context and
/// the privilege escalation in its commands (all 0 for a window).
/// On a device without history, `never_seen_user` is [`UNKNOWN`]: every
/// user is new there, which says nothing. Its first
/// [`AGENT_V2_FEATURE_COUNT`](bfp_common::schema::AGENT_V2_FEATURE_COUNT)
/// values are the schema-2 vector.
pub fn vector(
    fp: &Fingerprint,
    novelty: Option<&Novelty>,
    context: &SourceContext,
    escalation: &Escalation,
) -> [f32; AGENT_FEATURE_COUNT] {
    let mut x = [0f32; AGENT_FEATURE_COUNT];
    x[..NOVELTY_START].copy_from_slice(&fp.features());
    if let Some(n) = novelty {
        x[NOVELTY_START..CONTEXT_START].copy_from_slice(&n.features());
        if !n.device_has_history {
            x[NOVELTY_START] = UNKNOWN;
        }
    }
    x[CONTEXT_START..ESCALATION_START].copy_from_slice(&context.features());
    x[ESCALATION_START..].copy_from_slice(&escalation_features(escalation, novelty));
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::Protocol;

    #[test]
    fn the_vector_puts_each_part_in_its_place() {
        let fp = Fingerprint {
            login_hour: 3,
            session_duration_min: 12.5,
            commands: 4,
            failed_logins: 2,
            protocol: Protocol::Ssh,
            typing_speed_wpm: None,
            risky_commands: Some(1),
        };
        let novelty =
            Novelty { new_network_for_user: true, new_commands: 3, device_has_history: true, ..Novelty::default() };
        let ctx = SourceContext {
            failures_last_hour: 5,
            failures_last_day: 9,
            failure_hours: 2,
            users_tried: 3,
            device_failing_sources: 40,
            in_campaign: true,
            known_users_from_network: Some(2),
        };
        let none = Escalation::default();
        let x = vector(&fp, Some(&novelty), &ctx, &none);
        assert_eq!(x[..7], fp.features());
        let at = |name: &str| x[bfp_common::schema::AGENT_FEATURE_NAMES.iter().position(|n| *n == name).unwrap()];
        assert_eq!(at("new_network_for_user"), 1.0);
        assert_eq!(at("new_commands"), 3.0);
        assert_eq!(at("rare_hour_for_user"), 0.0);
        assert_eq!(at("source_failures_last_day"), 9.0);
        assert_eq!(at("device_failing_sources_last_hour"), 40.0);
        assert_eq!(at("source_in_campaign"), 1.0);
        assert_eq!(at("known_users_from_network"), 2.0);
        // A source window has no user: novelty all zeros, context kept.
        let y = vector(&fp, None, &ctx, &none);
        assert!(y[NOVELTY_START..CONTEXT_START].iter().all(|&v| v == 0.0));
        assert_eq!(y[CONTEXT_START..], x[CONTEXT_START..]);
        assert!(x[ESCALATION_START..].iter().all(|&v| v == 0.0));
        // A fresh device: a never-seen user and the network's users are unknown, not news.
        let fresh = Novelty { never_seen_user: true, ..Novelty::default() };
        let ctx = SourceContext { known_users_from_network: None, ..ctx };
        let z = vector(&fp, Some(&fresh), &ctx, &none);
        assert_eq!((z[NOVELTY_START], z[ESCALATION_START - 1]), (UNKNOWN, UNKNOWN));
    }

    #[test]
    fn the_escalation_features_count_refusals_and_take_the_firsts_from_the_baseline() {
        let fp = Fingerprint {
            login_hour: 10,
            session_duration_min: 5.0,
            commands: 4,
            failed_logins: 0,
            protocol: Protocol::Ssh,
            typing_speed_wpm: None,
            risky_commands: Some(0),
        };
        let lines: Vec<String> = [
            "sudo(denied: user NOT in sudoers) /usr/bin/passwd root",
            "sudo(denied: command not allowed) /usr/bin/apt update",
            "su(denied) root",
            "/usr/sbin/useradd -m helper",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let e = Escalation::of(&lines);
        let n = Novelty { first_account_change: true, device_has_history: true, ..Novelty::default() };
        let x = vector(&fp, Some(&n), &SourceContext::default(), &e);
        let at = |name: &str| x[bfp_common::schema::AGENT_FEATURE_NAMES.iter().position(|n| *n == name).unwrap()];
        assert_eq!((at("sudo_refusals"), at("su_refusals"), at("dangerous_commands_refused")), (2.0, 1.0, 2.0));
        assert_eq!((at("account_changes"), at("first_account_change_for_user")), (1.0, 1.0));
        assert_eq!(at("first_root_shell_for_user"), 0.0);
        // Without a baseline (a window, or the learning period's hidden novelty) no first.
        let y = vector(&fp, None, &SourceContext::default(), &e);
        assert_eq!(y[AGENT_FEATURE_COUNT - 1], 0.0);
        assert_eq!(y[ESCALATION_START..ESCALATION_START + 4], x[ESCALATION_START..ESCALATION_START + 4]);
    }
}
