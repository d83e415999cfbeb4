/* text.c - the control-character test, UTF-8 validity and escaped output (see text.h). */
#include "core/text.h"

int text_ctl_byte(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

size_t text_ctl_span(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && !text_ctl_byte((unsigned char)s[k])) k++;
    return k;
}

size_t text_utf8_len(const unsigned char *s, size_t n)
{
    if (n == 0) return 0;
    const unsigned char c = s[0];
    if (c < 0x80) return text_ctl_byte(c) ? 0 : 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range (overlong and surrogate forms excluded) */
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xbf) return 0;
    if (len == 2 && c == 0xc2 && s[1] < 0xa0) return 0; /* C1 control characters U+0080..U+009F */
    return len;
}

void text_fputs_escaped(const char *s, FILE *f)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (p[n]) n++;
    for (size_t i = 0; i < n;) {
        size_t k = text_utf8_len(p + i, n - i);
        if (k) {
            fwrite(p + i, 1, k, f);
            i += k;
        } else {
            fprintf(f, "\\x%02x", p[i]);
            i++;
        }
    }
}
