/* err.h - status codes and the last error message of the calling thread.
 *
 * Library code returns a d2_status and leaves a one-line, user-facing message
 * (naming file:line and field where the error is about input) through
 * D2_ERROR / d2_err_set.  It never prints and never exits: only src/cli does.
 * The message is per thread, so worker threads do not clobber each other. */
#ifndef D2_CORE_ERR_H
#define D2_CORE_ERR_H

#include <stdarg.h>

typedef enum d2_status {
    D2_OK = 0,
    D2_EINVAL,    /* bad argument or option value                 (exit 2) */
    D2_EFORMAT,   /* malformed input file: profile, trace, weights (exit 2) */
    D2_ERANGE,    /* value out of its allowed range               (exit 2) */
    D2_ENOTFOUND, /* named thing does not exist                   (exit 2) */
    D2_EIO,       /* the operating system refused a read or write (exit 1) */
    D2_ENOMEM,    /* allocation failed                            (exit 1) */
    D2_EDB,       /* the results database refused or failed       (exit 1) */
    D2_EINTERNAL, /* a broken invariant: a bug in d2moe           (exit 1) */
    D2_STATUS_N
} d2_status;

const char *d2_strerror(int status);

/* 2 for bad input (the user can fix the command or file), 1 otherwise. */
int d2_exit_code(int status);

/* Record the message for the current thread (printf format).  Returns
 * nothing; use D2_ERROR to also return the code. */
void d2_err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void d2_err_vset(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Prefix the existing message, e.g. with a file name: "file: <old>". */
void d2_err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *d2_err_msg(void);
void d2_err_clear(void);
/* Source location (file:line in d2moe) of the last D2_ERROR, for debugging. */
const char *d2_err_where(void);
void d2_err_where_set(const char *file, int line);
/* Set the location verbatim ("file:line"), e.g. a worker thread's, handed
 * to the thread that reports the error (core/par.c). */
void d2_err_where_restore(const char *where);

#define D2_ERROR(code, ...)                               \
    do {                                                  \
        d2_err_set(__VA_ARGS__);                          \
        d2_err_where_set(__FILE__, __LINE__);             \
        return (code);                                    \
    } while (0)

/* Propagate a failing status unchanged. */
#define D2_TRY(expr)                                      \
    do {                                                  \
        int d2_try_rc_ = (expr);                          \
        if (d2_try_rc_ != D2_OK) return d2_try_rc_;       \
    } while (0)

#endif
