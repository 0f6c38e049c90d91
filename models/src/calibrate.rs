//! Calibration of a forest's vote share into a probability (Platt scaling),
//! and how reliable a probability is: Brier score, expected calibration
//! error and a reliability table.
//!
//! The forest is fitted on training devices; its calibration on devices it
//! never saw (the validation devices, neither trained nor evaluated on), so
//! the probability says how often a verdict of that share was right on new
//! devices, not how well the trees remember their own data.

use bfp_common::model::Calibration;

use crate::error::{Error, Result};
use crate::train::{self, TrainConfig};

/// Calibration for a forest trained on `fit` rows plus the validation rows:
/// a sibling forest with the same settings is trained on `fit` alone, and
/// Platt scaling fitted to its vote shares on the validation rows (which it
/// never saw). The shipped forest saw the validation rows, so its own shares
/// on them would be over-confident; the sibling's are what a forest of these
/// settings says of unseen devices.
pub fn fit_on_sibling<const N: usize>(
    fit_x: &[[f32; N]],
    fit_y: &[bool],
    val_x: &[[f32; N]],
    val_y: &[bool],
    cfg: &TrainConfig,
) -> Result<Calibration> {
    let sibling = train::fit(fit_x, fit_y, cfg)?;
    let trees = f32::from(cfg.trees);
    let shares: Vec<f32> = train::suspicious_votes(&sibling, val_x)?.into_iter().map(|v| v as f32 / trees).collect();
    fit(&shares, val_y)
}

/// Bins of the reliability table and of the expected calibration error.
pub const BINS: usize = 10;

/// Fits Platt scaling to `shares` (Suspicious vote share per row) and their
/// truth, with Platt's smoothed targets (so a perfectly separated set does
/// not drive the slope to infinity), by Newton's method on the log loss.
pub fn fit(shares: &[f32], suspicious: &[bool]) -> Result<Calibration> {
    let positives = suspicious.iter().filter(|&&s| s).count() as f64;
    let negatives = suspicious.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Err(Error::Learner("calibration needs rows of both classes".into()));
    }
    let hi = (positives + 1.0) / (positives + 2.0);
    let lo = 1.0 / (negatives + 2.0);
    let targets: Vec<f64> = suspicious.iter().map(|&s| if s { hi } else { lo }).collect();
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..100 {
        // Gradient and Hessian of the log loss in (a, b).
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&s, &t) in shares.iter().zip(&targets) {
            let s = f64::from(s);
            let p = 1.0 / (1.0 + (-(a * s + b)).exp());
            let d = p - t;
            let w = (p * (1.0 - p)).max(1e-12);
            ga += d * s;
            gb += d;
            haa += w * s * s;
            hab += w * s;
            hbb += w;
        }
        // A little ridge keeps the step defined when all shares are equal.
        haa += 1e-9;
        hbb += 1e-9;
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() < 1e-10 && db.abs() < 1e-10 {
            break;
        }
    }
    let calibration = Calibration { slope: a as f32, intercept: b as f32 };
    if !(calibration.slope > 0.0 && calibration.intercept.is_finite()) {
        return Err(Error::Learner(format!("calibration did not rise with the vote share: {calibration:?}")));
    }
    Ok(calibration)
}

/// One bin of a reliability table.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bin {
    /// Rows whose predicted P(Suspicious) fell in the bin.
    pub rows: usize,
    /// Their mean predicted P(Suspicious).
    pub predicted: f64,
    /// The share of them that were Suspicious.
    pub observed: f64,
}

/// How reliable probabilities of Suspicious are against the truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Reliability {
    /// Mean squared error of the probability (0 is perfect; always saying
    /// 0.5 scores 0.25).
    pub brier: f64,
    /// Expected calibration error: the bins' |predicted - observed|,
    /// weighted by their rows.
    pub ece: f64,
    /// The table, bins of width 1/[`BINS`] from 0 to 1.
    pub bins: [Bin; BINS],
}

/// The reliability of `probabilities` (of Suspicious) against the truth.
pub fn reliability(probabilities: &[f32], suspicious: &[bool]) -> Reliability {
    let mut bins = [Bin::default(); BINS];
    let mut brier = 0.0;
    for (&p, &s) in probabilities.iter().zip(suspicious) {
        let p = f64::from(p);
        let y = if s { 1.0 } else { 0.0 };
        brier += (p - y) * (p - y);
        let bin = &mut bins[((p * BINS as f64) as usize).min(BINS - 1)];
        bin.rows += 1;
        bin.predicted += p;
        bin.observed += y;
    }
    let n = probabilities.len().max(1) as f64;
    let mut ece = 0.0;
    for bin in &mut bins {
        if bin.rows > 0 {
            bin.predicted /= bin.rows as f64;
            bin.observed /= bin.rows as f64;
            ece += bin.rows as f64 / n * (bin.predicted - bin.observed).abs();
        }
    }
    Reliability { brier: brier / n, ece, bins }
}

