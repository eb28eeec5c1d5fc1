//! The native half of the bit-identity check: the SIMD kernels here (SSE2)
//! give the logits recorded in tests/both/logits.txt, which the browser
//! test (tests/web/kernels.rs, SIMD128) compares against too. See tests/both/mod.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;
mod both;

#[test]
fn simd_logits_equal_the_recorded_digests() {
    let got = both::digests(&|name| common::data(name));
    if std::env::var_os("UPDATE_DIGESTS").is_some() {
        let text: String = got.iter().map(|(name, d)| format!("{name} {d:016x}\n")).collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/both/logits.txt");
        std::fs::write(path, text).unwrap();
        return;
    }
    let bad = both::mismatches(&got);
    assert!(bad.is_empty(), "SIMD logits differ from tests/both/logits.txt:\n{}", bad.join("\n"));
}

/// The digest notices a one-bit change (so the test above can fail).
#[test]
fn one_changed_bit_changes_the_digest() {
    let mut a = both::Fnv::new();
    a.floats(&[1.0, 2.0]);
    let mut b = both::Fnv::new();
    b.floats(&[1.0, f32::from_bits(2.0f32.to_bits() ^ 1)]);
    assert_ne!(a.0, b.0);
}
