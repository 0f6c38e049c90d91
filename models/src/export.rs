//! Export of a smartcore forest to common's [`CompactModel`]: node for node,
//! children after parents, thresholds rounded so that `x <= t` in f32 decides
//! exactly as smartcore's f64 comparison does.

use bfp_common::model::{Node, FORMAT_VERSION, LEAF, MAGIC};
use bfp_common::schema::{PREDICT_FEATURE_COUNT, PREDICT_SCHEMA};
use bfp_common::CompactModel;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::train::Forest;

/// Exports a schema-1 `forest`; `rows`/`suspicious` (the training set) fill
/// each node's share of suspicious samples, which drives the per-feature
/// reasons.
pub fn export(
    forest: &Forest,
    model_version: &str,
    rows: &[[f32; PREDICT_FEATURE_COUNT]],
    suspicious: &[bool],
) -> Result<CompactModel> {
    export_schema(forest, model_version, PREDICT_SCHEMA, rows, suspicious)
}

/// Exports a forest trained on vectors of feature schema `schema` (whose
/// width is `N`).
pub fn export_schema<const N: usize>(
    forest: &Forest,
    model_version: &str,
    schema: u16,
    rows: &[[f32; N]],
    suspicious: &[bool],
) -> Result<CompactModel> {
    let names = bfp_common::schema::feature_names(schema)
        .filter(|n| n.len() == N)
        .ok_or_else(|| Error::Export(format!("schema {schema} does not have {N} features")))?;
    let value = serde_json::to_value(forest).map_err(|e| Error::Export(e.to_string()))?;
    let trees = value.get("trees").and_then(Value::as_array).ok_or_else(|| Error::Export("no trees".into()))?;
    let mut nodes = Vec::new();
    let mut roots = Vec::with_capacity(trees.len());
    for tree in trees {
        let root = nodes.len();
        roots.push(root as u32);
        copy_tree(tree, N, &mut nodes)?;
        fill_shares(&mut nodes, root, rows, suspicious);
    }
    let model = CompactModel {
        magic: MAGIC,
        format_version: FORMAT_VERSION,
        schema_version: schema,
        model_version: model_version.to_string(),
        feature_names: names.iter().map(|s| s.to_string()).collect(),
        roots,
        nodes,
        calibration: None,
    };
    // Round-trip through the artifact check: what we export must load.
    CompactModel::from_bytes(&model.to_bytes()?)?;
    Ok(model)
}

/// Largest f32 not above `v`: for any f32 `x`, `x <= v` (in f64) exactly
/// when `x <= round_down(v)`.
fn round_down(v: f64) -> f32 {
    let t = v as f32;
    if f64::from(t) <= v {
        return t;
    }
    let bits = t.to_bits();
    if t > 0.0 {
        f32::from_bits(bits - 1)
    } else if t < 0.0 {
        f32::from_bits(bits + 1)
    } else {
        -f32::from_bits(1)
    }
}

fn field<'a>(node: &'a Value, name: &str) -> Result<&'a Value> {
    node.get(name).ok_or_else(|| Error::Export(format!("tree node without `{name}`")))
}

fn index(v: &Value, what: &str) -> Result<usize> {
    v.as_u64().map(|i| i as usize).ok_or_else(|| Error::Export(format!("bad {what}: {v}")))
}

/// Copies one smartcore tree (pre-order, so children follow parents).
fn copy_tree(tree: &Value, feature_count: usize, out: &mut Vec<Node>) -> Result<()> {
    let src = tree.get("nodes").and_then(Value::as_array).ok_or_else(|| Error::Export("tree without nodes".into()))?;
    let classes: Vec<u64> = tree
        .get("classes")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_u64).collect())
        .ok_or_else(|| Error::Export("tree without classes".into()))?;
    if src.is_empty() {
        return Err(Error::Export("empty tree".into()));
    }
    // Explicit stack: (smartcore index, slot in `out` to point at it).
    let mut stack = vec![(0usize, None::<(usize, bool)>)];
    while let Some((i, parent)) = stack.pop() {
        let node = src.get(i).ok_or_else(|| Error::Export(format!("child {i} out of range")))?;
        let here = out.len();
        if let Some((p, left)) = parent {
            if left {
                out[p].left = here as u32;
            } else {
                out[p].right = here as u32;
            }
        }
        let class = index(field(node, "output")?, "output")?;
        let output = *classes.get(class).ok_or_else(|| Error::Export(format!("class index {class}")))?;
        let output = u8::try_from(output).ok().filter(|&o| o <= 1).ok_or_else(|| Error::Export("non-binary".into()))?;
        let true_child = field(node, "true_child")?;
        if true_child.is_null() {
            out.push(Node { feature: LEAF, threshold: 0.0, left: 0, right: 0, output, suspicious_share: 0 });
            continue;
        }
        let feature = index(field(node, "split_feature")?, "split_feature")?;
        if feature >= feature_count {
            return Err(Error::Export(format!("split on feature {feature}")));
        }
        let split = field(node, "split_value")?.as_f64().ok_or_else(|| Error::Export("split without value".into()))?;
        out.push(Node {
            feature: feature as u8,
            threshold: round_down(split),
            left: 0,
            right: 0,
            output,
            suspicious_share: 0,
        });
        // Push right first so the left subtree is laid out first.
        stack.push((index(field(node, "false_child")?, "false_child")?, Some((here, false))));
        stack.push((index(true_child, "true_child")?, Some((here, true))));
    }
    Ok(())
}

/// Routes every training row through the tree rooted at `root` and stores
/// each node's share of suspicious rows (0–255).
fn fill_shares<const N: usize>(nodes: &mut [Node], root: usize, rows: &[[f32; N]], suspicious: &[bool]) {
    let end = nodes.len();
    let mut counts = vec![(0u32, 0u32); end - root];
    for (x, &label) in rows.iter().zip(suspicious) {
        let mut i = root;
        loop {
            let c = &mut counts[i - root];
            c.0 += 1;
            c.1 += u32::from(label);
            let n = nodes[i];
            if n.feature == LEAF {
                break;
            }
            i = if x[usize::from(n.feature)] <= n.threshold { n.left } else { n.right } as usize;
        }
    }
    for (node, (total, bad)) in nodes[root..end].iter_mut().zip(counts) {
        node.suspicious_share = if total == 0 {
            // Unreached by training rows (cannot happen with bootstrap
            // subsets of them): fall back to the node's vote.
            node.output * 255
        } else {
            ((f64::from(bad) / f64::from(total)) * 255.0).round() as u8
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_down_keeps_comparisons_exact() {
        for v in [0.5f64, 1.0 / 3.0, 35.25000001, -1.0 / 3.0, 0.0, 1e-40, 12345.678901] {
            let t = round_down(v);
            assert!(f64::from(t) <= v);
            let next = f32::from_bits(if t >= 0.0 { t.to_bits() + 1 } else { t.to_bits() - 1 });
            if t != 0.0 {
                assert!(f64::from(next) > v, "{v}: {t} is not the largest f32 below");
            }
        }
    }
}
