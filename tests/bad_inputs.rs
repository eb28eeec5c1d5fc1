//! Every bad input gets its own specific, readable error (never a panic).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::data;
use llama2_wasm::sampler::SamplerParams;
use llama2_wasm::{Checkpoint, Llama, Tokenizer};

fn legacy(fields: [i32; 7]) -> Vec<u8> {
    fields.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// An export-format header: magic, version, 7 fields, shared byte, padding to 256.
fn export(version: i32, fields: [i32; 7], shared: u8) -> Vec<u8> {
    let mut b = 0x616b_3432u32.to_le_bytes().to_vec();
    b.extend_from_slice(&version.to_le_bytes());
    b.extend(fields.iter().flat_map(|x| x.to_le_bytes()));
    b.push(shared);
    b.resize(256, 0);
    b
}

/// Random bytes (xorshift) for the "not a model at all" cases.
fn noise(n: usize) -> Vec<u8> {
    let mut s = 0x9E3779B97F4A7C15u64;
    (0..n).map(|_| llama2_wasm::sampler::random_u32(&mut s) as u8).collect()
}

fn with_body(mut header: Vec<u8>, floats: usize) -> Vec<u8> {
    header.resize(header.len() + floats * 4, 0);
    header
}

type Case<'a> = (&'a str, Vec<u8>, &'a [&'a str]);

/// Each (what, bytes, words the message must contain) must fail to load;
/// returns (what, message) rows for the README's table.
fn expect_errors(table: Vec<Case>, load: impl Fn(&[u8]) -> llama2_wasm::Result<()>) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for (what, bytes, expected) in table {
        let err = match load(&bytes) {
            Ok(()) => panic!("{what}: loaded without error"),
            Err(e) => e.to_string(),
        };
        for needle in expected {
            assert!(err.contains(needle), "{what}: message {err:?} lacks {needle:?}");
        }
        rows.push((what.to_string(), err));
    }
    rows
}

