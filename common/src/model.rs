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
/// Version of this container format (not of the trained model).
pub const FORMAT_VERSION: u16 = 1;
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
    /// commands, [`crate::schema::PREDICT_SCHEMA`]) or 2 (log-derived,
    /// [`crate::schema::AGENT_SCHEMA`]).
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
    /// Whether the forest's majority says Suspicious.
    pub suspicious: bool,
    /// Share of trees voting for the predicted class, in [0.5, 1].
    pub confidence: f32,
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
        let model: CompactModel = postcard::from_bytes(bytes).map_err(|e| Error::Model(format!("decode: {e}")))?;
        model.validate()?;
        Ok(model)
    }

    /// As [`CompactModel::from_bytes`], and the artifact must be of feature
    /// schema `schema` (the collector's `/api/predict` needs 1, the agent 2).
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
        if self.format_version != FORMAT_VERSION {
            return Err(Error::Model(format!(
                "container format {} is not supported (this build reads {FORMAT_VERSION})",
                self.format_version
            )));
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
            confidence: if suspicious { share } else { 1.0 - share },
            contributions,
            features: n as u8,
        }
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
        // Split on a schema-2-only feature: new network for the user.
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
        assert!(err.contains("feature-schema 2") && err.contains("the collector needs a schema-1 model"), "{err}");
        let err = CompactModel::from_bytes_of_schema(&one, 2, "the agent").unwrap_err().to_string();
        assert!(err.contains("feature-schema 1") && err.contains("the agent needs a schema-2 model"), "{err}");
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
    #[should_panic(expected = "scores 7 features")]
    fn scoring_a_vector_of_another_schema_is_a_programming_error() {
        stump().score(&[0.0; schema::AGENT_FEATURE_COUNT]);
    }
}
