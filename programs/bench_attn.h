/* `zipcache bench attn`: decode attention per layer, fp16 cache against
 * packed zipcache codes, at chosen depths, against the bandwidth floor. */
#ifndef ZC_PROGRAMS_BENCH_ATTN_H
#define ZC_PROGRAMS_BENCH_ATTN_H
int bench_attn_main(int argc, char **argv);
#endif
