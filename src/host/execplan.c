/* execplan.c - the simulator's plan as an exec_plan, a .mwq file as an
 * exec_store, and synthetic model files (see execplan.h). */
#include "host/execplan.h"
#include "core/err.h"
#include "core/rng.h"
#include "quant/mwqfile.h"

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
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        exec_op *q = realloc(*v, c * sizeof *q);
        if (!q) D2_ERROR(D2_ENOMEM, "plan: out of memory");
        *v = q;
        *cap = c;
    }
    (*v)[(*n)++] = op;
    return D2_OK;
}

int execplan_from_timeline(FILE *tl, int serial, exec_plan *out)
{
    memset(out, 0, sizeof *out);
    out->serial = serial;
    char line[512];
    size_t capl = 0, capc = 0, lineno = 0;
    int64_t phase = -1;
    long cur_layer = -1;
    int rc = D2_OK;
    while (fgets(line, sizeof line, tl)) {
        lineno++;
        if (lineno == 1 && strncmp(line, "start_ns", 8) == 0) continue;
        long long t0, t1;
        char q[16];
        long layer, expert, level, tokens;
        if (sscanf(line, "%lld,%lld,%15[^,],%ld,%ld,%ld,%ld", &t0, &t1, q, &layer, &expert, &level, &tokens) != 7 ||
            layer < 0 || tokens < 0) {
            rc = D2_EFORMAT;
            d2_err_set("sim timeline:%zu: expected start_ns,end_ns,queue,layer,expert,level,tokens", lineno);
            break;
        }
        if (!strcmp(q, "compute") && expert < 0) { /* non-expert work: a new layer step */
            phase++;
            cur_layer = layer;
            continue;
        }
        if (phase < 0 || expert < 0 || level < 1) {
            rc = D2_EFORMAT;
            d2_err_set("sim timeline:%zu: expert operation outside a layer step", lineno);
            break;
        }
        if (layer != cur_layer || (!strcmp(q, "io") && tokens == 0)) {
            rc = D2_EINVAL;
            d2_err_set("sim timeline:%zu: a preload for layer %ld during layer %ld: execute runs on-demand plans only "
                       "(choose a system without prefetch)", lineno, layer, cur_layer);
            break;
        }
        exec_op op = {(uint32_t)phase, (uint32_t)layer, (uint32_t)expert, (uint32_t)level, (uint32_t)tokens, 0};
        if (!strcmp(q, "io")) rc = push(&out->load, &out->n_load, &capl, op);
        else if (!strcmp(q, "compute")) rc = push(&out->comp, &out->n_comp, &capc, op);
        else {
            rc = D2_EFORMAT;
            d2_err_set("sim timeline:%zu: unknown queue \"%s\"", lineno, q);
        }
        if (rc) break;
    }
    if (rc == D2_OK && ferror(tl)) {
        rc = D2_EIO;
        d2_err_set("sim timeline: read error");
    }
    /* final tokens of each compute: its tokens minus the next level's (which
     * may compute earlier in the phase, when it was resident) */
    size_t ph0 = 0;
    for (size_t i = 0; rc == D2_OK && i < out->n_comp; i++) {
        exec_op *c = &out->comp[i];
        uint32_t next = 0;
        if (out->comp[ph0].phase != c->phase) ph0 = i;
        for (size_t j = ph0; j < out->n_comp && out->comp[j].phase == c->phase; j++)
            if (out->comp[j].expert == c->expert && out->comp[j].level == c->level + 1) { next = out->comp[j].tokens; break; }
        if (next > c->tokens) {
            rc = D2_EFORMAT;
            d2_err_set("sim timeline: phase %u expert %u: level %u has more tokens than level %u", c->phase, c->expert,
                       c->level + 1, c->level);
        }
        c->final = c->tokens - next;
    }
    if (rc) execplan_free(out);
    return rc;
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
