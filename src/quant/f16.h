/* f16.h - IEEE 754 binary16 <-> float, round-to-nearest-even, header-only.
 * Scales and zeros of the .mwq container are FP16; the quantizer rounds every
 * stored value through these functions so what it measures is what it stores.
 * half -> float is exact, so the scalar and F16C (AVX2) paths agree bit for bit. */
#ifndef D2_QUANT_F16_H
#define D2_QUANT_F16_H

#include <stdint.h>
#include <string.h>

static inline float f16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, u;
    if (exp == 0) {
        float v = (float)mant * 5.9604644775390625e-8f; /* mant * 2^-24, exact */
        memcpy(&u, &v, 4);
        u |= sign;
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* After F. Giesen's float_to_half_fast3_rtne (public domain). */
static inline uint16_t f16_from_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = u & 0x80000000u;
    u ^= sign;
    uint16_t o;
    if (u >= (uint32_t)(127 + 16) << 23) {
        o = u > 0x7f800000u ? 0x7e00 : 0x7c00; /* NaN -> qNaN, too large -> Inf */
    } else if (u < (uint32_t)113 << 23) {      /* subnormal or zero */
        const uint32_t magic_u = (uint32_t)((127 - 15) + (23 - 10) + 1) << 23;
        float magic, v;
        memcpy(&magic, &magic_u, 4);
        memcpy(&v, &u, 4);
        v += magic;
        memcpy(&u, &v, 4);
        o = (uint16_t)(u - magic_u);
    } else {
        uint32_t odd = (u >> 13) & 1u;
        u += ((uint32_t)(15 - 127) << 23) + 0xfffu;
        u += odd;
        o = (uint16_t)(u >> 13);
    }
    return (uint16_t)(o | (sign >> 16));
}

static inline float f16_round(float f) { return f16_to_float(f16_from_float(f)); }

/* bfloat16 -> float (exact). */
static inline float bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
