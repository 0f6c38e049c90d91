//! The feature schemas, in one place: which features a model of each schema
//! scores, in which order, under which names.
//!
//! A model artifact records the schema it was trained on
//! ([`crate::model::CompactModel`] refuses a vector of another width):
//!
//! - [`PREDICT_SCHEMA`] (1): the seed six plus risky commands, all that a
//!   `/api/predict` body or a CSV row can tell. The collector's contract.
//! - [`AGENT_SCHEMA_V2`] (2): the same seven first, then how the session
//!   differs from its user's baseline (the novelty features), then what the
//!   device holds against its address (the source-context features). The
//!   agents' schema before privilege escalation became features; its
//!   artifacts stay readable, and an agent scores them on the first
//!   [`AGENT_V2_FEATURE_COUNT`] features of a schema-3 vector.
//! - [`AGENT_SCHEMA`] (3): schema 2's features, then what the session shows
//!   of privilege escalation (the escalation features: refused sudo and su,
//!   dangerous commands refused, a first root shell or account change).
//!   Only the agent knows these at scoring time; `bfp-detect` builds the
//!   vector.
//!
//! Each schema extends the one before it at its end, so a prefix of a
//! newer vector is an older one.

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
/// [`NOVELTY_FEATURE_NAMES`], then [`CONTEXT_FEATURE_NAMES`], then
/// [`ESCALATION_FEATURE_NAMES`].
pub const AGENT_SCHEMA: u16 = 3;

/// The agents' previous schema: [`AGENT_SCHEMA`] without the escalation
/// features (its first [`AGENT_V2_FEATURE_COUNT`]).
pub const AGENT_SCHEMA_V2: u16 = 2;

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

/// Number of escalation features, see [`ESCALATION_FEATURE_NAMES`].
pub const ESCALATION_FEATURE_COUNT: usize = 6;

/// What the session shows of privilege escalation, in vector order:
///
/// - `sudo_refusals`: commands sudo refused in the session (not in sudoers,
///   command not allowed, incorrect password attempts);
/// - `su_refusals`: user switches su refused (`su(denied) root`);
/// - `dangerous_commands_refused`: refused commands that would have given
///   root (`su -`, a shell), changed accounts (`useradd`, `passwd root`)
///   or are risky by themselves (a download into /tmp, `chmod +x`);
/// - `account_changes`: account-changing commands that ran (`useradd`,
///   `usermod -aG sudo`, `passwd root`, and the account tools' own lines);
/// - `first_root_shell_for_user`: a root shell ran (`sudo -i`, `su -`, a
///   shell through sudo) by a user with history who never opened one;
/// - `first_account_change_for_user`: an account change by a user with
///   history who never made one.
///
/// The two firsts need history: they are 0 in the learning period and for
/// a user the device does not know yet.
pub const ESCALATION_FEATURE_NAMES: [&str; ESCALATION_FEATURE_COUNT] = [
    "sudo_refusals",
    "su_refusals",
    "dangerous_commands_refused",
    "account_changes",
    "first_root_shell_for_user",
    "first_account_change_for_user",
];

/// Features of [`AGENT_SCHEMA_V2`].
pub const AGENT_V2_FEATURE_COUNT: usize = PREDICT_FEATURE_COUNT + NOVELTY_FEATURE_COUNT + CONTEXT_FEATURE_COUNT;

/// Features of [`AGENT_SCHEMA`].
pub const AGENT_FEATURE_COUNT: usize = AGENT_V2_FEATURE_COUNT + ESCALATION_FEATURE_COUNT;

/// Index of the first novelty feature in an agent-schema vector.
pub const NOVELTY_START: usize = PREDICT_FEATURE_COUNT;
/// Index of the first source-context feature in an agent-schema vector.
pub const CONTEXT_START: usize = NOVELTY_START + NOVELTY_FEATURE_COUNT;
/// Index of the first escalation feature in an [`AGENT_SCHEMA`] vector.
pub const ESCALATION_START: usize = AGENT_V2_FEATURE_COUNT;

/// Names of [`AGENT_SCHEMA_V2`]'s features, in vector order.
pub const AGENT_V2_FEATURE_NAMES: [&str; AGENT_V2_FEATURE_COUNT] =
    concat3(PREDICT_FEATURE_NAMES, NOVELTY_FEATURE_NAMES, CONTEXT_FEATURE_NAMES);

/// Names of [`AGENT_SCHEMA`]'s features, in vector order.
pub const AGENT_FEATURE_NAMES: [&str; AGENT_FEATURE_COUNT] = concat3(
    PREDICT_FEATURE_NAMES,
    concat3::<NOVELTY_FEATURE_COUNT, CONTEXT_FEATURE_COUNT, 0, { NOVELTY_FEATURE_COUNT + CONTEXT_FEATURE_COUNT }>(
        NOVELTY_FEATURE_NAMES,
        CONTEXT_FEATURE_NAMES,
        [],
    ),
    ESCALATION_FEATURE_NAMES,
);

/// Every schema this build can read (and score: an older agent schema on
/// the prefix of the current vector).
pub const KNOWN_SCHEMAS: [u16; 3] = [PREDICT_SCHEMA, AGENT_SCHEMA_V2, AGENT_SCHEMA];

// A verdict keeps its contributions in a fixed array of MAX_FEATURES.
const _: () = assert!(AGENT_FEATURE_COUNT <= crate::model::MAX_FEATURES);

/// The feature names of a schema this build knows.
pub fn feature_names(schema: u16) -> Option<&'static [&'static str]> {
    match schema {
        PREDICT_SCHEMA => Some(&PREDICT_FEATURE_NAMES),
        AGENT_SCHEMA_V2 => Some(&AGENT_V2_FEATURE_NAMES),
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
    fn each_agent_schema_extends_the_one_before_in_order() {
        assert_eq!(AGENT_FEATURE_NAMES[..PREDICT_FEATURE_COUNT], PREDICT_FEATURE_NAMES);
        assert_eq!(AGENT_FEATURE_NAMES[..AGENT_V2_FEATURE_COUNT], AGENT_V2_FEATURE_NAMES);
        assert_eq!(AGENT_FEATURE_NAMES[NOVELTY_START], "never_seen_user");
        assert_eq!(AGENT_FEATURE_NAMES[CONTEXT_START], "source_failures_last_hour");
        assert_eq!(AGENT_V2_FEATURE_NAMES[AGENT_V2_FEATURE_COUNT - 1], "known_users_from_network");
        assert_eq!(AGENT_FEATURE_NAMES[ESCALATION_START], "sudo_refusals");
        assert_eq!(AGENT_FEATURE_NAMES[AGENT_FEATURE_COUNT - 1], "first_account_change_for_user");
        assert_eq!(feature_names(AGENT_SCHEMA_V2).map(<[_]>::len), Some(25));
        assert_eq!(feature_names(AGENT_SCHEMA).map(<[_]>::len), Some(31));
        assert_eq!(feature_names(4), None);
    }
}
