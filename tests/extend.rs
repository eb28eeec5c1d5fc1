//! Continuing a generation (`Llama::extend`): a run stopped at its steps (or
//! by its caller) and continued gives exactly the tokens and text of one
//! uninterrupted run of the summed length, reusing the KV cache; what cannot
//! continue says why; a chat goes on in one KV cache through `chat_user`.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{data, generate_cases, GenerateCase};
use llama2_wasm::inspect::native_clock;
use llama2_wasm::kernels::Kernels;
use llama2_wasm::{Llama, SamplerParams};

fn model(c: &GenerateCase) -> Llama {
    Llama::from_bytes(&data(&c.model), &data(&c.tokenizer)).unwrap()
}

fn params(c: &GenerateCase) -> SamplerParams {
    SamplerParams::new(c.temperature, c.topp, c.seed).unwrap()
}

fn stories260k() -> Llama {
    Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap()
}

/// step() until the loop stops; the text it gave.
fn run(llama: &mut Llama) -> String {
    let mut text = String::new();
    while let Some(step) = llama.step().unwrap() {
        text.push_str(&step.text);
    }
    text
}

/// The message of a refused `extend(steps)`, which `check_extend` gave before.
fn refusal(llama: &mut Llama, steps: i64) -> String {
    let before = llama.check_extend().unwrap_err();
    assert_eq!(llama.extend(steps).unwrap_err(), before);
    before.to_string()
}

fn fp32_cases() -> Vec<GenerateCase> {
    let cases: Vec<_> = generate_cases().into_iter().filter(|c| !c.model.contains("_q80")).collect();
    assert!(cases.len() >= 8, "expected the golden fp32 cases, found {}", cases.len());
    cases
}

/// `start(.., first)`, run to the end, then `extend(more)` and run again
/// for each of `more`: the text of every part, concatenated.
fn in_parts(llama: &mut Llama, c: &GenerateCase, first: i64, more: impl IntoIterator<Item = i64>) -> String {
    llama.start(&c.prompt, params(c), first).unwrap();
    let mut text = run(llama);
    assert!(!llama.is_running());
    for steps in more {
        llama.check_extend().unwrap();
        llama.extend(steps).unwrap();
        assert!(llama.is_running());
        text.push_str(&run(llama));
    }
    text
}

/// Every fp32 golden generation, stopped at its steps at several points
/// (inside the prompt, at its end, in the middle, one before the end) and
/// continued: run.c's tokens and text, with both kernel sets. Cases that end
/// with BOS are split before it.
#[test]
fn a_continued_run_equals_one_uninterrupted_run() {
    for kernels in [Kernels::Simd, Kernels::Scalar] {
        for c in fp32_cases() {
            let mut llama = model(&c);
            llama.set_kernels(kernels);
            let prompt_len = llama.tokenizer().encode(&c.prompt, true, false).unwrap().len() as i64;
            let positions = c.tokens.len() as i64 - 1; // the golden run's forward passes
            let label = format!("{kernels:?} {} {:?} t={} seed={}", c.model, c.prompt, c.temperature, c.seed);
            let mut splits = vec![1, prompt_len / 2, prompt_len - 1, prompt_len, prompt_len + 1, positions / 2, positions - 1];
            splits.retain(|&a| a >= 1 && a < positions);
            splits.dedup();
            assert!(splits.len() >= 3, "{label}: splits {splits:?}");
            for a in splits {
                let text = in_parts(&mut llama, &c, a, [c.steps - a]);
                assert_eq!(llama.tokens(), &c.tokens[..], "{label}: split at {a}");
                assert_eq!(text, c.stdout, "{label}: split at {a}");
            }
        }
    }
}

/// Many boundaries in one run: continued one position at a time, and seven
/// at a time, from a first part of one position.
#[test]
fn continuing_in_small_parts_changes_nothing() {
    for c in fp32_cases() {
        let mut llama = model(&c);
        let positions = c.tokens.len() as i64 - 1;
        for part in [1, 7] {
            // parts of `part` positions, the last one what is left
            let more = (1..positions).step_by(part as usize).map(|at| part.min(positions - at));
            let text = in_parts(&mut llama, &c, 1, more);
            assert_eq!(llama.tokens(), &c.tokens[..], "{} {:?}: parts of {part}", c.model, c.prompt);
            assert_eq!(text, c.stdout, "{} {:?}: parts of {part}", c.model, c.prompt);
        }
    }
}

