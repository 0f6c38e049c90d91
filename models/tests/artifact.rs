//! The committed artifact: it is what training produces, it gives exactly the
//! smartcore forest's answers, it is compact, and it behaves as the original
//! acceptance tests and the design's behaviour cases require.

use bfp_common::{CompactModel, Fingerprint, Protocol, Verdict};
use bfp_models::sim::SimConfig;
use bfp_models::train::TrainConfig;
use serde_json::json;

fn model() -> CompactModel {
    bfp_models::embedded().expect("committed artifact loads")
}

fn score(fp: Fingerprint) -> Verdict {
    model().score(&fp.features())
}

#[test]
fn artifact_is_compact_and_versioned() {
    assert!(
        bfp_common::artifacts::EMBEDDED_PREDICT_MODEL.len() < 64 * 1024,
        "artifact is {} bytes",
        bfp_common::artifacts::EMBEDDED_PREDICT_MODEL.len()
    );
    let m = model();
    assert_eq!(m.model_version, bfp_models::MODEL_VERSION);
    assert_eq!(m.schema_version, bfp_common::schema::PREDICT_SCHEMA);
    assert_eq!(m.trees() % 2, 1, "odd number of trees: no tied votes");
}

#[test]
fn artifact_is_the_trained_model_and_matches_smartcore_exactly() {
    let built = bfp_models::build(&SimConfig::default(), &TrainConfig::default()).unwrap();
    assert_eq!(
        built.model.to_bytes().unwrap(),
        bfp_common::artifacts::EMBEDDED_PREDICT_MODEL,
        "the committed artifact is stale: run `cargo run --release -p bfp-models -- train`"
    );
    let (eval_x, _) = bfp_models::features(&built.eval);
    assert!(eval_x.len() > 1000);
    assert_eq!(bfp_models::card::disagreements(&built, &eval_x).unwrap(), 0, "labels or vote shares differ");
    // And on the training rows too, for good measure.
    let (train_x, _) = bfp_models::features(&built.train);
    assert_eq!(bfp_models::card::disagreements(&built, &train_x).unwrap(), 0);
}

#[test]
fn day_time_tor_brute_force_at_machine_speed_is_suspicious() {
    let v = score(Fingerprint {
        login_hour: 14,
        session_duration_min: 10.0,
        commands: 12,
        failed_logins: 8,
        protocol: Protocol::Tor,
        typing_speed_wpm: Some(150.0),
        risky_commands: None,
    });
    assert!(v.suspicious, "{v:?}");
}

#[test]
fn night_shift_admin_is_normal() {
    let v = score(Fingerprint {
        login_hour: 23,
        session_duration_min: 60.0,
        commands: 20,
        failed_logins: 0,
        protocol: Protocol::Ssh,
        typing_speed_wpm: Some(45.0),
        risky_commands: None,
    });
    assert!(!v.suspicious, "{v:?}");
    // Same with the command strings known and harmless.
    let v = score(Fingerprint {
        login_hour: 23,
        session_duration_min: 60.0,
        commands: 20,
        failed_logins: 0,
        protocol: Protocol::Ssh,
        typing_speed_wpm: Some(45.0),
        risky_commands: Some(0),
    });
    assert!(!v.suspicious, "{v:?}");
}

#[test]
fn original_acceptance_csv_rows() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/seed-test.csv");
    let mut reader = csv::Reader::from_path(path).unwrap();
    Fingerprint::check_csv_header(reader.headers().unwrap()).unwrap();
    let labels: Vec<&str> = reader
        .records()
        .enumerate()
        .map(|(i, r)| score(Fingerprint::from_csv_record(&r.unwrap(), i as u64 + 1).unwrap()).label())
        .collect();
    assert_eq!(labels, ["Normal", "Suspicious", "Normal"]);
}

#[test]
fn original_json_example_is_suspicious_with_valid_confidence() {
    let body = json!({"login_time":"03:00","session_duration":5,"commands":["ls","sudo","chmod"],"failed_logins":4,"protocol":"TOR","typing_speed":120});
    let (fp, _) = Fingerprint::from_json(&body).unwrap();
    let v = score(fp);
    assert_eq!(v.label(), "Suspicious");
    assert!((0.5..=1.0).contains(&v.confidence), "{}", v.confidence);
    // A calibrated probability, not a share of unanimous trees.
    assert!(model().calibration.is_some());
    assert!(v.confidence < 1.0, "{}", v.confidence);
    assert!(v.top_features(3).count() > 0, "a verdict says why");
}

fn session(hour: u8, minutes: f32, commands: u32, failed: u32, protocol: Protocol, wpm: Option<f32>) -> Fingerprint {
    Fingerprint {
        login_hour: hour,
        session_duration_min: minutes,
        commands,
        failed_logins: failed,
        protocol,
        typing_speed_wpm: wpm,
        risky_commands: Some(0),
    }
}

#[test]
fn user_who_mistypes_a_few_times_then_works_is_normal() {
    for failed in [2, 3, 6] {
        let v = score(session(10, 30.0, 20, failed, Protocol::Https, Some(35.0)));
        assert!(!v.suspicious, "{failed} mistakes: {v:?}");
    }
}

#[test]
fn brute_force_windows_are_suspicious_fast_or_slow() {
    // 2 attempts an hour over a day: under fail2ban's 5-in-10-minutes.
    assert!(score(session(0, 1440.0, 0, 48, Protocol::Ssh, None)).suspicious);
    // 200 attempts in 3 minutes at 14:00.
    assert!(score(session(14, 3.0, 0, 200, Protocol::Ssh, None)).suspicious);
}

#[test]
fn download_and_run_after_login_is_suspicious() {
    let mut fp = session(3, 4.0, 6, 0, Protocol::Ssh, Some(60.0));
    fp.risky_commands = Some(2);
    assert!(score(fp).suspicious);
}

#[test]
fn the_hour_alone_never_flips_these_verdicts() {
    // A night-hour rule fails every one of these at some hour.
    let cases = [
        (session(23, 60.0, 20, 0, Protocol::Ssh, Some(45.0)), false),
        (session(10, 40.0, 10, 0, Protocol::Https, Some(45.0)), false),
        (session(2, 0.5, 10, 0, Protocol::Ssh, Some(1200.0)), false),
        (session(14, 3.0, 0, 200, Protocol::Ssh, None), true),
        (session(14, 10.0, 12, 8, Protocol::Tor, Some(150.0)), true),
    ];
    for (fp, suspicious) in cases {
        for hour in 0..24 {
            let v = score(Fingerprint { login_hour: hour, ..fp });
            assert_eq!(v.suspicious, suspicious, "{fp:?} at {hour}:00 -> {v:?}");
        }
    }
}

#[test]
fn model_card_describes_the_committed_artifact() {
    let card = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/MODEL_CARD.md")).unwrap();
    assert!(card.contains(&format!("# Model card: {}", bfp_models::MODEL_VERSION)), "card is for another model");
    assert!(
        card.contains(&format!("| size | {} bytes", bfp_common::artifacts::EMBEDDED_PREDICT_MODEL.len())),
        "card is stale: run `cargo run --release -p bfp-models -- train`"
    );
}
