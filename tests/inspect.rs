//! The inspector, natively: what it reports is what the engine computed, and
//! recording changes nothing about the generation.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Instant;

use common::{data, generate_cases};
use llama2_wasm::inspect::{native_clock, Phase, Stage, SNAPSHOT_VALUES};
use llama2_wasm::{Llama, SamplerParams};

fn stories260k() -> Llama {
    Llama::from_bytes(&data("stories260K.bin"), &data("tok512.bin")).unwrap()
}

fn params(temperature: f64, topp: f64, seed: u64) -> SamplerParams {
    SamplerParams::new(temperature, topp, seed).unwrap()
}

/// Softmax in f64, as a check independent of the engine's kernels.
fn softmax64(logits: &[f32], temperature: f64) -> Vec<f64> {
    let t = if temperature == 0.0 { 1.0 } else { temperature };
    let max = logits.iter().map(|&l| l as f64 / t).fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|&l| (l as f64 / t - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|x| x / z).collect()
}

#[test]
fn recording_changes_no_token() {
    for c in generate_cases().iter().filter(|c| !c.model.contains("_q80")) {
        let mut llama = Llama::from_bytes(&data(&c.model), &data(&c.tokenizer)).unwrap();
        llama.set_inspect(Some(native_clock), true);
        llama.start(&c.prompt, params(c.temperature, c.topp, c.seed), c.steps).unwrap();
        while llama.step().unwrap().is_some() {
            assert!(llama.record().is_some());
        }
        assert_eq!(llama.tokens(), &c.tokens[..], "{} t={} p={}", c.model, c.temperature, c.topp);
    }
}

#[test]
fn recording_changes_no_token_of_q80_models_either() {
    for quantize_on_load in [false, true] {
        let run = |inspect: bool| {
            let mut llama = if quantize_on_load {
                let c = llama2_wasm::Checkpoint::from_bytes(&data("stories260K.bin")).unwrap();
                Llama::new(c, llama2_wasm::Tokenizer::from_bytes(&data("tok512.bin")).unwrap(), true).unwrap()
            } else {
                Llama::from_bytes(&data("stories260K_q80.bin"), &data("tok512.bin")).unwrap()
            };
            if inspect {
                llama.set_inspect(Some(native_clock), true);
            }
            llama.start("Once upon a time", params(1.0, 0.9, 42), 0).unwrap();
            while llama.step().unwrap().is_some() {
                if let Some(p) = llama.record() {
                    assert_eq!(p.snapshots.len(), 1 + 5 * 10 + 2);
                }
            }
            llama.tokens().to_vec()
        };
        assert_eq!(run(true), run(false));
    }
}

#[test]
fn topk_is_the_samplers_distribution() {
    for (temperature, topp) in [(0.0, 0.9), (1.0, 0.9), (0.8, 0.5), (1.0, 1.0)] {
        let mut llama = stories260k();
        llama.set_inspect(Some(native_clock), false);
        llama.start("Once upon a time", params(temperature, topp, 42), 40).unwrap();
        let prompt_len = llama.prompt_len();
        let mut checked = 0;
        while llama.step().unwrap().is_some() {
            let probe = llama.record().unwrap();
            let d = llama_wasm_distribution(&llama, 10);
            let expected = softmax64(&probe.logits, temperature);
            let sum: f32 = d.candidates.iter().map(|c| c.prob).sum();
            assert!(sum <= 1.0 + 1e-5, "top-10 mass {sum}");
            for (i, c) in d.candidates.iter().enumerate() {
                assert!((c.prob as f64 - expected[c.token as usize]).abs() < 1e-5, "prob of {}", c.token);
                assert_eq!(c.logit, probe.logits[c.token as usize]);
                if i > 0 {
                    assert!(c.prob <= d.candidates[i - 1].prob);
                }
            }
            // nothing outside the list is more likely than its last entry
            let kth = d.candidates.last().unwrap().prob as f64;
            let listed: Vec<u32> = d.candidates.iter().map(|c| c.token).collect();
            assert!(expected.iter().enumerate().all(|(t, &p)| listed.contains(&(t as u32)) || p <= kth + 1e-6));

            let next = probe.next.unwrap();
            assert_eq!(probe.forced, probe.pos + 1 < prompt_len);
            if !probe.forced {
                if temperature == 0.0 {
                    assert_eq!(next, d.candidates[0].token, "greedy takes the top-1");
                    assert_eq!(d.nucleus, 1);
                }
                // the sampled token is one the sampler could pick
                if let Some(c) = d.candidates.iter().find(|c| c.token == next) {
                    assert!(c.kept, "sampled token {next} outside the nucleus");
                }
                // its rank and probability, listed or not
                let (prob, rank) = d.next.unwrap();
                assert!((prob as f64 - expected[next as usize]).abs() < 1e-5);
                assert!(rank <= d.nucleus, "rank {rank} beyond the nucleus {}", d.nucleus);
                if rank <= 10 {
                    assert_eq!(d.candidates[rank - 1].token, next);
                }
                checked += 1;
            }
        }
        assert!(checked > 10);
    }
}

