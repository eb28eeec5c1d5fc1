//! Steering a generation: `force_next` (the next token chosen instead of
//! sampled) and `undo` (the last token taken back). Choosing the sampler's
//! own pick at every step is run.c's run; a choice changes only its token,
//! never the random numbers; undo is the exact inverse of a step (the same
//! logits, tokens, text and random numbers when the step is done again);
//! what cannot be done says why and changes nothing.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{data, generate_cases, GenerateCase};
use llama2_wasm::inspect::native_clock;
use llama2_wasm::kernels::Kernels;
use llama2_wasm::{Llama, SamplerParams};

const BOS: u32 = 1;

fn model(c: &GenerateCase) -> Llama {
    Llama::from_bytes(&data(&c.model), &data(&c.tokenizer)).unwrap()
}

fn params(c: &GenerateCase) -> SamplerParams {
    SamplerParams::new(c.temperature, c.topp, c.seed).unwrap()
}

fn stories260k() -> Llama {
    Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap()
}

fn greedy() -> SamplerParams {
    SamplerParams::new(0.0, 0.9, 1).unwrap()
}

fn fp32_cases() -> Vec<GenerateCase> {
    let cases: Vec<_> = generate_cases().into_iter().filter(|c| !c.model.contains("_q80")).collect();
    assert!(cases.len() >= 8, "expected the golden fp32 cases, found {}", cases.len());
    cases
}

fn label(c: &GenerateCase) -> String {
    format!("{} {:?} t={} p={} seed={}", c.model, c.prompt, c.temperature, c.topp, c.seed)
}

/// Each step's piece of text, until the loop stops.
fn pieces(llama: &mut Llama) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(step) = llama.step().unwrap() {
        out.push(step.text);
    }
    out
}

/// The token the next step of a golden run produces (a run of `c` that has
/// followed it so far).
fn golden_next(llama: &Llama, c: &GenerateCase) -> u32 {
    c.tokens[llama.tokens().len()]
}

/// Every fp32 golden case with the sampler's own pick chosen at every step
/// past the prompt (and, separately, at every other step): run.c's tokens
/// and text, with both kernel sets, at temperature 0 and above. The chosen
/// steps draw the sampler's random number, so the sampled ones after them
/// still draw the numbers run.c drew.
#[test]
fn choosing_the_samplers_own_pick_reproduces_run_c() {
    for kernels in [Kernels::Simd, Kernels::Scalar] {
        for c in fp32_cases() {
            for every in [1, 2] {
                let what = format!("{kernels:?} {} every {every}", label(&c));
                let mut llama = model(&c);
                llama.set_kernels(kernels);
                llama.set_inspect(Some(native_clock), false);
                llama.start(&c.prompt, params(&c), c.steps).unwrap();
                let prompt_len = llama.prompt_len();
                let (mut text, mut chosen) = (String::new(), 0);
                for i in 0.. {
                    let choose = llama.check_force().is_ok();
                    assert_eq!(choose, i + 1 >= prompt_len && llama.is_running(), "{what}: step {i}");
                    if choose && i % every == 0 {
                        llama.force_next(golden_next(&llama, &c)).unwrap();
                        chosen += 1;
                    }
                    let Some(step) = llama.step().unwrap() else { break };
                    text.push_str(&step.text);
                    let r = llama.record().unwrap();
                    assert_eq!(r.chosen, choose && i % every == 0, "{what}: step {i}");
                    assert_eq!(r.forced, i + 1 < prompt_len);
                }
                assert_eq!(llama.tokens(), &c.tokens[..], "{what}");
                assert_eq!(text, c.stdout, "{what}");
                assert!(chosen > 100 / every, "{what}: {chosen} chosen");
            }
        }
    }
}

/// A token chosen against the sampler changes that token (and so the
/// logits after it), never the random numbers: the generator's state after
/// each step is the unforced run's. At temperature 0 nothing is drawn.
#[test]
fn a_choice_leaves_the_random_numbers_alone() {
    for c in fp32_cases().iter().filter(|c| c.model == "stories260K.bin") {
        let (mut plain, mut steered) = (model(c), model(c));
        plain.start(&c.prompt, params(c), c.steps).unwrap();
        steered.start(&c.prompt, params(c), c.steps).unwrap();
        let seed = plain.sampler().rng_state();
        let mut differs = false;
        while plain.is_running() && steered.is_running() {
            if steered.check_force().is_ok() {
                // another token than run.c's, never the end token
                let other = (golden_next(&plain, c) + 7) % 512;
                steered.force_next(if other == BOS { 2 } else { other }).unwrap();
            }
            plain.step().unwrap();
            steered.step().unwrap();
            assert_eq!(plain.sampler().rng_state(), steered.sampler().rng_state(), "{}", label(c));
            differs |= plain.tokens() != steered.tokens();
        }
        assert!(differs);
        if c.temperature == 0.0 {
            assert_eq!(plain.sampler().rng_state(), seed, "greedy draws nothing");
        } else {
            assert_ne!(plain.sampler().rng_state(), seed);
        }
    }
}

