//! Scores N varied fingerprints with the embedded model, for instruction
//! counting: `valgrind --tool=callgrind` on N = 0 and N = 100000, the
//! difference divided by N is the cost of one `CompactModel::score`
//! (independent of machine load). With a second argument `edge`, the
//! agent's schema-3 artifact scores schema-3 vectors (the same fingerprints
//! with varied novelty, source context and escalation). See docs/benchmarks.md.

use std::hint::black_box;

use bfp_common::{Fingerprint, Protocol};

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let edge = std::env::args().nth(2).is_some_and(|a| a == "edge");
    let model = if edge { bfp_models::edge::embedded() } else { bfp_models::embedded() }.expect("artifact loads");
    let rows: Vec<Vec<f32>> = (0..64u32)
        .map(|i| {
            Fingerprint {
                login_hour: (i * 7 % 24) as u8,
                session_duration_min: (i * 13 % 240) as f32 + 0.5,
                commands: i * 5 % 90,
                failed_logins: if i % 3 == 0 { i * 11 % 300 } else { i % 3 },
                protocol: Protocol::ALL[(i % 4) as usize],
                typing_speed_wpm: if i % 5 == 0 { None } else { Some((20 + i * 37 % 3000) as f32) },
                risky_commands: if i % 4 == 0 { None } else { Some(i % 6) },
            }
            .features()
        })
        .enumerate()
        .map(|(i, x)| {
            let mut row = x.to_vec();
            if edge {
                let i = i as u32;
                // Novelty flags and counts, then source context, varied.
                row.extend((0..bfp_common::schema::NOVELTY_FEATURE_COUNT as u32).map(|k| ((i + k) % 3 % 2) as f32));
                row.extend([i % 7, i * 3 % 40, i % 5, i % 9, i * 11 % 150, i % 2, i % 4].map(|v| v as f32));
                // Escalation: refusals and account changes now and then.
                row.extend([i % 4 / 3, i % 11 / 10, i % 6 / 5, i % 9 / 8, i % 13 / 12, i % 17 / 16].map(|v| v as f32));
            }
            row
        })
        .collect();
    assert_eq!(rows[0].len(), model.feature_count());
    let mut flagged = 0u32;
    for k in 0..n {
        flagged += u32::from(model.score(black_box(&rows[(k % 64) as usize])).suspicious);
    }
    println!("{flagged} of {n} flagged");
}
