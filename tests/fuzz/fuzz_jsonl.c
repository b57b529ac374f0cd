/* Fuzz target: the JSONL readers of the eval suite (data files of lines,
 * gsm8k, humaneval) and the resumable results file. */
#include <stdint.h>

#include "eval/eval.h"
#include "eval/run.h"
#include "fuzz_util.h"

const char *const FUZZ_TARGET_NAME = "jsonl";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file f;
    if (fuzz_file_open(&f, data, size)) return 0;
    zc_eval_jsonl j;
    if (zc_eval_jsonl_read(f.path, &j) == 0) {
        static const char *const keys[] = {"prompt", "question", "answer", "task_id", "expected_number"};
        for (size_t r = 0; r < j.n; r++)
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) (void)zc_eval_jsonl_str(&j, f.path, r, keys[k]);
        zc_eval_jsonl_free(&j);
    }
    /* the same bytes as a results file being resumed (opened for append and
     * truncated: a second in-memory copy keeps the input itself unchanged) */
    fuzz_file rf;
    if (fuzz_file_open(&rf, data, size) == 0) {
        zc_eval_results r;
        if (zc_eval_results_open(&r, rf.path, "fuzz-run") == 0) {
            (void)zc_eval_results_find(&r, 3);
            zc_eval_results_close(&r);
        }
        fuzz_file_close(&rf);
    }
    fuzz_file_close(&f);
    return 0;
}
