/* report.c - summary queries as aligned text tables (see report.h). */
#include "results/report.h"
#include "core/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 24
#define MAX_ROWS 2000

int report_print_sql(db *d, const char *sql_path, FILE *out)
{
    FILE *f = fopen(sql_path, "r");
    if (!f) D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", sql_path, strerror(errno));
    char *sql = NULL;
    size_t cap = 0, len = 0;
    char line[2048], title[512] = "";
    while (fgets(line, sizeof line, f)) {
        if (!title[0] && !strncmp(line, "-- ", 3)) {
            snprintf(title, sizeof title, "%s", line + 3);
            title[strcspn(title, "\n")] = '\0';
        }
        size_t l = strlen(line);
        if (len + l + 1 > cap) {
            cap = (len + l + 1) * 2;
            char *n = realloc(sql, cap);
            if (!n) { free(sql); fclose(f); D2_ERROR(D2_ENOMEM, "out of memory"); }
            sql = n;
        }
        memcpy(sql + len, line, l + 1);
        len += l;
    }
    fclose(f);
    if (!sql) D2_ERROR(D2_EFORMAT, "%s: empty query", sql_path);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db_handle(d), sql, -1, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK) D2_ERROR(D2_EFORMAT, "%s: %s", sql_path, sqlite3_errmsg(db_handle(d)));
    int nc = sqlite3_column_count(st);
    if (nc > MAX_COLS) nc = MAX_COLS;
    char *(*cells)[MAX_COLS] = calloc(MAX_ROWS + 1, sizeof *cells);
    if (!cells) { sqlite3_finalize(st); D2_ERROR(D2_ENOMEM, "out of memory"); }
    size_t w[MAX_COLS] = {0};
    for (int c = 0; c < nc; c++) {
        cells[0][c] = strdup(sqlite3_column_name(st, c));
        w[c] = strlen(cells[0][c]);
    }
    int nr = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && nr < MAX_ROWS) {
        nr++;
        for (int c = 0; c < nc; c++) {
            char buf[128];
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_NULL: snprintf(buf, sizeof buf, "-"); break;
            case SQLITE_FLOAT: snprintf(buf, sizeof buf, "%.4g", sqlite3_column_double(st, c)); break;
            default: snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, c)); break;
            }
            cells[nr][c] = strdup(buf);
            if (cells[nr][c] && strlen(buf) > w[c]) w[c] = strlen(buf);
        }
    }
    sqlite3_finalize(st);
    fprintf(out, "\n%s\n", title[0] ? title : sql_path);
    if (nr == 0) fprintf(out, "  (no rows: run the experiment first)\n");
    else
        for (int r = 0; r <= nr; r++) {
            fprintf(out, " ");
            for (int c = 0; c < nc; c++) fprintf(out, " %*s", (int)w[c], cells[r][c] ? cells[r][c] : "?");
            fprintf(out, "\n");
        }
    for (int r = 0; r <= nr; r++)
        for (int c = 0; c < nc; c++) free(cells[r][c]);
    free(cells);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) D2_ERROR(D2_EDB, "%s: %s", sql_path, sqlite3_errstr(rc));
    return D2_OK;
}
