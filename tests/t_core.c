/* t_core.c - units, parameter tables, INI errors, model derived sizes
 * (known answers computed by hand from the models' config.json), devices,
 * par_run (every item once, the lowest failing block's error, threads that
 * cannot be created), the control-character test. */
#include "core/device.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/model.h"
#include "core/par.h"
#include "core/prefault.h"
#include "core/rng.h"
#include "core/units.h"
#include "core/vec.h"
#include "core/suggest.h"
#include "core/text.h"
#include "tap.h"

#include <stdatomic.h>
#include <unistd.h>

/* ---- par_run ---- */
typedef struct par_t {
    atomic_int hits[1000];
    atomic_int workers_seen[8];
    int64_t fail_from; /* items >= this fail (0: none) */
} par_t;

static int par_item(void *ctx, int64_t lo, int64_t hi, int worker)
{
    par_t *t = ctx;
    atomic_fetch_add(&t->workers_seen[worker], 1);
    for (int64_t i = lo; i < hi; i++) {
        if (t->fail_from && i >= t->fail_from) D2_ERROR(D2_EINVAL, "item %lld failed", (long long)i);
        atomic_fetch_add(&t->hits[i], 1);
    }
    return D2_OK;
}

static void test_par(void)
{
    static par_t t;
    const int ths[] = {1, 2, 3, 7};
    for (size_t k = 0; k < sizeof ths / sizeof ths[0]; k++)
        for (int64_t grain = 1; grain <= 64; grain *= 8) {
            memset(&t, 0, sizeof t);
            int started = 0, once = 1;
            int rc = par_run(ths[k], 1000, grain, par_item, &t, &started);
            for (int i = 0; i < 1000; i++) once &= atomic_load(&t.hits[i]) == 1;
            ok(rc == D2_OK && once && started >= 1 && started <= ths[k], "par_run %d threads, 1000 items in blocks of %lld: each item once (%d started)",
               ths[k], (long long)grain, started);
        }
    memset(&t, 0, sizeof t);
    ok(par_run(3, 0, 1, par_item, &t, NULL) == D2_OK, "par_run: no items, no call");
    ok(par_run(0, 10, 1, par_item, &t, NULL) == D2_ERANGE && par_run(PAR_MAX_THREADS + 1, 10, 1, par_item, &t, NULL) == D2_ERANGE &&
       par_run(2, 10, 0, par_item, &t, NULL) == D2_ERANGE, "par_run: threads 0, 257 and grain 0 refused");
    for (size_t k = 0; k < sizeof ths / sizeof ths[0]; k++) {
        memset(&t, 0, sizeof t);
        t.fail_from = 537;
        d2_err_clear();
        int rc = par_run(ths[k], 1000, 5, par_item, &t, NULL), below = 1;
        for (int i = 0; i < 537; i++) below &= atomic_load(&t.hits[i]) == 1;
        ok(rc == D2_EINVAL && below && !strcmp(d2_err_msg(), "item 537 failed") && strstr(d2_err_where(), "t_core.c"),
           "par_run %d threads, items from 537 fail: every item below ran, the first failure's message reaches the caller (%s at %s)",
           ths[k], d2_err_msg(), d2_err_where());
    }
    /* D2_FAIL_THREAD (par.h's test hook): creations from the n-th on fail */
    setenv("D2_FAIL_THREAD", "1", 1);
    memset(&t, 0, sizeof t);
    int started = 0, once = 1;
    int rc = par_run(4, 1000, 10, par_item, &t, &started);
    for (int i = 0; i < 1000; i++) once &= atomic_load(&t.hits[i]) == 1;
    ok(rc == D2_OK && started == 1 && once && atomic_load(&t.workers_seen[0]) == 100,
       "D2_FAIL_THREAD=1: no thread starts, the caller does all 100 blocks (%d started)", started);
    setenv("D2_FAIL_THREAD", "3", 1);
    memset(&t, 0, sizeof t);
    once = 1;
    rc = par_run(7, 1000, 10, par_item, &t, &started);
    for (int i = 0; i < 1000; i++) once &= atomic_load(&t.hits[i]) == 1;
    ok(rc == D2_OK && started == 3 && once && atomic_load(&t.workers_seen[3]) == 0,
       "D2_FAIL_THREAD=3 with 7 threads: 3 workers (the caller and 2 threads) share every item (%d started)", started);
    unsetenv("D2_FAIL_THREAD");
}

