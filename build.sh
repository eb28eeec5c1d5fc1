#!/usr/bin/env bash
# llama2-wasm: set up, build, serve and test.
#
#   ./build.sh          set up, build the wasm packages, serve the demo (http://localhost:8080)
#   ./build.sh build    set up and build only
#   ./build.sh dist     set up, build, and write dist/: the page as a static folder for
#                       any static host, with a service worker for threads and offline
#                       use (README, Deploy). DIST=path (from the repository): another
#                       folder; DIST_ONLY=1: assemble www/ as it is, no setup or build
#   ./build.sh package  set up, build, and write the npm package llama2-wasm and its
#                       tarball into target/npm/ (README, Embed it). PACKAGE_ONLY=1:
#                       package www/ as it is, no setup or build
#   ./build.sh test     set up, build, and run every test (native, wasm in headless
#                       Chromium, and the demo page end to end)
#   ./build.sh fuzz     cargo fuzz (the pinned nightly) on each target for FUZZ_SECONDS (300)
#   ./build.sh bench    speed and memory: Chromium (SIMD and scalar builds) vs the
#                       native CLI and candle's wasm build, and the WebGPU backend vs
#                       the SIMD build (part gpu; without a GPU Chromium's software
#                       adapter, SwiftShader: not GPU speed; BENCH_CHROME=path for a
#                       GPU-backed Chrome, bench/gpu.mjs); prints tables, writes
#                       bench/out/results.json
#
# Setup is idempotent: it adds the wasm32 target, installs wasm-bindgen-cli
# (the version Cargo.lock pins) and wasm-pack with cargo when missing, and for
# `test` installs Debian's chromium + chromium-driver when missing (as root);
# the threaded build (and fuzzing) also needs a pinned nightly Rust with
# rust-src (installed by rustup when missing). Serving needs Node.js
# (serve.mjs); the page tests and the bench also npm's playwright-core.
# Reference models come from ../shared when it exists (the developers' and
# CI's machines), else from their public download addresses.
set -euo pipefail
shopt -s lastpipe
cd "$(dirname "$0")"
ROOT=$(pwd)
PORT=${PORT:-8080}
SHARED=${SHARED:-$ROOT/../shared}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- toolchain
setup_rust() {
    command -v cargo >/dev/null || die "cargo not found: install Rust from https://rustup.rs"
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        say "adding the wasm32-unknown-unknown target"
        rustup target add wasm32-unknown-unknown
    fi
    # wasm-pack needs a wasm-bindgen CLI of exactly the library's version; it
    # cannot always download one, so install it with cargo.
    local want have
    want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
    have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
    if [ -n "$want" ] && [ "$have" != "$want" ]; then
        say "installing wasm-bindgen-cli $want (a few minutes, once)"
        cargo install wasm-bindgen-cli --version "$want" --force
    fi
    if ! command -v wasm-pack >/dev/null; then
        say "installing wasm-pack (a few minutes, once)"
        cargo install wasm-pack
    fi
}

# The threaded build (www/pkg-threads) rebuilds std with atomics and shared
# memory, which only nightly Rust can do (-Z build-std): a pinned nightly with
# rust-src, installed once (~20 s). Without it the page runs single-threaded.
NIGHTLY=nightly-2026-05-20
setup_nightly() {
    if rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src' &&
        rustup target list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        return
    fi
    say "installing Rust $NIGHTLY with rust-src (for the threaded wasm build, once)"
    rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src --target wasm32-unknown-unknown \
        || say "could not install $NIGHTLY: the demo will run single-threaded"
}

# Install Debian packages when root with apt-get, else stop with `why`.
apt_install() {
    local why=$1
    shift
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || die "$why"
    say "installing $*"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

setup_browser() {
    if command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v google-chrome >/dev/null; }; then
        return
    fi
    apt_install "the browser tests need Chrome/Chromium and a matching chromedriver on PATH" chromium chromium-driver
}

# Node.js: the static server (serve.mjs) needs node alone; the page tests and
# the bench also need npm and its packages (setup_npm).
setup_node() {
    command -v node >/dev/null || apt_install "serving the page needs Node.js on PATH" nodejs npm
}

# playwright-core (package.json) drives the system's Chromium; it downloads no browser
setup_npm() {
    setup_node
    command -v npm >/dev/null || apt_install "the page tests need npm on PATH" npm
    if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules ]; then
        say "installing the page tests' and the bench's npm packages (playwright-core)"
        npm ci --no-audit --no-fund
    fi
}

