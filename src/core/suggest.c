/* suggest.c - closest-name suggestions for unknown names (see suggest.h). */
#include "core/suggest.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SUGGEST_MAX 128

int suggest_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n >= SUGGEST_MAX || m >= SUGGEST_MAX) return 1000;
    static _Thread_local int dp[SUGGEST_MAX + 1][SUGGEST_MAX + 1];
    for (size_t i = 0; i <= n; i++) dp[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) dp[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = dp[i - 1][j] + 1;
            if (dp[i][j - 1] + 1 < v) v = dp[i][j - 1] + 1;
            if (dp[i - 1][j - 1] + cost < v) v = dp[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && dp[i - 2][j - 2] + 1 < v)
                v = dp[i - 2][j - 2] + 1;
            dp[i][j] = v;
        }
    return dp[n][m];
}

const char *suggest_pick(const char *word, const char *const *cands, size_t n)
{
    size_t wl = strlen(word);
    if (wl == 0) return NULL;
    int limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
    const char *best = NULL;
    int bd = 1000;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i]) continue;
        int d = suggest_distance(word, cands[i]);
        if (strcasecmp(word, cands[i]) == 0) d = 0;
        else if (wl >= 3 && strncmp(cands[i], word, wl) == 0 && d > limit) d = limit; /* a prefix */
        else if (wl >= 4 && d > limit) { /* a misspelt prefix ("mixtrl" of "mixtral-8x7b"): one edit from a prefix */
            char pre[128];
            for (size_t pl = wl - 1; pl <= wl + 1 && pl < sizeof pre; pl++) {
                if (pl > strlen(cands[i])) break;
                memcpy(pre, cands[i], pl);
                pre[pl] = '\0';
                if (suggest_distance(word, pre) <= 1) { d = limit; break; }
            }
        }
        if (d < bd) { bd = d; best = cands[i]; }
    }
    return bd <= limit ? best : NULL;
}

void suggest_hint(const char *word, const char *const *cands, size_t n, char *buf, size_t bn)
{
    const char *p = suggest_pick(word, cands, n);
    if (p) snprintf(buf, bn, " (did you mean '%s'?)", p);
    else if (bn) buf[0] = '\0';
}
