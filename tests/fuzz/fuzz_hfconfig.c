/* Fuzz target: Hugging Face config.json -> hyperparameters. */
#include <stdint.h>

#include "model/hfconfig.h"

const char *const FUZZ_TARGET_NAME = "hfconfig";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zc_hf_config c;
    (void)zc_hf_config_parse((const char *)data, size, "fuzz/config.json", &c);
    return 0;
}