/// A caller that stops calling step() part-way (the page's Stop) continues
/// from where it stopped: `extend(n)` runs n more positions from there.
#[test]
fn a_run_stopped_by_its_caller_continues_from_where_it_stopped() {
    for c in fp32_cases() {
        let mut llama = model(&c);
        let positions = c.tokens.len() - 1;
        let stop_at = positions / 3;
        llama.start(&c.prompt, params(&c), c.steps).unwrap();
        let mut text = String::new();
        for _ in 0..stop_at {
            text.push_str(&llama.step().unwrap().unwrap().text);
        }
        assert!(llama.is_running());
        llama.extend((c.steps as usize - stop_at) as i64).unwrap();
        text.push_str(&run(&mut llama));
        assert_eq!(llama.tokens(), &c.tokens[..], "{} {:?}", c.model, c.prompt);
        assert_eq!(text, c.stdout, "{} {:?}", c.model, c.prompt);
    }
    // extend counts from the position reached, so it can also shorten what is left
    let c = &fp32_cases()[1];
    let mut llama = model(c);
    llama.start(&c.prompt, params(c), c.steps).unwrap();
    for _ in 0..10 {
        llama.step().unwrap();
    }
    llama.extend(5).unwrap();
    run(&mut llama);
    assert_eq!(llama.tokens(), &c.tokens[..16]);
}

/// `extend(0)` (and a negative or too large count) goes up to seq_len, as
/// `start`'s steps do; the run up to its steps is a prefix of that.
#[test]
fn extend_zero_goes_up_to_seq_len() {
    let c = fp32_cases().into_iter().find(|c| c.temperature == 0.0 && !c.prompt.is_empty()).unwrap();
    let mut full = model(&c);
    full.start(&c.prompt, params(&c), 0).unwrap();
    let full_text = run(&mut full);
    for more in [0, -3, 100_000, i64::MAX] {
        let mut llama = model(&c);
        let text = in_parts(&mut llama, &c, 40, [more]);
        assert_eq!(llama.tokens(), full.tokens(), "extend({more})");
        assert_eq!(text, full_text, "extend({more})");
    }
}

/// A character whose bytes are split over byte tokens, cut at every one of
/// its bytes: the first part's text holds none of it (no U+FFFD), the second
/// starts with it whole, and together they are the uninterrupted text.
#[test]
fn a_character_split_at_the_boundary_arrives_whole_after_continuing() {
    let mut llama = stories260k();
    let p = SamplerParams::new(0.0, 0.9, 1).unwrap();
    let prompt = "I ♥ 🦙 stories";
    let ids = llama.tokenizer().encode(prompt, true, false).unwrap();
    // tok512 has no piece for these characters: each byte is a byte token (<0xXX> = byte + 3)
    let heart: Vec<u32> = "♥".bytes().map(|b| b as u32 + 3).collect();
    assert!(ids.windows(3).any(|w| w == &heart[..]), "{ids:?}");
    let steps = ids.len() as i64 + 6;
    let whole = llama.generate(prompt, p, steps).unwrap();
    assert!(whole.starts_with(prompt), "{whole:?}");
    let want = llama.tokens().to_vec();
    for a in 1..steps {
        llama.start(prompt, p, a).unwrap();
        let first = run(&mut llama);
        assert!(!first.contains('\u{FFFD}'), "split at {a}: {first:?}");
        llama.extend(steps - a).unwrap();
        let second = run(&mut llama);
        assert_eq!(llama.tokens(), &want[..], "split at {a}");
        assert_eq!(format!("{first}{second}"), whole, "split at {a}: {first:?} + {second:?}");
    }
}

