/* Fuzz target: the KL base file (the one serialized format the project
 * writes and reads back: fp16 log-probabilities of a reference run). */
#include <stdint.h>
#include <string.h>

#include "eval/eval.h"
#include "fuzz_util.h"

const char *const FUZZ_TARGET_NAME = "klbase";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file f;
    if (fuzz_file_open(&f, data, size)) return 0;
    zc_klbase b;
    if (zc_klbase_open(&b, f.path) == 0) {
        volatile uint32_t sink = 0;
        for (uint64_t i = 0; i < b.n_records; i++) {
            int target, top1;
            double nll;
            const zc_fp16 *logp;
            zc_klbase_record(&b, i, &target, &top1, &nll, &logp);
            uint16_t last;
            memcpy(&last, logp + b.n_vocab - 1, 2);
            sink ^= (uint32_t)target ^ (uint32_t)top1 ^ last;
        }
        (void)sink;
        zc_klbase_close_reader(&b);
    }
    fuzz_file_close(&f);
    return 0;
}
