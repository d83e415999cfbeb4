/* fuzz_import.c - `trace import` of one format (FUZZ_FORMAT, set at compile
 * time: mixtral-jsonl, vllm-jsonl or csv), writing a .d2t when the input is
 * usable, which is then read back. */
#include "fuzz_common.h"
#include "trace/import.h"

#ifndef FUZZ_FORMAT
#define FUZZ_FORMAT "csv"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fuzz_write(data, size, ".in");
    char out[300];
    snprintf(out, sizeof out, "%s.d2t", in);
    import_opts o = {0};
    import_report rep;
    o.format = FUZZ_FORMAT;
    o.strict = size && (data[0] & 1);
    if (import_run(in, out, &o, &rep) == 0) {
        trace_reader *r;
        if (trace_reader_open(out, &r) != 0) abort(); /* a written trace must read back */
        trace_rec rec;
        int rc;
        while ((rc = trace_reader_next(r, &rec)) == 1) {}
        if (rc != 0) abort();
        trace_reader_close(r);
        unlink(out);
    }
    unlink(in);
    return 0;
}