/// The reliability as a Markdown table (bins without rows left out).
pub fn table(r: &Reliability) -> String {
    let mut out =
        String::from("| P(Suspicious) | rows | mean predicted | observed Suspicious |\n|---|---:|---:|---:|\n");
    for (i, bin) in r.bins.iter().enumerate().filter(|(_, b)| b.rows > 0) {
        out.push_str(&format!(
            "| {:.1}–{:.1} | {} | {:.3} | {:.3} |\n",
            i as f64 / BINS as f64,
            (i + 1) as f64 / BINS as f64,
            bin.rows,
            bin.predicted,
            bin.observed
        ));
    }
    out
}

/// Who decides a calibrated model's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decides {
    /// The trees' majority; calibration only says how sure.
    Majority,
    /// The calibrated probability (above 0.5 is Suspicious).
    Probability,
}

/// The card's calibration paragraph and table: the curve, then Brier score
/// and expected calibration error of the raw vote share and of the
/// calibrated probability on `shares` (held-out rows) against `truth`, then
/// the calibrated reliability table.
///
/// `decides` says who decides the class: `/api/predict` keeps the trees'
/// majority (the original system's verdicts), the agent the calibrated
/// probability ([`bfp_common::CompactModel::score_calibrated`]).
pub fn markdown(
    calibration: &Calibration,
    shares: &[f32],
    truth: &[bool],
    fitted_on: &str,
    decides: Decides,
) -> String {
    let calibrated: Vec<f32> = shares.iter().map(|&s| calibration.probability(s)).collect();
    let raw = reliability(shares, truth);
    let after = reliability(&calibrated, truth);
    let mut s = format!(
        "Confidence is a calibrated probability: P(Suspicious) = 1 / (1 + exp(-({:.4} x s + ({:.4})))) of the \
         share s of trees voting Suspicious (Platt scaling, fitted on {fitted_on}, by a sibling forest of the same \
         settings trained without them), stored in the artifact (container format 2) and applied by the compact \
         model without smartcore. {} The confidence is the calibrated probability of the verdict, floored at \
         0.5 and capped at {} (a forest of simulated devices never knows for certain).\n\n",
        calibration.slope,
        calibration.intercept,
        match decides {
            Decides::Majority => "The verdict stays the trees' majority (the original system's `/api/predict`).",
            Decides::Probability => {
                "The agent's verdict is the calibrated probability's class (Suspicious when P(Suspicious) > 0.5): \
                 a bare majority of trees with a calibrated probability below 0.5 is a row that is more often \
                 Normal than not (the table below), and the agent used to flag it."
            }
        },
        bfp_common::model::MAX_CALIBRATED_CONFIDENCE
    );
    s.push_str(&format!(
        "| on the {} held-out rows | Brier score | expected calibration error ({BINS} bins) |\n|---|---:|---:|\n",
        shares.len()
    ));
    s.push_str(&format!("| vote share (before) | {:.4} | {:.4} |\n", raw.brier, raw.ece));
    s.push_str(&format!("| calibrated (shipped) | {:.4} | {:.4} |\n\n", after.brier, after.ece));
    s.push_str("Reliability of the calibrated probability on the held-out rows:\n\n");
    s.push_str(&table(&after));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_scaling_fits_a_rising_curve_that_matches_the_rates() {
        // Shares 0.2 are Suspicious 10% of the time, shares 0.9 90%.
        let mut shares = Vec::new();
        let mut truth = Vec::new();
        for i in 0..1000 {
            shares.push(0.2);
            truth.push(i % 10 == 0);
            shares.push(0.9);
            truth.push(i % 10 != 0);
        }
        let c = fit(&shares, &truth).unwrap();
        assert!(c.slope > 0.0);
        assert!((c.probability(0.2) - 0.1).abs() < 0.01, "{}", c.probability(0.2));
        assert!((c.probability(0.9) - 0.9).abs() < 0.01, "{}", c.probability(0.9));
        let probabilities: Vec<f32> = shares.iter().map(|&s| c.probability(s)).collect();
        let r = reliability(&probabilities, &truth);
        assert!(r.ece < 0.01, "{}", r.ece);
        assert!((r.brier - 0.09).abs() < 0.005, "{}", r.brier);
        // The raw shares are over-confident and further from the truth.
        let raw = reliability(&shares, &truth);
        assert!(raw.ece > 0.05 && raw.brier > r.brier, "{raw:?}");
        assert!(table(&r).contains("| 0.0–0.1 |") || table(&r).contains("| 0.1–0.2 |"));
        assert!(fit(&[0.5, 0.6], &[true, true]).is_err());
    }
}
