/* kq_lanes.h - private to kq.c: the quantizer's search on lanes (the fit
 * of each sub-block's scale and min, the bucket search) and the driver of
 * a group of super-blocks, written once and included once per vector path
 * (GSL's habit for its float and double variants).  The includer defines
 * KQL_W, the lanes: 8 puts one super-block's 8 sub-blocks side by side, 16
 * two super-blocks' (lane j = sub-block j % 8 of super-block j / 8);
 * KQL_ISA: 0 plain vector code, 2 AVX2, 512 AVX-512 (the min / max below);
 * KQL_FN(name): the name with its path.  Every lane runs the same float
 * operations on every path, so all write the same bytes.  16 lanes pay off
 * only where a 16-float vector is one register (AVX-512; compiled for AVX2,
 * GCC splits and spills them: v1k ran 9x slower than on 8 lanes).  This
 * file defines
 * KQL_FN(fit_lanes), KQL_FN(bucket_lanes) and KQL_FN(quant_group_body) and
 * undefines its own macros.  Not a public header. */
#if KQL_W == 8
#define vf v8f
#define vi v8i
#define VL(c) V8(c)
#else
typedef float KQL_FN(vf) __attribute__((vector_size(4 * KQL_W)));
typedef int32_t KQL_FN(vi) __attribute__((vector_size(4 * KQL_W)));
#define vf KQL_FN(vf)
#define vi KQL_FN(vi)
#define VL(c) ((vf){(c), (c), (c), (c), (c), (c), (c), (c), (c), (c), (c), (c), (c), (c), (c), (c)})
#endif
#define KQL_NSB (KQL_W / KQ_NSUB) /* super-blocks per call */
#define VSELL(k, a, b) ((vf)((vi)(b) ^ ((k) & ((vi)(a) ^ (vi)(b))))) /* k: lane masks (0 / -1) */
#define VANDL(k, a) ((vf)((k) & (vi)(a)))
#define VABSL(a) ((vf)((vi)(a) & 0x7fffffff))
/* VMAXL(a, b) = VSELL(a > b, a, b) and VMINL(a, b) = VSELL(a < b, a, b)
 * exactly, NaN and signed zeros included (x86 max / min return b unless
 * a > b, resp. a < b); on the AVX2 and AVX-512 paths the instructions
 * themselves (clang finds them in the selects, GCC does not: 1.25x on the
 * AVX-512 path), so those functions carry the path's target (KQL_ATTR) */
/* VRINTL(v): v rounded to the nearest integer, ties to even, for |v| <
 * 2^22 (the only inputs it gets): the magic-number sum (((v + 1.5 2^23) -
 * 1.5 2^23), two additions) on the plain path, the rounding instruction
 * (one) on the AVX2 and AVX-512 paths.  They agree on every such v except
 * v = -0 (the sum gives +0); -0 reaches VRINTL only in fit_lanes, with
 * search_steps so large that nmax + t/10 < 0, and there l only enters sums
 * that start at +0, where +0 and -0 add the same (bucket_lanes clamps v
 * to >= +0 first). */
#if KQL_ISA == 512
#define VMAXL(a, b) ((vf)_mm512_max_ps((__m512)(a), (__m512)(b)))
#define VMINL(a, b) ((vf)_mm512_min_ps((__m512)(a), (__m512)(b)))
#define VRINTL(v) ((vf)_mm512_roundscale_ps((__m512)(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#define KQL_ATTR KQ_Q_OPT512 __attribute__((target(KQ_AVX512_TARGET)))
#elif KQL_ISA == 2
#define VMAXL(a, b) ((vf)_mm256_max_ps((__m256)(a), (__m256)(b)))
#define VMINL(a, b) ((vf)_mm256_min_ps((__m256)(a), (__m256)(b)))
#define VRINTL(v) ((vf)_mm256_round_ps((__m256)(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#define KQL_ATTR KQ_Q_OPT __attribute__((target("avx2")))
#else
#define VMAXL(a, b) VSELL((a) > (b), (a), (b))
#define VMINL(a, b) VSELL((a) < (b), (a), (b))
#define VRINTL(v) (((v) + VL(12582912.0f)) - VL(12582912.0f))
#define KQL_ATTR
#endif

/* Fit every sub-block x ~ s q - m, q in 0..nmax, m >= 0 (the sub-block
 * minimum clamped to <= 0, as k-quants do): candidates iscale = (nmax +
 * t/10) / range, t = -T..T, each refitted by least squares; the lowest
 * error wins.  X[i] = weight i of the 8 sub-blocks. */