/// Every fp32 golden case: each generated token undone one at a time back
/// to the prompt (each undo's text is the text before that step, the
/// inspector's history as long as the sequence), then done again, once
/// by choosing run.c's tokens (the logits of every position bit for bit as
/// they were live) and once by sampling (the random numbers were put back,
/// so the same tokens come): run.c's tokens and text both times.
#[test]
fn undo_then_redo_gives_the_same_logits_tokens_and_text() {
    for c in fp32_cases() {
        let what = label(&c);
        let mut llama = model(&c);
        llama.set_inspect(Some(native_clock), false);
        llama.start(&c.prompt, params(&c), c.steps).unwrap();
        // texts[i]: the text after tokens[..=i]; live[pos]: the logits of pos
        let (mut texts, mut live) = (vec![String::new()], Vec::new());
        loop {
            let step = llama.step().unwrap();
            let r = llama.record().unwrap();
            if r.pos == live.len() {
                // (the step that produces the end token returns None unless it shows U+FFFD)
                let piece = step.as_ref().map_or("", |s| s.text.as_str());
                texts.push(format!("{}{piece}", texts.last().unwrap()));
                live.push(r.logits.clone());
            }
            if step.is_none() {
                break;
            }
        }
        assert_eq!(texts.last().unwrap(), &c.stdout, "{what}");
        let prompt_len = llama.prompt_len();
        let end = llama.tokens().len();
        for redo_by_choosing in [true, false] {
            // back to the end of the prompt, one token at a time
            for len in (prompt_len..end).rev() {
                let text = llama.undo().unwrap();
                assert_eq!(llama.tokens(), &c.tokens[..len], "{what}");
                assert_eq!(text, texts[len - 1], "{what}: text after undoing token {len}");
                assert_eq!(llama.cached_positions(), len - 1);
                let inspector = llama.inspector().unwrap();
                assert_eq!(inspector.history().len(), len - 1, "{what}: timings kept");
                match llama.record() {
                    Some(r) => assert!(len == end - 1 && r.pos == len - 1 && r.next.is_none(), "{what}: record"),
                    None => assert!(len < end - 1),
                }
                assert!(llama.is_running());
            }
            let e = llama.undo().unwrap_err().to_string();
            assert_eq!(e, "nothing to undo: every token so far is the prompt's (undo takes back generated tokens only)");
            // and forward again
            let mut text = texts[prompt_len - 1].clone();
            while llama.is_running() {
                if redo_by_choosing {
                    llama.force_next(golden_next(&llama, &c)).unwrap();
                }
                let Some(step) = llama.step().unwrap() else { break };
                text.push_str(&step.text);
                let r = llama.record().unwrap();
                assert_eq!(r.logits, live[r.pos], "{what}: logits of position {} done again", r.pos);
                assert_eq!(r.chosen, redo_by_choosing);
            }
            assert_eq!(llama.tokens(), &c.tokens[..], "{what} (redo by choosing: {redo_by_choosing})");
            assert_eq!(text, c.stdout, "{what}");
            // replays of the positions done again are the live ones
            for pos in [0, prompt_len - 1, end - 2] {
                llama.inspect_at(pos).unwrap();
                assert_eq!(llama.record().unwrap().logits, live[pos], "{what}: replay of {pos}");
            }
        }
    }
}

/// Undo in the middle of a run and step on: the same tokens as the run
/// never undone (also across a stop at its steps and `extend`); a choice
/// made and then undone is dropped with its token.
#[test]
fn undo_in_the_middle_of_a_run() {
    let c = fp32_cases().into_iter().find(|c| c.temperature > 0.0 && c.topp < 1.0).unwrap();
    let mut llama = model(&c);
    llama.start(&c.prompt, params(&c), 40).unwrap();
    for _ in 0..30 {
        llama.step().unwrap();
    }
    llama.force_next(300).unwrap();
    llama.undo().unwrap(); // the choice goes with the token before it
    llama.undo().unwrap();
    pieces(&mut llama);
    assert_eq!(llama.tokens(), &c.tokens[..41]);
    // at its steps: undo makes room for one more, extend for the rest
    llama.undo().unwrap();
    assert!(llama.is_running() && llama.check_force().is_ok());
    pieces(&mut llama);
    llama.extend(c.steps - 40).unwrap();
    pieces(&mut llama);
    assert_eq!(llama.tokens(), &c.tokens[..], "{}", label(&c));
}

