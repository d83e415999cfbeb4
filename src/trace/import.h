/* import.h - turn published router traces into .d2t files, and read
 * per-expert activation tables (for `trace gen --like`).
 * Formats: mixtral-jsonl, vllm-jsonl, csv (see traces/README.md).  Problems
 * in the input are either fatal (malformed line, wrong type: always) or
 * counted and handled (default) / fatal (strict); never silent.  The
 * importer holds the rows in memory to sort them (about 130 bytes per
 * record); the .d2t reader is what streams. */
#ifndef D2_TRACE_IMPORT_H
#define D2_TRACE_IMPORT_H

#include <stdint.h>
#include "trace/trace.h"

typedef enum import_problem {
    IMPORT_RANGE,     /* expert or layer id out of range: record dropped */
    IMPORT_WEIGHT,    /* gate weight negative, NaN or infinite: record dropped */
    IMPORT_K,         /* wrong number of experts or weights: record dropped */
    IMPORT_DUPEXP,    /* the same expert twice in one record: record dropped */
    IMPORT_DUP,       /* a second record for (request, position, layer): later one dropped */
    IMPORT_ORDER,     /* experts not in descending gate order: reordered */
    IMPORT_MISSING,   /* a token lacks some layers: kept (the source falls back, source.h) */
    IMPORT_GAP,       /* positions of a request not consecutive: renumbered 0,1,2,.. */
    IMPORT_PROBLEM_N
} import_problem;

extern const char *const import_problem_names[IMPORT_PROBLEM_N];
extern const char *const import_problem_handling[IMPORT_PROBLEM_N];

typedef struct import_opts {
    const char *format;   /* "mixtral-jsonl", "vllm-jsonl", "csv" */
    int strict;           /* any problem is fatal */
    uint32_t layers;      /* MoE layers; 0 = from the file (meta line or largest id + 1) */
    uint32_t experts;     /* experts per layer; 0 = from the file */
    uint32_t top_k;       /* 0 = from the file (first record) */
    const char *model;    /* model name stored in the header, may be NULL */
} import_opts;

typedef struct import_report {
    uint64_t lines;          /* input lines read */
    uint64_t rows;           /* routing rows parsed */
    uint64_t skipped_other;  /* lines of other types (vllm: not "route"/"meta") */
    uint64_t warmup;         /* vllm warm-up dummy rows skipped */
    /* vllm structure (traces/README.md, "Reading a vLLM log") */
    uint64_t batches;        /* forward batches found (a req_id whose token_idx never restarts is one) */
    uint64_t batched_reqs;   /* req_ids whose token_idx restarts: split into prefill + decode batches */
    uint64_t prefill_batches, decode_batches; /* of those req_ids */
    uint64_t decode_runs;    /* runs of consecutive equal-size decode batches (row j = request j) */
    uint32_t layers_logged;  /* distinct layers among the kept rows */
    char layer_list[64];     /* those layers, "0" or "3,7,..." */
    uint64_t records;        /* records written */
    uint64_t tokens;         /* distinct (request, position) written */
    uint32_t requests;
    uint32_t layers, experts, top_k; /* shape written */
    uint64_t n[IMPORT_PROBLEM_N];    /* count of each problem */
    char first[IMPORT_PROBLEM_N][200]; /* first occurrence, "file:line: field ...: ..." */
} import_report;

int import_run(const char *in, const char *out, const import_opts *o, import_report *rep);

/* A per-expert activation table: Qwen3 avg_activation CSV
 * (Layer,Language,Expert_0..: English rows unless `language` says otherwise)
 * or a Switch expert_statistics JSON (expert_usage_by_layer counts).
 * shares[l * experts + e] >= 0; layers are renumbered 0..layers-1 in the
 * table's order (they are the MoE layers present).  top_k: the row sum of
 * an activation-fraction table rounded (Qwen3: 8), 0 when the table holds
 * counts (Switch) and cannot tell. */
typedef struct import_table {
    uint32_t layers, experts, top_k;
    double *shares; /* [layers][experts] */
} import_table;
int import_table_read(const char *path, const char *language, import_table *t);
void import_table_clear(import_table *t);

#endif
