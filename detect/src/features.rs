//! The agent schema's feature vector of a log-derived fingerprint, as the
//! agent scores it (names and order: [`bfp_common::schema`]).
//!
//! The predict schema is the seed six plus risky commands: all a single
//! `/api/predict` body or CSV row can tell, and still the contract of the
//! collector. On the device the agent knows more at scoring time: how the
//! session differs from its user's baseline ([`Novelty`]) and what the
//! source did before it ([`SourceContext`]). The agent schema is the predict schema's seven
//! first (same order), then the novelty flags, then the source context.
//!
//! [`vector`] is the ONE place the vector is built: the agent calls it on
//! live logs and the trainer (`bfp-models`) on simulated logs run through the
//! same analyzer and detectors, so training and inference cannot drift.

use bfp_common::schema::{AGENT_FEATURE_COUNT, CONTEXT_FEATURE_COUNT, CONTEXT_START, NOVELTY_START};
use bfp_common::{Fingerprint, UNKNOWN};

use crate::baseline::Novelty;
use crate::campaign::SourceSummary;

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

/// The schema-2 vector of one observation: its fingerprint, its novelty
/// against the user's baseline (`None` for a source or device window, or a
/// session without a user: all novelty flags 0) and its source context.
/// On a device without history, `never_seen_user` is [`UNKNOWN`]: every
/// user is new there, which says nothing.
pub fn vector(fp: &Fingerprint, novelty: Option<&Novelty>, context: &SourceContext) -> [f32; AGENT_FEATURE_COUNT] {
    let mut x = [0f32; AGENT_FEATURE_COUNT];
    x[..NOVELTY_START].copy_from_slice(&fp.features());
    if let Some(n) = novelty {
        x[NOVELTY_START..CONTEXT_START].copy_from_slice(&n.features());
        if !n.device_has_history {
            x[NOVELTY_START] = UNKNOWN;
        }
    }
    x[CONTEXT_START..].copy_from_slice(&context.features());
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
        let x = vector(&fp, Some(&novelty), &ctx);
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
        let y = vector(&fp, None, &ctx);
        assert!(y[NOVELTY_START..CONTEXT_START].iter().all(|&v| v == 0.0));
        assert_eq!(y[CONTEXT_START..], x[CONTEXT_START..]);
        // A fresh device: a never-seen user and the network's users are unknown, not news.
        let fresh = Novelty { never_seen_user: true, ..Novelty::default() };
        let ctx = SourceContext { known_users_from_network: None, ..ctx };
        let z = vector(&fp, Some(&fresh), &ctx);
        assert_eq!((z[NOVELTY_START], z[AGENT_FEATURE_COUNT - 1]), (UNKNOWN, UNKNOWN));
    }
}