KQL_ATTR static inline __attribute__((always_inline)) void KQL_FN(fit_lanes)(const vf *X, int nmax, int T, float s_out[KQL_W], float m_out[KQL_W])
{
    vf mn = X[0], mx = X[0];
    for (int i = 1; i < KQ_SUB; i++) { mn = VMINL(X[i], mn); mx = VMAXL(X[i], mx); }
    mn = VSELL(mn > VL(0.0f), VL(0.0f), mn);
    const vf range = mx - mn, nm = VL((float)nmax);
    vf Y[KQ_SUB];
    for (int i = 0; i < KQ_SUB; i++) Y[i] = X[i] - mn;
    /* the least-squares finish in double, 4 lanes at a time (v4d) */
    v4d best_e[KQL_W / 4], bs[KQL_W / 4], bm[KQL_W / 4], sx[KQL_W / 4], rd[KQL_W / 4];
    for (int q = 0; q < KQL_W / 4; q++) sx[q] = V4(0.0); /* sum x in double, in order, as the scalar fit did */
    for (int i = 0; i < KQ_SUB; i++)
        for (int q = 0; q < KQL_W / 4; q++) sx[q] += LANES4D(&X[i], q);
    for (int j = 0; j < KQL_W; j++) {
        rd[j / 4][j % 4] = range[j] > 0 ? range[j] : 1;
        best_e[j / 4][j % 4] = INFINITY;
        bs[j / 4][j % 4] = range[j] / (float)nmax;
        bm[j / 4][j % 4] = -mn[j];
    }
    for (int t = -T; t <= T; t++) {
        v4f isq[KQL_W / 4];
        for (int q = 0; q < KQL_W / 4; q++) isq[q] = __builtin_convertvector(V4(nmax + 0.1 * t) / rd[q], v4f);
#ifdef KQ_SHUF /* joined in registers: through memory, the wide load would wait for the narrow stores */
#if KQL_W == 8
        const vf is = KQ_SHUF(isq[0], isq[1], 0, 1, 2, 3, 4, 5, 6, 7);
#else
        const vf is = KQ_SHUF(KQ_SHUF(isq[0], isq[1], 0, 1, 2, 3, 4, 5, 6, 7), KQ_SHUF(isq[2], isq[3], 0, 1, 2, 3, 4, 5, 6, 7), 0, 1, 2, 3, 4, 5, 6, 7,
                              8, 9, 10, 11, 12, 13, 14, 15);
#endif
#else
        vf is;
        for (int q = 0; q < KQL_W / 4; q++) memcpy((char *)&is + sizeof isq[q] * q, &isq[q], sizeof isq[q]);
#endif
        /* the sums of l and l^2 are exact (integers < 2^24) */
        vf A = VL(0.0f), B = VL(0.0f), C[8]; /* C: sum l x in 8 partial sums (weights u, u+8, ...), added in double */
        for (int u = 0; u < 8; u++) C[u] = VL(0.0f);
        for (int i = 0; i < KQ_SUB; i++) {
            vf v = Y[i] * is; /* >= 0: x >= mn */
            v = VMINL(v, nm);
            const vf l = VRINTL(v);
            A += l;
            B += l * l;
            C[i % 8] += l * X[i];
        }
        for (int hf = 0; hf < KQL_W / 4; hf++) {
            const v4d sl = LANES4D(&A, hf), sll = LANES4D(&B, hf), z = V4(0.0), one = V4(1.0), n = V4((double)KQ_SUB);
            v4d slx = z;
            for (int u = 0; u < 8; u++) slx += LANES4D(&C[u], hf);
            const v4d D = n * sll - sl * sl;
            const v4l okD = D > z;
            const v4d Ds = VSEL4(okD, D, one), s0 = (n * slx - sl * sx[hf]) / Ds, off0 = (sll * sx[hf] - sl * slx) / Ds;
            const v4l clip = off0 > z; /* the min would be > 0: m = 0, s refitted */
            const v4d s = VSEL4(clip, slx / VSEL4(sll > z, sll, one), s0), off = VSEL4(clip, z, off0);
            /* sum (s l + off - x)^2 without the sum x^2 term (the same for all) */
            const v4d e = s * s * sll + V4(2.0) * s * off * sl + n * off * off - V4(2.0) * s * slx - V4(2.0) * off * sx[hf];
            const v4l take = okD & (s > z) & (e < best_e[hf]);
            best_e[hf] = VSEL4(take, e, best_e[hf]);
            bs[hf] = VSEL4(take, s, bs[hf]);
            bm[hf] = VSEL4(take, -off, bm[hf]);
        }
    }
    for (int j = 0; j < KQL_W; j++) {
        if (!(range[j] > 0)) { /* constant block: 0 (s = m = 0) or c < 0 (code 0 at c) */
            s_out[j] = -mn[j] / (float)nmax;
            m_out[j] = -mn[j];
        } else {
            s_out[j] = (float)bs[j / 4][j % 4];
            m_out[j] = (float)bm[j / 4][j % 4];
        }
    }
}