fn llama_wasm_distribution(llama: &Llama, k: usize) -> llama2_wasm::inspect::Distribution {
    llama.distribution(k).unwrap()
}

#[test]
fn attention_rows_are_distributions_over_past_positions() {
    let mut llama = stories260k();
    let c = *llama.config();
    llama.set_inspect(Some(native_clock), false);
    llama.start("Once upon a time", params(0.0, 0.9, 1), 30).unwrap();
    while llama.step().unwrap().is_some() {
        let probe = llama.record().unwrap();
        for l in 0..c.n_layers {
            for h in 0..c.n_heads {
                let row = probe.attention(l, h).unwrap();
                assert_eq!(row.len(), probe.pos + 1);
                let sum: f32 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "layer {l} head {h} sums to {sum}");
                assert!(row.iter().all(|&a| (0.0..=1.0).contains(&a)));
            }
        }
        assert!(probe.attention(c.n_layers, 0).is_none());
        assert!(probe.attention(0, c.n_heads).is_none());
    }
}

#[test]
fn timings_partition_the_step() {
    let mut llama = stories260k();
    llama.set_inspect(Some(native_clock), false);
    llama.start("Once upon a time", params(1.0, 0.9, 7), 100).unwrap();
    let mut each = Vec::new();
    loop {
        let t = Instant::now();
        let more = llama.step().unwrap().is_some();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !more {
            break;
        }
        let timings = llama.record().unwrap().timings;
        each.push(timings);
        assert!(timings.ms.iter().all(|&ms| ms >= 0.0));
        assert!(timings.total() <= ms + 1e-3, "the parts ({}) exceed the step ({ms})", timings.total());
        assert!(timings.get(Phase::Projections) > 0.0 && timings.get(Phase::Ffn) > 0.0);
    }
    // (how much of the wall time the parts cover depends on the machine's
    // load: that ratio is the bench's to print, not a test's to assert)

    // every position keeps its live timings; a replay does not overwrite them
    let inspector = llama.inspector().unwrap();
    assert_eq!(inspector.history().len(), each.len());
    assert!(each.iter().enumerate().all(|(pos, t)| inspector.timings_at(pos) == Some(*t)));
    llama.inspect_at(10).unwrap();
    assert_eq!(llama.inspector().unwrap().timings_at(10), Some(each[10]));
    assert_eq!(llama.record().unwrap().timings.get(Phase::Sampling), 0.0, "a replay samples nothing");
    // a new generation starts a new history
    llama.start("", params(0.0, 0.9, 1), 3).unwrap();
    llama.step().unwrap();
    assert_eq!(llama.inspector().unwrap().history().len(), 1);
}

#[test]
fn replaying_a_position_reproduces_it_exactly() {
    let mut live = stories260k();
    live.set_inspect(Some(native_clock), false);
    live.start("Once upon a time", params(1.0, 0.9, 3), 50).unwrap();
    let mut records = Vec::new();
    while live.step().unwrap().is_some() {
        let p = live.record().unwrap();
        records.push((p.pos, p.token, p.next, p.forced, p.logits.clone(), p.attention.clone()));
    }
    let tokens = live.tokens().to_vec();
    for &pos in &[0usize, 3, 4, 17, 48] {
        live.inspect_at(pos).unwrap();
        let p = live.record().unwrap();
        let r = &records[pos];
        assert!(p.replayed);
        assert_eq!((p.pos, p.token, p.next, p.forced), (r.0, r.1, r.2, r.3), "position {pos}");
        assert_eq!(p.logits, r.4, "logits at {pos}");
        assert_eq!(p.attention, r.5, "attention at {pos}");
    }
    assert_eq!(live.tokens(), &tokens[..]);
    assert_eq!(records.len(), 50);
    let err = live.inspect_at(50).unwrap_err().to_string();
    assert!(err.contains("positions 0 to 49"), "{err}");

    // replaying in the middle of a generation changes nothing that follows
    let mut a = stories260k();
    let mut b = stories260k();
    b.set_inspect(Some(native_clock), false);
    a.start("Once upon a time", params(1.0, 0.9, 5), 60).unwrap();
    b.start("Once upon a time", params(1.0, 0.9, 5), 60).unwrap();
    for i in 0.. {
        let (sa, sb) = (a.step().unwrap(), b.step().unwrap());
        assert_eq!(sa, sb);
        if sa.is_none() {
            break;
        }
        if i % 7 == 6 {
            b.inspect_at(i / 2).unwrap();
        }
    }
    assert_eq!(a.tokens(), b.tokens());

    // closed: nothing recorded, and replay says how to open it
    b.set_inspect(None, false);
    assert!(b.record().is_none());
    assert!(b.inspect_at(0).unwrap_err().to_string().contains("inspector is closed"));
}

