/* err.c - status strings and the per-thread error message buffer. */
#include "core/err.h"
#include "core/text.h"

#include <stdio.h>
#include <string.h>

#define D2_ERR_LEN 1024

static _Thread_local char err_msg[D2_ERR_LEN];
static _Thread_local char err_where[128];

static const char *const status_names[D2_STATUS_N] = {
    [D2_OK] = "success",
    [D2_EINVAL] = "invalid argument",
    [D2_EFORMAT] = "malformed input",
    [D2_ERANGE] = "value out of range",
    [D2_ENOTFOUND] = "not found",
    [D2_EIO] = "input/output error",
    [D2_ENOMEM] = "out of memory",
    [D2_EDB] = "results database error",
    [D2_EINTERNAL] = "internal error (a bug in d2moe)",
};

const char *d2_strerror(int status)
{
    if (status < 0 || status >= D2_STATUS_N) return "unknown status";
    return status_names[status];
}

int d2_exit_code(int status)
{
    switch (status) {
    case D2_OK: return 0;
    case D2_EINVAL:
    case D2_EFORMAT:
    case D2_ERANGE:
    case D2_ENOTFOUND: return 2;
    default: return 1;
    }
}

/* Keep it one line: a message is printed as "d2moe: <msg>\n"; other control
 * bytes (quoted from a malformed input file) are not sent to the terminal
 * either. */
static void one_line(char *m)
{
    for (char *p = m; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
        else if (text_ctl_byte((unsigned char)*p)) *p = '?';
}

void d2_err_vset(const char *fmt, va_list ap)
{
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    one_line(err_msg);
}

void d2_err_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    d2_err_vset(fmt, ap);
    va_end(ap);
    err_where[0] = '\0';
}

void d2_err_prefix(const char *fmt, ...)
{
    char pre[512], old[D2_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    snprintf(err_msg, sizeof err_msg, "%s%s", pre, old);
    one_line(err_msg);
}

const char *d2_err_msg(void) { return err_msg[0] ? err_msg : "no error message recorded"; }
void d2_err_clear(void) { err_msg[0] = '\0'; err_where[0] = '\0'; }
const char *d2_err_where(void) { return err_where; }
void d2_err_where_set(const char *file, int line)
{
    snprintf(err_where, sizeof err_where, "%s:%d", file, line);
}

void d2_err_where_restore(const char *where) { snprintf(err_where, sizeof err_where, "%s", where); }
