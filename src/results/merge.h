/* merge.h - merge result stores (e.g. the shards of a sweep) into one.
 * A run is identified by its uid, and a sweep job by (job hash, code
 * version): merging the same input twice adds nothing.  Each input is merged
 * in one transaction; inputs are opened read-only and never changed. */
#ifndef D2_RESULTS_MERGE_H
#define D2_RESULTS_MERGE_H

#include <stdint.h>

typedef struct merge_stats {
    int64_t runs_added;   /* runs copied into the output */
    int64_t runs_present; /* runs the output already had (same uid or same sweep job) */
} merge_stats;

int merge_into(const char *out_path, const char *in_path, merge_stats *st);
/* Check an input before anything is written (read-only): a d2moe store of
 * this build's schema whose every page reads.  D2_EFORMAT / D2_ENOTFOUND /
 * D2_EINVAL naming the file for bad input, D2_EDB for the rest. */
int merge_check(const char *in_path);

#endif
