//! The feature schemas, in one place: which features a model of each schema
//! scores, in which order, under which names.
//!
//! Two schemas are in use, and a model artifact records the one it was
//! trained on ([`crate::model::CompactModel`] refuses a vector of another width):
//!
//! - [`PREDICT_SCHEMA`] (1): the seed six plus risky commands, all that a
//!   `/api/predict` body or a CSV row can tell. The collector's contract.
//! - [`AGENT_SCHEMA`] (2): the same seven first, then how the session differs
//!   from its user's baseline (the novelty features), then what the device
//!   holds against its address (the source-context features). Only the agent
//!   knows these at scoring time; `bfp-detect` builds the vector.

/// Schema of the collector's model: what `/api/predict` and the CSV upload carry.
pub const PREDICT_SCHEMA: u16 = 1;

/// Features of [`PREDICT_SCHEMA`].
pub const PREDICT_FEATURE_COUNT: usize = 7;

/// Names of [`PREDICT_SCHEMA`]'s features, in vector order.
pub const PREDICT_FEATURE_NAMES: [&str; PREDICT_FEATURE_COUNT] = [
    "login_hour",
    "session_duration_min",
    "commands",
    "failed_logins",
    "protocol",
    "typing_speed_wpm",
    "risky_commands",
];

/// Schema of the agents' model: [`PREDICT_FEATURE_NAMES`], then
/// [`NOVELTY_FEATURE_NAMES`], then [`CONTEXT_FEATURE_NAMES`].
pub const AGENT_SCHEMA: u16 = 2;

/// Number of novelty features, see [`NOVELTY_FEATURE_NAMES`].
pub const NOVELTY_FEATURE_COUNT: usize = 11;

/// How a session differs from its user's (and its device's) baseline, in vector order.
pub const NOVELTY_FEATURE_NAMES: [&str; NOVELTY_FEATURE_COUNT] = [
    "never_seen_user",
    "rare_hour_for_user",
    "new_network_for_user",
    "new_protocol_for_user",
    "unusual_session_length",
    "unusual_command_cadence",
    "new_commands",
    "first_risky_command",
    "failure_spike",
    "login_spike",
    "network_churn_for_user",
];

/// Number of source-context features, see [`CONTEXT_FEATURE_NAMES`].
pub const CONTEXT_FEATURE_COUNT: usize = 7;

/// What the device holds against the address, in vector order.
pub const CONTEXT_FEATURE_NAMES: [&str; CONTEXT_FEATURE_COUNT] = [
    "source_failures_last_hour",
    "source_failures_last_day",
    "source_failure_hours",
    "source_users_tried",
    "device_failing_sources_last_hour",
    "source_in_campaign",
    "known_users_from_network",
];

/// Features of [`AGENT_SCHEMA`].
pub const AGENT_FEATURE_COUNT: usize = PREDICT_FEATURE_COUNT + NOVELTY_FEATURE_COUNT + CONTEXT_FEATURE_COUNT;

/// Index of the first novelty feature in an [`AGENT_SCHEMA`] vector.
pub const NOVELTY_START: usize = PREDICT_FEATURE_COUNT;
/// Index of the first source-context feature in an [`AGENT_SCHEMA`] vector.
pub const CONTEXT_START: usize = NOVELTY_START + NOVELTY_FEATURE_COUNT;

/// Names of [`AGENT_SCHEMA`]'s features, in vector order.
pub const AGENT_FEATURE_NAMES: [&str; AGENT_FEATURE_COUNT] =
    concat3(PREDICT_FEATURE_NAMES, NOVELTY_FEATURE_NAMES, CONTEXT_FEATURE_NAMES);

/// Every schema this build can score.
pub const KNOWN_SCHEMAS: [u16; 2] = [PREDICT_SCHEMA, AGENT_SCHEMA];

// A verdict keeps its contributions in a fixed array of MAX_FEATURES.
const _: () = assert!(AGENT_FEATURE_COUNT <= crate::model::MAX_FEATURES);

/// The feature names of a schema this build knows.
pub fn feature_names(schema: u16) -> Option<&'static [&'static str]> {
    match schema {
        PREDICT_SCHEMA => Some(&PREDICT_FEATURE_NAMES),
        AGENT_SCHEMA => Some(&AGENT_FEATURE_NAMES),
        _ => None,
    }
}

/// `a`, then `b`, then `c`: one list of names written once, however many
/// schemas reuse it.
const fn concat3<const A: usize, const B: usize, const C: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
    c: [&'static str; C],
) -> [&'static str; N] {
    assert!(A + B + C == N);
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    let mut k = 0;
    while k < C {
        out[A + B + k] = c[k];
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_schema_extends_the_predict_schema_in_order() {
        assert_eq!(AGENT_FEATURE_NAMES[..PREDICT_FEATURE_COUNT], PREDICT_FEATURE_NAMES);
        assert_eq!(AGENT_FEATURE_NAMES[NOVELTY_START], "never_seen_user");
        assert_eq!(AGENT_FEATURE_NAMES[CONTEXT_START], "source_failures_last_hour");
        assert_eq!(AGENT_FEATURE_NAMES[AGENT_FEATURE_COUNT - 1], "known_users_from_network");
        assert_eq!(feature_names(3), None);
    }
}
