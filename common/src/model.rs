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
use crate::fingerprint::{FEATURE_COUNT, FEATURE_NAMES, SCHEMA_VERSION};

/// First bytes of every artifact: a file that is not a model fails fast.
pub const MAGIC: [u8; 4] = *b"BFPM";
/// Version of this container format (not of the trained model).
pub const FORMAT_VERSION: u16 = 1;
/// `Node::feature` of a leaf.
pub const LEAF: u8 = u8::MAX;

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
    /// Feature schema the model was trained on ([`SCHEMA_VERSION`]).
    pub schema_version: u16,
    /// Human-readable model version, e.g. `forest-2026.11.25`.
    pub model_version: String,
    /// Feature names in vector order; must equal [`FEATURE_NAMES`].
    pub feature_names: Vec<String>,
    /// Index of each tree's root in `nodes`.
    pub roots: Vec<u32>,
    /// All trees' nodes.
    pub nodes: Vec<Node>,
}

/// The result of scoring one fingerprint. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Whether the forest's majority says Suspicious.
    pub suspicious: bool,
    /// Share of trees voting for the predicted class, in [0.5, 1].
    pub confidence: f32,
    /// Per-feature contribution towards Suspicious (positive) or Normal
    /// (negative), averaged over the trees, in [`FEATURE_NAMES`] order.
    pub contributions: [f32; FEATURE_COUNT],
}

impl Verdict {
    /// `"Suspicious"` or `"Normal"`, the labels of the public API.
    pub fn label(&self) -> &'static str {
        if self.suspicious {
            "Suspicious"
        } else {
            "Normal"
        }
    }

    /// The features that pushed towards the predicted class, strongest first,
    /// as `(feature index, contribution)`, at most `n`.
    pub fn top_features(&self, n: usize) -> impl Iterator<Item = (usize, f32)> {
        let sign = if self.suspicious { 1.0 } else { -1.0 };
        let mut order: [usize; FEATURE_COUNT] = std::array::from_fn(|i| i);
        let c = self.contributions;
        order.sort_by(|&a, &b| (c[b] * sign).total_cmp(&(c[a] * sign)));
        order.into_iter().filter(move |&i| c[i] * sign > 1e-6).take(n).map(move |i| (i, c[i]))
    }
}

impl CompactModel {
    /// The artifact bytes (postcard).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::Model(format!("encode: {e}")))
    }

    /// Decodes and checks an artifact: magic, container format, feature
    /// schema, and that every node index stays inside the forest and every
    /// path goes strictly downward (so scoring can never loop or panic).
    pub fn from_bytes(bytes: &[u8]) -> Result<CompactModel> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(Error::Model("not a bfp model (bad magic)".into()));
        }
        let model: CompactModel = postcard::from_bytes(bytes).map_err(|e| Error::Model(format!("decode: {e}")))?;
        model.validate()?;
        Ok(model)
    }

    fn validate(&self) -> Result<()> {
        if self.format_version != FORMAT_VERSION {
            return Err(Error::Model(format!(
                "container format {} is not supported (this build reads {FORMAT_VERSION})",
                self.format_version
            )));
        }
        if self.schema_version != SCHEMA_VERSION || self.feature_names.iter().map(String::as_str).ne(FEATURE_NAMES) {
            return Err(Error::Model(format!(
                "feature schema {} {:?} does not match this build's schema {SCHEMA_VERSION} {:?}",
                self.schema_version, self.feature_names, FEATURE_NAMES
            )));
        }
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
            if usize::from(node.feature) >= FEATURE_COUNT || !node.threshold.is_finite() {
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

    /// Scores one feature vector. No allocation; cost is one root-to-leaf
    /// walk per tree.
    pub fn score(&self, x: &[f32; FEATURE_COUNT]) -> Verdict {
        let mut votes = 0u32;
        let mut contributions = [0f32; FEATURE_COUNT];
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
        for c in &mut contributions {
            *c /= trees * 255.0;
        }
        Verdict { suspicious, confidence: if suspicious { share } else { 1.0 - share }, contributions }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
