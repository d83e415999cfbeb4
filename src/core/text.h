/* text.h - the one rule for "a control character" in a name or a field that
 * d2moe prints as it is (model and tensor names, CSV fields, paths passed to
 * gnuplot, error messages): a byte below 0x20 or 0x7f.  Bytes 0x80..0xff are
 * not control characters, so UTF-8 names pass.  It does not check that the
 * text is valid UTF-8 (text_utf8_len does), and it does not word any
 * message: callers do. */
#ifndef D2_CORE_TEXT_H
#define D2_CORE_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* 1 if the byte c is a control character (c < 0x20 or c == 0x7f), else 0. */
int text_ctl_byte(unsigned char c);
/* The number of leading bytes of s[0..n) that are not control characters:
 * n when there is none, else the offset of the first (a NUL byte inside
 * [0, n) counts as one). */
size_t text_ctl_span(const char *s, size_t n);
/* Bytes at s[0..n) that start a valid UTF-8 sequence of a character that is
 * not a control character: 1..4, else 0 (a control byte, a stray
 * continuation byte, an overlong or surrogate form, a cut sequence). */
size_t text_utf8_len(const unsigned char *s, size_t n);
/* Write s to f with every byte that text_utf8_len does not take (control
 * characters, bytes that are not UTF-8) written as \xNN: one line on a
 * terminal whatever a file name or a file's field held. */
void text_fputs_escaped(const char *s, FILE *f);

#endif