static void test_units(void)
{
    double d;
    int64_t i;
    ok(units_parse_double("3.5G", &d) == 0 && d == 3.5e9, "3.5G = 3.5e9");
    ok(units_parse_double("3.5GB/s", &d) == 0 && d == 3.5e9, "3.5GB/s = 3.5e9");
    ok(units_parse_int64("6Gi", &i) == 0 && i == 6442450944LL, "6Gi = 6 * 2^30");
    ok(units_parse_int64("200M", &i) == 0 && i == 200000000LL, "200M = 2e8");
    ok(units_parse_int64("9007199254740993", &i) == 0 && i == 9007199254740993LL, "large integer exact");
    /* memo bounds from the environment: MiB, the default for anything unreadable */
    setenv("D2_T_MIB", "12", 1);
    ok(units_env_mib("D2_T_MIB", 3) == (size_t)12 << 20, "D2_T_MIB=12: 12 MiB");
    setenv("D2_T_MIB", "0", 1);
    ok(units_env_mib("D2_T_MIB", 3) == 0, "D2_T_MIB=0: 0 (off)");
    const char *badmib[] = {"", "-1", "12x", "1.5", " 4", "99999999999999999999"};
    int allbad = 1;
    for (size_t k = 0; k < sizeof badmib / sizeof *badmib; k++) {
        setenv("D2_T_MIB", badmib[k], 1);
        allbad &= units_env_mib("D2_T_MIB", 3) == (size_t)3 << 20;
    }
    unsetenv("D2_T_MIB");
    ok(allbad && units_env_mib("D2_T_MIB", 3) == (size_t)3 << 20, "empty, negative, junk, fractional, spaced, huge or unset: the default");
    ok(units_parse_int64("1500mb", &i) == 0 && i == 1500000000LL, "suffixes are case-insensitive: 1500mb = 1.5e9");
    ok(units_parse_int64("2gib", &i) == 0 && i == 2147483648LL, "2gib = 2 * 2^30");
    ok(units_parse_double("1500xb", &d) != 0, "an unknown suffix is refused");
    {   /* did you mean: edit distance with transpositions (hand-computed) */
        static const char *const c[] = {"sweep", "simulate", "show", "report"};
        ok(suggest_distance("kitten", "sitting") == 3, "distance kitten/sitting = 3 (Levenshtein's example)");
        ok(suggest_distance("swepe", "sweep") == 1, "a swap of neighbours is one edit");
        ok(suggest_pick("swep", c, 4) && !strcmp(suggest_pick("swep", c, 4), "sweep"), "swep -> sweep");
        ok(suggest_pick("xyzzy", c, 4) == NULL, "nothing close: no suggestion");
        static const char *const m[] = {"llama-moe-3.5b", "mixtral-8x7b", "qwen3-30b-a3b"};
        ok(suggest_pick("mixtrl", m, 3) && !strcmp(suggest_pick("mixtrl", m, 3), "mixtral-8x7b"),
           "mixtrl -> mixtral-8x7b (one edit from a prefix)");
        ok(suggest_pick("qwen", m, 3) && !strcmp(suggest_pick("qwen", m, 3), "qwen3-30b-a3b"), "qwen -> qwen3-30b-a3b (a prefix)");
        ok(suggest_pick("mzzz", m, 3) == NULL, "mzzz: far from every name and prefix, no suggestion");
    }
    ok(units_parse_int64("1.5", &i) != 0, "1.5 is not an integer");
    ok(units_parse_double("nan", &d) != 0, "nan refused");
    ok(units_parse_double("inf", &d) != 0, "inf refused");
    ok(units_parse_double("12x", &d) != 0, "trailing junk refused");
    ok(units_parse_double("", &d) != 0, "empty refused");
    ok(units_parse_int64("99999999999T", &i) == -2, "overflow detected");
}

static char tmpdir[256];

