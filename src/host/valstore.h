/* valstore.h - the sim-vs-real validation's records in the results store
 * (issue 18): what `d2moe execute` stored for a round (its makespans, probe
 * gate, host times, op join), a round's own record (kind validate, mode
 * round), and the rounds of the latest validate session with each point's
 * configuration, read back for `validate --from`.  Every call opens the
 * store at the path it is given and closes it again; the readers open it
 * read-only (`validate --from` writes nothing, not even a schema
 * migration), valstore_last_id and valstore_round_write read-write (they
 * create it).  No statistics or
 * verdicts (host/valstat.h), no printing, no point record (the CLI writes
 * that beside its table). */
#ifndef D2_HOST_VALSTORE_H
#define D2_HOST_VALSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "host/exec.h"
#include "host/opjoin.h"

/* exec.point of a stored round is below this, else the store is refused
 * (D2_EFORMAT) */
#define VALSTORE_MAX_POINTS 100000

/* The last real execute run of a point, as execute stored it. */
typedef struct valstore_pair {
    int64_t exec_id;      /* the real execute run's id */
    double sim_s;         /* predicted makespan (the sim run stored just before it), s */
    double real_s;        /* measured makespan, s */
    int probe_ok;         /* 1: its kernel probes passed (or it stored none) */
    double stopped_s;     /* both CPUs stopped at once (the host stopped the VM), s; < 0: not measured */
    double taken_s;       /* the compute CPU taken by the host, lower bound, s; < 0: not measured */
    double taken_max_s;   /* the same, upper bound, s; < 0: not measured */
    double others[2];     /* share of the compute [0] and the I/O [1] CPU other processes took, a
                             fraction of the run's span; < 0: not measured */
} valstore_pair;

/* The last real execute run of point `point` of spec `spec` (params
 * exec.spec, exec.point) with id > after_id.  D2_ENOTFOUND (naming dbpath
 * and the point) when there is none, D2_EDB when the store refuses the
 * query, or db_open's status. */
int valstore_pair_last(const char *dbpath, const char *spec, size_t point, int64_t after_id, valstore_pair *out);

/* A stored pair of a point for `execute --spec`'s summary: a sim run and
 * the real run written right after it (the next run id, the same
 * configuration hash), the real one's kernel probes passed (or none
 * stored). */
typedef struct valstore_spec_pair {
    long point;           /* exec.point as stored (the caller checks its range) */
    double sim_s, real_s; /* predicted and measured makespans, s */
    double sim_bubble;    /* predicted bubble ratio */
    double real_bubble;   /* measured bubble ratio */
} valstore_spec_pair;

/* Every such pair of spec `spec` with a sim run id > after_id, by sim run
 * id, to fn (a non-zero return stops the walk and is returned).  The store
 * is opened read-only.  D2_EDB (naming dbpath) when it refuses the query,
 * or db_open_readonly's status. */
int valstore_spec_pairs(const char *dbpath, const char *spec, int64_t after_id,
                        int (*fn)(void *user, const valstore_spec_pair *p), void *user);

/* Add run run_id's metrics host_in_compute_lK_s into h[K-1] (K in
 * 1..EXEC_HOST_LEVELS; others skipped); *found = 1 when it stored any.
 * D2_EDB (naming dbpath) or db_open's status. */
int valstore_host_in_add(const char *dbpath, int64_t run_id, double h[EXEC_HOST_LEVELS], int *found);

/* The largest run id in the store (0: none).  On failure *id = 0 and the
 * status is returned: a caller that must go on counts every run. */
int valstore_last_id(const char *dbpath, int64_t *id);

/* The op join execute stored with its real run run_id (metrics join_*)
 * into rep (initialised here).  D2_ENOTFOUND (naming dbpath and the run)
 * when it stored none, D2_EDB, or opjoin_report_set_metric's status. */
int valstore_join_read(const char *dbpath, int64_t run_id, opjoin_report *rep);