fn bad_checkpoint_rows() -> Vec<(String, String)> {
    let good = data("stories260K.bin");
    let v1 = data("stories260K_v1.bin");
    let mut one_extra = good.clone();
    one_extra.push(0);
    let mut v1_short_header = v1.clone();
    v1_short_header.truncate(100);
    let mut v1_bad_shared = v1.clone();
    v1_bad_shared[36] = 7;
    let q80 = data("stories260K_q80.bin");
    let mut v1_long_context = v1.clone();
    v1_long_context[32..36].copy_from_slice(&3_000_000i32.to_le_bytes());
    // stories260K.bin: the 28-byte header, the embedding (512 x 64), rms_att (5 x 64), then wq
    let mut nan_weight = good.clone();
    let wq = 28 + 4 * (512 * 64 + 5 * 64);
    nan_weight[wq + 40..wq + 44].copy_from_slice(&f32::NAN.to_le_bytes());
    // the Q8_0 file: 256-byte header, rms weights (fp32), then the embedding's int8 values and scales
    let mut q80_inf_scale = q80.clone();
    let scales = 256 + 4 * (5 * 64 + 5 * 64 + 64) + 512 * 64;
    q80_inf_scale[scales..scales + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    let with_group_size = |gs: i32| {
        let mut b = q80.clone();
        b[37..41].copy_from_slice(&gs.to_le_bytes());
        b
    };

    let table: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("empty file", vec![], &["only 0 bytes", "too short"]),
        ("truncated by one byte", good[..good.len() - 1].to_vec(), &["1,056,539", "1,056,540"]),
        ("one byte too many", one_extra, &["1,056,541", "1,056,540"]),
        ("export header cut short", v1_short_header, &["256-byte header"]),
        ("unknown export version", export(3, [64, 172, 5, 8, 4, 512, 512], 1), &["version 3"]),
        ("Q8_0 group size 0", with_group_size(0), &["group size is 0"]),
        ("Q8_0 group size -4", with_group_size(-4), &["group size is -4"]),
        ("Q8_0 group size not dividing dim", with_group_size(48), &["group size 48 does not divide dim 64"]),
        ("Q8_0 group size not dividing hidden_dim", with_group_size(8), &["group size 8 does not divide hidden_dim 172"]),
        ("Q8_0 file with its last scale cut", q80[..q80.len() - 4].to_vec(), &["521,724", "521,728"]),
        ("bad shared-classifier byte", v1_bad_shared, &["shared-classifier byte is 7"]),
        ("zero dim", legacy([0, 172, 5, 8, 4, 512, 512]), &["dim is 0"]),
        ("negative layers", legacy([64, 172, -5, 8, 4, 512, 512]), &["n_layers is -5"]),
        ("zero seq_len", legacy([64, 172, 5, 8, 4, 512, 0]), &["seq_len is 0"]),
        ("n_heads not dividing dim", legacy([64, 172, 5, 6, 6, 512, 512]), &["dim 64 is not divisible by n_heads 6"]),
        ("n_kv_heads not dividing n_heads", legacy([64, 172, 5, 8, 3, 512, 512]), &["n_heads 8 is not a multiple of n_kv_heads 3"]),
        ("more kv heads than heads", legacy([64, 172, 5, 8, 16, 512, 512]), &["n_heads 8 is not a multiple of n_kv_heads 16"]),
        ("odd head size", legacy([24, 172, 5, 8, 8, 512, 512]), &["head size 3"]),
        ("huge dims (2^31 - 1)", legacy([1 << 30, i32::MAX, i32::MAX, 1, 1, i32::MAX, i32::MAX]), &["overflow"]),
        ("huge but consistent-looking dims", legacy([1 << 20, 1 << 20, 1, 2, 2, 32000, 256]), &["header needs"]),
        (
            "KV cache beyond what can be held",
            // a valid tiny v1 file (504 floats of weights) whose seq_len asks for a 128 GiB KV cache
            with_body(export(1, [8, 8, 1, 1, 1, 4, i32::MAX], 1), 4 * 8 + 3 * 8 + 4 * 64 + 3 * 64),
            &["KV cache", "seq_len 2,147,483,647"],
        ),
        ("a 1 MB model with a 3,000,000-token context", v1_long_context, &["seq_len 3,000,000", "KV cache", "8 times the weights"]),
        ("vocab_size 1", legacy([64, 172, 5, 8, 4, 1, 512]), &["vocab_size is 1", "at least 3"]),
        ("a NaN weight", nan_weight, &["wq", "NaN or infinite", "damaged"]),
        ("an infinite Q8_0 scale", q80_inf_scale, &["NaN or infinite", "scale"]),
        ("random bytes", noise(4096), &["invalid checkpoint"]),
        ("a tokenizer given as checkpoint", data("tok512.bin"), &["this is a tokenizer"]),
        ("the Llama 2 tokenizer given as checkpoint", data("tokenizer.bin"), &["this is a tokenizer"]),
        ("a GGUF file", [b"GGUF\x03\0\0\0".as_slice(), &noise(400)].concat(), &["GGUF", "export.py"]),
        ("a PyTorch zip", [b"PK\x03\x04".as_slice(), &noise(400)].concat(), &["PyTorch"]),
        ("a safetensors file", [&200u64.to_le_bytes()[..], b"{\"__metadata__\":{}}", &noise(300)].concat(), &["safetensors"]),
        ("an HTML error page", b"\n  <!DOCTYPE html><html><body>404 Not Found</body></html>".to_vec(), &["HTML page"]),
        ("a Git LFS pointer", b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 60816028\n".to_vec(), &["Git LFS"]),
    ];
    expect_errors(table, |b| Checkpoint::from_bytes(b).map(|_| ()))
}

#[test]
fn bad_checkpoints_each_get_their_own_message() {
    assert!(bad_checkpoint_rows().len() >= 25);
}

fn bad_tokenizer_rows() -> Vec<(String, String)> {
    let tok = data("tok512.bin");
    let mut bad_len = tok.clone();
    bad_len[8..12].copy_from_slice(&(-3i32).to_le_bytes()); // first token's length
    let mut nan_score = tok.clone();
    nan_score[4..8].copy_from_slice(&f32::NAN.to_le_bytes()); // first token's score
    // the " " token (score, length 1, b' ') made "#"
    let at = tok.windows(5).position(|w| w == [1, 0, 0, 0, b' ']).unwrap();
    let mut no_space = tok.clone();
    no_space[at + 4] = b'#';
    // scaled down from a 1 GiB file that begins like a tokenizer: each 8
    // zero bytes read as one more empty token
    let trailing_zeros = [tok.as_slice(), &vec![0u8; 9 << 20]].concat();
    let table: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("empty", vec![], &["too short"]),
        ("zero max_token_length", vec![0, 0, 0, 0], &["max_token_length is 0"]),
        ("header only", tok[..4].to_vec(), &["no tokens"]),
        ("truncated mid-token", tok[..101].to_vec(), &["truncated"]),
        ("truncated by one byte", tok[..tok.len() - 1].to_vec(), &["truncated"]),
        ("negative token length", bad_len, &["claims -3 bytes"]),
        ("a NaN merge score", nan_score, &["token 0", "merge score NaN"]),
        ("no \" \" token", no_space, &["no \" \" token", "dummy prefix"]),
        ("tok512.bin followed by 9 MB of zeros", trailing_zeros, &["more than 1,048,576 tokens", "appended"]),
        ("random bytes", noise(4096), &["invalid tokenizer"]),
        ("a checkpoint given as tokenizer", data("stories260K.bin"), &["this is a model checkpoint"]),
        ("an export checkpoint given as tokenizer", data("stories260K_v1.bin"), &["this is a model checkpoint"]),
        ("a GGUF file as tokenizer", [b"GGUF\x03\0\0\0".as_slice(), &noise(400)].concat(), &["GGUF"]),
    ];
    expect_errors(table, |b| Tokenizer::from_bytes(b).map(|_| ()))
}

