//! The compact model: a forest of small decision trees in a flat node array,
//! encoded with postcard, scored without allocation and without smartcore.
//!
//! The training side (`bfp-models`) exports smartcore's trees node for node,
//! so the compact model gives exactly the trained model's votes. Each node also
//! carries the share of suspicious training samples that reached it; walking a
//! path, the change of that share at each split is that split's feature
//! contribution (Saabas' method), which is how a verdict explains itself.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema;

/// First bytes of every artifact: a file that is not a model fails fast.
pub const MAGIC: [u8; 4] = *b"BFPM";
/// Version of this container format (not of the trained model). Version 2
/// adds the [`Calibration`] after the nodes; version 1 artifacts (without
/// it) still load, their confidence the raw share of tree votes.
pub const FORMAT_VERSION: u16 = 2;
/// The container format before calibration.
pub const FORMAT_VERSION_UNCALIBRATED: u16 = 1;
/// Highest confidence a calibrated model reports: a probability from a
/// forest of a few dozen trees fitted on simulated devices is never a
/// certainty.
pub const MAX_CALIBRATED_CONFIDENCE: f32 = 0.995;
/// `Node::feature` of a leaf.
pub const LEAF: u8 = u8::MAX;
/// Most features any schema may have: a [`Verdict`] keeps its contributions
/// in a fixed array of this size, so scoring never allocates.
pub const MAX_FEATURES: usize = 32;

/// One tree node. Internal nodes send `x[feature] <= threshold` to `left`,
/// everything else to `right` (smartcore's rule). Leaves vote `output`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Feature index, or [`LEAF`].
    pub feature: u8,
    /// Split threshold (unused in leaves).
    pub threshold: f32,
    /// Index (into the forest's node array) of the `<=` child.
    pub left: u32,
    /// Index of the `>` child.
    pub right: u32,
    /// Class this node votes: 0 Normal, 1 Suspicious.
    pub output: u8,
    /// Share of suspicious training samples at this node, quantised 0–255.
    pub suspicious_share: u8,
}

/// A trained, versioned forest as the agent and the collector embed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactModel {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// Container format, [`FORMAT_VERSION`].
    pub format_version: u16,
    /// Feature schema the model was trained on: 1 (the seed six plus risky
    /// commands, [`crate::schema::PREDICT_SCHEMA`]), 2 (log-derived,
    /// [`crate::schema::AGENT_SCHEMA_V2`]) or 3 (log-derived with the
    /// escalation features, [`crate::schema::AGENT_SCHEMA`]).
    pub schema_version: u16,
    /// Human-readable model version, e.g. `forest-2026.11.25`.
    pub model_version: String,
    /// Feature names in vector order; must equal the schema's names
    /// ([`schema::feature_names`]).
    pub feature_names: Vec<String>,
    /// Index of each tree's root in `nodes`.
    pub roots: Vec<u32>,
    /// All trees' nodes.
    pub nodes: Vec<Node>,
    /// Maps the share of Suspicious votes to a probability (format 2;
    /// `None` in a format-1 artifact, or a model not calibrated yet).
    pub calibration: Option<Calibration>,
}

/// Platt scaling of the forest's vote share `s` (share of trees voting
/// Suspicious): P(Suspicious) = 1 / (1 + exp(-(slope * s + intercept))),
/// fitted on devices the forest was not trained on. Monotone when `slope`
/// is positive (checked on load).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Weight of the vote share.
    pub slope: f32,
    /// Offset.
    pub intercept: f32,
}

impl Calibration {
    /// P(Suspicious) for a vote share in [0, 1].
    pub fn probability(&self, vote_share: f32) -> f32 {
        1.0 / (1.0 + (-(self.slope * vote_share + self.intercept)).exp())
    }
}

/// The format-1 layout (no calibration), to read older artifacts.
#[derive(Deserialize)]
struct CompactModelV1 {
    magic: [u8; 4],
    format_version: u16,
    schema_version: u16,
    model_version: String,
    feature_names: Vec<String>,
    roots: Vec<u32>,
    nodes: Vec<Node>,
}

/// A verdict's class, written `"Normal"` / `"Suspicious"` as the original
/// API writes it, wherever a verdict crosses a boundary (the agent's JSON
/// lines, the collector's rows and replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Prediction {
    /// Nothing to act on.
    Normal,
    /// Worth an analyst's look.
    Suspicious,
}

