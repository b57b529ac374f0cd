/* `zipcache bench -m MODEL ...`: prefill and decode speed per KV policy and
 * context depth, in the manner of llama-bench, against the measured memory
 * bandwidth floor. */
#ifndef ZC_PROGRAMS_BENCH_MODEL_H
#define ZC_PROGRAMS_BENCH_MODEL_H
int bench_model_main(int argc, char **argv);
#endif