/* The BUCKET search of every sub-block (lanes): for the rounded (sc, mc)
 * pair and its 8 neighbours, the level-1 codes and, for that base, the
 * factors gi, go, h3 minimising e1 + e2 + 4 e3 (level errors).  Per weight,
 * |R1| = u and the set (inner / outward); level k moves toward x by a, so
 * over a set e2(g) = sum u^2 - 2 a2 sum u + n a2^2 and e3(g, h) = e2 - 2 a3
 * sum |u - a2| + n a3^2: one pass over the 32 positions per pair, with the
 * 4 sums sum |u - a2(g)|.  The inner and outward sets are disjoint, so for
 * each h the best gi and go are chosen separately.  The rounded pair is
 * tried first and kept on ties; pairs outside the code range are skipped. */
#ifndef KQ_W3
#define KQ_W3 4.0f
#endif
KQL_ATTR static inline __attribute__((always_inline)) void KQL_FN(bucket_lanes)(const vf *X, const kq_format *f, const float *d, const float *dm, int sc_io[KQL_W],
                                                               int mc_io[KQL_W], int gi[KQL_W], int go[KQL_W], int h3[KQL_W])
{
    static const int8_t nb[9][2] = {{0, 0}, {-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};
    static const float h8[4] = {0.6f / 8, 0.8f / 8, 1.0f / 8, 1.25f / 8};
    const int smax = (1 << f->scale_bits) - 1, mmax = (1 << f->min_bits) - 1;
    const vf nm = VL((float)((1 << f->base_bits) - 1)), zero = VL(0.0f), one = VL(1.0f);
    vf sc0, mc0, dv, dmv; /* lane j: super-block j / 8 */
    for (int j = 0; j < KQL_W; j++) {
        sc0[j] = (float)sc_io[j];
        mc0[j] = (float)mc_io[j];
        dv[j] = d[j / KQ_NSUB];
        dmv[j] = dm[j / KQ_NSUB];
    }
    vf best = VL(INFINITY), bsc = sc0, bmc = mc0, bgi = zero, bgo = zero, bh = zero;
    for (int t = 0; t < 9; t++) {
        const vf sc = sc0 + VL((float)nb[t][0]), mc = mc0 + VL((float)nb[t][1]);
        const vi valid = (sc >= zero) & (sc <= VL((float)smax)) & (mc >= zero) & (mc <= VL((float)mmax));
        const vf s = dv * sc, mj = dmv * (f->min_rel ? sc * mc : mc);
        const vf inv = VSELL(s > zero, one / VSELL(s > zero, s, one), zero);
        vf ai[4], ao[4];
        for (int g = 0; g < 4; g++) { ai[g] = s * VL(kq_gi[g] * 0.25f); ao[g] = s * VL(kq_go[g] * 0.25f); }
        /* pass 1: codes, |R1| and the set of every weight; the level-1 sums.
         * go = 2 gi exactly for g = 0, 1, 3, so for those |u - ao| = 2 |u/2 - ai|
         * (exact: scaling by 2): V = u/2 for outward weights, u otherwise */
        vf e1 = zero, u2o = zero, u1 = zero, u1o = zero, no = zero;
        vf S[4], So[4];
#if KQL_ISA == 512
        /* the codes and residuals of the 32 positions first (r and the
         * outward mask kept), then all sums in one pass (32 registers hold
         * them), the outward-only sums as masked additions: every sum adds
         * the same terms in the same order as the two passes below (a
         * masked-off lane keeps acc, where they add +0 to an acc >= +0: the
         * same); the outward count in integers (a float sum of at most 32
         * ones is exact too).  Codes first: each position's chain from x
         * to its sums is about 40 cycles long, and with the sums in a loop
         * of their own the processor keeps more positions in flight
         * (measured 1.04x) */
        {
            const __m512 zs = (__m512)zero, nms = (__m512)nm, halfs = _mm512_set1_ps(0.5f), ss = (__m512)s, mjs = (__m512)mj,
                         invs = (__m512)inv, a0 = (__m512)ai[0], a1 = (__m512)ai[1], a3 = (__m512)ai[3], a2i = (__m512)ai[2], a2o = (__m512)ao[2];
            const __m512i absm = _mm512_set1_epi32(0x7fffffff), onei = _mm512_set1_epi32(1);
            __m512i NO = _mm512_setzero_si512(); /* the outward count: an integer sum, exact like the float one */
            __m512 E1 = zs, U2O = zs, U1 = zs, U1O = zs, s0 = zs, s1 = zs, s2 = zs, s3 = zs, o0 = zs, o1 = zs, o2 = zs, o3 = zs;
            __m512 RB[KQ_SUB];
            __mmask16 MB[KQ_SUB];
            for (int i = 0; i < KQ_SUB; i++) {
                const __m512 x = (__m512)X[i];
                __m512 v = _mm512_mul_ps(_mm512_add_ps(x, mjs), invs);
                v = _mm512_min_ps(_mm512_max_ps(v, zs), nms);
                const __m512 q = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                const __m512 r = _mm512_sub_ps(x, _mm512_sub_ps(_mm512_mul_ps(ss, q), mjs));
                const __mmask16 pos = _mm512_cmp_ps_mask(r, zs, _CMP_GE_OS);
                MB[i] = _mm512_cmp_ps_mask(q, _mm512_mask_blend_ps(pos, zs, nms), _CMP_EQ_OQ);
                RB[i] = r;
            }
            for (int i = 0; i < KQ_SUB; i++) {
                const __m512 r = RB[i], rr = _mm512_mul_ps(r, r);
                const __mmask16 mo = MB[i];
                const __m512 u = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(r), absm));
                E1 = _mm512_add_ps(E1, rr);
                U2O = _mm512_mask_add_ps(U2O, mo, U2O, rr);
                U1 = _mm512_add_ps(U1, u);
                U1O = _mm512_mask_add_ps(U1O, mo, U1O, u);
                NO = _mm512_mask_add_epi32(NO, mo, NO, onei);
                const __m512 V = _mm512_mask_mul_ps(u, mo, u, halfs);
#define KQL_W512(k, a)                                                                                                                               \
    {                                                                                                                                                \
        const __m512 w = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(V, (a))), absm));                                      \
        s##k = _mm512_add_ps(s##k, w);                                                                                                               \
        o##k = _mm512_mask_add_ps(o##k, mo, o##k, w);                                                                                                \
    }
                KQL_W512(0, a0)
                KQL_W512(1, a1)
                KQL_W512(3, a3)
