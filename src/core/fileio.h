/* fileio.h - bounded input files and safe output files, for every reader
 * and writer of d2moe.  Inputs: a regular file no larger than a documented
 * cap (devices, FIFOs, sockets and directories are refused, so /dev/zero
 * cannot make a reader run forever) and lines no longer than a cap, with
 * file:line.  Outputs: an existing path that is not a regular file (FIFO,
 * device, symlink, directory) is refused, never replaced; data goes to
 * "<path>.tmp", renamed over the path when complete, removed on failure and
 * (through fileio_tmp_cleanup from a signal handler in src/cli) on SIGINT or
 * SIGTERM.  It does not lock: two writers of one path race as before. */
#ifndef D2_CORE_FILEIO_H
#define D2_CORE_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Size caps of input files, bytes (README "Limits"). */
#define FILEIO_INI_MAX (4ull << 20)     /* INI profiles, presets, sweep specs, figure and claims files */
#define FILEIO_TABLE_MAX (256ull << 20) /* activation tables (CSV, JSON) */
#define FILEIO_TEXT_MAX (4ull << 30)    /* text traces for `trace import` */
#define FILEIO_LINE_MAX (1u << 20)      /* one line of a text trace or table */
/* Bytes of a path buffer, NUL included: Linux's PATH_MAX.  A path built
 * longer than this is refused (fileio_pathf), never cut short. */
#define FILEIO_PATH_MAX 4096

/* Build a path with snprintf(buf, n, fmt, ...): D2_OK, or D2_ERANGE
 * naming the start of the path when it does not fit in n bytes (buf then
 * holds "", so a caller that goes on anyway opens nothing). */
int fileio_pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The files this process reads, remembered by device and inode (every
 * reader through fileio_open_read / fileio_check_fd, and the readers and
 * stores that open files themselves call fileio_note_input_fd /
 * fileio_note_input): fileio_out_check refuses an output that is one of
 * them, at its opening and again before the rename over it, so no command
 * writes its output over its own input (a timeline over the --db, an
 * import over the file it reads).  A file this process wrote itself
 * (fileio_out_commit) is its own output, not an input, even when read back
 * afterwards.  Best effort on memory: an input not remembered for lack of
 * it is not protected.  Thread-safe. */
void fileio_note_input(const char *path);            /* a path that is not a regular file: ignored */
void fileio_note_input_fd(int fd, const char *path); /* the same for an open descriptor */
/* A results store this process opened: protected from every file output,
 * but not from its own later opens (fileio_store_check). */
void fileio_note_store(const char *path);

/* Open path for reading ("rb") after checking it is a regular file of at
 * most cap bytes; *size gets its size (may be NULL).  Errors name the file:
 * D2_ENOTFOUND (cannot open), D2_EINVAL (not a regular file), D2_ERANGE
 * (over the cap). */
int fileio_open_read(const char *path, uint64_t cap, FILE **out, uint64_t *size);
/* The same check for an open descriptor (pread readers). */
int fileio_check_fd(int fd, const char *path, uint64_t cap, uint64_t *size);

/* A regular file's version: what changes when it is rewritten, renamed
 * over or touched (device, inode, size, mtime and ctime, ns).  Caches of
 * what a file gave (fileio_memo_get) compare it before answering. */
typedef struct fileio_version {
    uint64_t dev, ino;
    int64_t size;                      /* bytes */
    int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
} fileio_version;
/* D2_OK for a regular file (its version in *v), else D2_ENOTFOUND (no message). */
int fileio_version_of(const char *path, fileio_version *v);
/* The same from an open descriptor's fstat. */
int fileio_version_of_fd(int fd, fileio_version *v);
/* 1 when a and b are the same version */
int fileio_version_same(const fileio_version *a, const fileio_version *b);

/* A process's memo of what files gave (a profile's struct, a file's hash):
 * `kind` tells what was read (any address of the reader's), the file's
 * version is taken before the read and checked after it.  32 entries,
 * round robin; a file changed within the last 2 s is not remembered (a
 * rewrite of the same size within one tick of the file's clock would keep
 * its version).  Thread-safe. */
/* 1: copied what was remembered for (kind, path) at version v into out (n bytes) */
int fileio_memo_get(const void *kind, const char *path, const fileio_version *v, void *out, size_t n);
/* remember n bytes for (kind, path) at version v, when the file still has
 * that version (read after v was taken); out of memory: not remembered */
void fileio_memo_put(const void *kind, const char *path, const fileio_version *v, const void *data, size_t n);

/* Read one line (without its '\n' or "\r\n") into *buf (grown as needed, at
 * most max+1 bytes).  Returns 1 with *len set, 0 at end of file, or an
 * error (never 1): D2_EFORMAT "path:line: line longer than max bytes",
 * D2_EIO, D2_ENOMEM.
 * `line` is the number of the line being read (1-based), for the message. */
int fileio_getline(FILE *f, const char *path, uint64_t line, size_t max, char **buf, size_t *cap, size_t *len);

/* Refuse an output path that is empty, or that exists and is not a regular
 * file (symlinks are refused too: they are not followed), or that is one of
 * this process's inputs (fileio_note_input).  D2_EINVAL naming the path. */
int fileio_out_check(const char *path);
/* The same for a results store being opened for writing: a store it
 * opened before is not refused (a store is read and written), any other
 * input is. */
int fileio_store_check(const char *path);
/* The folder of path into dir[n]: its text before the last '/' (trailing
 * slashes aside; "/" for a name in the root), "." when it has none; *base
 * (base may be NULL) its last component.  D2_OK, or fileio_pathf's
 * D2_ERANGE when the folder does not fit. */
int fileio_dir_of(const char *path, char *dir, size_t n, const char **base);
/* 1 when the paths a and b name the same file: the same device and inode,
 * or, when one does not exist yet, the same name in the same folder (two
 * outputs of one command given as x.csv and ./x.csv); else 0. */
int fileio_same_target(const char *a, const char *b);

/* A file written through a temporary: open checks the path
 * (fileio_out_check), creates "<path>.tmp" (not following a symlink there)
 * and registers it for removal on a signal; commit closes it and renames it
 * over path; abort closes and removes it.  Both free o. */
typedef struct fileio_out fileio_out;
int fileio_out_open(const char *path, fileio_out **o, FILE **fp);
const char *fileio_out_tmp(const fileio_out *o);
int fileio_out_commit(fileio_out *o);
void fileio_out_abort(fileio_out *o);

/* Register / forget a temporary file to be removed by fileio_tmp_cleanup
 * (for writers that manage their own temporary).  At most 32 at a time;
 * beyond that a file is simply not registered. */
void fileio_tmp_register(const char *tmp);
void fileio_tmp_forget(const char *tmp);
/* Remove every registered temporary: async-signal-safe (unlink only). */
void fileio_tmp_cleanup(void);

#endif
