/* fuzz_table.c - activation tables (Qwen3 CSV, Switch JSON) and their stats. */
#include "fuzz_common.h"
#include "trace/import.h"
#include "trace/stat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(data, size, ".tab");
    import_table t;
    if (import_table_read(p, NULL, &t) == 0) {
        stat_acc *s;
        if (t.layers * (uint64_t)t.experts <= (1u << 20) && stat_new(t.layers, t.experts, t.top_k ? t.top_k : 1, &s) == 0) {
            for (uint32_t l = 0; l < t.layers; l++) stat_add_shares(s, l, t.shares + (size_t)l * t.experts);
            stat_params sp;
            stat_params_default(&sp);
            stat_finish(s, &sp);
            stat_free(s);
        }
        import_table_clear(&t);
    }
    unlink(p);
    return 0;
}
