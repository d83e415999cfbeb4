/* fuzz_mwq.c - the .mwq reader: open (header, index) and every chunk. */
#include "fuzz_common.h"
#include "quant/mwqfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(data, size, ".mwq");
    mwqfile *f;
    if (mwqfile_open(p, &f) == 0) {
        for (size_t i = 0; i < mwqfile_count(f); i++) {
            const mwqfile_tensor *t = mwqfile_tensor_get(f, i);
            for (int k = 1; k <= t->levels; k++) {
                if (t->bytes[k - 1] > (1 << 24)) continue;
                void *buf = malloc((size_t)t->bytes[k - 1] + 1);
                if (buf) mwqfile_chunk_read(f, i, k, buf, t->bytes[k - 1]);
                free(buf);
            }
        }
        mwqfile_close(f);
    }
    unlink(p);
    return 0;
}
