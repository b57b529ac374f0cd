/* Walsh-Hadamard rotation (hadamard.h). */
#include "quant/hadamard.h"

#include <math.h>

void zc_hadamard_rows(float *x, size_t ld, int rows, int n) {
    float scale = 1.0f / sqrtf((float)n);
    for (int r = 0; r < rows; r++) {
        float *v = x + (size_t)r * ld;
        for (int h = 1; h < n; h *= 2) /* butterflies of stride h */
            for (int i = 0; i < n; i += 2 * h)
                for (int j = i; j < i + h; j++) {
                    float a = v[j], b = v[j + h];
                    v[j] = a + b;
                    v[j + h] = a - b;
                }
        for (int i = 0; i < n; i++) v[i] *= scale;
    }
}
