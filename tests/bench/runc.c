// The benchmark's native anchor: llama2.c's run.c forward pass and greedy
// decoding loop, transcribed (the original file is not available offline on
// the bench machine, and the speed issue's absolute anchors drift with the
// VM's load, so the bench builds this and times it in the same run).
//
// Same loops, same order of operations as run.c (matmul one row at a time,
// RoPE with powf/cosf/sinf per pair, attention per head, expf SwiGLU), fp32
// legacy (v0) checkpoints, one thread; only what generation needs: no
// tokenizer (it prints token ids), no sampling beyond argmax.
//
//   gcc -Ofast -o runc tests/bench/runc.c -lm     (run.c's `make runfast`)
//   ./runc model.bin [steps]    -> token ids on stdout, "achieved tok/s: X" on stderr
//
// The timer starts after the first token, as run.c's does (microseconds here
// rather than run.c's milliseconds: 256 tokens of stories260K take ~15 ms).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} Config;

typedef struct {
    float *token_embedding_table; // (vocab_size, dim)
    float *rms_att_weight;        // (layer, dim)
    float *rms_ffn_weight;        // (layer, dim)
    float *wq;                    // (layer, dim, n_heads * head_size)
    float *wk;                    // (layer, dim, n_kv_heads * head_size)
    float *wv;                    // (layer, dim, n_kv_heads * head_size)
    float *wo;                    // (layer, n_heads * head_size, dim)
    float *w1;                    // (layer, hidden_dim, dim)
    float *w2;                    // (layer, dim, hidden_dim)
    float *w3;                    // (layer, hidden_dim, dim)
    float *rms_final_weight;      // (dim,)
    float *wcls;                  // (vocab_size, dim)
} Weights;

typedef struct {
    float *x, *xb, *xb2, *hb, *hb2, *q, *att, *logits, *key_cache, *value_cache;
} RunState;

