//! Inference cost of the committed model artifact: one fingerprint scored
//! (a root-to-leaf walk per tree, plus the per-feature contributions).
//! Target: under 2 µs per fingerprint.

use std::hint::black_box;

use bfp_common::artifacts::{EMBEDDED_AGENT_MODEL as EDGE_ARTIFACT, EMBEDDED_PREDICT_MODEL as ARTIFACT};
use bfp_common::schema::PREDICT_FEATURE_COUNT;
use bfp_common::{CompactModel, Fingerprint, Protocol};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn fingerprints() -> Vec<[f32; PREDICT_FEATURE_COUNT]> {
    // A spread of benign and hostile shapes so branch prediction cannot learn one path.
    let mut out = Vec::new();
    for i in 0..64u32 {
        let fp = Fingerprint {
            login_hour: (i * 7 % 24) as u8,
            session_duration_min: (i * 13 % 240) as f32 + 0.5,
            commands: i * 5 % 90,
            failed_logins: if i % 3 == 0 { i * 11 % 300 } else { i % 3 },
            protocol: Protocol::ALL[(i % 4) as usize],
            typing_speed_wpm: if i % 5 == 0 { None } else { Some((20 + i * 37 % 3000) as f32) },
            risky_commands: if i % 4 == 0 { None } else { Some(i % 6) },
        };
        out.push(fp.features());
    }
    out
}

fn bench(c: &mut Criterion) {
    let model = CompactModel::from_bytes(ARTIFACT).expect("artifact loads");
    let rows = fingerprints();
    let mut group = c.benchmark_group("model_inference");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("score_one", |b| {
        b.iter(|| {
            i = (i + 1) % rows.len();
            black_box(model.score(black_box(&rows[i])))
        })
    });
    group.bench_function("decode_artifact", |b| b.iter(|| CompactModel::from_bytes(black_box(ARTIFACT)).unwrap()));
    // Schema 2: the same fingerprints with varied novelty and source context.
    let edge = CompactModel::from_bytes(EDGE_ARTIFACT).expect("edge artifact loads");
    let rows2: Vec<[f32; bfp_common::schema::AGENT_FEATURE_COUNT]> = rows
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let i = i as u32;
            let mut v = [0f32; bfp_common::schema::AGENT_FEATURE_COUNT];
            v[..x.len()].copy_from_slice(x);
            for (k, slot) in v[x.len()..].iter_mut().enumerate() {
                *slot = ((i + k as u32) * 7 % 11) as f32 % 3.0;
            }
            v
        })
        .collect();
    let mut j = 0;
    group.bench_function("score_one_schema2", |b| {
        b.iter(|| {
            j = (j + 1) % rows2.len();
            black_box(edge.score(black_box(&rows2[j])))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