/// At seq_len nothing can follow: an unfinished character there is shown
/// as U+FFFD (as at the end of any text), and extend says nothing fits.
#[test]
fn at_seq_len_an_unfinished_character_is_shown_and_nothing_more_fits() {
    let mut llama = stories260k();
    let p = SamplerParams::new(0.0, 0.9, 1).unwrap();
    let seq_len = llama.config().seq_len;
    // a prompt whose token seq_len (fed nowhere, decoded at the last
    // position) is the first byte of "♥": pad with words until it is
    let lead = "♥".as_bytes()[0] as u32 + 3;
    let prompt = (0..seq_len)
        .map(|n| format!("{}♥", "a ".repeat(n)))
        .find(|text| llama.tokenizer().encode(text, true, false).unwrap().get(seq_len) == Some(&lead))
        .expect("a padding that puts the heart's first byte at seq_len");
    let text = llama.generate(&prompt, p, 0).unwrap();
    assert_eq!(llama.tokens().len(), seq_len + 1);
    assert!(text.ends_with('\u{FFFD}'), "{:?}", &text[text.len().saturating_sub(20)..]);
    let e = refusal(&mut llama, 10);
    assert_eq!(e, format!("the generation reached seq_len ({seq_len} positions): nothing more fits"));
}

/// What cannot continue says why, and changes nothing.
#[test]
fn what_cannot_continue_says_why() {
    let mut llama = stories260k();
    let greedy = SamplerParams::new(0.0, 0.9, 1).unwrap();
    assert_eq!(refusal(&mut llama, 10), "nothing to continue: generate first");

    // the story ended with BOS (run.c's golden case that does)
    let c = fp32_cases().into_iter().find(|c| c.tokens.last() == Some(&1) && c.steps as usize + 1 > c.tokens.len()).unwrap();
    let mut ended = model(&c);
    ended.generate(&c.prompt, params(&c), c.steps).unwrap();
    assert_eq!(
        refusal(&mut ended, 10),
        "the story ended (the model produced its end token): start a new one"
    );
    assert_eq!(ended.tokens(), &c.tokens[..]);
    assert!(ended.step().unwrap().is_none(), "a refused extend does not restart the loop");

    // all seq_len positions used (a prompt longer than that: no BOS can come first)
    let seq_len = llama.config().seq_len;
    llama.start(&"a ".repeat(seq_len), greedy, 0).unwrap();
    run(&mut llama);
    assert_eq!(llama.tokens().len(), seq_len + 1);
    let msg = refusal(&mut llama, 0);
    assert_eq!(msg, "the generation reached seq_len (512 positions): nothing more fits");
    assert!(llama.step().unwrap().is_none());

    // other kernels would continue from keys and values they did not compute
    llama.start("Once upon a time", greedy, 20).unwrap();
    run(&mut llama);
    llama.set_kernels(Kernels::Scalar);
    let msg = refusal(&mut llama, 10);
    assert_eq!(msg, "the kernels changed since this text was generated: start a new one");

    // a new tokenizer forgets the text
    llama.start("Once upon a time", greedy, 20).unwrap();
    run(&mut llama);
    llama.set_tokenizer(llama2_wasm::Tokenizer::from_bytes(&data("tok512.bin")).unwrap()).unwrap();
    assert_eq!(refusal(&mut llama, 10), "nothing to continue: generate first");

    // a chat goes on with chat_user
    llama.start_chat("", greedy, 100).unwrap();
    let msg = refusal(&mut llama, 10);
    assert_eq!(msg, "a chat goes on with the user's next message (chatUser), not extend");

    // and after all that the model still generates run.c's text
    let c = &fp32_cases()[1];
    let mut again = model(c);
    assert_eq!(refusal(&mut again, 1), "nothing to continue: generate first");
    assert_eq!(again.generate(&c.prompt, params(c), c.steps).unwrap(), c.stdout);
}

