//! Embeds the trained model artifact when the repository has one.
//! (Transitional: once `models/artifacts/bfp-model.postcard` is committed,
//! the artifact is always there and this only tells cargo when to rebuild.)

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/artifacts");
    let artifact = dir.join("bfp-model.postcard");
    println!("cargo::rerun-if-changed={}", dir.display());
    println!("cargo::rustc-check-cfg=cfg(bfp_embedded_model)");
    if artifact.is_file() {
        println!("cargo::rustc-cfg=bfp_embedded_model");
        println!("cargo::rustc-env=BFP_EMBEDDED_MODEL={}", artifact.display());
    }
}