impl Prediction {
    /// `Suspicious` when `suspicious`, else `Normal`.
    pub fn from_suspicious(suspicious: bool) -> Prediction {
        if suspicious {
            Prediction::Suspicious
        } else {
            Prediction::Normal
        }
    }

    /// Whether this is [`Prediction::Suspicious`].
    pub fn is_suspicious(self) -> bool {
        self == Prediction::Suspicious
    }

    /// `"Normal"` or `"Suspicious"`.
    pub fn label(self) -> &'static str {
        match self {
            Prediction::Normal => "Normal",
            Prediction::Suspicious => "Suspicious",
        }
    }
}

impl std::fmt::Display for Prediction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.label())
    }
}

/// The result of scoring one fingerprint. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Whether the forest's majority says Suspicious (the calibrated
    /// probability's class, from [`CompactModel::score_calibrated`]).
    pub suspicious: bool,
    /// Probability of the predicted class, in [0.5, 1): the calibrated
    /// probability (floored at 0.5, at most [`MAX_CALIBRATED_CONFIDENCE`])
    /// for a calibrated model, the share of trees voting for the class for
    /// an uncalibrated one.
    pub confidence: f32,
    /// Share of trees voting Suspicious, in [0, 1] (what the forest said
    /// before calibration).
    pub vote_share: f32,
    /// Per-feature contribution towards Suspicious (positive) or Normal
    /// (negative), averaged over the trees, in the schema's feature order;
    /// only the first `features` entries are meaningful (the rest are 0).
    pub contributions: [f32; MAX_FEATURES],
    /// How many features the scoring model has.
    pub features: u8,
}

impl Verdict {
    /// A verdict with no feature contributions (a rule's verdict, a test's).
    pub fn flat(suspicious: bool, confidence: f32, features: usize) -> Verdict {
        Verdict {
            suspicious,
            confidence,
            vote_share: if suspicious { confidence } else { 1.0 - confidence },
            contributions: [0.0; MAX_FEATURES],
            features: features.min(MAX_FEATURES) as u8,
        }
    }

    /// A verdict with the given contributions (at most [`MAX_FEATURES`]).
    pub fn with_contributions(suspicious: bool, confidence: f32, contributions: &[f32]) -> Verdict {
        let mut v = Verdict::flat(suspicious, confidence, contributions.len());
        let n = usize::from(v.features);
        v.contributions[..n].copy_from_slice(&contributions[..n]);
        v
    }

    /// The meaningful contributions, one per feature of the model's schema.
    pub fn contributions(&self) -> &[f32] {
        &self.contributions[..usize::from(self.features)]
    }

    /// The predicted class.
    pub fn prediction(&self) -> Prediction {
        Prediction::from_suspicious(self.suspicious)
    }

    /// `"Suspicious"` or `"Normal"`, the labels of the public API.
    pub fn label(&self) -> &'static str {
        self.prediction().label()
    }

    /// The features that pushed towards the predicted class, strongest first,
    /// as `(feature index, contribution)`, at most `n`.
    pub fn top_features(&self, n: usize) -> impl Iterator<Item = (usize, f32)> {
        let sign = if self.suspicious { 1.0 } else { -1.0 };
        let len = usize::from(self.features);
        let mut order: [usize; MAX_FEATURES] = std::array::from_fn(|i| i);
        let c = self.contributions;
        order[..len].sort_by(|&a, &b| (c[b] * sign).total_cmp(&(c[a] * sign)));
        order.into_iter().take(len).filter(move |&i| c[i] * sign > 1e-6).take(n).map(move |i| (i, c[i]))
    }
}