# ---------------------------------------------------------------- model files
# name -> public download address (used when ../shared is absent)
url_of() {
    case "$1" in
        stories260K.bin) echo "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/stories260K.bin" ;;
        tok512.bin) echo "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/tok512.bin" ;;
        tokenizer.bin) echo "https://raw.githubusercontent.com/karpathy/llama2.c/master/tokenizer.bin" ;;
        *) echo "" ;;
    esac
}

fetch_models() {
    mkdir -p www/models tests/golden
    if [ -d "$SHARED/models" ]; then
        cp -u "$SHARED"/models/* www/models/
        [ -d "$SHARED/golden" ] && cp -u "$SHARED"/golden/* tests/golden/
        chmod -R u+w www/models tests/golden
        return
    fi
    for f in stories260K.bin tok512.bin tokenizer.bin; do
        [ -s "www/models/$f" ] && continue
        say "downloading $f"
        curl -fL --retry 3 -o "www/models/$f.part" "$(url_of "$f")" && mv "www/models/$f.part" "www/models/$f" \
            || die "could not download $f; put it in www/models/ yourself"
    done
}

# ---------------------------------------------------------------- build
build_wasm() {
    say "building the wasm package (SIMD128, release) into www/pkg"
    # (with its TypeScript declarations: the npm package's types name its classes)
    wasm-pack build --release --target web --out-dir www/pkg --no-pack
    build_code
}

# The walkthrough's code beside the numbers: the lines of our Rust that make
# each vector, cut from src/ by www/inspector/code-extract.mjs (which stops
# the build, naming the stage, when www/inspector/code-map.js points at
# lines that are gone) into www/inspector/code.json.
build_code() {
    setup_node
    node www/inspector/code-extract.mjs . www/inspector/code.json || die "the walkthrough's code map no longer matches src/ (www/inspector/code-map.js)"
}

# The same crate with shared memory and atomics (plus SIMD128), for Web
# Worker helpers that share each matmul (src/parallel.rs, www/engine.js).
# rustc no longer links shared memory by itself: --shared-memory,
# --import-memory (wasm-bindgen hands the memory to each Worker), the TLS
# symbols wasm-bindgen's thread start needs, and wasm32's full 4 GiB.
build_wasm_threads() {
    say "building the threaded wasm package (SIMD128 + atomics, $NIGHTLY) into www/pkg-threads"
    # (this replaces .cargo/config.toml's rustflags: web-sys's WebGPU bindings named again)
    local flags="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals --cfg=web_sys_unstable_apis"
    local arg
    for arg in --shared-memory --import-memory --max-memory=4294967296 \
        --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base; do
        flags="$flags -C link-arg=$arg"
    done
    if ! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$flags" CARGO_TARGET_DIR=target/threads \
        rustup run "$NIGHTLY" wasm-pack build . --release --target web --out-dir www/pkg-threads \
        --no-typescript --no-pack -- -Z build-std=panic_abort,std; then
        rm -rf www/pkg-threads
        say "the threaded build failed: the demo will run single-threaded"
        return 1
    fi
}

# The same crate without +simd128, for the benchmark's SIMD / scalar ratio.
build_wasm_scalar() {
    say "building the scalar wasm package (no SIMD) into www/pkg-scalar"
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=-simd128 --cfg=web_sys_unstable_apis" CARGO_TARGET_DIR=target/scalar \
        wasm-pack build --release --target web --out-dir www/pkg-scalar --no-typescript --no-pack
}

# candle's llama2.c model for wasm32, the benchmark's comparison point
# (bench/candle; its own Cargo.lock; a few minutes the first time). A
# failed build leaves the candle column out rather than stopping the bench.
build_candle() {
    say "building candle's llama2-c for wasm (bench/candle/pkg)"
    (cd bench/candle && wasm-pack build --release --target web --out-dir pkg --no-typescript --no-pack) \
        || say "candle did not build: the benchmark runs without it"
}

# The native anchors: llama2.c's own run.c (fp32) and runq.c (Q8_0), one
# thread each, built into target/ref/ as llama2.c builds them for speed:
# run.c as `make runfast` (gcc -Ofast), runq.c as its speed build (gcc -Ofast
# -march=native). The sources come from $SHARED/reference when it exists, else
# from llama2.c's repository (never into git). Also the machine's memory
# ceiling (bench/bandwidth.c). Without a C compiler (or the sources) the
# bench leaves them out.
build_runc() {
    if ! command -v gcc >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing gcc (for the benchmark's run.c and runq.c anchors)"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libc6-dev || true
    fi
    mkdir -p target/ref
    local f
    for f in run.c runq.c; do
        if [ -s "$SHARED/reference/$f" ]; then
            install -m 644 "$SHARED/reference/$f" "target/ref/$f"
        elif [ ! -s "target/ref/$f" ]; then
            say "downloading llama2.c's $f"
            curl -fL --retry 3 -o "target/ref/$f.part" "https://raw.githubusercontent.com/karpathy/llama2.c/master/$f" \
                && mv "target/ref/$f.part" "target/ref/$f" || say "could not download $f: the benchmark runs without it"
        fi
    done
    say "building llama2.c's run.c (gcc -Ofast) and runq.c (gcc -Ofast -march=native) into target/ref/"
    rm -f target/ref/run target/ref/runq
    [ -s target/ref/run.c ] && { gcc -Ofast -o target/ref/run target/ref/run.c -lm \
        || say "gcc failed on run.c: the benchmark runs without it"; }
    [ -s target/ref/runq.c ] && { gcc -Ofast -march=native -o target/ref/runq target/ref/runq.c -lm \
        || say "gcc failed on runq.c: the benchmark runs without it"; }
    say "building the memory ceiling probe into target/"
    # 128-bit SSE (x86-64's baseline, wasm SIMD's width) and this CPU's widest
    gcc -Ofast -o target/bandwidth-sse bench/bandwidth.c -lpthread \
        && gcc -Ofast -march=native -o target/bandwidth-native bench/bandwidth.c -lpthread \
        || say "gcc failed: the benchmark runs without the memory ceiling"
}

run_bench() {
    say "building the native CLI (cargo build --release)"
    cargo build --release
    say "benchmark (bench/run.mjs; random checkpoints are made once into bench/models)"
    node bench/run.mjs
}

# Fuzzing (cargo fuzz, on the threaded build's pinned $NIGHTLY: libFuzzer's
# sanitizer flags need nightly): each target for FUZZ_SECONDS (default 300),
# seeded from the model files in www/models.
run_fuzz() {
    rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 || die "fuzzing needs Rust $NIGHTLY (rustup toolchain install $NIGHTLY)"
    command -v cargo-fuzz >/dev/null || cargo +"$NIGHTLY" install cargo-fuzz
    mkdir -p fuzz/corpus/checkpoint fuzz/corpus/tokenizer fuzz/corpus/encode fuzz/corpus/generate fuzz/corpus/cli_args fuzz/corpus/model_api
    cp -u www/models/stories260K.bin www/models/stories260K_v1.bin www/models/stories260K_q80.bin fuzz/corpus/checkpoint/
    cp -u www/models/tok512.bin fuzz/corpus/tokenizer/
    printf 'Once upon a time, naïve 🦙\n\t<0x41>' > fuzz/corpus/encode/seed
    head -c 4096 www/models/stories260K.bin > fuzz/corpus/generate/seed
    # argument vectors, NUL-separated (argv[0] first)
    printf 'llama2\000model.bin\000-t\0000.8\000-p\0000.9\000-s\00042\000-n\000256\000-i\000Once upon a time\000-z\000tok.bin\000-m\000chat\000-y\000sys\000-q\0001\000-j\0002\000-k\000scalar' > fuzz/corpus/cli_args/seed
    printf 'llama2\000--help' > fuzz/corpus/cli_args/help
    for target in ${FUZZ_TARGETS:-checkpoint tokenizer encode generate cli_args model_api}; do
        say "fuzzing $target for ${FUZZ_SECONDS:-300} s"
        (cd fuzz && cargo +"$NIGHTLY" fuzz run "$target" "corpus/$target" -- \
            -max_total_time="${FUZZ_SECONDS:-300}" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1)
    done
}

# ---------------------------------------------------------------- dist
# The page as a self-contained static folder ($DIST, default dist/) for any
# static host: www/'s page files, www/pkg and www/pkg-threads (when it
# built), the default model files, and sw.js with the list of those files,
# each with its Subresource Integrity hash, and a version (a hash of the
# list) written into it. index.html gets the <meta name="llama2-sw"> that
# makes www/offline.js register the worker (never in development).
make_dist() {
    local dist=${DIST:-dist} f
    [ -s www/pkg/llama2_wasm_bg.wasm ] || die "www/pkg is missing: run ./build.sh build (or ./build.sh dist without DIST_ONLY)"
    for f in stories260K.bin tok512.bin tokenizer.bin; do
        [ -s "www/models/$f" ] || die "www/models/$f is missing: run ./build.sh build"
    done
    [ -s www/inspector/code.json ] || die "www/inspector/code.json is missing: run ./build.sh build"
    # $dist is deleted and written again: refuse a folder that is not a previous
    # dist (one whose sw.js has a build version; www/sw.js has none)
    if [ -e "$dist" ] && [ -n "$(ls -A "$dist")" ] && ! grep -qs '^  version: "[0-9a-f]\{16\}",$' "$dist/sw.js"; then
        die "$dist exists and is not a folder ./build.sh dist wrote: not deleting it"
    fi
    say "writing $dist/"
    rm -rf "$dist"
    mkdir -p "$dist/models"
    # everything in www/ but the packages and models (below), the bench's scalar build and the npm package's lib/
    for f in www/*; do
        case "${f#www/}" in pkg | pkg-threads | pkg-scalar | models | lib) ;; *) cp -r "$f" "$dist/" ;; esac
    done
    rm "$dist/inspector/code-extract.mjs" # a build step, not part of the page
    for f in pkg pkg-threads; do
        [ -d "www/$f" ] && cp -r "www/$f" "$dist/" && rm -f "$dist/$f/.gitignore" # wasm-pack's "*": dist/ may go into git
    done
    [ -d "$dist/pkg-threads" ] || say "no www/pkg-threads: the published page will run on one thread"
    cp www/models/stories260K.bin www/models/tok512.bin www/models/tokenizer.bin "$dist/models/"
    touch "$dist/.nojekyll" # GitHub Pages: serve the files as they are, no Jekyll
    sed -i 's|<meta charset="utf-8">|&\n  <meta name="llama2-sw" content="sw.js">|' "$dist/index.html"
    grep -q '<meta name="llama2-sw"' "$dist/index.html" || die "could not mark $dist/index.html"
    # sw.js's BUILD: "path": "sha256-<base64>" for every file but sw.js and dotfiles
    local list version
    list=$(cd "$dist" && find . -type f ! -name sw.js ! -name '.*' | sed 's|^\./||' | LC_ALL=C sort | while read -r f; do
        printf '    "%s": "sha256-%s",\n' "$f" "$(printf "$(sha256sum "$f" | cut -c1-64 | sed 's/../\\x&/g')" | base64 -w0)"
    done)
    version=$(printf '%s' "$list" | sha256sum | cut -c1-16)
    printf 'const BUILD = {\n  version: "%s",\n  files: {\n%s\n  },\n};\n' "$version" "$list" >"$dist/sw.build"
    awk 'FNR == NR { build = build $0 "\n"; next }
         /^const BUILD = \{ version: "", files: \{\} \};$/ { printf "%s", build; found = 1; next }
         { print }
         END { exit !found }' "$dist/sw.build" www/sw.js >"$dist/sw.js" || die "www/sw.js has no 'const BUILD = { version: \"\", files: {} };' line"
    rm "$dist/sw.build"
    say "$dist/: $(printf '%s\n' "$list" | wc -l) files precached by sw.js (version $version), $(du -sh "$dist" | cut -f1) in all"
    say "try it: python3 -m http.server -d $dist 8000 (any static server; open http://localhost:8000)"
    say "publish: copy $dist/ to any static host, e.g. GitHub Pages (README, Deploy)"
}

# ---------------------------------------------------------------- npm package
# The npm package llama2-wasm: www/lib/ (the high-level Llama2 class, its
# Worker, the types) with the page modules it imports, both wasm builds,
# README and LICENSE, in $PACKAGE_DIR/llama2-wasm (target/npm), and its
# tarball from `npm pack` beside it.
PACKAGE_MODULES="engine.js engine-guard.js loader.js model-build.js download.js storage.js storage-worker.js thread-helper.js"
make_package() {
    local out=${PACKAGE_DIR:-target/npm} version f
    local dir=$out/llama2-wasm
    [ -s www/pkg/llama2_wasm_bg.wasm ] && [ -s www/pkg/llama2_wasm.d.ts ] || die "www/pkg is missing: run ./build.sh build"
    command -v npm >/dev/null || die "making the package needs npm on PATH"
    version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
    say "writing the npm package llama2-wasm $version into $dir"
    rm -rf "$dir" "$out"/llama2-wasm-*.tgz
    mkdir -p "$dir/lib"
    cp www/lib/*.js "$dir/lib/"
    cp www/lib/index.d.ts www/lib/README.md www/lib/LICENSE "$dir/"
    sed "s/@VERSION@/$version/" www/lib/package.template.json >"$dir/package.json"
    for f in $PACKAGE_MODULES; do cp "www/$f" "$dir/"; done
    for f in pkg pkg-threads; do
        [ -d "www/$f" ] && cp -r "www/$f" "$dir/" && rm -f "$dir/$f/.gitignore" # (wasm-pack's "*" would hide it from npm)
    done
    [ -d "$dir/pkg-threads" ] || say "no www/pkg-threads: the package will run on one thread"
    (cd "$out" && npm pack ./llama2-wasm --silent >/dev/null)
    say "$out/llama2-wasm-$version.tgz: $(du -h "$out/llama2-wasm-$version.tgz" | cut -f1) ($(du -sh "$dir" | cut -f1) unpacked)"
}

serve() {
    say "serving the demo at http://localhost:$PORT  (Ctrl-C to stop)"
    exec node serve.mjs www "$PORT"
}

# Sum a log's test counts into "N M" (passed, failed): cargo's "test result"
# lines and node's "# pass N" / "# fail N".
count_results() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
         /^# pass [0-9]+$/ { p += $3 }
         /^# fail [0-9]+$/ { f += $3 }
         END { printf "%d %d\n", p, f }' "$1"
}

run_tests() {
    local log status=0 passed=0 failed=0 p f
    for f in tests/golden/runc_parity.jsonl www/models/stories260K_v1.bin www/models/stories260K_q80.bin; do
        [ -s "$f" ] || die "$f is missing: the tests compare against llama2.c's recorded outputs and files in ../shared (set SHARED=/path/to/shared)"
    done
    log=$(mktemp)
    say "native tests (cargo test --release)"
    cargo test --release 2>&1 | tee "$log" || status=1
    read -r p f < <(count_results "$log"); passed=$((passed + p)); failed=$((failed + f))
    # exactly the design card's command: every test file built for wasm32
    # (dev profile, optimized in Cargo.toml) and run in headless Chrome
    # the WebGPU tests (tests/web/gpu.rs) run on Chromium's software GPU
    # (SwiftShader, --enable-unsafe-webgpu in webdriver.json): minutes, more
    # than wasm-bindgen-test-runner's default 20 s for the whole run
    say "browser tests (wasm-pack test --headless --chrome)"
    WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-1200} wasm-pack test --headless --chrome 2>&1 | tee "$log" || status=1
    read -r p f < <(count_results "$log"); passed=$((passed + p)); failed=$((failed + f))
    say "page tests (headless Chromium via playwright-core; screenshots in tests/e2e/out)"
    node --test --test-concurrency=1 tests/e2e/ 2>&1 | tee "$log" || status=1
    read -r p f < <(count_results "$log"); passed=$((passed + p)); failed=$((failed + f))
    rm -f "$log"
    [ "$status" = 0 ] || failed=$((failed > 0 ? failed : 1))
    echo "tests: $passed passed, $failed failed"
    return "$status"
}

cmd=${1:-serve}
case "$cmd" in
    serve) setup_rust; setup_nightly; setup_node; fetch_models; build_wasm; build_wasm_threads || true; serve ;;
    build) setup_rust; setup_nightly; fetch_models; build_wasm; build_wasm_threads || true ;;
    package) [ -n "${PACKAGE_ONLY:-}" ] || { setup_rust; setup_nightly; fetch_models; build_wasm; build_wasm_threads || true; }; make_package ;;
    dist) [ -n "${DIST_ONLY:-}" ] || { setup_rust; setup_nightly; fetch_models; build_wasm; build_wasm_threads || true; }; make_dist ;;
    # the tests need the threaded build: they check it gives run.c's tokens
    test) setup_rust; setup_nightly; setup_browser; setup_npm; fetch_models; build_wasm; build_wasm_threads; run_tests ;;
    bench) setup_rust; setup_nightly; setup_browser; setup_npm; fetch_models; build_wasm; build_wasm_threads
        build_wasm_scalar; build_candle; build_runc; run_bench ;;
    fuzz) setup_rust; setup_nightly; fetch_models; run_fuzz ;;
    *) die "unknown command '$cmd' (use: ./build.sh [serve|build|dist|package|test|bench|fuzz])" ;;
esac