static void *zalloc(size_t n) {
    void *p = calloc(n, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void rmsnorm(float *o, float *x, float *weight, int size) {
    float ss = 0.0f;
    for (int j = 0; j < size; j++) ss += x[j] * x[j];
    ss /= size;
    ss += 1e-5f;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < size; j++) o[j] = weight[j] * (ss * x[j]);
}

static void softmax(float *x, int size) {
    float max_val = x[0];
    for (int i = 1; i < size; i++)
        if (x[i] > max_val) max_val = x[i];
    float sum = 0.0f;
    for (int i = 0; i < size; i++) {
        x[i] = expf(x[i] - max_val);
        sum += x[i];
    }
    for (int i = 0; i < size; i++) x[i] /= sum;
}

// W (d,n) @ x (n,) -> xout (d,): where run.c spends its time
static void matmul(float *xout, float *x, float *w, int n, int d) {
    for (int i = 0; i < d; i++) {
        float val = 0.0f;
        for (int j = 0; j < n; j++) val += w[(size_t)i * n + j] * x[j];
        xout[i] = val;
    }
}

static float *forward(Config *p, Weights *w, RunState *s, int token, int pos) {
    float *x = s->x;
    int dim = p->dim;
    int kv_dim = (p->dim * p->n_kv_heads) / p->n_heads;
    int kv_mul = p->n_heads / p->n_kv_heads;
    int hidden_dim = p->hidden_dim;
    int head_size = dim / p->n_heads;
    memcpy(x, w->token_embedding_table + (size_t)token * dim, dim * sizeof(*x));
    for (size_t l = 0; l < (size_t)p->n_layers; l++) {
        rmsnorm(s->xb, x, w->rms_att_weight + l * dim, dim);
        size_t loff = l * p->seq_len * kv_dim;
        float *k = s->key_cache + loff + (size_t)pos * kv_dim;
        float *v = s->value_cache + loff + (size_t)pos * kv_dim;
        matmul(s->q, s->xb, w->wq + l * dim * dim, dim, dim);
        matmul(k, s->xb, w->wk + l * dim * kv_dim, dim, kv_dim);
        matmul(v, s->xb, w->wv + l * dim * kv_dim, dim, kv_dim);
        // RoPE: rotate q and k in each head
        for (int i = 0; i < dim; i += 2) {
            int head_dim = i % head_size;
            float freq = 1.0f / powf(10000.0f, head_dim / (float)head_size);
            float val = pos * freq;
            float fcr = cosf(val), fci = sinf(val);
            int rotn = i < kv_dim ? 2 : 1;
            for (int r = 0; r < rotn; r++) {
                float *vec = r == 0 ? s->q : k;
                float v0 = vec[i], v1 = vec[i + 1];
                vec[i] = v0 * fcr - v1 * fci;
                vec[i + 1] = v0 * fci + v1 * fcr;
            }
        }
        for (int h = 0; h < p->n_heads; h++) {
            float *q = s->q + h * head_size;
            float *att = s->att + h * p->seq_len;
            for (int t = 0; t <= pos; t++) {
                float *kt = s->key_cache + loff + (size_t)t * kv_dim + (h / kv_mul) * head_size;
                float score = 0.0f;
                for (int i = 0; i < head_size; i++) score += q[i] * kt[i];
                score /= sqrtf(head_size);
                att[t] = score;
            }
            softmax(att, pos + 1);
            float *xb = s->xb + h * head_size;
            memset(xb, 0, head_size * sizeof(float));
            for (int t = 0; t <= pos; t++) {
                float *vt = s->value_cache + loff + (size_t)t * kv_dim + (h / kv_mul) * head_size;
                float a = att[t];
                for (int i = 0; i < head_size; i++) xb[i] += a * vt[i];
            }
        }
        matmul(s->xb2, s->xb, w->wo + l * dim * dim, dim, dim);
        for (int i = 0; i < dim; i++) x[i] += s->xb2[i];
        rmsnorm(s->xb, x, w->rms_ffn_weight + l * dim, dim);
        matmul(s->hb, s->xb, w->w1 + l * dim * hidden_dim, dim, hidden_dim);
        matmul(s->hb2, s->xb, w->w3 + l * dim * hidden_dim, dim, hidden_dim);
        for (int i = 0; i < hidden_dim; i++) {
            float val = s->hb[i];
            val *= (1.0f / (1.0f + expf(-val)));
            val *= s->hb2[i];
            s->hb[i] = val;
        }
        matmul(s->xb, s->hb, w->w2 + l * dim * hidden_dim, hidden_dim, dim);
        for (int i = 0; i < dim; i++) x[i] += s->xb[i];
    }
    rmsnorm(x, x, w->rms_final_weight, dim);
    matmul(s->logits, x, w->wcls, p->dim, p->vocab_size);
    return s->logits;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s model.bin [steps]\n", argv[0]);
        return 1;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 256;
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 1;
    }
    Config p;
    if (fread(&p, sizeof(Config), 1, f) != 1) {
        fprintf(stderr, "cannot read the header\n");
        return 1;
    }
    // run.c trusts the header; a bench tool should at least refuse what
    // would index out of bounds (and v1+ exports, which start with a magic)
    if (p.dim <= 0 || p.hidden_dim <= 0 || p.n_layers <= 0 || p.n_heads <= 0 || p.n_kv_heads <= 0 ||
        p.seq_len <= 0 || p.vocab_size == 0 || p.dim % p.n_heads != 0 || p.n_heads % p.n_kv_heads != 0) {
        fprintf(stderr, "%s is not a legacy (v0) llama2.c checkpoint\n", argv[1]);
        return 1;
    }
    int shared = p.vocab_size > 0;
    p.vocab_size = abs(p.vocab_size);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, sizeof(Config), SEEK_SET);
    size_t nfloats = (size - sizeof(Config)) / sizeof(float);
    // read rather than mmap: the weights are then in RAM before the timer,
    // as mmap'd pages are after run.c's first token
    float *data = malloc(nfloats * sizeof(float));
    if (!data || fread(data, sizeof(float), nfloats, f) != nfloats) {
        fprintf(stderr, "cannot read the weights\n");
        return 1;
    }
    fclose(f);
    if (steps <= 0 || steps > p.seq_len) steps = p.seq_len;

    int head_size = p.dim / p.n_heads;
    size_t L = p.n_layers, dim = p.dim, hid = p.hidden_dim, kv_dim = (size_t)p.dim * p.n_kv_heads / p.n_heads;
    Weights w;
    float *ptr = data;
    w.token_embedding_table = ptr, ptr += (size_t)p.vocab_size * dim;
    w.rms_att_weight = ptr, ptr += L * dim;
    w.wq = ptr, ptr += L * dim * dim;
    w.wk = ptr, ptr += L * dim * kv_dim;
    w.wv = ptr, ptr += L * dim * kv_dim;
    w.wo = ptr, ptr += L * dim * dim;
    w.rms_ffn_weight = ptr, ptr += L * dim;
    w.w1 = ptr, ptr += L * dim * hid;
    w.w2 = ptr, ptr += L * hid * dim;
    w.w3 = ptr, ptr += L * dim * hid;
    w.rms_final_weight = ptr, ptr += dim;
    ptr += (size_t)p.seq_len * head_size / 2; // freq_cis_real (unused)
    ptr += (size_t)p.seq_len * head_size / 2; // freq_cis_imag (unused)
    w.wcls = shared ? w.token_embedding_table : ptr;
    if ((size_t)(ptr - data) + (shared ? 0 : (size_t)p.vocab_size * dim) > nfloats) {
        fprintf(stderr, "the file is shorter than its header needs\n");
        return 1;
    }

    RunState s;
    s.x = zalloc(dim), s.xb = zalloc(dim), s.xb2 = zalloc(dim);
    s.hb = zalloc(hid), s.hb2 = zalloc(hid), s.q = zalloc(dim);
    s.key_cache = zalloc(L * p.seq_len * kv_dim), s.value_cache = zalloc(L * p.seq_len * kv_dim);
    s.att = zalloc((size_t)p.n_heads * p.seq_len), s.logits = zalloc(p.vocab_size);

    // greedy from BOS (run.c with an empty prompt and -t 0)
    int token = 1, pos = 0;
    double start = 0;
    printf("1");
    while (pos < steps) {
        float *logits = forward(&p, &w, &s, token, pos);
        int next = 0;
        for (int i = 1; i < p.vocab_size; i++)
            if (logits[i] > logits[next]) next = i;
        pos++;
        printf(" %d", next);
        if (next == 1) break;
        token = next;
        if (start == 0) start = now_us();
    }
    printf("\n");
    if (pos > 1) fprintf(stderr, "achieved tok/s: %f\n", (pos - 1) / (now_us() - start) * 1e6);
    return 0;
}