#undef KQL_W512
                const __m512 w2 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(u, _mm512_mask_blend_ps(mo, a2i, a2o))), absm));
                s2 = _mm512_add_ps(s2, w2);
                o2 = _mm512_mask_add_ps(o2, mo, o2, w2);
            }
            e1 = (vf)E1; u2o = (vf)U2O; u1 = (vf)U1; u1o = (vf)U1O; no = (vf)_mm512_cvtepi32_ps(NO);
            S[0] = (vf)s0 - (vf)o0; So[0] = VL(2.0f) * (vf)o0;
            S[1] = (vf)s1 - (vf)o1; So[1] = VL(2.0f) * (vf)o1;
            S[3] = (vf)s3 - (vf)o3; So[3] = VL(2.0f) * (vf)o3;
            S[2] = (vf)s2 - (vf)o2; So[2] = (vf)o2;
        }
#else
        vf U[KQ_SUB], V[KQ_SUB];
        vi MO[KQ_SUB];
        for (int i = 0; i < KQ_SUB; i++) {
            vf v = (X[i] + mj) * inv;
            v = VMAXL(v, zero);
            v = VMINL(v, nm);
            const vf q = VRINTL(v), r = X[i] - (s * q - mj), rr = r * r, u = VABSL(r);
            const vi mo = q == VSELL(r >= zero, nm, zero); /* outward: code nmax with r >= 0, or 0 with r < 0 */
            e1 += rr;
            u2o += VANDL(mo, rr);
            u1 += u;
            u1o += VANDL(mo, u);
            no += VANDL(mo, one);
            U[i] = u;
            V[i] = u * VSELL(mo, VL(0.5f), one);
            MO[i] = mo;
        }
        /* pass 2: sum |u - a2(g)| over all weights (S) and the outward ones (So) */
        {
            vf s0 = zero, s1 = zero, s3 = zero, o0 = zero, o1 = zero, o3 = zero;
            for (int i = 0; i < KQ_SUB; i++) {
                const vf w0 = VABSL(V[i] - ai[0]), w1 = VABSL(V[i] - ai[1]), w3 = VABSL(V[i] - ai[3]);
                s0 += w0;
                s1 += w1;
                s3 += w3;
                o0 += VANDL(MO[i], w0);
                o1 += VANDL(MO[i], w1);
                o3 += VANDL(MO[i], w3);
            }
            S[0] = s0 - o0; So[0] = VL(2.0f) * o0; /* here S is the inner sum */
            S[1] = s1 - o1; So[1] = VL(2.0f) * o1;
            S[3] = s3 - o3; So[3] = VL(2.0f) * o3;
            vf s2 = zero, o2 = zero;
            for (int i = 0; i < KQ_SUB; i++) {
                const vf w2 = VABSL(U[i] - VSELL(MO[i], ao[2], ai[2]));
                s2 += w2;
                o2 += VANDL(MO[i], w2);
            }
            S[2] = s2 - o2; So[2] = o2;
        }
