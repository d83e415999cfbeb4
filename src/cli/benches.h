/* benches.h - the benchmark table: one BENCH(name, "summary") line per
 * src/cli/bench_<name>.c, which defines int bench_<name>(int argc, char **argv).
 * `d2moe bench all` (and `make bench`) runs them in this order. */
