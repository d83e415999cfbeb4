/* text.c - the control-character test (see text.h). */
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
