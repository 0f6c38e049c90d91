//! What the log behind a population can tell. Many real logs carry no
//! keystroke or command timing (typing speed unknown) or only session
//! open/close lines (which commands ran is unknown). Each population is
//! read from one kind of log, so missingness is drawn per population and
//! applied alike to every scenario: it must not become a label by itself.

use super::rng::Rng;
use super::Draft;

/// How complete one population's log source is.
pub struct LogSource {
    /// Probability that a session's typing speed is known.
    typing_known: f64,
    /// Probability that the command strings (hence risky commands) are known.
    commands_known: f64,
}

impl LogSource {
    /// Draws a log source: from "sshd only" to "full session recording".
    pub fn new(rng: &mut Rng) -> LogSource {
        LogSource { typing_known: rng.uniform(0.4, 1.0), commands_known: rng.uniform(0.5, 1.0) }
    }

    /// Hides what this log cannot tell.
    pub fn observe(&self, rng: &mut Rng, mut draft: Draft) -> Draft {
        if !rng.chance(self.typing_known) {
            draft.typing_wpm = None;
        }
        // With no command, there is nothing risky to miss.
        if draft.commands > 0 && !rng.chance(self.commands_known) {
            draft.risky = None;
        }
        draft
    }
}
