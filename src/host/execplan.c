/* execplan.c - the simulator's plan as an exec_plan, a .mwq file as an
 * exec_store, and synthetic model files (see execplan.h). */
#include "host/execplan.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/rng.h"
#include "quant/mwqfile.h"
#include "sim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <gsl/gsl_randist.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const mat_name[EXEC_MATRICES] = {"gate", "up", "down"};

void execplan_tensor_name(char *buf, size_t n, uint32_t layer, uint32_t expert, int matrix)
{
    snprintf(buf, n, "l%u.e%u.%s", layer, expert, mat_name[matrix]);
}

void execplan_free(exec_plan *p)
{
    free(p->load);
    free(p->comp);
    memset(p, 0, sizeof *p);
}

static int push(exec_op **v, size_t *n, size_t *cap, exec_op op)
{
    int rc = VEC_RESERVE(*v, *cap, *n + 1);
    if (rc != D2_OK) {
        d2_err_prefix("plan: ");
        return rc;
    }
    (*v)[(*n)++] = op;
    return D2_OK;
}

static void builder_op(void *user, const sim_op *op)
{
    execplan_builder *b = user;
    if (b->rc) return;
    if (b->ops) {
        opjoin_op j = {.kind = op->kind == SIM_OP_LOAD ? OPJOIN_LOAD : op->kind == SIM_OP_COMPUTE ? OPJOIN_COMPUTE : OPJOIN_NONEXPERT,
                       .step = (int32_t)op->fstep, .layer = (int32_t)op->layer,
                       .expert = op->kind == SIM_OP_NONEXPERT ? -1 : (int32_t)op->expert,
                       .level = op->kind == SIM_OP_NONEXPERT ? 0 : (int32_t)op->level, .tokens = (int32_t)op->tokens,
                       .start_ns = op->start, .end_ns = op->end};
        int rc = opjoin_tl_add(b->ops, &j);
        if (rc) {
            b->rc = rc;
            snprintf(b->err, sizeof b->err, "%s", d2_err_msg());
            return;
        }
    }
    if (op->kind == SIM_OP_NONEXPERT) return;
    if (op->preload) {
        b->rc = D2_EINVAL;
        snprintf(b->err, sizeof b->err, "a preload of layer %u expert %d: execute runs on-demand plans only "
                 "(choose a system without prefetch)", op->layer, (int)op->expert);
        return;
    }
    exec_op x = {.phase = op->step, .layer = op->layer, .expert = (uint32_t)op->expert, .level = op->level,
                 .tokens = op->tokens, .final = op->kind == SIM_OP_COMPUTE ? op->final : 0};
    int rc = op->kind == SIM_OP_LOAD ? push(&b->plan.load, &b->plan.n_load, &b->capl, x)
                                      : push(&b->plan.comp, &b->plan.n_comp, &b->capc, x);
    if (rc) {
        b->rc = rc;
        snprintf(b->err, sizeof b->err, "%s", d2_err_msg());
    }
}

void execplan_builder_init(execplan_builder *b, int serial, struct sim_observer *obs)
{
    memset(b, 0, sizeof *b);
    b->plan.serial = serial;
    memset(obs, 0, sizeof *obs);
    obs->op = builder_op;
    obs->user = b;
}

int execplan_builder_finish(execplan_builder *b, exec_plan *out)
{
    if (b->rc) {
        int rc = b->rc;
        execplan_free(&b->plan);
        D2_ERROR(rc, "sim plan: %s", b->err);
    }
    *out = b->plan;
    memset(&b->plan, 0, sizeof b->plan);
    return D2_OK;
}