/* A round's record: kind validate, mode round, status ok (the record is
 * sound); metric accepted 0/1 and param validate.reason say whether it
 * counts and why not. */
typedef struct valstore_round {
    const char *spec;           /* exec.spec: the spec's name */
    const char *session;        /* validate.session: the store's last run id before the validation */
    size_t point;               /* exec.point */
    int round;                  /* validate.round, from 1 */
    int attempt;                /* validate.attempt: the point's attempts so far, this one included */
    int accepted;               /* metric accepted: 1 the round counts, 0 rejected */
    const char *reason;         /* validate.reason: "accepted" or why not */
    int64_t exec_id;            /* metric exec_real_run_id: its real execute run; <= 0: none */
    double sim_s, real_s;       /* predicted and measured makespans, s; real_s <= 0: no pair stored */
    double stopped_s;           /* both CPUs stopped at once, s; < 0: not measured */
    double taken_s;             /* the compute CPU taken by the host (lower bound), s; < 0: not measured */
    const double *others;       /* [2] compute and I/O CPU shares of other processes, fractions;
                                   NULL or < 0: not measured */
    const opjoin_report *join;  /* the execute run's op join, copied as metrics join_*; NULL: none */
    double calib_ratio;         /* calibration kernel probe / its own kernel fits; <= 0: none */
    double loadavg_1m;          /* metric host_loadavg_1m: the 1-minute load average now */
    int argc;                   /* the command line stored with the run */
    char **argv;
} valstore_round;

int valstore_round_write(const char *dbpath, const valstore_round *r);

/* A stored round of the latest validation, as validate --from reads it. */
typedef struct valstore_row {
    int64_t id;                 /* the round's run id */
    int64_t exec_id;            /* its real execute run (metric exec_real_run_id); 0: none */
    long point;                 /* exec.point, 0 .. VALSTORE_MAX_POINTS - 1 */
    int accepted;               /* 1: accepted, 0: rejected */
    char reason[256];           /* validate.reason ("" when not stored) */
    double sim_s, real_s;       /* makespans, s; 0: not stored (a round without a pair) */
    double stopped_s;           /* both CPUs stopped at once, s; -1: not measured */
    double taken_s;             /* the compute CPU taken by the host, lower bound, s; -1: not measured */
    double taken_max_s;         /* its upper bound (from the execute run), s; -1: not measured */
} valstore_row;

/* What the store says about a point of that validation. */
typedef struct valstore_point {
    char cfg[128];              /* "planner budget requests" as the spec wrote them; "" unknown */
    int rounds_asked;           /* validate.rounds of its point run; 0: none stored */
    double load_start, load_end;/* host load averages at the validation's start and end; NAN: none stored */
} valstore_point;

/* The latest validation: the rounds of the last round's validate.session;
 * in stores from before that param, those after the last point run stored
 * before the last round (an interrupted validation, which stored no
 * points, then counts with the next). */
typedef struct valstore_session {
    char spec[256];             /* exec.spec of its rounds (the last non-empty one) */
    valstore_row *rows;         /* its rounds, accepted and rejected, by id */
    size_t nrows;
    valstore_point *points;     /* [npoints] */
    size_t npoints;             /* 1 + the largest exec.point of its rounds */
    int64_t first_id, last_id;  /* the first and last round's run ids */
} valstore_session;

void valstore_session_init(valstore_session *s);
void valstore_session_clear(valstore_session *s);
/* Read it from dbpath (opened read-only) into s (initialised here; clear
 * it after, also on failure).  The configuration of a point comes from its
 * point run after the rounds, else from the execute run of its last round
 * that has one.  D2_ENOTFOUND when the store holds no validation round,
 * D2_EFORMAT for an exec.point out of range, D2_EDB, D2_ENOMEM, or
 * db_open_readonly's status; each message names dbpath. */
int valstore_session_read(const char *dbpath, valstore_session *s);

#endif