#endif
        /* per set and g: e2 + 4 e3 = 5 e2 - c (8 s S) + c^2 (4 n s^2), a3 = s c, c = G h / 8 */
        const vf nn[2] = {VL((float)KQ_SUB) - no, no}, U2[2] = {e1 - u2o, u2o}, U1[2] = {u1 - u1o, u1o};
        vf P[2][4], Qs[2][4], R[2];
        for (int set = 0; set < 2; set++) {
            R[set] = VL(4.0f) * nn[set] * (s * s);
            for (int g = 0; g < 4; g++) {
                const vf a2 = set ? ao[g] : ai[g], Sg = set ? So[g] : S[g];
                const vf e2 = U2[set] - VL(2.0f) * a2 * U1[set] + nn[set] * a2 * a2;
                P[set][g] = VL(1.0f + KQ_W3) * e2;
                Qs[set][g] = VL(2.0f * KQ_W3) * s * Sg;
            }
        }
        vf res = VL(INFINITY), rgi = zero, rgo = zero, rh = zero;
#if KQL_ISA == 512
        { /* the same choice with the selects as masked moves (one instruction each) */
            __m512 mres = (__m512)res, mrgi = (__m512)rgi, mrgo = (__m512)rgo, mrh = (__m512)rh;
            for (int h = 0; h < 4; h++) {
                __m512 tot = (__m512)zero, bg[2] = {(__m512)zero, (__m512)zero};
                for (int set = 0; set < 2; set++) {
                    __m512 b = _mm512_set1_ps(INFINITY);
                    for (int g = 0; g < 4; g++) {
                        const float c = (set ? kq_go[g] : kq_gi[g]) * h8[h];
                        const __m512 cv = _mm512_set1_ps(c);
                        const __m512 o = _mm512_add_ps((__m512)P[set][g], _mm512_mul_ps(cv, _mm512_sub_ps(_mm512_mul_ps(cv, (__m512)R[set]), (__m512)Qs[set][g])));
                        const __mmask16 lt = _mm512_cmp_ps_mask(o, b, _CMP_LT_OS);
                        b = _mm512_mask_mov_ps(b, lt, o);
                        bg[set] = _mm512_mask_mov_ps(bg[set], lt, _mm512_set1_ps((float)g));
                    }
                    tot = _mm512_add_ps(tot, b);
                }
                const __mmask16 lt = _mm512_cmp_ps_mask(tot, mres, _CMP_LT_OS);
                mres = _mm512_mask_mov_ps(mres, lt, tot);
                mrgi = _mm512_mask_mov_ps(mrgi, lt, bg[0]);
                mrgo = _mm512_mask_mov_ps(mrgo, lt, bg[1]);
                mrh = _mm512_mask_mov_ps(mrh, lt, _mm512_set1_ps((float)h));
            }
            res = (vf)mres, rgi = (vf)mrgi, rgo = (vf)mrgo, rh = (vf)mrh;
        }