int execplan_store_open(exec_store *s, const char *path, const model *m, int levels, int base_bits, int64_t group)
{
    mwqfile *f;
    D2_TRY(mwqfile_open(path, &f));
    uint32_t L = (uint32_t)model_moe_layers(m), E = (uint32_t)m->experts;
    if (m->expert_matrices != EXEC_MATRICES) {
        mwqfile_close(f);
        D2_ERROR(D2_EINVAL, "model %s: execute runs SwiGLU experts (3 matrices), not %lld", m->name, (long long)m->expert_matrices);
    }
    kern_shape shape[EXEC_MATRICES];
    for (int i = 0; i < EXEC_MATRICES; i++) {
        int64_t r, c;
        model_expert_matrix_shape(m, i, &r, &c);
        shape[i] = (kern_shape){r, c, group, base_bits};
    }
    size_t n = (size_t)L * E * EXEC_MATRICES * (size_t)levels;
    exec_chunk *ch = malloc(n * sizeof *ch);
    if (!ch) { mwqfile_close(f); D2_ERROR(D2_ENOMEM, "%s: out of memory", path); }
    int rc = D2_OK;
    for (uint32_t l = 0; l < L && rc == D2_OK; l++)
        for (uint32_t e = 0; e < E && rc == D2_OK; e++)
            for (int mi = 0; mi < EXEC_MATRICES && rc == D2_OK; mi++) {
                char name[64];
                size_t idx;
                execplan_tensor_name(name, sizeof name, l, e, mi);
                if (mwqfile_find(f, name, &idx) != D2_OK) {
                    rc = D2_EFORMAT;
                    d2_err_set("%s: no tensor \"%s\" (model %s needs %u layers x %u experts)", path, name, m->name, L, E);
                    break;
                }
                const mwqfile_tensor *t = mwqfile_tensor_get(f, idx);
                if (t->shape.rows != shape[mi].rows || t->shape.cols != shape[mi].cols || t->shape.group != group ||
                    t->shape.base_bits != base_bits || t->levels < levels) {
                    rc = D2_EFORMAT;
                    d2_err_set("%s: %s is %lld x %lld, group %lld, b1 %d, %d levels; model %s with this system needs "
                               "%lld x %lld, group %lld, b1 %d, %d levels", path, name, (long long)t->shape.rows,
                               (long long)t->shape.cols, (long long)t->shape.group, t->shape.base_bits, t->levels, m->name,
                               (long long)shape[mi].rows, (long long)shape[mi].cols, (long long)group, base_bits, levels);
                    break;
                }
                for (int k = 1; k <= levels; k++)
                    ch[(((size_t)l * E + e) * EXEC_MATRICES + (size_t)mi) * (size_t)levels + (size_t)(k - 1)] =
                        (exec_chunk){t->offset[k - 1], t->bytes[k - 1]};
            }
    mwqfile_close(f);
    if (rc == D2_OK) rc = exec_store_open(s, path, L, E, levels, shape, ch);
    free(ch);
    return rc;
}

int execplan_model_generate(const char *path, const model *m, const mwq_config *c, uint64_t seed)
{
    uint32_t L = (uint32_t)model_moe_layers(m), E = (uint32_t)m->experts;
    if (m->expert_matrices != EXEC_MATRICES)
        D2_ERROR(D2_EINVAL, "model %s: execute runs SwiGLU experts (3 matrices), not %lld", m->name, (long long)m->expert_matrices);
    int64_t maxw = 0;
    for (int i = 0; i < EXEC_MATRICES; i++) {
        int64_t r, cc;
        model_expert_matrix_shape(m, i, &r, &cc);
        if (r * cc > maxw) maxw = r * cc;
    }
    float *w = malloc((size_t)maxw * sizeof *w);
    gsl_rng *g = rng_new(seed, 0x6d7771);
    mwqfile_writer *wr = NULL;
    int rc = (!w || !g) ? D2_ENOMEM : D2_OK;
    if (rc) d2_err_set("model file: out of memory");
    if (rc == D2_OK) rc = mwqfile_writer_new(path, &wr);
    for (uint32_t l = 0; l < L && rc == D2_OK; l++)
        for (uint32_t e = 0; e < E && rc == D2_OK; e++)
            for (int mi = 0; mi < EXEC_MATRICES && rc == D2_OK; mi++) {
                int64_t rows, cols;
                model_expert_matrix_shape(m, mi, &rows, &cols);
                /* heavy-tailed weights with a few outlier input columns */
                for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)(0.02 * sqrt(3.0 / 5.0) * gsl_ran_tdist(g, 5.0));
                for (int64_t col = 0; col < cols; col++)
                    if (gsl_rng_uniform(g) < 0.01)
                        for (int64_t r = 0; r < rows; r++) w[r * cols + col] *= 8.0f;
                mwq_matrix *q = NULL;
                rc = mwq_matrix_quantize(w, rows, cols, c, NULL, 0, &q);
                if (rc == D2_OK) {
                    char name[64];
                    execplan_tensor_name(name, sizeof name, l, e, mi);
                    rc = mwqfile_writer_add(wr, name, q, MWQFILE_RTN);
                    mwq_matrix_free(q);
                }
            }
    if (wr) {
        if (rc == D2_OK) rc = mwqfile_writer_finish(wr);
        else mwqfile_writer_abort(wr);
    }
    if (rc == D2_OK) { /* on disk and out of the page cache: the first O_DIRECT read must not wait for writeback */
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            if (fdatasync(fd) != 0) rc = D2_EIO, d2_err_set("%s: cannot sync: %s", path, strerror(errno));
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
    free(w);
    if (g) gsl_rng_free(g);
    return rc;
}
