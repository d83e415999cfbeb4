/* inifile.c - inih with line numbers, long-line and binary-byte errors. */
#include "core/inifile.h"
#include "core/err.h"
#include "core/fileio.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct ctx {
    FILE *f;
    const char *path;
    inifile_fn fn;
    void *user;
    int line;        /* lines handed to inih so far = current line */
    int long_line;   /* first line longer than inih's buffer */
    int binary_line; /* first line holding a NUL or control byte */
    int section_line;     /* first section header with nothing between its brackets, or text after them */
    int section_empty;    /* ... and which of the two */
    int rc, rc_line; /* first callback error */
} ctx;

/* Leading blanks are dropped: inih reads an indented line as the
 * continuation of the previous key's value, so an indented "key = value"
 * was reported as the previous key given twice (no file here continues a
 * value on the next line). */
static char *inifile_read(char *buf, int num, void *stream)
{
    ctx *c = stream;
    int ch = EOF, n = 0, lead = 1, got = 0;
    while (n < num - 1 && (ch = fgetc(c->f)) != EOF) {
        got = 1;
        if (ch == 0 || (ch < 32 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 127) {
            if (!c->binary_line) c->binary_line = c->line + 1;
            ch = ' ';
        }
        if (lead && (ch == ' ' || ch == '\t')) continue;
        lead = 0;
        buf[n++] = (char)ch;
        if (ch == '\n') break;
    }
    if (!got) return NULL;
    if (n == 0) buf[n++] = '\n'; /* blanks only, then the end of the file */
    buf[n] = '\0';
    c->line++;
    /* inih takes "[]" as a section named "" and drops whatever follows ']':
     * "[model] junk" was read as [model] */
    const char *close = buf[0] == '[' ? strchr(buf, ']') : NULL;
    if (close && !c->section_line) {
        const char *after = close + 1 + strspn(close + 1, " \t\r\n");
        c->section_empty = close == buf + 1 + strspn(buf + 1, " \t");
        if (c->section_empty || (*after && *after != ';' && *after != '#')) c->section_line = c->line;
    }
    if (buf[n - 1] != '\n' && n == num - 1 && (ch = fgetc(c->f)) != EOF && ch != '\n') {
        if (!c->long_line) c->long_line = c->line;
        while ((ch = fgetc(c->f)) != EOF && ch != '\n') {} /* rest of the line */
    }
    return buf;
}

static int inifile_entry(void *user, const char *section, const char *name, const char *value)
{
    ctx *c = user;
    if (c->rc != D2_OK) return 1;
    int rc = D2_OK;
    if (!name[0]) { /* "= value": inih hands the key "" on */
        d2_err_set("%s:%d: empty key (expected key = value)", c->path, c->line);
        rc = D2_EFORMAT;
    } else rc = c->fn(c->user, section, name, value, c->path, c->line);
    if (rc != D2_OK) {
        c->rc = rc;
        c->rc_line = c->line;
        return 0;
    }
    return 1;
}

int inifile_parse(const char *path, inifile_fn fn, void *user, int *lines)
{
    ctx c;
    memset(&c, 0, sizeof c);
    /* a regular file of at most FILEIO_INI_MAX bytes: /dev/zero or a FIFO
     * would otherwise be read forever */
    D2_TRY(fileio_open_read(path, FILEIO_INI_MAX, &c.f, NULL));
    c.path = path;
    c.fn = fn;
    c.user = user;
    int first_err = ini_parse_stream(inifile_read, &c, inifile_entry, &c);
    int read_err = ferror(c.f);
    fclose(c.f);
    if (lines) *lines = c.line;
    if (read_err) D2_ERROR(D2_EIO, "%s: read error", path);
    if (c.binary_line && (c.rc == D2_OK || c.binary_line <= c.rc_line))
        D2_ERROR(D2_EFORMAT, "%s:%d: binary data (control or NUL bytes): not a text file", path, c.binary_line);
    if (c.section_line && (c.rc == D2_OK || c.section_line <= c.rc_line)) {
        if (c.section_empty) D2_ERROR(D2_EFORMAT, "%s:%d: empty section name (expected [section])", path, c.section_line);
        D2_ERROR(D2_EFORMAT, "%s:%d: text after the section header's ']' (expected [section], or a ; comment after it)", path,
                 c.section_line);
    }
    if (c.long_line && (c.rc == D2_OK || c.long_line <= c.rc_line))
        D2_ERROR(D2_EFORMAT, "%s:%d: line too long (at most %d characters)", path, c.long_line, INI_MAX_LINE - 2);
    if (first_err > 0 && (c.rc == D2_OK || first_err < c.rc_line))
        D2_ERROR(D2_EFORMAT, "%s:%d: malformed line (expected key = value or [section])", path, first_err);
    if (first_err < 0) D2_ERROR(D2_EIO, "%s: read error", path);
    return c.rc;
}