impl CompactModel {
    /// The artifact bytes (postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::Model(format!("encode: {e}")))
    }

    /// Decodes and checks an artifact of any schema this build knows: magic,
    /// container format, feature schema and names, and that every node index
    /// stays inside the forest, every split names a feature of the schema and
    /// every path goes strictly downward (so scoring can never loop or panic).
    pub fn from_bytes(bytes: &[u8]) -> Result<CompactModel> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(Error::Model("not a bfp model (bad magic)".into()));
        }
        // The container version first: it says which layout follows.
        let ((_, version), _): (([u8; 4], u16), _) =
            postcard::take_from_bytes(bytes).map_err(|e| Error::Model(format!("decode: {e}")))?;
        let decode = |e: postcard::Error| Error::Model(format!("decode: {e}"));
        let model = match version {
            FORMAT_VERSION_UNCALIBRATED => {
                let v1: CompactModelV1 = postcard::from_bytes(bytes).map_err(decode)?;
                CompactModel {
                    magic: v1.magic,
                    format_version: v1.format_version,
                    schema_version: v1.schema_version,
                    model_version: v1.model_version,
                    feature_names: v1.feature_names,
                    roots: v1.roots,
                    nodes: v1.nodes,
                    calibration: None,
                }
            }
            FORMAT_VERSION => postcard::from_bytes(bytes).map_err(decode)?,
            other => {
                return Err(Error::Model(format!(
                    "container format {other} is not supported (this build reads {FORMAT_VERSION_UNCALIBRATED} and \
                     {FORMAT_VERSION})"
                )))
            }
        };
        model.validate()?;
        Ok(model)
    }

    /// As [`CompactModel::from_bytes`], and the artifact must be of feature
    /// schema `schema` (the collector's `/api/predict` needs 1, the agent 3).
    /// `who` names the reader in the error.
    pub fn from_bytes_of_schema(bytes: &[u8], schema: u16, who: &str) -> Result<CompactModel> {
        let model = CompactModel::from_bytes(bytes)?;
        if model.schema_version != schema {
            return Err(Error::Model(format!(
                "this artifact is a feature-schema {} model ({} features: {}...); {who} needs a schema-{schema} model \
                 ({} features)",
                model.schema_version,
                model.feature_names.len(),
                model.feature_names.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                schema::feature_names(schema).map_or(0, <[&str]>::len),
            )));
        }
        Ok(model)
    }

    /// Number of features a vector must have to be scored by this model.
    pub fn feature_count(&self) -> usize {
        self.feature_names.len()
    }

    fn validate(&self) -> Result<()> {
        if self.format_version != FORMAT_VERSION && self.format_version != FORMAT_VERSION_UNCALIBRATED {
            return Err(Error::Model(format!(
                "container format {} is not supported (this build reads {FORMAT_VERSION})",
                self.format_version
            )));
        }
        if let Some(c) = self.calibration {
            if !(c.slope.is_finite() && c.intercept.is_finite() && c.slope > 0.0) {
                return Err(Error::Model(format!(
                    "calibration slope {} / intercept {} is not a rising curve",
                    c.slope, c.intercept
                )));
            }
        }
        let Some(names) = schema::feature_names(self.schema_version) else {
            return Err(Error::Model(format!(
                "feature schema {} is not known to this build (it reads schemas {:?})",
                self.schema_version,
                schema::KNOWN_SCHEMAS
            )));
        };
        if self.feature_names.iter().map(String::as_str).ne(names.iter().copied()) {
            return Err(Error::Model(format!(
                "feature names {:?} do not match this build's schema {} {:?}",
                self.feature_names, self.schema_version, names
            )));
        }
        let feature_count = names.len();
        if self.roots.is_empty() {
            return Err(Error::Model("the forest has no trees".into()));
        }
        let n = self.nodes.len() as u32;
        for &root in &self.roots {
            if root >= n {
                return Err(Error::Model(format!("root {root} out of range")));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.feature == LEAF {
                if node.output > 1 {
                    return Err(Error::Model(format!("leaf {i} votes class {}", node.output)));
                }
                continue;
            }
            if usize::from(node.feature) >= feature_count || !node.threshold.is_finite() {
                return Err(Error::Model(format!("node {i} splits on invalid feature/threshold")));
            }
            // Children after their parent: guarantees termination.
            if node.left <= i as u32 || node.right <= i as u32 || node.left >= n || node.right >= n {
                return Err(Error::Model(format!("node {i} has children out of order")));
            }
        }
        Ok(())
    }

    /// Number of trees.
    pub fn trees(&self) -> usize {
        self.roots.len()
    }

    /// Scores one feature vector of the model's schema (see
    /// [`CompactModel::feature_count`]). No allocation; cost is one
    /// root-to-leaf walk per tree.
    ///
    /// # Panics
    /// When `x` does not have the model's feature count: that is a
    /// programming error (a vector of the wrong schema), never an input
    /// error. Use [`CompactModel::try_score`] where the length is not known.
    pub fn score(&self, x: &[f32]) -> Verdict {
        let n = self.feature_names.len();
        assert_eq!(x.len(), n, "a schema-{} model scores {n} features, got {}", self.schema_version, x.len());
        let mut votes = 0u32;
        let mut contributions = [0f32; MAX_FEATURES];
        for &root in &self.roots {
            let mut node = &self.nodes[root as usize];
            while node.feature != LEAF {
                let feature = usize::from(node.feature);
                let next = if x[feature] <= node.threshold { node.left } else { node.right };
                let child = &self.nodes[next as usize];
                contributions[feature] += f32::from(child.suspicious_share) - f32::from(node.suspicious_share);
                node = child;
            }
            votes += u32::from(node.output);
        }
        let trees = self.roots.len() as f32;
        let share = votes as f32 / trees;
        // Ties go to Normal, as smartcore's vote does (first class wins).
        let suspicious = share > 0.5;
        for c in &mut contributions[..n] {
            *c /= trees * 255.0;
        }
        Verdict {
            suspicious,
            confidence: self.confidence(suspicious, share),
            vote_share: share,
            contributions,
            features: n as u8,
        }
    }

    /// Probability of the predicted class given the share of Suspicious
    /// votes. The class stays the forest's majority (so the compact model
    /// keeps smartcore's verdicts); calibration only says how sure it is. A
    /// calibrated probability that disagrees with the majority (the vote was
    /// close) is floored at 0.5: a coin toss, not the other class.
    pub fn confidence(&self, suspicious: bool, vote_share: f32) -> f32 {
        match self.calibration {
            Some(c) => {
                let p = c.probability(vote_share);
                let p_class = if suspicious { p } else { 1.0 - p };
                p_class.clamp(0.5, MAX_CALIBRATED_CONFIDENCE)
            }
            None => {
                if suspicious {
                    vote_share
                } else {
                    1.0 - vote_share
                }
            }
        }
    }

    /// As [`CompactModel::score`], but the class is the calibrated
    /// probability's: Suspicious when P(Suspicious) > 0.5. A bare majority
    /// of trees is not that: on the agent model's held-out devices, rows
    /// the trees called Suspicious with P(Suspicious) in 0.4–0.5 were 2 %
    /// Suspicious (see the model card's reliability table). The agent
    /// decides so; `/api/predict` keeps the original system's majority
    /// ([`CompactModel::score`]). An uncalibrated model decides by majority
    /// either way.
    pub fn score_calibrated(&self, x: &[f32]) -> Verdict {
        let mut verdict = self.score(x);
        if let Some(c) = self.calibration {
            verdict.suspicious = c.probability(verdict.vote_share) > 0.5;
            verdict.confidence = self.confidence(verdict.suspicious, verdict.vote_share);
        }
        verdict
    }

    /// As [`CompactModel::score`], with a wrong-length vector an error.
    pub fn try_score(&self, x: &[f32]) -> Result<Verdict> {
        if x.len() != self.feature_count() {
            return Err(Error::Model(format!(
                "a schema-{} model scores {} features, got {}",
                self.schema_version,
                self.feature_count(),
                x.len()
            )));
        }
        Ok(self.score(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{PREDICT_FEATURE_NAMES as FEATURE_NAMES, PREDICT_SCHEMA as SCHEMA_VERSION};

    /// A one-tree forest: failed_logins <= 3.5 → Normal, else Suspicious.
    fn stump() -> CompactModel {
        let leaf =
            |output, share| Node { feature: LEAF, threshold: 0.0, left: 0, right: 0, output, suspicious_share: share };
        CompactModel {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            schema_version: SCHEMA_VERSION,
            model_version: "test-stump".into(),
            feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            roots: vec![0],
            calibration: None,
            nodes: vec![
                Node { feature: 3, threshold: 3.5, left: 1, right: 2, output: 0, suspicious_share: 128 },
                leaf(0, 10),
                leaf(1, 250),
            ],
        }
    }

    #[test]
    fn round_trips_and_scores_with_reasons() {
        let bytes = stump().to_bytes().unwrap();
        let model = CompactModel::from_bytes(&bytes).unwrap();
        let v = model.score(&[3.0, 5.0, 3.0, 8.0, 3.0, 120.0, 0.0]);
        assert!(v.suspicious);
        assert_eq!(v.confidence, 1.0);
        assert_eq!(v.top_features(3).map(|(i, _)| FEATURE_NAMES[i]).collect::<Vec<_>>(), vec!["failed_logins"]);
        let v = model.score(&[3.0, 5.0, 3.0, 1.0, 3.0, 120.0, 0.0]);
        assert_eq!(v.label(), "Normal");
        assert_eq!(v.top_features(3).count(), 1);
    }

    #[test]
    fn refuses_garbage_and_unsafe_forests() {
        assert!(CompactModel::from_bytes(b"").is_err());
        assert!(CompactModel::from_bytes(b"BFPM\xff\xff\xff").is_err());
        let mut looping = stump();
        looping.nodes[0].left = 0;
        assert!(CompactModel::from_bytes(&looping.to_bytes().unwrap()).is_err());
        let mut other_schema = stump();
        other_schema.schema_version = 99;
        assert!(CompactModel::from_bytes(&other_schema.to_bytes().unwrap()).is_err());
        let mut bad_feature = stump();
        bad_feature.nodes[0].feature = 40;
        assert!(CompactModel::from_bytes(&bad_feature.to_bytes().unwrap()).is_err());
        // Feature 10 exists in schema 2, not in schema 1.
        let mut beyond_schema = stump();
        beyond_schema.nodes[0].feature = 10;
        assert!(CompactModel::from_bytes(&beyond_schema.to_bytes().unwrap()).is_err());
        let mut wrong_names = stump();
        wrong_names.schema_version = schema::AGENT_SCHEMA;
        assert!(CompactModel::from_bytes(&wrong_names.to_bytes().unwrap()).unwrap_err().to_string().contains("names"));
    }

    fn schema2_stump() -> CompactModel {
        let mut m = stump();
        m.schema_version = schema::AGENT_SCHEMA;
        m.feature_names = schema::AGENT_FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
        // Split on an agent-schema-only feature: new network for the user.
        m.nodes[0].feature = 9;
        m.nodes[0].threshold = 0.5;
        m
    }

    #[test]
    fn any_known_schema_loads_and_readers_can_insist_on_theirs() {
        let one = stump().to_bytes().unwrap();
        let two = schema2_stump().to_bytes().unwrap();
        assert_eq!(CompactModel::from_bytes(&two).unwrap().feature_count(), schema::AGENT_FEATURE_COUNT);
        CompactModel::from_bytes_of_schema(&one, 1, "the collector").unwrap();
        let err = CompactModel::from_bytes_of_schema(&two, 1, "the collector").unwrap_err().to_string();
        assert!(err.contains("feature-schema 3") && err.contains("the collector needs a schema-1 model"), "{err}");
        let err = CompactModel::from_bytes_of_schema(&one, 3, "the agent").unwrap_err().to_string();
        assert!(err.contains("feature-schema 1") && err.contains("the agent needs a schema-3 model"), "{err}");
    }

    #[test]
    fn a_schema_two_artifact_stays_readable_beside_schema_three() {
        let mut old = stump();
        old.schema_version = schema::AGENT_SCHEMA_V2;
        old.feature_names = schema::AGENT_V2_FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
        old.nodes[0].feature = 9;
        old.nodes[0].threshold = 0.5;
        let old = CompactModel::from_bytes(&old.to_bytes().unwrap()).unwrap();
        assert_eq!((old.schema_version, old.feature_count()), (2, schema::AGENT_V2_FEATURE_COUNT));
        // It scores the prefix of a schema-3 vector: schema 3 extends it at the end.
        let mut x = [0f32; schema::AGENT_FEATURE_COUNT];
        x[9] = 1.0;
        assert!(old.score(&x[..old.feature_count()]).suspicious);
        // A schema-2 artifact with schema 3's names (or the reverse) is refused.
        let mut mixed = old.clone();
        mixed.feature_names = schema::AGENT_FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
        assert!(CompactModel::from_bytes(&mixed.to_bytes().unwrap()).unwrap_err().to_string().contains("names"));
        let err = CompactModel::from_bytes_of_schema(&old.to_bytes().unwrap(), schema::AGENT_SCHEMA, "the agent")
            .unwrap_err()
            .to_string();
        assert!(err.contains("feature-schema 2") && err.contains("needs a schema-3 model"), "{err}");
    }

    #[test]
    fn scores_a_vector_of_its_own_length_only() {
        let m = schema2_stump();
        let mut x = [0f32; schema::AGENT_FEATURE_COUNT];
        assert!(!m.score(&x).suspicious);
        x[9] = 1.0;
        let v = m.score(&x);
        assert!(v.suspicious);
        assert_eq!(v.contributions().len(), schema::AGENT_FEATURE_COUNT);
        assert_eq!(v.top_features(2).map(|(i, _)| i).collect::<Vec<_>>(), vec![9]);
        assert!(m.try_score(&[0.0; 7]).unwrap_err().to_string().contains("got 7"));
        assert!(stump().try_score(&x).is_err());
    }

    #[test]
    fn calibration_is_monotone_bounded_and_keeps_the_majority() {
        let mut m = stump();
        m.calibration = Some(Calibration { slope: 9.0, intercept: -4.0 });
        let m = CompactModel::from_bytes(&m.to_bytes().unwrap()).unwrap();
        let mut last = 0.0;
        for votes in 0..=25 {
            let share = votes as f32 / 25.0;
            let p = m.calibration.unwrap().probability(share);
            assert!((0.0..=1.0).contains(&p) && p >= last, "{share}: {p}");
            last = p;
            for suspicious in [false, true] {
                let c = m.confidence(suspicious, share);
                assert!((0.5..=MAX_CALIBRATED_CONFIDENCE).contains(&c), "{share}: {c}");
            }
        }
        // Unanimous trees never make a certainty.
        let v = m.score(&[3.0, 5.0, 3.0, 8.0, 3.0, 120.0, 0.0]);
        assert!(v.suspicious && v.vote_share == 1.0 && v.confidence < 1.0, "{v:?}");
        // A falling curve is refused.
        let mut falling = stump();
        falling.calibration = Some(Calibration { slope: -1.0, intercept: 0.0 });
        assert!(CompactModel::from_bytes(&falling.to_bytes().unwrap()).unwrap_err().to_string().contains("rising"));
    }

    #[test]
    fn the_calibrated_class_is_the_probability_s_not_the_bare_majority() {
        let x = [3.0, 5.0, 3.0, 8.0, 3.0, 120.0, 0.0];
        let mut m = stump();
        assert!(m.score(&x).suspicious && m.score_calibrated(&x).suspicious, "uncalibrated: the majority");
        // Calibrated so that even a unanimous vote is P(Suspicious) = 0.27.
        m.calibration = Some(Calibration { slope: 1.0, intercept: -2.0 });
        let (majority, calibrated) = (m.score(&x), m.score_calibrated(&x));
        assert!(majority.suspicious && majority.confidence == 0.5, "{majority:?}");
        assert!(!calibrated.suspicious && (calibrated.confidence - 0.731).abs() < 1e-3, "{calibrated:?}");
        assert_eq!(calibrated.vote_share, majority.vote_share);
    }

    #[test]
    fn a_format_one_artifact_still_loads_uncalibrated() {
        #[derive(Serialize)]
        struct V1<'a> {
            magic: [u8; 4],
            format_version: u16,
            schema_version: u16,
            model_version: &'a str,
            feature_names: &'a [String],
            roots: &'a [u32],
            nodes: &'a [Node],
        }
        let m = stump();
        let bytes = postcard::to_allocvec(&V1 {
            magic: MAGIC,
            format_version: FORMAT_VERSION_UNCALIBRATED,
            schema_version: m.schema_version,
            model_version: &m.model_version,
            feature_names: &m.feature_names,
            roots: &m.roots,
            nodes: &m.nodes,
        })
        .unwrap();
        let old = CompactModel::from_bytes(&bytes).unwrap();
        assert_eq!((old.format_version, old.calibration, old.nodes.clone()), (1, None, m.nodes));
        assert_eq!(old.score(&[3.0, 5.0, 3.0, 8.0, 3.0, 120.0, 0.0]).confidence, 1.0);
        let mut future = stump();
        future.format_version = 3;
        assert!(CompactModel::from_bytes(&future.to_bytes().unwrap()).unwrap_err().to_string().contains("format 3"));
    }

    #[test]
    #[should_panic(expected = "scores 7 features")]
    fn scoring_a_vector_of_another_schema_is_a_programming_error() {
        stump().score(&[0.0; schema::AGENT_FEATURE_COUNT]);
    }
}
