/*
 * Batch Keccak-256 (Ethereum's Keccak: padding 0x01 ... 0x80, rate 136 bytes)
 * for pevm.gpu.keccak, compiled at first use through CuPy's RawModule (NVRTC).
 *
 * Two kernels, launched once per group of messages that share a block count:
 *
 *   pevm_keccak_pack    copies each message into padded 136-byte blocks laid out
 *                       lane-major: word w of message i lives at blocks[w * k + i].
 *   pevm_keccak_absorb  one thread per message: absorbs its blocks and runs
 *                       Keccak-f[1600] with the 25-lane state in registers.
 *
 * Why the split: messages sit back to back at arbitrary byte offsets, so a
 * thread that read its own message would issue unaligned byte loads that no two
 * threads of a warp share (uncoalesced). After packing, thread i of the absorb
 * kernel reads blocks[w * k + i] while its neighbours read i+1, i+2...: every
 * warp-wide load is one contiguous 256-byte segment. The pack kernel writes that
 * layout coalesced too (consecutive threads write consecutive words); only its
 * byte reads are scattered, and those go through L1/L2.
 *
 * No #include: NVRTC has no standard headers by default, so the integer types
 * are spelled out. The code is plain C apart from the CUDA qualifiers, which
 * keeps it checkable by a host compiler with a few macro definitions.
 */

typedef unsigned long long pevm_u64;
typedef long long pevm_i64;
typedef unsigned char pevm_u8;

#define PEVM_KECCAK_RATE_WORDS 17

__constant__ pevm_u64 PEVM_KECCAK_RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL,
    0x8000000080008000ULL, 0x000000000000808BULL, 0x0000000080000001ULL,
    0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008AULL,
    0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL,
    0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
    0x000000000000800AULL, 0x800000008000000AULL, 0x8000000080008081ULL,
    0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* n is always a literal in 1..63 below, so neither shift is by 64. */
__device__ __forceinline__ pevm_u64 pevm_rotl64(pevm_u64 x, int n)
{
    return (x << n) | (x >> (64 - n));
}

/* Keccak-f[1600] on a[25], lane index x + 5*y. Every index is a constant so the
 * compiler keeps a[] and b[] in registers. */
__device__ __forceinline__ void pevm_keccak_f1600(pevm_u64 *a)
{
    pevm_u64 b[25];
    pevm_u64 c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;
    for (int round = 0; round < 24; ++round) {
        /* theta */
        c0 = a[0] ^ a[5] ^ a[10] ^ a[15] ^ a[20];
        c1 = a[1] ^ a[6] ^ a[11] ^ a[16] ^ a[21];
        c2 = a[2] ^ a[7] ^ a[12] ^ a[17] ^ a[22];
        c3 = a[3] ^ a[8] ^ a[13] ^ a[18] ^ a[23];
        c4 = a[4] ^ a[9] ^ a[14] ^ a[19] ^ a[24];
        d0 = c4 ^ pevm_rotl64(c1, 1);
        d1 = c0 ^ pevm_rotl64(c2, 1);
        d2 = c1 ^ pevm_rotl64(c3, 1);
        d3 = c2 ^ pevm_rotl64(c4, 1);
        d4 = c3 ^ pevm_rotl64(c0, 1);
        /* rho and pi: b[y, 2x+3y] = rotl(a[x, y] ^ d[x], r[x, y]) */
        b[0] = a[0] ^ d0;
        b[10] = pevm_rotl64(a[1] ^ d1, 1);
        b[20] = pevm_rotl64(a[2] ^ d2, 62);
        b[5] = pevm_rotl64(a[3] ^ d3, 28);
        b[15] = pevm_rotl64(a[4] ^ d4, 27);
        b[16] = pevm_rotl64(a[5] ^ d0, 36);
        b[1] = pevm_rotl64(a[6] ^ d1, 44);
        b[11] = pevm_rotl64(a[7] ^ d2, 6);
        b[21] = pevm_rotl64(a[8] ^ d3, 55);
        b[6] = pevm_rotl64(a[9] ^ d4, 20);
        b[7] = pevm_rotl64(a[10] ^ d0, 3);
        b[17] = pevm_rotl64(a[11] ^ d1, 10);
        b[2] = pevm_rotl64(a[12] ^ d2, 43);
        b[12] = pevm_rotl64(a[13] ^ d3, 25);
        b[22] = pevm_rotl64(a[14] ^ d4, 39);
        b[23] = pevm_rotl64(a[15] ^ d0, 41);
        b[8] = pevm_rotl64(a[16] ^ d1, 45);
        b[18] = pevm_rotl64(a[17] ^ d2, 15);
        b[3] = pevm_rotl64(a[18] ^ d3, 21);
        b[13] = pevm_rotl64(a[19] ^ d4, 8);
        b[14] = pevm_rotl64(a[20] ^ d0, 18);
        b[24] = pevm_rotl64(a[21] ^ d1, 2);
        b[9] = pevm_rotl64(a[22] ^ d2, 61);
        b[19] = pevm_rotl64(a[23] ^ d3, 56);
        b[4] = pevm_rotl64(a[24] ^ d4, 14);
        /* chi */
        a[0] = b[0] ^ (~b[1] & b[2]);
        a[1] = b[1] ^ (~b[2] & b[3]);
        a[2] = b[2] ^ (~b[3] & b[4]);
        a[3] = b[3] ^ (~b[4] & b[0]);
        a[4] = b[4] ^ (~b[0] & b[1]);
        a[5] = b[5] ^ (~b[6] & b[7]);
        a[6] = b[6] ^ (~b[7] & b[8]);
        a[7] = b[7] ^ (~b[8] & b[9]);
        a[8] = b[8] ^ (~b[9] & b[5]);
        a[9] = b[9] ^ (~b[5] & b[6]);
        a[10] = b[10] ^ (~b[11] & b[12]);
        a[11] = b[11] ^ (~b[12] & b[13]);
        a[12] = b[12] ^ (~b[13] & b[14]);
        a[13] = b[13] ^ (~b[14] & b[10]);
        a[14] = b[14] ^ (~b[10] & b[11]);
        a[15] = b[15] ^ (~b[16] & b[17]);
        a[16] = b[16] ^ (~b[17] & b[18]);
        a[17] = b[17] ^ (~b[18] & b[19]);
        a[18] = b[18] ^ (~b[19] & b[15]);
        a[19] = b[19] ^ (~b[15] & b[16]);
        a[20] = b[20] ^ (~b[21] & b[22]);
        a[21] = b[21] ^ (~b[22] & b[23]);
        a[22] = b[22] ^ (~b[23] & b[24]);
        a[23] = b[23] ^ (~b[24] & b[20]);
        a[24] = b[24] ^ (~b[20] & b[21]);
        /* iota */
        a[0] ^= PEVM_KECCAK_RC[round];
    }
}

