//! SHA-256 (FIPS 180-4), fed incrementally: the page's model library records
//! each file it stores by the digest of its bytes and checks it when the
//! file is loaded again, reading it in chunks (a checkpoint can be 420 MB,
//! never held whole).
//!
//! The standard's own structure, section by section: the constants (4.2.2)
//! and initial hash value (5.3.3), the compression of one 64-byte block
//! (6.2.2), and the padding (5.1.1). Whole blocks are compressed straight
//! from the caller's slice; only a block split between two `update`s is
//! copied into `buffer`.

/// The first 32 bits of the fractional parts of the cube roots of the first
/// 64 primes (FIPS 180-4, 4.2.2).
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The first 32 bits of the fractional parts of the square roots of the
/// first 8 primes (FIPS 180-4, 5.3.3).
const H0: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// A SHA-256 being computed: `update` with the message's bytes, in pieces of
/// any length, then `finish` for the 32-byte digest.
#[derive(Clone)]
pub struct Sha256 {
    /// H0..H7, the hash of the blocks compressed so far.
    state: [u32; 8],
    /// The start of a block whose end has not arrived yet (`buffered` bytes).
    buffer: [u8; 64],
    buffered: usize,
    /// The message's length so far, in bytes (the padding records it in bits).
    length: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

impl Sha256 {
    pub fn new() -> Sha256 {
        Sha256 { state: H0, buffer: [0; 64], buffered: 0, length: 0 }
    }

    /// The next bytes of the message.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        // complete a block begun by an earlier update
        if self.buffered > 0 {
            let n = (64 - self.buffered).min(data.len());
            self.buffer[self.buffered..self.buffered + n].copy_from_slice(&data[..n]);
            self.buffered += n;
            data = &data[n..];
            if self.buffered < 64 {
                return;
            }
            compress(&mut self.state, &self.buffer);
            self.buffered = 0;
        }
        // whole blocks straight from the input
        while data.len() >= 64 {
            let (block, rest) = data.split_at(64);
            compress(&mut self.state, block);
            data = rest;
        }
        // the start of the next one
        self.buffer[..data.len()].copy_from_slice(data);
        self.buffered = data.len();
    }

    /// The digest of everything given to `update`.
    pub fn finish(mut self) -> [u8; 32] {
        // 5.1.1: a 1 bit, zeros up to 56 bytes into a block, then the
        // message's length in bits as a big-endian u64 (9 to 72 bytes in all)
        let bits = self.length.wrapping_mul(8);
        let zeros = (64 + 55 - self.buffered) % 64;
        let mut padding = [0u8; 64];
        padding[0] = 0x80;
        self.update(&padding[..1 + zeros]);
        self.update(&bits.to_be_bytes());
        debug_assert_eq!(self.buffered, 0);
        let mut digest = [0u8; 32];
        for (out, h) in digest.chunks_exact_mut(4).zip(self.state) {
            out.copy_from_slice(&h.to_be_bytes());
        }
        digest
    }
}

/// A digest as 64 lowercase hex digits, as `sha256sum` prints it.
pub fn hex(digest: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for &b in digest {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// One block (64 bytes) into the hash (FIPS 180-4, 6.2.2).
fn compress(state: &mut [u32; 8], block: &[u8]) {
    debug_assert_eq!(block.len(), 64);
    // 1. the message schedule: 16 big-endian words, then 48 mixed from them
    let mut w = [0u32; 64];
    for (w, word) in w.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for t in 16..64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16].wrapping_add(s0).wrapping_add(w[t - 7]).wrapping_add(s1);
    }
    // 2.-3. the working variables through 64 rounds
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[t]).wrapping_add(w[t]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    // 4. the intermediate hash value
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}
