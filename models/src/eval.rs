//! Evaluation: confusion counts and the metrics of the model card, per class
//! and per scenario, and the fail2ban-style threshold baseline.

use bfp_common::Fingerprint;

use crate::sim::{Sample, Scenario};

/// Confusion counts with Suspicious as the positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Attacks flagged.
    pub tp: u32,
    /// Benign sessions flagged.
    pub fp: u32,
    /// Benign sessions passed.
    pub tn: u32,
    /// Attacks passed.
    pub fn_: u32,
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        f64::from(a) / f64::from(b)
    }
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

impl Counts {
    /// Adds one prediction.
    pub fn add(&mut self, predicted: bool, truth: bool) {
        match (predicted, truth) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
    }
    /// Rows counted.
    pub fn total(&self) -> u32 {
        self.tp + self.fp + self.tn + self.fn_
    }
    /// Precision of Suspicious.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// Recall of Suspicious (detection rate).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// F1 of Suspicious.
    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }
    /// False-positive rate: benign sessions flagged.
    pub fn fpr(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }
    /// Precision of Normal.
    pub fn normal_precision(&self) -> f64 {
        ratio(self.tn, self.tn + self.fn_)
    }
    /// Recall of Normal.
    pub fn normal_recall(&self) -> f64 {
        ratio(self.tn, self.tn + self.fp)
    }
    /// F1 of Normal.
    pub fn normal_f1(&self) -> f64 {
        f1(self.normal_precision(), self.normal_recall())
    }
    /// Share of rows flagged Suspicious.
    pub fn flagged(&self) -> f64 {
        ratio(self.tp + self.fp, self.total())
    }
}

/// One detector's results on one labelled set.
#[derive(Debug, Clone)]
pub struct Report {
    /// Detector name for the tables.
    pub detector: String,
    /// All rows.
    pub overall: Counts,
    /// Per scenario, in [`Scenario::ALL`] order.
    pub per_scenario: Vec<(Scenario, Counts)>,
}

/// Scores `predicted` against the samples' labels.
pub fn evaluate(detector: &str, samples: &[Sample], predicted: &[bool]) -> Report {
    let mut overall = Counts::default();
    let mut per: Vec<(Scenario, Counts)> = Scenario::ALL.iter().map(|&s| (s, Counts::default())).collect();
    for (s, &p) in samples.iter().zip(predicted) {
        overall.add(p, s.suspicious);
        if let Some((_, c)) = per.iter_mut().find(|(sc, _)| *sc == s.scenario) {
            c.add(p, s.suspicious);
        }
    }
    per.retain(|(_, c)| c.total() > 0);
    Report { detector: detector.to_string(), overall, per_scenario: per }
}

/// A fail2ban-style rule (`maxretry = 5`, `findtime = 10m`) on a
/// fingerprint: at least 5 failed logins within 10 minutes. A fingerprint
/// carries a count and a time span, not timestamps, so "within 10 minutes"
/// is read as: the span is at most 10 minutes, or the average rate reaches
/// 5 per 10 minutes. Failures before a session are assumed to fall within
/// 10 minutes of each other (people retry at once).
pub fn fail2ban(fp: &Fingerprint) -> bool {
    let failed = fp.failed_logins as f32;
    if failed < 5.0 {
        return false;
    }
    if fp.commands > 0 {
        return true;
    }
    fp.session_duration_min <= 10.0 || failed * 10.0 / fp.session_duration_min >= 5.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::Protocol;

    #[test]
    fn metrics_from_counts() {
        let mut c = Counts::default();
        for (p, t) in [(true, true), (true, true), (true, false), (false, true), (false, false), (false, false)] {
            c.add(p, t);
        }
        assert_eq!((c.tp, c.fp, c.tn, c.fn_), (2, 1, 2, 1));
        assert!((c.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.fpr() - 1.0 / 3.0).abs() < 1e-12);
        assert!((c.normal_recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!(Counts::default().precision().is_nan());
    }

    #[test]
    fn fail2ban_counts_failures_per_ten_minutes() {
        let fp = |failed, minutes, commands| Fingerprint {
            login_hour: 3,
            session_duration_min: minutes,
            commands,
            failed_logins: failed,
            protocol: Protocol::Ssh,
            typing_speed_wpm: None,
            risky_commands: None,
        };
        assert!(fail2ban(&fp(5, 2.0, 0)));
        assert!(!fail2ban(&fp(4, 2.0, 0)));
        assert!(!fail2ban(&fp(48, 1440.0, 0)), "2 an hour slips under the rule");
        assert!(fail2ban(&fp(6, 30.0, 12)), "a user who mistyped 6 times is banned");
    }
}
