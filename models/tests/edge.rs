//! The schema-2 (agent) artifact: it is exactly the model `bfp-models train`
//! builds from the device timelines, and gives smartcore's labels and vote
//! shares on every held-out row.

use bfp_detect::detector::SessionRules;
use bfp_models::edge;
use bfp_models::timeline::{self, TimelineConfig};

#[test]
fn the_edge_artifact_is_the_trained_model_and_matches_smartcore_exactly() {
    let built = edge::build(&TimelineConfig::default(), &edge::train_config()).unwrap();
    assert_eq!(
        built.model.to_bytes().unwrap(),
        bfp_common::artifacts::EMBEDDED_AGENT_MODEL,
        "the committed edge artifact is stale: run `cargo run --release -p bfp-models -- train`"
    );
    assert!(bfp_common::artifacts::EMBEDDED_AGENT_MODEL.len() < 64 * 1024);
    assert_eq!(built.model.schema_version, bfp_common::schema::AGENT_SCHEMA);
    assert!(built.model.calibration.is_some_and(|c| c.slope > 0.0), "the agent's confidence is calibrated");
    // Every held-out row of the label-gated runs...
    let (x, _) = edge::xy(&built.eval_oracle);
    assert!(x.len() > 1000);
    assert_eq!(edge::disagreements(&built.forest, &built.model, &x).unwrap(), 0);
    // ...and of a run with the model itself in the loop (what the agent sees).
    let model = &built.model;
    let rows = timeline::run(&built.eval_devices[0], SessionRules::Off, &mut |_, _, a| model.score(&a.features));
    let (x, _) = edge::xy(&rows);
    assert_eq!(edge::disagreements(&built.forest, &built.model, &x).unwrap(), 0);
}

#[test]
fn the_model_card_describes_the_committed_edge_artifact() {
    let card = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/MODEL_CARD.md")).unwrap();
    assert!(card.contains(&format!("({} bytes,", bfp_common::artifacts::EMBEDDED_AGENT_MODEL.len())), "card is stale");
    assert!(card.contains(edge::EDGE_MODEL_VERSION));
}

#[test]
fn the_rules_confidences_in_detect_are_the_ones_training_measures() {
    use bfp_detect::detector::Rule;
    let built = edge::build(&TimelineConfig::default(), &edge::train_config()).unwrap();
    let counts = edge::rule_record(&built, &edge::train_config()).unwrap();
    assert_eq!(counts.len(), Rule::ALL.len());
    for (rule, fired, attacks) in counts {
        assert_eq!(
            rule.confidence(),
            edge::rule_confidence(fired, attacks),
            "Rule::{rule:?}.confidence() is stale: it raised {fired} verdicts over the model, {attacks} attacks"
        );
    }
}
