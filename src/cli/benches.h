/* benches.h - the benchmark table: one BENCH(name, "summary") line per
 * src/cli/bench_<name>.c, which defines int bench_<name>(int argc, char **argv)
 * (declared once, in cli.h, from this list).  `d2moe bench all` (and
 * `make bench`) runs them in this order. */
BENCH(sim, "serving simulator: paper-size run (goal 10 ms), scaling in tokens and layers")
BENCH(kernels, "MWQ kernels: stream bandwidth, quantize GB/s, level-k dot G weights/s vs memory/compute bounds")
BENCH(trace, "router traces: JSONL import MB/s (target >= 50), stats of 10M records (target < 3 s) and peak RSS")
BENCH(eval, "llama2.c forward pass (src/eval): tokens/s FP32, quantized FFN dequantized and through the MWQ kernels")