#else
        for (int h = 0; h < 4; h++) {
            vf tot = zero, bg[2] = {zero, zero};
            for (int set = 0; set < 2; set++) {
                vf b = VL(INFINITY);
                for (int g = 0; g < 4; g++) {
                    const float c = (set ? kq_go[g] : kq_gi[g]) * h8[h];
                    const vf o = P[set][g] + VL(c) * (VL(c) * R[set] - Qs[set][g]);
                    const vi lt = o < b;
                    b = VSELL(lt, o, b);
                    bg[set] = VSELL(lt, VL((float)g), bg[set]);
                }
                tot += b;
            }
            const vi lt = tot < res;
            res = VSELL(lt, tot, res);
            rgi = VSELL(lt, bg[0], rgi);
            rgo = VSELL(lt, bg[1], rgo);
            rh = VSELL(lt, VL((float)h), rh);
        }
#endif
        const vf o = e1 + res;
        const vi take = valid & (o < best);
        best = VSELL(take, o, best);
        bsc = VSELL(take, sc, bsc);
        bmc = VSELL(take, mc, bmc);
        bgi = VSELL(take, rgi, bgi);
        bgo = VSELL(take, rgo, bgo);
        bh = VSELL(take, rh, bh);
    }
    for (int j = 0; j < KQL_W; j++) {
        sc_io[j] = (int)bsc[j];
        mc_io[j] = (int)bmc[j];
        gi[j] = (int)bgi[j];
        go[j] = (int)bgo[j];
        h3[j] = (int)bh[j];
    }
}

/* Up to KQL_NSB super-blocks: x[t] at (row[t], b[t]), t < n, all levels
 * (lanes 8t..8t+7; for n < KQL_NSB the last one's weights fill the rest,
 * not written).  Returns 0, or the mask of the ones holding a NaN or Inf
 * (bit t: x[t]), and then nothing is written. */
KQL_ATTR static inline __attribute__((always_inline)) int KQL_FN(quant_group_body)(kq_matrix *m, const int64_t *row, const int64_t *b, const float *const *x, int n, int T)
{
    const kq_format *f = &m->fmt;
    const int nmax = (1 << f->base_bits) - 1;
    v8f X8[KQL_NSB][KQ_SUB]; /* each super-block's weights by position */
    int badm = 0;
    for (int t = 0; t < KQL_NSB; t++) { /* t >= n: the last one again, so every lane holds real weights */
        const int bad = load_lanes8(x[t < n ? t : n - 1], X8[t]);
        if (t < n && bad) badm |= 1 << t;
    }
    if (badm) return badm;
#if KQL_W == 8
    const vf *X = X8[0];
#else
    vf X[KQ_SUB];
    for (int i = 0; i < KQ_SUB; i++)
        for (int t = 0; t < KQL_NSB; t++) memcpy((char *)&X[i] + sizeof X8[t][i] * t, &X8[t][i], sizeof X8[t][i]);
#endif
    float s[KQL_W], mn[KQL_W];
    KQL_FN(fit_lanes)(X, nmax, T, s, mn);
    sb_head h[KQL_NSB];
    uint16_t d16[KQL_NSB], dm16[KQL_NSB];
    for (int t = 0; t < KQL_NSB; t++) quant_head(f, s + KQ_NSUB * t, mn + KQ_NSUB * t, &h[t], &d16[t], &dm16[t]);
    int gi[KQL_W] = {0}, go[KQL_W] = {0}, h3[KQL_W] = {0};
    if (f->resid == KQ_BUCKET) {
        int sc[KQL_W], mc[KQL_W];
        float d[KQL_NSB], dm[KQL_NSB];
        for (int t = 0; t < KQL_NSB; t++) d[t] = h[t].d, dm[t] = h[t].dm;
        for (int j = 0; j < KQL_W; j++) sc[j] = h[j / KQ_NSUB].sc[j % KQ_NSUB], mc[j] = h[j / KQ_NSUB].mc[j % KQ_NSUB];
        KQL_FN(bucket_lanes)(X, f, d, dm, sc, mc, gi, go, h3);
        for (int j = 0; j < KQL_W; j++) h[j / KQ_NSUB].sc[j % KQ_NSUB] = sc[j], h[j / KQ_NSUB].mc[j % KQ_NSUB] = mc[j];
    }
    for (int t = 0; t < n; t++) {
        head_decode(f, &h[t]);
        quant_tail(m, row[t], b[t], X8[t], &h[t], d16[t], dm16[t], gi + KQ_NSUB * t, go + KQ_NSUB * t, h3 + KQ_NSUB * t);
    }
    return 0;
}

#undef vf
#undef vi
#undef VL
#undef KQL_NSB
#undef VMAXL
#undef VMINL
#undef KQL_ATTR
#undef VSELL
#undef VANDL
#undef VABSL
#undef VRINTL
