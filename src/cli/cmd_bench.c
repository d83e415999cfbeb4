/* cmd_bench.c - `d2moe bench NAME|all [options]`: performance is measured
 * here (and by `make bench`), never in timed tests.  Each benchmark lives in
 * src/cli/bench_<name>.c and is listed in benches.h. */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

typedef struct bench_entry {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
} bench_entry;

/* the bench_<name> functions are declared in cli.h from the same list */
static const bench_entry benches[] = {
#define BENCH(n, s) {.name = #n, .summary = s, .run = bench_##n},
#include "cli/benches.h"
#undef BENCH
    {.name = NULL}};

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe bench NAME|all [options]   (d2moe bench NAME --help)\n\nBenchmarks:\n");
    for (const bench_entry *b = benches; b->name; b++) fprintf(out, "  %-10s %s\n", b->name, b->summary);
    if (!benches[0].name) fprintf(out, "  (none yet)\n");
}

static int run(int argc, char **argv)
{
    if (argc < 2) return cli_usage_error("bench", "expected a benchmark name or all");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "all")) {
        int status = 0;
        for (const bench_entry *b = benches; b->name; b++) {
            char *av[] = {(char *)b->name, NULL};
            optind = 1;
            printf("== bench %s ==\n", b->name);
            fflush(stdout);
            int rc = b->run(1, av);
            if (rc) status = rc;
        }
        return status;
    }
    for (const bench_entry *b = benches; b->name; b++)
        if (!strcmp(argv[1], b->name)) {
            optind = 1;
            return b->run(argc - 1, argv + 1);
        }
    return cli_usage_error("bench", "'%s': no such benchmark", argv[1]);
}

const cli_cmd cli_cmd_bench = {"bench", "run a benchmark (bench NAME|all); see make bench", run};