/// With the inspector open across the boundary: one timing per position of
/// both parts, every position replayable, and a replay of the first part's
/// positions equal to the uninterrupted run's record.
#[test]
fn the_inspector_follows_a_continued_run() {
    let c = fp32_cases().into_iter().find(|c| c.temperature > 0.0 && c.tokens.len() == 257).unwrap();
    let mut whole = model(&c);
    whole.set_inspect(Some(native_clock), false);
    whole.generate(&c.prompt, params(&c), c.steps).unwrap();
    let mut parts = model(&c);
    parts.set_inspect(Some(native_clock), false);
    in_parts(&mut parts, &c, 100, [c.steps - 100]);
    assert_eq!(parts.tokens(), whole.tokens());
    let positions = c.tokens.len() - 1;
    assert_eq!(parts.cached_positions(), positions);
    let history = parts.inspector().unwrap().history();
    assert_eq!(history.len(), positions);
    assert!(history.iter().all(|t| t.is_some()), "every position of both parts timed live");
    for pos in [0, 50, 99, 100, 101, 200, positions - 1] {
        parts.inspect_at(pos).unwrap();
        whole.inspect_at(pos).unwrap();
        let (a, b) = (parts.record().unwrap(), whole.record().unwrap());
        assert_eq!((a.pos, a.token, a.next, a.forced), (b.pos, b.token, b.next, b.forced), "position {pos}");
        assert_eq!(a.logits, b.logits, "position {pos}");
        assert_eq!(a.attention, b.attention, "position {pos}");
    }
    assert!(parts.inspect_at(positions).is_err());
    // replays rewrite the cache with the same values: continuing after them changes nothing
    parts.extend(20).unwrap();
    whole.extend(20).unwrap();
    run(&mut parts);
    run(&mut whole);
    assert_eq!(parts.tokens(), whole.tokens());
}

/// stories260K never ends a turn (it was not trained to produce EOS), so
/// for a conversation of several turns its classifier gets an EOS row equal
/// to the row of ".": sampled, EOS is then as likely as a full stop (seed 6
/// gives three turns with an answer each). An unshared-classifier legacy
/// file: negative vocab_size and `wcls` appended.
fn stories260k_that_ends_turns() -> Llama {
    use llama2_wasm::checkpoint::Matrix;
    use llama2_wasm::{Checkpoint, Tokenizer};
    let tok = Tokenizer::from_bytes(&data("tok512.bin")).unwrap();
    let dot = (0..512).find(|&t| tok.piece(t) == b".").unwrap() as usize;
    let mut bytes = data("stories260K.bin");
    bytes[20..24].copy_from_slice(&(-512i32).to_le_bytes());
    let c = Checkpoint::from_bytes(&data("stories260K.bin")).unwrap();
    let Matrix::F32(table) = &c.weights.token_embedding_table else { panic!("fp32 file") };
    let dim = c.config().dim;
    let mut wcls = table.clone();
    wcls.copy_within(dot * dim..(dot + 1) * dim, 2 * dim);
    bytes.extend(wcls.iter().flat_map(|f| f.to_le_bytes()));
    Llama::new(Checkpoint::from_bytes(&bytes).unwrap(), tok, false).unwrap()
}

/// run.c's chat already continues one conversation in one KV cache: each
/// `chat_user` turn starts at the position the last one reached, and
/// attends over everything before it.
#[test]
fn chat_turns_continue_one_kv_cache() {
    let mut llama = stories260k_that_ends_turns();
    llama.set_inspect(Some(native_clock), false);
    llama.start_chat("be kind", SamplerParams::new(1.0, 0.9, 6).unwrap(), 0).unwrap();
    let mut ends = Vec::new();
    for message in ["Tell me a story", "And then?", "Thank you"] {
        let before = llama.tokens().to_vec();
        llama.chat_user(message).unwrap();
        llama.step().unwrap().unwrap();
        let record = llama.record().unwrap();
        assert_eq!(record.pos, before.len(), "{message:?} starts where the last turn stopped");
        assert_eq!(record.attention(0, 0).unwrap().len(), before.len() + 1, "{message:?} attends over the turns before");
        let mut answer = String::new();
        while let Some(step) = llama.step().unwrap() {
            answer.push_str(&step.text);
        }
        assert!(llama.is_running(), "{message:?}: the turn ended with EOS, not out of steps");
        assert!(!answer.is_empty(), "{message:?}: an answer");
        assert_eq!(&llama.tokens()[..before.len()], &before[..], "earlier turns are kept");
        ends.push(llama.cached_positions());
        assert_eq!(llama.tokens().len(), llama.cached_positions());
    }
    assert!(ends.windows(2).all(|w| w[0] < w[1]), "positions keep increasing: {ends:?}");
    // every position of the three turns can be replayed from the one cache
    llama.inspect_at(ends[2] - 1).unwrap();
    assert!(refusal(&mut llama, 10).contains("chatUser"));
}
