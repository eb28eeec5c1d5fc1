//! Native CLI mirroring llama2.c's `run`: same flags, same defaults, the text
//! to stdout and `achieved tok/s: X` to stderr.
//!
//!     cargo run --release --bin llama2 -- model.bin -z tokenizer.bin -n 256 -i "Once upon a time"

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

use llama2_wasm::kernels::Kernels;
use llama2_wasm::sampler::SamplerParams;
use llama2_wasm::{Checkpoint, Llama, Tokenizer};

const USAGE: &str = "\
Usage:   llama2 <checkpoint> [options]
Example: llama2 model.bin -n 256 -i \"Once upon a time\"
Options:
  -t <float>  temperature in [0,inf], default 1.0
  -p <float>  p value in top-p (nucleus) sampling in [0,1] default 0.9
  -s <int>    random seed, default: a random one
  -n <int>    number of steps to run for, default 256. 0 = max_seq_len
  -i <string> input prompt
  -z <string> optional path to custom tokenizer (default tokenizer.bin)
  -m <string> mode: generate|chat, default: generate
  -y <string> (optional) system prompt in chat mode
  -q <int>    1 = run an fp32 checkpoint as int8 (Q8_0, quantized on load), default 0
  -j <int>    threads sharing each large matmul, default 1 (run.c without OpenMP)
  -k <string> kernels: simd|scalar, default simd (SSE2 on x86-64: the browser's
              SIMD128 arithmetic, same logits); scalar = run.c's and runq.c's
              loops, token-exact with them";

struct Args {
    checkpoint: String,
    tokenizer: String,
    temperature: f64,
    topp: f64,
    seed: u64,
    steps: i64,
    prompt: Option<String>,
    mode: String,
    system_prompt: Option<String>,
    quantize: bool,
    threads: usize,
    kernels: Kernels,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let checkpoint = argv.get(1).ok_or("missing <checkpoint>")?.clone();
    let mut a = Args {
        checkpoint,
        tokenizer: "tokenizer.bin".into(),
        temperature: 1.0,
        topp: 0.9,
        seed: 0,
        steps: 256,
        prompt: None,
        mode: "generate".into(),
        system_prompt: None,
        quantize: false,
        threads: 1,
        kernels: Kernels::default(),
    };
    let mut i = 2;
    while i < argv.len() {
        let flag = argv[i].as_str();
        let value = argv.get(i + 1).ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |what: &str| format!("{flag} expects {what}, got {value:?}");
        match flag {
            "-t" => a.temperature = value.parse().map_err(|_| num("a number"))?,
            "-p" => a.topp = value.parse().map_err(|_| num("a number"))?,
            // run.c reads the seed with atoi: a negative seed wraps to a large unsigned one
            "-s" => {
                a.seed = value
                    .parse::<u64>()
                    .or_else(|_| value.parse::<i64>().map(|s| s as u64))
                    .map_err(|_| num("an integer"))?
            }
            "-n" => a.steps = value.parse().map_err(|_| num("an integer"))?,
            "-i" => a.prompt = Some(value.clone()),
            "-z" => a.tokenizer = value.clone(),
            "-m" => a.mode = value.clone(),
            "-y" => a.system_prompt = Some(value.clone()),
            "-q" => a.quantize = value.parse::<i64>().map_err(|_| num("0 or 1"))? != 0,
            "-j" => {
                a.threads = value.parse().map_err(|_| num("a whole number of threads"))?;
                if !(1..=llama2_wasm::parallel::MAX_HELPERS + 1).contains(&a.threads) {
                    return Err(format!("-j takes 1 to {} threads", llama2_wasm::parallel::MAX_HELPERS + 1));
                }
            }
            "-k" => a.kernels = Kernels::parse(value).map_err(|e| e.to_string())?,
            _ => return Err(format!("unknown option {flag}")),
        }
        i += 2;
    }
    if a.mode != "generate" && a.mode != "chat" {
        return Err(format!("unknown mode {:?}: use generate or chat", a.mode));
    }
    Ok(a)
}

fn read_file(path: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("couldn't read {what} {path}: {e}"))
}

/// Prompt on stdout and read one line; `None` at the end of input.
fn read_stdin(prompt: &str) -> Option<String> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
    }
}

fn run(a: Args) -> Result<(), String> {
    #[cfg(not(target_arch = "wasm32"))]
    llama2_wasm::parallel::start_native(a.threads - 1);
    let mut checkpoint = Checkpoint::from_bytes(&read_file(&a.checkpoint, "checkpoint")?)
        .map_err(|e| format!("{}: {e}", a.checkpoint))?;
    if a.quantize {
        checkpoint = checkpoint.quantize().map_err(|e| format!("{}: {e}", a.checkpoint))?;
    }
    let tokenizer = Tokenizer::from_bytes(&read_file(&a.tokenizer, "tokenizer")?)
        .map_err(|e| format!("{}: {e}", a.tokenizer))?;
    let mut llama = Llama::new(checkpoint, tokenizer).map_err(|e| e.to_string())?;
    llama.set_kernels(a.kernels);
    let params = SamplerParams::new(a.temperature, a.topp, a.seed).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();

    if a.mode == "chat" {
        let system = match &a.system_prompt {
            Some(s) => s.clone(),
            None => read_stdin("Enter system prompt (optional): ").unwrap_or_default(),
        };
        llama.start_chat(&system, params, a.steps).map_err(|e| e.to_string())?;
        let mut first = true;
        while llama.is_running() {
            let user = match (&a.prompt, first) {
                (Some(p), true) => p.clone(),
                _ => match read_stdin("User: ") {
                    Some(line) => line,
                    None => break, // end of input ends the conversation
                },
            };
            first = false;
            llama.chat_user(&user).map_err(|e| e.to_string())?;
            print!("Assistant: ");
            while let Some(step) = llama.step().map_err(|e| e.to_string())? {
                let _ = out.write_all(step.text.as_bytes());
                let _ = out.flush();
            }
            println!();
        }
        return Ok(());
    }

    let prompt = a.prompt.unwrap_or_default();
    llama.start(&prompt, params, a.steps).map_err(|e| e.to_string())?;
    let mut start: Option<Instant> = None; // timer starts after the first iteration, as in run.c
    while let Some(step) = llama.step().map_err(|e| e.to_string())? {
        let _ = out.write_all(step.text.as_bytes());
        let _ = out.flush();
        start.get_or_insert_with(Instant::now);
    }
    let _ = out.write_all(b"\n");
    let pos = llama.tokens().len().saturating_sub(1);
    if let (Some(start), true) = (start, pos > 1) {
        let secs = start.elapsed().as_secs_f64();
        eprintln!("achieved tok/s: {:.6}", (pos - 1) as f64 / secs);
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