#[test]
fn bad_tokenizers_each_get_their_own_message() {
    assert!(bad_tokenizer_rows().len() >= 10);
}

/// The README's table of bad inputs is generated from the two tables above:
/// this test fails when it is out of date; `UPDATE_README=1 cargo test
/// --release --test bad_inputs` rewrites it.
#[test]
fn readme_bad_input_table_is_generated_from_these_tests() {
    let mut table = String::from("| file given | as | message |\n| --- | --- | --- |\n");
    for (rows, role) in [(bad_checkpoint_rows(), "checkpoint"), (bad_tokenizer_rows(), "tokenizer")] {
        for (what, msg) in rows {
            table.push_str(&format!("| {what} | {role} | {} |\n", msg.replace('|', "\\|")));
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- bad-inputs:start -->\n", "<!-- bad-inputs:end -->");
    let a = readme.find(start).expect("README has the bad-inputs start marker") + start.len();
    let b = readme.find(end).expect("README has the bad-inputs end marker");
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(&path, format!("{}{table}{}", &readme[..a], &readme[b..])).unwrap();
    } else {
        assert_eq!(&readme[a..b], table, "README's bad-input table is stale: run UPDATE_README=1 cargo test --release --test bad_inputs");
    }
}

#[test]
fn tokenizer_of_the_wrong_size_names_both_sizes() {
    let err = Llama::from_bytes(&data("stories260K.bin"), &data("tokenizer.bin")).err().unwrap().to_string();
    assert!(err.contains("32,000") && err.contains("512"), "{err}");
}

#[test]
fn calls_in_the_wrong_order_are_errors() {
    let mut llama = Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap();
    assert!(llama.step().unwrap_err().to_string().contains("start"));
    assert!(llama.chat_user("hi").unwrap_err().to_string().contains("start_chat"));
    // a prompt longer than seq_len: generation stops at seq_len, as run.c does
    let long = "Once upon a time ".repeat(200);
    let params = SamplerParams::new(0.0, 0.9, 1).unwrap();
    llama.generate(&long, params, 0).unwrap();
    assert_eq!(llama.tokens().len(), 512 + 1);
}

#[test]
fn chat_feeds_the_llama2_template_then_answers_until_out_of_steps() {
    let tok = data("tok512.bin");
    let mut llama = Llama::from_bytes(&data("stories260K.bin"), &tok).unwrap();
    let params = SamplerParams::new(0.0, 0.9, 1).unwrap();
    llama.start_chat("be kind", params, 60).unwrap();
    llama.chat_user("Tell me a story").unwrap();
    let mut text = String::new();
    while let Some(step) = llama.step().unwrap() {
        text.push_str(&step.text);
    }
    let want = llama
        .tokenizer()
        .encode("[INST] <<SYS>>\nbe kind\n<</SYS>>\n\nTell me a story [/INST]", true, false)
        .unwrap();
    assert_eq!(&llama.tokens()[..want.len()], &want[..], "the rendered template is fed first");
    assert_eq!(llama.tokens().len(), 60, "one forward per step until the steps run out");
    assert!(!text.is_empty());
    assert!(!llama.is_running());
    assert!(llama.chat_user("more").unwrap_err().to_string().contains("all its steps"));
}

#[test]
fn files_are_told_apart_by_content() {
    use llama2_wasm::checkpoint::{check, looks_like_checkpoint};
    let head = |b: &[u8]| b[..b.len().min(256)].to_vec();
    for name in ["stories260K.bin", "stories260K_v1.bin", "stories260K_q80.bin"] {
        let b = data(name);
        assert!(looks_like_checkpoint(&head(&b)), "{name}");
        assert!(!Tokenizer::looks_like(&head(&b)), "{name}");
    }
    for name in ["tok512.bin", "tokenizer.bin"] {
        let b = data(name);
        assert!(Tokenizer::looks_like(&head(&b)), "{name}");
        assert!(!looks_like_checkpoint(&head(&b)), "{name}");
    }
    // the header alone tells a truncated file, before reading the rest
    let b = data("stories260K.bin");
    assert!(check(&head(&b), b.len() as u64).is_ok());
    let err = check(&head(&b), 1000).unwrap_err().to_string();
    assert!(err.contains("1,000") && err.contains("1,056,540"), "{err}");
}

/// A megabyte of prompt is encoded, not hung on (heap-based merges: ~1.3 s
/// natively here; the time is printed, not asserted).
#[test]
fn a_megabyte_prompt_is_encoded_not_hung_on() {
    let tok = Tokenizer::from_bytes(&data("tokenizer.bin")).unwrap();
    let text = "Once upon a time, a llama 🦙 named Lily said \"naïve\" things. ".repeat(16_000); // ~1 MB
    let t = std::time::Instant::now();
    let ids = tok.encode(&text, true, false).unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!("encoded {} bytes into {} tokens in {secs:.2} s", text.len(), ids.len());
    assert!(ids.len() > 100_000);
    // it starts as the sentence alone does (merges are local)
    let one = tok.encode("Once upon a time, a llama", true, false).unwrap();
    assert_eq!(&ids[..one.len() - 1], &one[..one.len() - 1]);
}

/// export.py's group size for an fp32 model whose dim or hidden_dim is odd
/// is 1: int8 values with a 4-byte scale each would be bigger than fp32.
#[test]
fn int8_refuses_a_group_size_that_would_not_shrink_the_model() {
    let (dim, hidden, layers, vocab, seq_len) = (6usize, 3usize, 1usize, 8usize, 4usize);
    let floats = vocab * dim + layers * (2 * dim + 4 * dim * dim + 3 * dim * hidden) + dim + seq_len * dim;
    let header = legacy([dim as i32, hidden as i32, layers as i32, 1, 1, vocab as i32, seq_len as i32]);
    let c = Checkpoint::from_bytes(&with_body(header, floats)).unwrap();
    let err = c.quantize().unwrap_err().to_string();
    assert!(err.contains("group size") && err.contains("larger than fp32"), "{err}");
}

/// Temperatures so small that logits / temperature overflows (1e-38, 1e-40)
/// sample as their limit, greedy, instead of NaN probabilities; 5e-324
/// (0 as an f32) already was greedy.
#[test]
fn temperatures_that_underflow_are_greedy() {
    let run = |t: f64| {
        let mut llama = Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap();
        llama.generate("Once upon a time", SamplerParams::new(t, 0.9, 7).unwrap(), 60).unwrap();
        llama.tokens().to_vec()
    };
    let greedy = run(0.0);
    for t in [1e-38, 1e-40, 5e-324] {
        assert_eq!(run(t), greedy, "temperature {t}");
    }
    assert_ne!(run(1.0), greedy, "a real temperature samples");
}