#[test]
fn walkthrough_follows_run_c_order() {
    let mut llama = stories260k();
    let c = *llama.config();
    llama.set_inspect(Some(native_clock), true);
    llama.start("", params(0.0, 0.9, 1), 3).unwrap();
    llama.step().unwrap();
    llama.step().unwrap();
    let probe = llama.record().unwrap();
    let stages: Vec<(Stage, Option<usize>)> = probe.snapshots.iter().map(|s| (s.stage, s.layer)).collect();
    let mut expected = vec![(Stage::Embedding, None)];
    for l in 0..c.n_layers {
        for stage in [
            Stage::AttNorm,
            Stage::Query,
            Stage::Key,
            Stage::Value,
            Stage::AttWeights,
            Stage::AttOutput,
            Stage::AttResidual,
            Stage::FfnNorm,
            Stage::Hidden,
            Stage::FfnResidual,
        ] {
            expected.push((stage, Some(l)));
        }
    }
    expected.push((Stage::FinalNorm, None));
    expected.push((Stage::Logits, None));
    assert_eq!(stages, expected);

    let first = &probe.snapshots[0];
    assert_eq!(first.len, c.dim);
    let lens: Vec<usize> = probe.snapshots.iter().map(|s| s.len).collect();
    assert_eq!(lens[5], probe.pos + 1); // att of layer 0 at position 1: two weights
    assert_eq!(lens[3], c.kv_dim());
    assert_eq!(lens[9], c.hidden_dim);
    let logits = probe.snapshots.last().unwrap();
    assert_eq!(logits.values, probe.logits[..SNAPSHOT_VALUES]);
    let rms = (probe.logits.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / c.vocab_size as f64).sqrt();
    assert!((logits.rms as f64 - rms).abs() < 1e-4 * rms.max(1.0));
    // every stage explains itself
    assert!(probe.snapshots.iter().all(|s| !s.stage.explain().is_empty() && s.stage.shape().starts_with('(')));

    // without the walkthrough, no snapshots are taken
    llama.set_inspect(Some(native_clock), false);
    llama.step().unwrap();
    assert!(llama.record().unwrap().snapshots.is_empty());
}

