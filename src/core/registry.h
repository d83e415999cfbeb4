/* registry.h - one macro that gives a table of named rows (systems,
 * planners, memory policies, ...) its lookup functions, so no table
 * hand-writes them: PREFIX_find(name), PREFIX_list() (the rows, ending with a
 * row whose name is NULL), PREFIX_names(buf, size) ("a, b, c" for messages)
 * and PREFIX_register(row) (a D2 status; a row added at run time, before any run starts:
 * tests and extensions add a system without editing a table; at most
 * REGISTRY_EXTRA_MAX per table, not thread-safe).  The row type needs a
 * `const char *name` member.  It does not own the rows. */
#ifndef D2_CORE_REGISTRY_H
#define D2_CORE_REGISTRY_H

#include "core/err.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define REGISTRY_EXTRA_MAX 16

#define D2_REGISTRY(prefix, type, rows)                                                   \
    static const type *prefix##_extra_[REGISTRY_EXTRA_MAX];                               \
    static size_t prefix##_nextra_;                                                       \
    const type *prefix##_find(const char *name)                                           \
    {                                                                                     \
        if (!name) return NULL;                                                           \
        for (const type *r_ = rows; r_->name; r_++)                                       \
            if (!strcmp(r_->name, name)) return r_;                                       \
        for (size_t i_ = 0; i_ < prefix##_nextra_; i_++)                                  \
            if (!strcmp(prefix##_extra_[i_]->name, name)) return prefix##_extra_[i_];     \
        return NULL;                                                                      \
    }                                                                                     \
    const type *prefix##_list(void) { return rows; }                                      \
    size_t prefix##_count(void)                                                           \
    {                                                                                     \
        size_t n_ = prefix##_nextra_;                                                     \
        for (const type *r_ = rows; r_->name; r_++) n_++;                                 \
        return n_;                                                                        \
    }                                                                                     \
    const type *prefix##_at(size_t i)                                                     \
    {                                                                                     \
        for (const type *r_ = rows; r_->name; r_++, i--)                                  \
            if (i == 0) return r_;                                                        \
        return i < prefix##_nextra_ ? prefix##_extra_[i] : NULL;                          \
    }                                                                                     \
    void prefix##_names(char *buf, size_t size)                                           \
    {                                                                                     \
        size_t n_ = prefix##_count(), at_ = 0;                                            \
        if (size) buf[0] = 0;                                                             \
        for (size_t i_ = 0; i_ < n_ && at_ < size; i_++) {                                \
            int w_ = snprintf(buf + at_, size - at_, "%s%s", i_ ? ", " : "",              \
                              prefix##_at(i_)->name);                                     \
            if (w_ < 0) break;                                                            \
            at_ += (size_t)w_;                                                            \
        }                                                                                 \
    }                                                                                     \
    int prefix##_register(const type *row)                                                \
    {                                                                                     \
        if (!row || !row->name || prefix##_find(row->name)) return D2_EINVAL;             \
        if (prefix##_nextra_ == REGISTRY_EXTRA_MAX) return D2_ERANGE;                     \
        prefix##_extra_[prefix##_nextra_++] = row;                                        \
        return D2_OK;                                                                     \
    }

/* The declarations that go with it, for a header. */
#define D2_REGISTRY_DECLARE(prefix, type)                                                 \
    const type *prefix##_find(const char *name);                                          \
    const type *prefix##_list(void);                                                      \
    size_t prefix##_count(void);                                                          \
    const type *prefix##_at(size_t i);                                                    \
    void prefix##_names(char *buf, size_t size);                                          \
    int prefix##_register(const type *row);

#endif