static const char *write_tmp(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

#define GOOD_MODEL "[model]\nname = t\nlayers = 2\nhidden = 8\nexpert_ffn = 16\nexperts = 4\ntop_k = 2\n" \
                   "heads = 2\nkv_heads = 1\nhead_dim = 4\nvocab = 10\n"

static void expect_err(const char *name, const char *text, int want_rc, const char *want_sub)
{
    model m;
    const char *p = write_tmp(name, text);
    int rc = model_load(&m, p);
    ok(rc == want_rc && strstr(d2_err_msg(), want_sub) != NULL, "%s: rc %d, message has \"%s\"", name, rc, want_sub);
    if (rc != want_rc || !strstr(d2_err_msg(), want_sub)) tap_diag("message: %s", d2_err_msg());
}

static void test_ini(void)
{
    model m;
    char p[512];
    snprintf(p, sizeof p, "%s", write_tmp("good.ini", GOOD_MODEL));
    ok(model_load(&m, p) == D2_OK, "a good profile loads");
    is_int(m.expert_matrices, 3, "default expert_matrices = 3");
    char where[600];
    snprintf(where, sizeof where, "%s/unknown.ini:3: colour", tmpdir);
    expect_err("unknown.ini", "[model]\nname = t\ncolour = blue\n", D2_EFORMAT, where);
    snprintf(where, sizeof where, "%s/range.ini:7: top_k", tmpdir);
    expect_err("range.ini", "[model]\nname = t\nlayers = 2\nhidden = 8\nexpert_ffn = 16\nexperts = 4\ntop_k = 99\n", D2_ERANGE, where);
    expect_err("missing.ini", "[model]\nname = t\nlayers = 2\n", D2_EFORMAT, "hidden: required key missing");
    snprintf(where, sizeof where, "%s/malformed.ini:2:", tmpdir);
    expect_err("malformed.ini", "[model]\nthis line has no equals sign\n", D2_EFORMAT, where);
    expect_err("malformed.ini", "[model]\nthis line has no equals sign\n", D2_EFORMAT, "malformed line");
    snprintf(where, sizeof where, "%s/dup.ini:3: name: given twice", tmpdir);
    expect_err("dup.ini", "[model]\nname = t\nname = u\n", D2_EFORMAT, where);
    snprintf(where, sizeof where, "%s/notnum.ini:3: layers: expected an integer", tmpdir);
    expect_err("notnum.ini", "[model]\nname = t\nlayers = many\n", D2_EFORMAT, where);
    snprintf(where, sizeof where, "%s/section.ini:2: [modle]: unknown section", tmpdir);
    expect_err("section.ini", "[modle]\nname = t\n", D2_EFORMAT, where);
    char longl[400];
    memset(longl, 'x', sizeof longl);
    snprintf(longl, sizeof longl, "[model]\nname = %0300d\n", 1);
    snprintf(where, sizeof where, "%s/long.ini:2: line too long", tmpdir);
    expect_err("long.ini", longl, D2_EFORMAT, where);
    expect_err("cross.ini", "[model]\nname = t\nlayers = 2\nhidden = 8\nexpert_ffn = 16\nexperts = 4\ntop_k = 5\n"
               "heads = 2\nkv_heads = 1\nhead_dim = 4\nvocab = 10\n", D2_ERANGE, "top_k: 5 is more than experts");
    ok(model_load(&m, "no-such-model") == D2_ENOTFOUND, "unknown profile name: ENOTFOUND");
    ok(model_load(&m, "../etc/passwd") == D2_ENOTFOUND || model_load(&m, "bad name!") == D2_EINVAL, "bad names refused");

    /* --set */
    ok(model_load(&m, p) == D2_OK, "reload");
    ok(param_apply_set(&model_params, &m, "model.layers=7") == D2_OK && m.layers == 7, "--set model.layers=7");
    ok(param_apply_set(&model_params, &m, "layers=9") == D2_OK && m.layers == 9, "--set layers=9 (no prefix)");
    ok(param_apply_set(&model_params, &m, "device.flash_bw=1G") == D2_ENOTFOUND, "--set of another table: ENOTFOUND");
    ok(param_apply_set(&model_params, &m, "model.nope=1") == D2_EINVAL, "--set unknown model key: EINVAL");
    ok(param_apply_set(&model_params, &m, "model.layers=0") == D2_ERANGE, "--set out of range: ERANGE");
}

static void test_models(void)
{
    model m;
    /* Mixtral-8x7B: expert = 3 x 4096 x 14336 (config.json), by hand */
    ok(model_load(&m, "mixtral-8x7b") == D2_OK, "mixtral-8x7b loads");
    is_int(model_expert_params(&m), 3LL * 4096 * 14336, "mixtral expert params = 3*4096*14336 = 176160768");
    is_int(model_expert_bytes_uniform(&m, 16, 0), 2LL * 176160768, "mixtral expert FP16 bytes = 352321536");
    /* INT4, g=128: 176160768*4/8 codes + (14336*32*2 + 4096*112) groups * 4 bytes */
    is_int(model_expert_bytes_uniform(&m, 4, 128), 88080384LL + (2LL * 14336 * 32 + 4096LL * 112) * 4,
           "mixtral INT4 g128 = 88080384 + 1376256*4 = 93585408 bytes");
    /* MWQ V1 = 2.25 + 1.125 + 1.125 = 4.5 bits/weight at g = 128 (PAPER.md section 2) */
    double bpw = 8.0 * (double)model_expert_mwq_bytes(&m, 2, 3, 128) / (double)model_expert_params(&m);
    is_near(bpw, 4.5, 1e-9, "MWQ V1 g128 = 4.5 bits/weight (paper: about 4.5)");
    /* total 46.7B (Mistral AI); by hand: 32*8*176160768 + 32*(2*4096*4096+2*4096*1024+2*4096) + 2*32000*4096 + 32*4096*8 + 4096 */
    int64_t want = 32LL * 8 * 176160768 + 32LL * (2 * 4096LL * 4096 + 2 * 4096LL * 1024 + 2 * 4096) + 2LL * 32000 * 4096 + 32LL * 4096 * 8 + 4096;
    is_int(model_total_params(&m), want, "mixtral total params (46.70 B)");
    is_int(model_kv_bytes_per_token(&m, 16), 32LL * 2 * 8 * 128 * 2, "mixtral KV = 131072 bytes/token");

    ok(model_load(&m, "llama-moe-3.5b") == D2_OK, "llama-moe-3.5b loads");
    is_int(model_expert_params(&m), 3LL * 4096 * 1376, "llama-moe expert params = 3*4096*1376");
    is_near((double)model_total_params(&m) / 1e9, 6.74, 0.01, "llama-moe total ~ 6.74 B (LLaMA2-7B)");

    ok(model_load(&m, "llama2-13b") == D2_OK, "llama2-13b loads");
    ok(m.dense && m.experts == 1 && m.top_k == 1, "llama2-13b dense = one always-selected expert");
    is_near((double)model_total_params(&m) / 1e9, 13.016, 0.001, "llama2-13b total = 13.016 B");

    ok(model_load(&m, "deepseek-v2-lite") == D2_OK, "deepseek-v2-lite loads");
    is_int(model_moe_layers(&m), 26, "deepseek-v2-lite: 26 MoE layers (layer 0 dense)");
    is_near((double)model_total_params(&m) / 1e9, 15.7, 0.05, "deepseek-v2-lite ~ 15.7 B");

    ok(model_load(&m, "switch-base-128") == D2_OK, "switch-base-128 loads");
    is_int(model_moe_layers(&m), 12, "switch-base-128: 12 MoE layers (every other block)");
    ok(model_layer_is_moe(&m, 1) && !model_layer_is_moe(&m, 2), "switch: layer 1 MoE, layer 2 dense");
    is_near((double)model_total_params(&m) / 1e9, 7.4, 0.05, "switch-base-128 ~ 7.4 B");

    ok(model_load(&m, "qwen3-30b-a3b") == D2_OK, "qwen3-30b-a3b loads");
    is_near((double)model_total_params(&m) / 1e9, 30.5, 0.1, "qwen3-30b-a3b ~ 30.5 B");
    ok(model_load(&m, "qwen1.5-moe-a2.7b") == D2_OK, "qwen1.5-moe loads");
    is_near((double)model_total_params(&m) / 1e9, 14.3, 0.05, "qwen1.5-moe ~ 14.3 B");
    ok(model_load(&m, "olmoe-1b-7b") == D2_OK, "olmoe loads");
    is_near((double)model_total_params(&m) / 1e9, 6.92, 0.02, "olmoe ~ 6.92 B");
}

static void test_devices(void)
{
    device d;
    static const char *names[] = {"env1", "env2", "raspberry-pi-5", "phone-sd8g3"};
    for (int i = 0; i < 4; i++) ok(device_load(&d, names[i]) == D2_OK, "device %s loads", names[i]);
    ok(device_load(&d, "env1") == D2_OK && d.flash_bw == 3.5e9 && d.mem_bytes == 6442450944LL, "env1: 3.5 GB/s flash, 6 GiB");
    ok(device_load(&d, "env2") == D2_OK && d.unified, "env2 is unified memory");
    const char *p = write_tmp("dev.ini", "[device]\nname = x\nmem_bytes = 1G\nmem_bw = 1G\nfp16_flops = 1T\nhost_mem_bytes = 1G\nflash_bw = 1G\nflash_lat_ns = 1\n");
    ok(device_load(&d, p) == D2_ERANGE && strstr(d2_err_msg(), "link_bw"), "discrete device without link_bw refused");
}

static void test_rng_hash(void)
{
    gsl_rng *a = rng_new(42, 1), *b = rng_new(42, 1), *c = rng_new(42, 2);
    unsigned long x = gsl_rng_get(a), y = gsl_rng_get(b), z = gsl_rng_get(c);
    ok(x == y, "same (seed, stream): same draws");
    ok(x != z, "different stream: different draws");
    gsl_rng_free(a); gsl_rng_free(b); gsl_rng_free(c);
    char h1[33], h2[33];
    hash_mem_hex("abc", 3, h1);
    hash_mem_hex("abd", 3, h2);
    ok(strlen(h1) == 32 && strcmp(h1, h2) != 0, "xxh128 hex differs for different input");
}

static void test_vec(void)
{
    int *a = NULL;
    size_t cap = 0, n = 0;
    int good = 1;
    for (int i = 0; i < 1000 && good; i++) {
        if (VEC_RESERVE(a, cap, n + 1) != D2_OK || cap < n + 1) good = 0;
        else a[n++] = i;
    }
    for (size_t i = 0; i < n && good; i++) good = a[i] == (int)i;
    ok(good && n == 1000 && cap == 1024, "VEC_RESERVE: 1000 appends keep every element, capacity doubles from 16 to 1024");
    ok(VEC_RESERVE(a, cap, 10) == D2_OK && cap == 1024, "VEC_RESERVE: no growth when there is room");
    int *keep = a;
    ok(VEC_RESERVE(a, cap, SIZE_MAX / 2) == D2_ENOMEM && a == keep && cap == 1024, "VEC_RESERVE: overflow is D2_ENOMEM, array kept");
    free(a);
}

/* text: control characters are bytes < 0x20 and 0x7f; UTF-8 bytes (>= 0x80) are not */
static void test_text(void)
{
    is_int(text_ctl_span("", 0), 0, "text_ctl_span(\"\"): 0, no control character");
    is_int(text_ctl_span("abc", 3), 3, "text_ctl_span(\"abc\"): 3, no control character");
    is_int(text_ctl_span("a\tb", 3), 1, "text_ctl_span(\"a\\tb\"): the tab at 1");
    is_int(text_ctl_span("a\x7f", 2), 1, "text_ctl_span(\"a\\x7f\"): DEL at 1");
    is_int(text_ctl_span("\xc3\xa9", 2), 2, "text_ctl_span(UTF-8 \"\xc3\xa9\"): 2, no control character");
    is_int(text_ctl_span("ab\0c", 4), 2, "text_ctl_span: a NUL inside the span counts, at 2");
    is_int(text_ctl_span("a\x01", 1), 1, "text_ctl_span: bytes past n are not read");
    int ctl = 0;
    for (unsigned c = 0; c < 256; c++) ctl += text_ctl_byte((unsigned char)c);
    ok(ctl == 33 && text_ctl_byte(0x1f) && !text_ctl_byte(0x20) && text_ctl_byte(0x7f) && !text_ctl_byte(0x80) && !text_ctl_byte(0xff),
       "text_ctl_byte: 33 control bytes, 0x00..0x1f and 0x7f");
    /* UTF-8 (RFC 3629, table 3-7 of the Unicode standard): well-formed sequences and the ill-formed ones */
#define U8(str) text_utf8_len((const unsigned char *)(str), sizeof(str) - 1)
    is_int(U8("a"), 1, "utf8: ASCII a is 1 byte");
    is_int(U8("\t"), 0, "utf8: a tab (control) is not taken");
    is_int(U8("\xc3\xa9"), 2, "utf8: e-acute C3 A9 is 2 bytes");
    is_int(U8("\xe2\x82\xac"), 3, "utf8: euro sign E2 82 AC is 3 bytes");
    is_int(U8("\xf0\x9f\x98\x80"), 4, "utf8: U+1F600 F0 9F 98 80 is 4 bytes");
    is_int(U8("\xc0\x80"), 0, "utf8: overlong C0 80 refused");
    is_int(U8("\xe0\x80\x80"), 0, "utf8: overlong E0 80 80 refused");
    is_int(U8("\xed\xa0\x80"), 0, "utf8: surrogate ED A0 80 refused");
    is_int(U8("\xf4\x90\x80\x80"), 0, "utf8: past U+10FFFF (F4 90 ..) refused");
    is_int(U8("\xf5\x80\x80\x80"), 0, "utf8: F5 refused");
    is_int(U8("\x80"), 0, "utf8: a stray continuation byte refused");
    is_int(U8("\xe2\x82"), 0, "utf8: a cut sequence refused");
    is_int(U8("\xc2\x85"), 0, "utf8: C1 control U+0085 refused");
    is_int(U8("\xc2\xa0"), 2, "utf8: U+00A0 taken");
#undef U8
    char buf[128] = "";
    FILE *mf = fmemopen(buf, sizeof buf, "w");
    if (mf) {
        text_fputs_escaped("caf\xc3\xa9 \xff\x1b[31m\n", mf);
        fclose(mf);
    }
    is_str(buf, "caf\xc3\xa9 \\xff\\x1b[31m\\x0a", "text_fputs_escaped: UTF-8 kept, a bad byte, ESC and a newline as \\xNN");
}

/* prefault: contents unchanged, any range (unaligned, short, empty, NULL) accepted */
static void test_prefault(void)
{
    const size_t n = 5 * 4096 + 123;
    unsigned char *a = malloc(n), *z = calloc(n, 1);
    if (!a || !z) { ok(0, "prefault: allocation"); free(a); free(z); return; }
    for (size_t i = 0; i < n; i++) a[i] = (unsigned char)(i * 131u + 7u);
    prefault(a + 3, n - 10); /* unaligned both ends */
    prefault(z, n);
    prefault(a, 0);
    prefault(a + 1, 100); /* less than a page */
    prefault(NULL, 4096);
    int same = 1, zero = 1;
    for (size_t i = 0; i < n; i++) {
        same &= a[i] == (unsigned char)(i * 131u + 7u);
        zero &= z[i] == 0;
    }
    ok(same, "prefault leaves written memory as it was");
    ok(zero, "prefault leaves calloc'd memory zero");
    free(a);
    free(z);
}

static void test_pathf(void)
{
    /* a path that fits exactly (n - 1 bytes) is built; one byte more is
     * refused, never cut short, and the buffer left "" */
    char b[8];
    is_int(fileio_pathf(b, sizeof b, "%s/%s", "abc", "def"), D2_OK, "fileio_pathf: 7 bytes fit in 8");
    is_str(b, "abc/def", "  the path built");
    is_int(fileio_pathf(b, sizeof b, "%s/%s.x", "ab", "de"), D2_OK, "  \"ab/de.x\" fits too");
    is_int(fileio_pathf(b, sizeof b, "%s/%s", "abcd", "efg"), D2_ERANGE, "  8 bytes in 8: D2_ERANGE");
    is_str(b, "", "  the buffer left empty");
    ok(strstr(d2_err_msg(), "path too long (8 bytes, at most 7): abcd/ef...") != NULL, "  the message names the length and the start (%s)",
       d2_err_msg());
    char big[FILEIO_PATH_MAX + 10];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char p[FILEIO_PATH_MAX];
    is_int(fileio_pathf(p, sizeof p, "%s", big), D2_ERANGE, "  a name longer than FILEIO_PATH_MAX: D2_ERANGE");
    big[FILEIO_PATH_MAX - 1] = '\0';
    is_int(fileio_pathf(p, sizeof p, "%s", big), D2_OK, "  FILEIO_PATH_MAX - 1 bytes: built");

    /* fileio_same_target: one file under two names, existing or not yet */
    char dir[] = "/tmp/t_core.XXXXXX";
    if (mkdtemp(dir)) {
        char f1[64], f2[64], f3[64], lnk[64], none[64], none2[64];
        snprintf(f1, sizeof f1, "%s/a", dir);
        snprintf(f2, sizeof f2, "%s/./a", dir);
        snprintf(f3, sizeof f3, "%s/b", dir);
        snprintf(lnk, sizeof lnk, "%s/hard", dir);
        snprintf(none, sizeof none, "%s/new.csv", dir);
        snprintf(none2, sizeof none2, "%s/../%s/new.csv", dir, strrchr(dir, '/') + 1);
        FILE *fa = fopen(f1, "w"), *fb = fopen(f3, "w");
        if (fa) fclose(fa);
        if (fb) fclose(fb);
        int linked = link(f1, lnk) == 0;
        char dd[64];
        const char *bn;
        ok(fileio_dir_of("results/d2moe.db", dd, sizeof dd, &bn) == D2_OK && !strcmp(dd, "results") && !strcmp(bn, "d2moe.db"),
           "fileio_dir_of: results/d2moe.db is d2moe.db in results");
        ok(fileio_dir_of("x.db", dd, sizeof dd, &bn) == D2_OK && !strcmp(dd, ".") && !strcmp(bn, "x.db"), "  x.db: in .");
        ok(fileio_dir_of("/x.db", dd, sizeof dd, NULL) == D2_OK && !strcmp(dd, "/"), "  /x.db: in /");
        ok(fileio_dir_of("a/b/", dd, sizeof dd, NULL) == D2_OK && !strcmp(dd, "a"), "  a/b/: in a (trailing slash aside)");
        ok(fileio_dir_of("abcdefgh/x", dd, 8, NULL) == D2_ERANGE, "  a folder that does not fit: D2_ERANGE");
        ok(fileio_same_target(f1, f1) && fileio_same_target(f1, f2), "fileio_same_target: a and ./a");
        ok(!fileio_same_target(f1, f3), "  a and b: not the same");
        ok(!linked || fileio_same_target(f1, lnk), "  a and a hard link to it: the same");
        ok(fileio_same_target(none, none2), "  a file not there yet, named through ../: the same");
        ok(!fileio_same_target(none, f1), "  a new name and an existing file: not the same");
        /* the registry of inputs past its first growths (16, 32, 64, 128, 256 entries): every
         * input refused as an output, a file written through fileio_out_commit is the
         * process's own and stays writable, a store may be reopened */
        enum { NIN = 300 };
        char fn[80];
        int made = 0, refused = 0;
        for (int k = 0; k < NIN; k++) {
            snprintf(fn, sizeof fn, "%s/in%d", dir, k);
            FILE *f = fopen(fn, "w");
            if (!f) continue;
            fclose(f);
            made++;
            fileio_note_input(fn);
        }
        for (int k = 0; k < NIN; k++) {
            snprintf(fn, sizeof fn, "%s/in%d", dir, k);
            refused += fileio_out_check(fn) == D2_EINVAL;
        }
        is_int(refused, made, "inputs: all %d noted inputs refused as outputs", made);
        ok(fileio_out_check(f3) == D2_OK, "  a file never read: writable");
        fileio_out *o;
        FILE *fp;
        snprintf(fn, sizeof fn, "%s/mine", dir);
        int wrote = fileio_out_open(fn, &o, &fp) == D2_OK && fputs("x\n", fp) >= 0 && fileio_out_commit(o) == D2_OK;
        fileio_note_input(fn); /* read back (a check of what was written) */
        ok(wrote && fileio_out_check(fn) == D2_OK, "  the process's own output, read back: still writable");
        fileio_note_store(f3);
        ok(fileio_store_check(f3) == D2_OK && fileio_out_check(f3) == D2_EINVAL, "  a store: reopened as a store, refused as a file output");
        for (int k = 0; k < NIN; k++) {
            snprintf(fn, sizeof fn, "%s/in%d", dir, k);
            unlink(fn);
        }
        snprintf(fn, sizeof fn, "%s/mine", dir);
        unlink(fn);
        unlink(f1); unlink(f3); unlink(lnk);
        rmdir(dir);
    } else {
        ok(0, "mkdtemp");
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/t_core.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_units();
    test_text();
    test_vec();
    test_pathf();
    test_prefault();
    test_ini();
    test_models();
    test_devices();
    test_rng_hash();
    test_par();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) tap_diag("could not remove %s", tmpdir);
    return tap_done();
}