/// A character split over byte tokens: chosen byte by byte it arrives
/// whole with its last byte; undoing that byte takes the character back
/// (no U+FFFD), and the end token after a first byte shows U+FFFD, which
/// undoing it takes back too.
#[test]
fn undo_across_a_character_split_over_byte_tokens() {
    let mut llama = stories260k();
    // tok512 has no piece for "♥": each byte is a byte token (<0xXX> = byte + 3)
    let heart: Vec<u32> = "♥".bytes().map(|b| b as u32 + 3).collect();
    llama.start("Once upon a time", greedy(), 0).unwrap();
    let text: String = (0..4).map(|_| llama.step().unwrap().unwrap().text).collect();
    assert_eq!(text, "Once upon a time");
    let mut got = Vec::new();
    for &b in &heart {
        llama.force_next(b).unwrap();
        got.push(llama.step().unwrap().unwrap().text);
    }
    assert_eq!(got, ["", "", "♥"]);
    assert_eq!(llama.undo().unwrap(), "Once upon a time");
    llama.force_next(heart[2]).unwrap();
    assert_eq!(llama.step().unwrap().unwrap().text, "♥");
    assert_eq!(llama.undo().unwrap(), "Once upon a time");
    assert_eq!(llama.undo().unwrap(), "Once upon a time");
    // the end token after the first byte: the story ends, the byte shows as U+FFFD
    llama.force_next(BOS).unwrap();
    assert_eq!(llama.step().unwrap().unwrap().text, "\u{FFFD}");
    assert!(!llama.is_running());
    assert_eq!(
        llama.force_next(heart[1]).unwrap_err().to_string(),
        "the story ended (the model produced its end token): undo it, or start a new one"
    );
    assert_eq!(llama.undo().unwrap(), "Once upon a time");
    assert!(llama.is_running());
    for &b in &heart[1..] {
        llama.force_next(b).unwrap();
        llama.step().unwrap();
    }
    assert_eq!(llama.undo().unwrap(), "Once upon a time");
    llama.force_next(heart[2]).unwrap();
    assert_eq!(llama.step().unwrap().unwrap().text, "♥");
    assert_eq!(llama.tokens()[5..], heart[..]);
}

/// What cannot be chosen or undone says why, and changes nothing.
#[test]
fn refusals_say_why() {
    let mut llama = stories260k();
    let msg = |r: llama2_wasm::Result<()>| r.unwrap_err().to_string();
    assert_eq!(msg(llama.force_next(5)), "nothing to generate: call start() first");
    assert_eq!(llama.undo().unwrap_err().to_string(), "nothing to undo: generate first");
    assert_eq!(msg(llama.check_force()), "nothing to generate: call start() first");

    // inside the prompt (5 tokens with BOS): the next token is the prompt's
    llama.start("Once upon a time", greedy(), 10).unwrap();
    assert_eq!(
        msg(llama.force_next(5)),
        "the next token is still the prompt's (token 1 of 5, BOS included): step() through the prompt first, then choose"
    );
    assert_eq!(msg(llama.check_undo()), "nothing to undo: every token so far is the prompt's (undo takes back generated tokens only)");
    for _ in 0..3 {
        llama.step().unwrap();
    }
    assert!(msg(llama.force_next(5)).contains("token 4 of 5"));
    llama.step().unwrap();
    // past the prompt: tokens outside the vocabulary
    assert_eq!(msg(llama.force_next(512)), "invalid argument: token 512 is not in the vocabulary: tokens are whole numbers 0-511");
    assert_eq!(msg(llama.force_next(u32::MAX)), "invalid argument: token 4294967295 is not in the vocabulary: tokens are whole numbers 0-511");
    // the second choice before a step replaces the first
    llama.force_next(100).unwrap();
    llama.force_next(101).unwrap();
    llama.step().unwrap();
    assert_eq!(llama.tokens()[5], 101);
    pieces(&mut llama);
    assert_eq!(msg(llama.force_next(5)), "the generation has used its steps: extend it first");
    llama.extend(1).unwrap();
    llama.force_next(5).unwrap();

    // at seq_len (a prompt longer than that)
    let seq_len = llama.config().seq_len;
    llama.start(&"a ".repeat(seq_len), greedy(), 0).unwrap();
    pieces(&mut llama);
    assert_eq!(msg(llama.force_next(5)), "the generation reached seq_len (512 positions): nothing more fits");
    assert!(msg(llama.check_undo()).contains("every token so far is the prompt's"));

    // a chat
    llama.start_chat("", greedy(), 0).unwrap();
    llama.chat_user("Hi").unwrap();
    llama.step().unwrap();
    assert_eq!(msg(llama.force_next(5)), "choosing the next token works in a generation, not a chat");
    assert_eq!(msg(llama.check_undo()), "undo works in a generation, not a chat");

    // other kernels: the position would run again with other kernels than its past
    llama.start("", greedy(), 20).unwrap();
    pieces(&mut llama);
    let tokens = llama.tokens().to_vec();
    llama.set_kernels(Kernels::Scalar);
    assert_eq!(llama.undo().unwrap_err().to_string(), "the kernels changed since this text was generated: start a new one");
    assert_eq!(llama.tokens(), &tokens[..], "a refused undo changes nothing");
    llama.set_kernels(Kernels::Simd);
}
