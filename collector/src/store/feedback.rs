//! Analyst feedback on stored predictions: an analyst marks a result as a
//! false or true positive (or clears the mark), and the labelled results are
//! exported in the CSV form `bfp-models train --extra-labelled` reads.
//!
//! What is stored is the analyst's *true class* of the row (`Normal` or
//! `Suspicious`), not the words of the button: "false positive" means "the
//! verdict is wrong" (on a Suspicious row the session was Normal; on a
//! Normal row it was a missed attack, Suspicious), "true positive" means "the
//! verdict is right". The true class is what retraining needs, whatever the
//! model said.
//!
//! A store keeps the labels in their own table keyed by the prediction's id, so the
//! predictions table and its write paths stay as they are, and the labelled
//! rows (a few, chosen by people) are found without scanning millions.

use super::model::label;
use crate::error::{Error, Result};

/// Longest note kept, in characters; longer ones are refused (400).
pub const MAX_NOTE_CHARS: usize = 1000;

/// Header of the labelled export: the six original columns, then `Label` and
/// `RiskyCommands` (what `bfp-models train --extra-labelled` reads), then
/// columns it ignores, for people: the row id, the model's verdict, when and
/// why it was labelled.
pub const LABELLED_HEADER: &str =
    "LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed,Label,RiskyCommands,Id,Prediction,LabelledAt,Note";

/// What the analyst says about a stored verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// The verdict is wrong: the true class is the other one.
    FalsePositive,
    /// The verdict is right.
    TruePositive,
    /// Remove the analyst's label.
    Clear,
}

impl Feedback {
    /// Parses `false_positive`, `true_positive` or `clear`.
    pub fn parse(s: &str) -> Result<Feedback> {
        match s {
            "false_positive" => Ok(Feedback::FalsePositive),
            "true_positive" => Ok(Feedback::TruePositive),
            "clear" => Ok(Feedback::Clear),
            other => Err(Error::BadInput(format!(
                "label must be one of false_positive, true_positive, clear, got {other:?}"
            ))),
        }
    }

    /// The true class for a row the model judged `suspicious`; `None` clears.
    pub fn true_class(self, suspicious: bool) -> Option<bool> {
        match self {
            Feedback::FalsePositive => Some(!suspicious),
            Feedback::TruePositive => Some(suspicious),
            Feedback::Clear => None,
        }
    }
}

/// An analyst's label on a stored prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalystLabel {
    /// The true class: `true` = Suspicious.
    pub suspicious: bool,
    /// When it was set, `YYYY-MM-DD HH:MM:SS`, UTC.
    pub labelled_at: String,
    /// The analyst's note, if any.
    pub note: Option<String>,
}

impl AnalystLabel {
    /// `Normal` or `Suspicious`.
    pub fn label(&self) -> &'static str {
        label(self.suspicious)
    }
}

/// A stored prediction's verdict and label after feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackOutcome {
    /// The prediction's id.
    pub id: i64,
    /// The model's verdict (`true` = Suspicious), unchanged by feedback.
    pub suspicious: bool,
    /// The analyst's label, `None` once cleared.
    pub analyst: Option<AnalystLabel>,
}

/// Checks an analyst's note: at most [`MAX_NOTE_CHARS`] characters; a blank
/// note is no note.
pub fn clean_note(note: Option<String>) -> Result<Option<String>> {
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(Error::BadInput(format!("note is longer than {MAX_NOTE_CHARS} characters")));
    }
    Ok(note.filter(|n| !n.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_positive_means_the_other_class() {
        assert_eq!(Feedback::FalsePositive.true_class(true), Some(false));
        assert_eq!(Feedback::FalsePositive.true_class(false), Some(true));
        assert_eq!(Feedback::TruePositive.true_class(true), Some(true));
        assert_eq!(Feedback::TruePositive.true_class(false), Some(false));
        assert_eq!(Feedback::Clear.true_class(true), None);
        assert!(matches!(Feedback::parse("fp"), Err(Error::BadInput(_))));
    }

    #[test]
    fn notes_are_bounded_and_blank_ones_dropped() {
        assert_eq!(clean_note(Some("  ".into())).unwrap(), None);
        assert_eq!(clean_note(Some("known admin".into())).unwrap().as_deref(), Some("known admin"));
        assert!(matches!(clean_note(Some("x".repeat(MAX_NOTE_CHARS + 1))), Err(Error::BadInput(_))));
    }
}
