/* Weight matrix products: Y[m][rows] = X[m][cols] · Wᵀ.
 *
 * First version: each task dequantizes a weight row into a per-thread
 * buffer and takes fp32 dots with every input row. Correct for every
 * loadable type; the integer kernels replace it.
 */
#include "kernels/matmul.h"

#include <stdlib.h>

#include "quant/ggml_blocks.h"
#include "util/error.h"

#define ROWS_PER_TASK 16

typedef struct {
    const zc_mat *w;
    const float *x; /* [m][cols] */
    float *y;       /* [m][rows] */
    int m;
    float *rowbuf;  /* [n_threads][cols] */
} job;

static void run_rows(void *ctx, int task, int thread) {
    const job *j = ctx;
    const zc_mat *w = j->w;
    float *row = j->rowbuf + (size_t)thread * (size_t)w->cols;
    int64_t r0 = (int64_t)task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
    if (r1 > w->rows) r1 = w->rows;
    for (int64_t r = r0; r < r1; r++) {
        zc_dequantize_row(w->type, (const char *)w->data + (size_t)r * w->row_bytes, row, w->cols);
        for (int i = 0; i < j->m; i++) {
            const float *xi = j->x + (size_t)i * (size_t)w->cols;
            float s = 0.0f;
            for (int64_t c = 0; c < w->cols; c++) s += row[c] * xi[c];
            j->y[(size_t)i * (size_t)w->rows + (size_t)r] = s;
        }
    }
}

static int scratch_reserve(zc_matmul_scratch *s, size_t need) {
    if (s->cap >= need) return ZC_OK;
    void *p = zc_malloc_aligned(need);
    if (!p) return ZC_ERR_NOMEM;
    zc_free_aligned(s->buf);
    s->buf = p;
    s->cap = need;
    return ZC_OK;
}

int zc_matmul(zc_pool *pool, const zc_mat *w, const float *x, float *y, int m, zc_matmul_scratch *scratch) {
    const zc_type_info *ti = zc_type_get(w->type);
    if (!ti || !ti->can_load) return zc_error(ZC_ERR_UNSUPPORTED, "matmul: weight type %d is not supported", w->type);
    if (m <= 0 || w->rows <= 0 || w->cols <= 0) return ZC_OK;
    size_t need;
    if (zc_mul_size((size_t)zc_pool_size(pool) * sizeof(float), (size_t)w->cols, &need))
        return zc_error(ZC_ERR_LIMIT, "matmul: scratch size overflows");
    int rc = scratch_reserve(scratch, need);
    if (rc) return rc;
    job j = {w, x, y, m, scratch->buf};
    zc_pool_run(pool, (int)((w->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK), run_rows, &j);
    return ZC_OK;
}

void zc_matmul_ref(const zc_mat *w, const float *x, float *y, int m) {
    float *row = zc_malloc((size_t)w->cols * sizeof(float));
    if (!row) return;
    for (int64_t r = 0; r < w->rows; r++) {
        zc_dequantize_row(w->type, (const char *)w->data + (size_t)r * w->row_bytes, row, w->cols);
        for (int i = 0; i < m; i++) {
            const float *xi = x + (size_t)i * (size_t)w->cols;
            double s = 0.0;
            for (int64_t c = 0; c < w->cols; c++) s += (double)row[c] * (double)xi[c];
            y[(size_t)i * (size_t)w->rows + (size_t)r] = (float)s;
        }
    }
    free(row);
}

void zc_matmul_scratch_free(zc_matmul_scratch *s) {
    zc_free_aligned(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

void zc_mat_get_row(const zc_mat *w, int64_t row, float *out) {
    zc_dequantize_row(w->type, (const char *)w->data + (size_t)row * w->row_bytes, out, w->cols);
}
