/* fuzz_spec.c - sweep specs: parse, expand the grid, check every value
 * (runner_check), as `d2moe sweep` does before running. */
#include "fuzz_common.h"
#include "results/runner.h"
#include "results/sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(data, size, ".ini");
    sweep_spec *s;
    if (sweep_spec_load(p, 0, NULL, 0, runner_check, NULL, &s) == 0) sweep_spec_free(s);
    unlink(p);
    return 0;
}
