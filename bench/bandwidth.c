// The benchmark's memory ceiling: how fast this machine streams a matrix of
// 438 MB (the 110M shape's weights) through a matmul, natively, with 1..T
// threads each taking a block of rows. Built twice by ./build.sh bench:
// `gcc -Ofast` (x86-64's baseline: 128-bit SSE, the width wasm SIMD has) and
// `gcc -Ofast -march=native` (AVX2 here). The loop is run.c's matmul.
//
//   ./bandwidth THREADS  -> "GB/s: median (min-max) of 5"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N 768        // columns (the 110M shape's dim)
#define BYTES 438e6  // matrix size

static float *w, *x, *out;
static size_t rows;
static int threads;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *part(void *arg) {
    long p = (long)arg;
    for (size_t i = rows * p / threads; i < rows * (p + 1) / threads; i++) {
        float val = 0.0f;
        for (int j = 0; j < N; j++) val += w[i * N + j] * x[j];
        out[i] = val;
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}

int main(int argc, char **argv) {
    threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 64) return 1;
    rows = (size_t)(BYTES / 4 / N);
    w = malloc(rows * N * sizeof(float)), x = malloc(N * sizeof(float)), out = malloc(rows * sizeof(float));
    if (!w || !x || !out) return 1;
    for (size_t i = 0; i < rows * N; i++) w[i] = (float)(i % 7) * 0.1f; // touch every page first
    for (int j = 0; j < N; j++) x[j] = 1.0f;
    double gbs[5];
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[64];
        double t0 = now();
        for (long p = 0; p < threads; p++) pthread_create(&th[p], NULL, part, (void *)p);
        for (int p = 0; p < threads; p++) pthread_join(th[p], NULL);
        gbs[rep] = rows * N * sizeof(float) / (now() - t0) / 1e9;
    }
    qsort(gbs, 5, sizeof(double), cmp);
    printf("GB/s: %.2f (%.2f-%.2f) of 5, checksum %g\n", gbs[2], gbs[0], gbs[4], out[rows - 1]);
    return 0;
}
