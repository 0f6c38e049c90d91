//! Training with smartcore: a random forest over the fingerprint features.

use smartcore::ensemble::random_forest_classifier::{RandomForestClassifier, RandomForestClassifierParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::DecisionTreeClassifier;

use crate::error::{Error, Result};

/// Feature matrix as smartcore takes it (f32, as the compact model scores).
pub type Matrix = DenseMatrix<f32>;
/// The trained forest. Labels: 0 Normal, 1 Suspicious.
pub type Forest = RandomForestClassifier<f32, u32, Matrix, Vec<u32>>;
/// One tree of the forest, as smartcore serialises it.
pub type Tree = DecisionTreeClassifier<f32, u32, Matrix, Vec<u32>>;

/// Forest settings. The defaults keep the artifact well under 64 KB.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    /// Number of trees; odd, so votes never tie. Default 25.
    pub trees: u16,
    /// Maximum tree depth; `None` grows until pure. Default `Some(8)`.
    pub max_depth: Option<u16>,
    /// Minimum samples in a leaf. Default 3.
    pub min_samples_leaf: usize,
    /// Bootstrap and feature-sampling seed. Default 7.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { trees: 25, max_depth: Some(8), min_samples_leaf: 3, seed: 7 }
    }
}

impl TrainConfig {
    /// smartcore's defaults (100 fully grown trees): the original system's
    /// "default random forest" approach.
    pub fn library_default() -> Self {
        let d = RandomForestClassifierParameters::default();
        TrainConfig { trees: d.n_trees, max_depth: d.max_depth, min_samples_leaf: d.min_samples_leaf, seed: d.seed }
    }
}

/// Rows (of any schema's width `N`) to a smartcore matrix.
pub fn matrix<const N: usize>(rows: &[[f32; N]]) -> Result<Matrix> {
    let values: Vec<f32> = rows.iter().flatten().copied().collect();
    DenseMatrix::new(rows.len(), N, values, false).map_err(|e| Error::Learner(e.to_string()))
}

/// Trains a forest on rows labelled `suspicious`.
pub fn fit<const N: usize>(rows: &[[f32; N]], suspicious: &[bool], cfg: &TrainConfig) -> Result<Forest> {
    let x = matrix(rows)?;
    let y: Vec<u32> = suspicious.iter().map(|&s| u32::from(s)).collect();
    let mut params = RandomForestClassifierParameters::default()
        .with_n_trees(cfg.trees)
        .with_min_samples_leaf(cfg.min_samples_leaf)
        .with_seed(cfg.seed);
    if let Some(depth) = cfg.max_depth {
        params = params.with_max_depth(depth);
    }
    RandomForestClassifier::fit(&x, &y, params).map_err(|e| Error::Learner(e.to_string()))
}

/// The forest's own predictions (smartcore's majority vote).
pub fn predict<const N: usize>(forest: &Forest, rows: &[[f32; N]]) -> Result<Vec<bool>> {
    let y = forest.predict(&matrix(rows)?).map_err(|e| Error::Learner(e.to_string()))?;
    Ok(y.into_iter().map(|c| c == 1).collect())
}

/// The forest's trees as smartcore objects (read back through serde, as
/// smartcore keeps them private).
pub fn trees(forest: &Forest) -> Result<Vec<Tree>> {
    let value = serde_json::to_value(forest).map_err(|e| Error::Export(e.to_string()))?;
    let trees = value.get("trees").and_then(|t| t.as_array()).ok_or_else(|| Error::Export("no trees".into()))?;
    trees.iter().map(|t| serde_json::from_value(t.clone()).map_err(|e| Error::Export(e.to_string()))).collect()
}

/// Suspicious votes per row, counted by smartcore's own trees.
pub fn suspicious_votes<const N: usize>(forest: &Forest, rows: &[[f32; N]]) -> Result<Vec<u32>> {
    let x = matrix(rows)?;
    let mut votes = vec![0u32; rows.len()];
    for tree in trees(forest)? {
        let y = tree.predict(&x).map_err(|e| Error::Learner(e.to_string()))?;
        for (v, c) in votes.iter_mut().zip(y) {
            *v += c;
        }
    }
    Ok(votes)
}