/*
 * blocks[w * k + i] = little-endian word w of message idx[i], padded: the byte
 * after the message is XORed with 0x01 and the last byte of its last block with
 * 0x80 (both in the same byte when the message is 135 mod 136 bytes long).
 * nwords = nblocks * 17 is the same for every message of this launch.
 */
extern "C" __global__ void pevm_keccak_pack(const pevm_u8 *data,
                                            const pevm_i64 *offsets,
                                            const pevm_i64 *idx,
                                            pevm_i64 k,
                                            pevm_i64 nwords,
                                            pevm_u64 *blocks)
{
    const pevm_i64 total = k * nwords;
    const pevm_i64 last = nwords * 8 - 1;
    const pevm_i64 stride = (pevm_i64)gridDim.x * blockDim.x;
    for (pevm_i64 t = (pevm_i64)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += stride) {
        const pevm_i64 i = t % k;
        const pevm_i64 w = t / k;
        const pevm_i64 m = idx[i];
        const pevm_i64 start = offsets[m];
        const pevm_i64 len = offsets[m + 1] - start;
        const pevm_i64 p0 = w * 8;
        pevm_u64 word = 0;
        for (int j = 0; j < 8; ++j) {
            const pevm_i64 p = p0 + j;
            pevm_u64 byte = 0;
            if (p < len) byte = data[start + p];
            if (p == len) byte ^= 0x01ULL;
            if (p == last) byte ^= 0x80ULL;
            word |= byte << (8 * j);
        }
        blocks[t] = word;
    }
}

/*
 * One thread per message of the launch: absorb nblocks packed blocks, then write
 * the first four lanes (the 32-byte digest, little-endian lanes = digest byte
 * order) to out[idx[i] * 4 .. + 3]. out is the (n, 32) uint8 result viewed as
 * 64-bit words; CuPy allocations are 256-byte aligned.
 */
extern "C" __global__ void pevm_keccak_absorb(const pevm_u64 *blocks,
                                              pevm_i64 k,
                                              int nblocks,
                                              const pevm_i64 *idx,
                                              pevm_u64 *out)
{
    const pevm_i64 stride = (pevm_i64)gridDim.x * blockDim.x;
    for (pevm_i64 i = (pevm_i64)blockIdx.x * blockDim.x + threadIdx.x; i < k;
         i += stride) {
        pevm_u64 a[25];
#pragma unroll
        for (int j = 0; j < 25; ++j) a[j] = 0;
        for (int blk = 0; blk < nblocks; ++blk) {
            const pevm_u64 *src = blocks + (pevm_i64)blk * PEVM_KECCAK_RATE_WORDS * k + i;
#pragma unroll
            for (int j = 0; j < PEVM_KECCAK_RATE_WORDS; ++j) a[j] ^= src[j * k];
            pevm_keccak_f1600(a);
        }
        const pevm_i64 m = idx[i];
        out[m * 4 + 0] = a[0];
        out[m * 4 + 1] = a[1];
        out[m * 4 + 2] = a[2];
        out[m * 4 + 3] = a[3];
    }
}
