/* suggest.h - "did you mean ...?": the closest of a list of names to a
 * misspelt one, by edit distance (Damerau-Levenshtein, optimal string
 * alignment).  Only picks a name; the caller words the message. */
#ifndef D2_CORE_SUGGEST_H
#define D2_CORE_SUGGEST_H

#include <stddef.h>

/* Edit distance between a and b (insert, delete, substitute, swap two
 * neighbours); strings longer than 127 bytes count as far apart. */
int suggest_distance(const char *a, const char *b);
/* The candidate closest to word, or NULL when none is close enough (at most
 * 1 edit for words of up to 4 letters, 2 up to 8, 3 beyond; a candidate
 * that starts with word also counts). */
const char *suggest_pick(const char *word, const char *const *cands, size_t n);
/* " (did you mean 'X'?)" into buf when there is a pick, else "". */
void suggest_hint(const char *word, const char *const *cands, size_t n, char *buf, size_t bn);

#endif
