//! SHA-256 against FIPS 180-4's examples, against itself fed in pieces, and
//! against `sha256sum` on a real checkpoint. (The browser tests check the
//! `Sha256` class in tests/web/sha256.rs.)
#![cfg(not(target_arch = "wasm32"))]

use llama2_wasm::sha256::{hex, Sha256};

fn sha256(data: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(data);
    hex(&sha.finish())
}

/// The digest of `data` fed in pieces of these lengths (cycled).
fn sha256_in_pieces(data: &[u8], lengths: &[usize]) -> String {
    let mut sha = Sha256::new();
    let mut rest = data;
    for &n in lengths.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        sha.update(piece);
        rest = tail;
    }
    hex(&sha.finish())
}

/// Bytes that are not all alike (xorshift), so a misplaced byte shows.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[test]
fn nist_examples() {
    // FIPS 180-4's examples (NIST CSRC "SHA256.pdf", "SHA256_2.pdf") and the
    // empty message, as sha256sum prints them
    let cases: [(&[u8], &str); 3] = [
        (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for (message, want) in cases {
        assert_eq!(sha256(message), want, "{:?}", String::from_utf8_lossy(message));
    }
    // one million 'a', at once and in pieces of 1000 (the classic test)
    let million = vec![b'a'; 1_000_000];
    let want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    assert_eq!(sha256(&million), want);
    assert_eq!(sha256_in_pieces(&million, &[1000]), want);
}

#[test]
fn padding_at_every_length_around_a_block() {
    // 55 bytes is the last length whose padding fits in its own block, 56
    // the first that needs another; digests from Python's hashlib
    let cases = [
        (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
        (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
        (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
    ];
    for (n, want) in cases {
        assert_eq!(sha256(&vec![b'a'; n]), want, "{n} bytes of 'a'");
    }
}

#[test]
fn any_chunking_gives_the_one_shot_digest() {
    let data = noise(10_000);
    let want = sha256(&data);
    // one cut anywhere in the first blocks, and around every block boundary after
    for cut in (0..=300).chain((1..data.len() / 64).flat_map(|b| [64 * b - 1, 64 * b, 64 * b + 1])) {
        let (a, b) = data.split_at(cut);
        let mut sha = Sha256::new();
        sha.update(a);
        sha.update(b);
        assert_eq!(hex(&sha.finish()), want, "cut at {cut}");
    }
    // runs of pieces, empty ones included: 63/64/65 keep the buffer moving
    // across every offset in a block
    for lengths in [
        &[1][..],
        &[0, 1],
        &[63],
        &[64],
        &[65],
        &[63, 64, 65],
        &[0, 63, 0, 65, 0, 64],
        &[7, 128, 3, 1000],
        &[127, 129],
        &[4096, 1, 4095],
    ] {
        assert_eq!(sha256_in_pieces(&data, lengths), want, "pieces {lengths:?}");
    }
    // the same bytes with one bit changed give another digest
    let mut changed = data.clone();
    changed[5000] ^= 1;
    assert_ne!(sha256(&changed), want);
}

#[test]
fn a_checkpoint_hashes_as_sha256sum_prints_it() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/www/models/stories260K.bin");
    let bytes = std::fs::read(path).expect("www/models/stories260K.bin: run ./build.sh first");
    let output = match std::process::Command::new("sha256sum").arg(path).output() {
        Ok(output) => output,
        Err(e) => {
            eprintln!("skipped: sha256sum could not be run ({e}), so there is nothing to compare with");
            return;
        }
    };
    assert!(output.status.success(), "sha256sum failed: {}", String::from_utf8_lossy(&output.stderr));
    // "<64 hex digits>  <path>"
    let printed = String::from_utf8(output.stdout).expect("sha256sum prints ASCII");
    let want = printed.split_whitespace().next().expect("sha256sum printed nothing");
    assert_eq!(sha256(&bytes), want);
    // as the page reads it: in 64 KiB chunks, and in uneven ones
    assert_eq!(sha256_in_pieces(&bytes, &[65_536]), want);
    assert_eq!(sha256_in_pieces(&bytes, &[100_003, 17]), want);
}
