/* vec.h - the one grow-array helper: VEC_RESERVE(p, cap, need) makes room
 * for `need` elements in the array p of capacity cap (doubling from
 * VEC_MIN_CAP), and returns D2_OK or D2_ENOMEM (with the error message set;
 * p and cap unchanged, so the caller frees what it holds as usual).  It does
 * not track the element count, shrink or free: the caller keeps its own
 * count and calls free(p).
 *
 * Growth it does not fit, left as hand-written realloc: a memo cache that
 * charges its bytes to a budget before growing and only stops recording
 * when it cannot (trace/source.c, sim/stepmemo.c); the 1-based event heap
 * on the simulator's hot path (sim/des.c); a scratch buffer resized to a
 * caller's exact count (host/calib.c); a line buffer whose capacity is
 * capped at the line limit (core/fileio.c). */
#ifndef D2_CORE_VEC_H
#define D2_CORE_VEC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define VEC_MIN_CAP 16 /* first capacity, elements */

static inline int vec_reserve_(void *pp, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return D2_OK;
    size_t nc = *cap ? *cap : VEC_MIN_CAP;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / size) D2_ERROR(D2_ENOMEM, "out of memory (array of %zu elements)", need);
        nc *= 2;
    }
    void *p;
    memcpy(&p, pp, sizeof p); /* pp is the address of a T *: read and write it as bytes */
    void *q = realloc(p, nc * size);
    if (!q) D2_ERROR(D2_ENOMEM, "out of memory");
    memcpy(pp, &q, sizeof q);
    *cap = nc;
    return D2_OK;
}

/* p: an lvalue T * (NULL for an empty array); cap: an lvalue size_t. */
#define VEC_RESERVE(p, cap, need) vec_reserve_(&(p), &(cap), (size_t)(need), sizeof *(p))

#endif
