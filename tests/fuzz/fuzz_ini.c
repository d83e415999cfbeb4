/* fuzz_ini.c - INI profiles: a model profile and a device profile (the
 * parameter tables' parsers and range checks) from the same bytes. */
#include "fuzz_common.h"
#include "core/device.h"
#include "core/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(data, size, ".ini");
    model m;
    model_load(&m, p);
    device d;
    device_load(&d, p);
    unlink(p);
    return 0;
}
