/* The orthonormal Walsh-Hadamard rotation of KV rows (QuaRot; llama.cpp
 * rotates its quantized KV cache the same way, PR #21038).
 *
 * H_n (n a power of two) is Sylvester's Hadamard matrix scaled by
 * 1/sqrt(n): symmetric and orthonormal, so H_n H_n = I and a rotation is
 * undone by applying it again. Dot products survive it, q.k = (Hq).(Hk), so
 * a cache can store rotated keys and rotate each query instead; a value
 * output sum_t p_t (H v_t) = H (sum_t p_t v_t) is rotated back once.
 * Rotation spreads an outlier channel over all n, which is what per-token
 * block formats (q4_0: one scale per 32 elements) need.
 *
 * The fast transform: log2(n) butterfly passes (a, b) -> (a + b, a - b),
 * then the scale; fp32, the same operations in the same order everywhere. */
#ifndef ZC_QUANT_HADAMARD_H
#define ZC_QUANT_HADAMARD_H

#include <stddef.h>

/* Can rows of n elements be rotated (n a power of two, 2..4096)? */
static inline int zc_hadamard_ok(int n) { return n >= 2 && n <= 4096 && (n & (n - 1)) == 0; }

/* x [rows][n] (rows ld floats apart) := each row times H_n, in place.
 * Requires zc_hadamard_ok(n). */
void zc_hadamard_rows(float *x, size_t ld, int rows, int n);

#endif
