/* fuzz_d2t.c - .d2t readers: the streaming reader (every record, every check)
 * and the random-access file reader. */
#include "fuzz_common.h"
#include "trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(data, size, ".d2t");
    trace_reader *r;
    if (trace_reader_open(p, &r) == 0) {
        trace_rec rec;
        while (trace_reader_next(r, &rec) == 1) {}
        trace_reader_close(r);
    }
    trace_file *f;
    if (trace_file_open(p, &f) == 0) {
        trace_chunk_cache *c;
        if (trace_chunk_cache_new(f, &c) == 0) {
            trace_rec rec;
            uint64_t n = trace_file_header(f)->records;
            for (uint64_t i = 0; i < n && i < 64; i++) trace_file_record(f, c, i, &rec);
            trace_chunk_cache_free(c);
        }
        trace_file_close(f);
    }
    unlink(p);
    return 0;
}
