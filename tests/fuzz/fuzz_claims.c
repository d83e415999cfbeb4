/* fuzz_claims.c - claims files of `d2moe audit`: parse and check every
 * claim (relations, ranges, system/model/device names) without running. */
#include "fuzz_common.h"
#include "results/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(data, size, ".ini");
    audit_claims *c;
    if (audit_claims_load(p, &c) == 0) audit_claims_free(c);
    unlink(p);
    return 0;
}