/// A GPU's step (`step_with_logits`) with the inspector open, fed the CPU's
/// own logits: the record is the CPU's record without attention (the
/// logits before the sampler, what followed and how), flagged as the
/// GPU's, timed as one whole step; replaying a position the "GPU" ran
/// (`inspect_at`, the CPU's cache catching up) gives the CPU's attention
/// exactly, and so do the logit lens and follow.
#[test]
fn a_gpu_step_records_its_logits_and_a_replay_gives_the_attention() {
    for (temperature, choose) in [(0.0, false), (1.0, false), (1.0, true)] {
        let mut cpu = stories260k();
        let mut gpu = stories260k();
        cpu.set_inspect(Some(native_clock), false);
        gpu.set_inspect(Some(native_clock), false);
        cpu.start("Once upon a time", params(temperature, 0.9, 11), 40).unwrap();
        gpu.start("Once upon a time", params(temperature, 0.9, 11), 40).unwrap();
        let what = format!("temperature {temperature}, choosing {choose}");
        let mut cpu_records = Vec::new();
        for step in 0.. {
            // past the prompt, choose every third token (another than the sampler's, maybe)
            if choose && step % 3 == 2 && cpu.check_force().is_ok() {
                cpu.force_next(step as u32 % 500).unwrap();
                gpu.force_next(step as u32 % 500).unwrap();
            }
            let expected = cpu.step().unwrap();
            let Some(c) = cpu.record().filter(|r| r.pos == step) else {
                assert_eq!(expected, None);
                break;
            };
            let c = c.clone();
            let got = gpu.step_with_logits(&c.logits, 2.5).unwrap();
            assert_eq!(got, expected, "{what}: step {step}");
            let g = gpu.record().unwrap();
            assert!(g.gpu && !c.gpu && !g.replayed, "{what}");
            assert_eq!(
                (g.pos, g.token, g.next, g.forced, g.chosen),
                (c.pos, c.token, c.next, c.forced, c.chosen),
                "{what}: position {step}"
            );
            assert_eq!(g.logits, c.logits, "{what}: the logits before the sampler, at {step}");
            assert!(g.attention.is_empty() && g.attention(0, 0).is_none() && g.snapshots.is_empty());
            assert_eq!(g.timings, Default::default(), "no phases on a GPU record");
            assert!(g.step_ms >= 2.5, "the GPU's 2.5 ms and the sampler's: {}", g.step_ms);
            let live = gpu.inspector().unwrap().live_at(step).unwrap();
            assert_eq!(live, llama2_wasm::inspect::Live::Gpu(g.step_ms));
            assert_eq!(gpu.inspector().unwrap().timings_at(step), None, "no phase timings in the history");
            // the same distribution as the CPU's record gives
            assert_eq!(gpu.distribution(10), cpu.distribution(10), "{what}: top-k at {step}");
            cpu_records.push(c);
        }
        assert!(cpu_records.iter().any(|r| r.forced) && cpu_records.iter().any(|r| !r.forced));
        assert_eq!(cpu_records.iter().any(|r| r.chosen), choose);
        assert_eq!(gpu.tokens(), cpu.tokens(), "{what}");
        // a replay runs on the CPU: the CPU's record, attention and all
        for &pos in &[cpu_records.len() - 1, 0, 5, 17] {
            gpu.inspect_at(pos).unwrap();
            cpu.inspect_at(pos).unwrap();
            let (g, c) = (gpu.record().unwrap(), cpu.record().unwrap());
            assert!(!g.gpu && g.replayed, "{what}");
            assert_eq!((g.pos, g.next, g.forced, g.chosen), (c.pos, c.next, c.forced, c.chosen));
            assert_eq!(g.logits, cpu_records[pos].logits, "{what}: replayed logits at {pos}");
            assert_eq!(g.attention, c.attention, "{what}: replayed attention at {pos}");
            assert!(!g.attention.is_empty() && g.step_ms == g.timings.total());
            // the replay leaves the GPU's live time of that position alone
            assert!(matches!(gpu.inspector().unwrap().live_at(pos), Some(llama2_wasm::inspect::Live::Gpu(_))));
            assert_eq!(gpu.lens(pos, 5).unwrap(), cpu.lens(pos, 5).unwrap(), "{what}: lens at {pos}");
            let (gf, cf) = (
                gpu.follow(pos, Stage::AttWeights, Some(1), 0).unwrap(),
                cpu.follow(pos, Stage::AttWeights, Some(1), 0).unwrap(),
            );
            assert_eq!(gf.value.to_bits(), cf.value.to_bits(), "{what}: follow at {pos}");
        }
        // and the generation goes on after replays on either path
        assert_eq!(gpu.tokens(), cpu.tokens());
    }
}

/// `follow` of a position only a GPU ran: the CPU's cache catches up first
/// (before, it read keys and values the CPU never wrote).
#[test]
fn following_a_gpu_position_catches_the_cpu_up() {
    let mut cpu = stories260k();
    let mut gpu = stories260k();
    cpu.start("Once upon a time", params(0.0, 0.9, 1), 20).unwrap();
    gpu.start("Once upon a time", params(0.0, 0.9, 1), 20).unwrap();
    while cpu.step().unwrap().is_some() {
        let logits = cpu.transformer().state.logits.clone();
        // (greedy: the sampler leaves the logits as they were)
        gpu.step_with_logits(&logits, 0.0).unwrap();
    }
    assert_eq!(gpu.tokens(), cpu.tokens());
    assert_eq!(gpu.held().cpu, 0);
    for stage in [Stage::AttWeights, Stage::AttOutput, Stage::Logits] {
        let layer = stage.in_layer().then_some(0);
        let (g, c) = (gpu.follow(15, stage, layer, 1).unwrap(), cpu.follow(15, stage, layer, 1).unwrap());
        assert_eq!(g.value.to_bits(), c.value.to_bits(), "{stage:?}");
    }
}
