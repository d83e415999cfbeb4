/* inifile.h - INI files with the line number of every entry.
 * inih does the parsing; this adds what it lacks for error messages: the
 * line of each key, and errors (not silent skips) for lines too long for
 * its buffer, for binary bytes, for a section header with text after its
 * ']' (a ; comment may follow) or nothing between its brackets, and for an
 * empty key ("= value").  Knows nothing about parameter tables. */
#ifndef D2_CORE_INIFILE_H
#define D2_CORE_INIFILE_H

/* Called for each key = value.  Return D2_OK, or a status after setting the
 * message (which should start with "path:line: "). */
typedef int (*inifile_fn)(void *user, const char *section, const char *key, const char *value,
                          const char *path, int line);

/* Parses the whole file; the first error wins.  *lines gets the number of
 * lines read (for "missing key" messages); may be NULL. */
int inifile_parse(const char *path, inifile_fn fn, void *user, int *lines);

#endif
