/* fileio.c - bounded inputs, output paths refused unless regular, and a
 * registry of temporaries for removal on a signal, file versions and a
 * process's memo of what files gave (see fileio.h). */
#include "core/fileio.h"
#include "core/err.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *kind(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISLNK(m)) return "a symbolic link";
    return "not a regular file";
}

/* ---------------------------------------------------------- inputs read */

#define INPUT_NAME_MAX 200 /* bytes of an input's name kept for messages */
typedef struct input_seen {
    uint64_t dev, ino;
    int store;                 /* 1: a results store, which its own opens may write (fileio_store_check) */
    int own;                   /* 1: written by this process (fileio_out_commit): its own output, not an input */
    char name[INPUT_NAME_MAX];
} input_seen;
static input_seen *inputs_seen;
static size_t inputs_n, inputs_cap;
static uint32_t *inputs_ix;  /* open-addressing index over (dev, ino): 1 + the entry, 0 free; inputs_ixcap slots */
static size_t inputs_ixcap;  /* a power of two, at least twice inputs_cap (a sweep's outputs make thousands) */
static pthread_mutex_t inputs_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t input_slot(uint64_t dev, uint64_t ino)
{
    uint64_t h = (dev * 0x9e3779b97f4a7c15ull) ^ (ino * 0xc2b2ae3d27d4eb4full);
    size_t m = inputs_ixcap - 1, i = (size_t)(h ^ (h >> 29)) & m;
    while (inputs_ix[i] && !(inputs_seen[inputs_ix[i] - 1].dev == dev && inputs_seen[inputs_ix[i] - 1].ino == ino)) i = (i + 1) & m;
    return i;
}

/* room for one more entry and its slot (under the lock); 0 when there is
 * no memory (the input is then not remembered) */
static int input_room(void)
{
    if (inputs_n < inputs_cap && 2 * (inputs_n + 1) <= inputs_ixcap) return 1;
    size_t nc = inputs_cap ? 2 * inputs_cap : 16, nix = 2 * nc;
    if (nc > UINT32_MAX / 4) return 0;
    input_seen *a = realloc(inputs_seen, nc * sizeof *a);
    if (!a) return 0;
    inputs_seen = a;
    inputs_cap = nc;
    uint32_t *ix = calloc(nix, sizeof *ix);
    if (!ix) return 0; /* the entries grew; the old index stays valid for them */
    free(inputs_ix);
    inputs_ix = ix;
    inputs_ixcap = nix;
    for (size_t k = 0; k < inputs_n; k++) inputs_ix[input_slot(inputs_seen[k].dev, inputs_seen[k].ino)] = (uint32_t)(k + 1);
    return 1;
}

static void note_stat(const struct stat *st, const char *path, int store, int own)
{
    if (!S_ISREG(st->st_mode)) return;
    const uint64_t dev = (uint64_t)st->st_dev, ino = (uint64_t)st->st_ino;
    pthread_mutex_lock(&inputs_lock);
    size_t slot = inputs_ixcap ? input_slot(dev, ino) : 0;
    if (inputs_ixcap && inputs_ix[slot]) {
        input_seen *e = &inputs_seen[inputs_ix[slot] - 1];
        if (!store) e->store = 0; /* read as a file too: protected from the store's opens */
        if (own) e->own = 1;
    } else if (input_room()) {
        slot = input_slot(dev, ino);
        inputs_seen[inputs_n] = (input_seen){.dev = dev, .ino = ino, .store = store, .own = own};
        snprintf(inputs_seen[inputs_n].name, sizeof inputs_seen[inputs_n].name, "%s", path);
        inputs_ix[slot] = (uint32_t)++inputs_n;
    }
    pthread_mutex_unlock(&inputs_lock);
}

void fileio_note_input(const char *path)
{
    struct stat st;
    if (path && stat(path, &st) == 0) note_stat(&st, path, 0, 0);
}

void fileio_note_input_fd(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) == 0) note_stat(&st, path, 0, 0);
}

void fileio_note_store(const char *path)
{
    struct stat st;
    if (path && stat(path, &st) == 0) note_stat(&st, path, 1, 0);
}

/* 1 and the name it was read as when (dev, ino) is an input (a store's
 * own entry left out when stores are allowed) */
static int input_name(const struct stat *st, int allow_store, char name[INPUT_NAME_MAX])
{
    int found = 0;
    pthread_mutex_lock(&inputs_lock);
    if (inputs_ixcap) {
        const uint32_t k = inputs_ix[input_slot((uint64_t)st->st_dev, (uint64_t)st->st_ino)];
        const input_seen *e = k ? &inputs_seen[k - 1] : NULL;
        if (e && !e->own && !(allow_store && e->store)) {
            memcpy(name, e->name, INPUT_NAME_MAX);
            found = 1;
        }
    }
    pthread_mutex_unlock(&inputs_lock);
    return found;
}

int fileio_check_fd(int fd, const char *path, uint64_t cap, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st)) D2_ERROR(D2_EIO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) D2_ERROR(D2_EINVAL, "%s: not a regular file (%s)", path, kind(st.st_mode));
    note_stat(&st, path, 0, 0);
    if ((uint64_t)st.st_size > cap)
        D2_ERROR(D2_ERANGE, "%s: %llu bytes, more than the limit of %llu bytes for this kind of file", path,
                 (unsigned long long)st.st_size, (unsigned long long)cap);
    if (size) *size = (uint64_t)st.st_size;
    return D2_OK;
}

int fileio_open_read(const char *path, uint64_t cap, FILE **out, uint64_t *size)
{
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO without a writer must not wait */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
    int rc = fileio_check_fd(fd, path, cap, size);
    if (rc) { close(fd); return rc; }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) { close(fd); D2_ERROR(D2_ENOMEM, "out of memory"); }
    *out = f;
    return D2_OK;
}

int fileio_getline(FILE *f, const char *path, uint64_t line, size_t max, char **buf, size_t *cap, size_t *len)
{
    size_t n = 0;
    int ch = EOF;
    if (*cap < 256) {
        char *b = realloc(*buf, 256);
        if (!b) D2_ERROR(D2_ENOMEM, "out of memory");
        *buf = b;
        *cap = 256;
    }
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (n >= max) D2_ERROR(D2_EFORMAT, "%s:%llu: line longer than %zu bytes", path, (unsigned long long)line, max);
        if (n + 2 > *cap) {
            size_t nc = *cap * 2 > max + 2 ? max + 2 : *cap * 2;
            char *b = realloc(*buf, nc);
            if (!b) D2_ERROR(D2_ENOMEM, "out of memory");
            *buf = b;
            *cap = nc;
        }
        (*buf)[n++] = (char)ch;
    }
    if (ferror(f)) D2_ERROR(D2_EIO, "%s:%llu: read error", path, (unsigned long long)line);
    if (ch == EOF && n == 0) return 0;
    if (n && (*buf)[n - 1] == '\r') n--;
    (*buf)[n] = 0;
    *len = n;
    return 1;
}

int fileio_pathf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (len >= 0 && (size_t)len < n) return D2_OK;
    if (len < 0) {
        if (n) buf[0] = '\0';
        D2_ERROR(D2_EINVAL, "cannot build a path from \"%s\"", fmt);
    }
    char head[48];
    snprintf(head, sizeof head, "%s", buf); /* the start of what was cut */
    if (n) buf[0] = '\0';
    D2_ERROR(D2_ERANGE, "path too long (%d bytes, at most %zu): %s...", len, n ? n - 1 : 0, head);
}

static int out_check(const char *path, int allow_store)
{
    /* "" would write ".tmp" in the current folder and fail at the rename,
     * after the work; SQLite opens "" as a temporary store, lost at close */
    if (!path[0]) D2_ERROR(D2_EINVAL, "output path is empty: give a file name");
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return D2_OK;
        D2_ERROR(D2_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        D2_ERROR(D2_EINVAL, "%s: output path exists and is %s: refusing to replace it (give a new file name)", path,
                 kind(st.st_mode));
    char in[INPUT_NAME_MAX];
    if (input_name(&st, allow_store, in))
        D2_ERROR(D2_EINVAL, "%s: is an input of this command%s%s%s: refusing to write over it (give the output another name)", path,
                 strcmp(in, path) ? " (read as " : "", strcmp(in, path) ? in : "", strcmp(in, path) ? ")" : "");
    return D2_OK;
}

int fileio_out_check(const char *path) { return out_check(path, 0); }

int fileio_dir_of(const char *path, char *dir, size_t n, const char **base)
{
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/') end--; /* "a/b/" is b in a */
    size_t slash = end;
    while (slash > 0 && path[slash - 1] != '/') slash--;
    if (base) *base = path + slash;
    if (slash == 0) return fileio_pathf(dir, n, ".");
    return fileio_pathf(dir, n, "%.*s", slash == 1 ? 1 : (int)(slash - 1), path); /* "/x": the root */
}

int fileio_same_target(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!strcmp(a, b)) return 1;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    /* one does not exist yet: the same folder and the same name */
    char da[FILEIO_PATH_MAX], db[FILEIO_PATH_MAX];
    const char *ba, *bb;
    if (fileio_dir_of(a, da, sizeof da, &ba) || fileio_dir_of(b, db, sizeof db, &bb)) return 0;
    return !strcmp(ba, bb) && stat(da, &sa) == 0 && stat(db, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
int fileio_store_check(const char *path) { return out_check(path, 1); }

/* ---------------------------------------------------------- temporaries */

#define TMP_SLOTS 32
static char *volatile tmp_slot[TMP_SLOTS];

void fileio_tmp_register(const char *tmp)
{
    char *c = strdup(tmp);
    if (!c) return;
    for (int i = 0; i < TMP_SLOTS; i++)
        if (!tmp_slot[i]) { tmp_slot[i] = c; return; }
    free(c);
}

void fileio_tmp_forget(const char *tmp)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_slot[i] && !strcmp(tmp_slot[i], tmp)) {
            char *c = tmp_slot[i];
            tmp_slot[i] = NULL;
            free(c);
            return;
        }
}

void fileio_tmp_cleanup(void)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_slot[i]) unlink(tmp_slot[i]);
}

struct fileio_out {
    FILE *f;
    char *path, *tmp;
};

int fileio_out_open(const char *path, fileio_out **out, FILE **fp)
{
    *out = NULL;
    *fp = NULL;
    D2_TRY(fileio_out_check(path));
    fileio_out *o = calloc(1, sizeof *o);
    if (o) o->path = strdup(path);
    if (o && o->path) o->tmp = malloc(strlen(path) + 5);
    if (!o || !o->path || !o->tmp) {
        if (o) { free(o->path); free(o); }
        D2_ERROR(D2_ENOMEM, "out of memory");
    }
    sprintf(o->tmp, "%s.tmp", path);
    /* a symlink or FIFO planted at the temporary name is not followed */
    struct stat st;
    char in[INPUT_NAME_MAX];
    if (lstat(o->tmp, &st) == 0) {
        /* the temporary is truncated and renamed away: never a link, FIFO, device or one of the inputs */
        const int other = !S_ISREG(st.st_mode), input = !other && input_name(&st, 0, in);
        if (other || input) {
            free(o->path); free(o->tmp); free(o);
            if (other) D2_ERROR(D2_EINVAL, "%s.tmp: exists and is %s: refusing to write through it", path, kind(st.st_mode));
            D2_ERROR(D2_EINVAL, "%s.tmp: is an input of this command: refusing to write through it (give the output another name)", path);
        }
    }
    /* registered before it exists: a signal between the two left it behind */
    fileio_tmp_register(o->tmp);
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        fileio_tmp_forget(o->tmp);
        free(o->path); free(o->tmp); free(o);
        /* a folder that is missing or not a folder is the caller's argument
         * (exit 2); anything else is the system refusing (exit 1) */
        D2_ERROR(e == ENOENT || e == ENOTDIR ? D2_EINVAL : D2_EIO, "%s: cannot create %s.tmp: %s", path, path, strerror(e));
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) { close(fd); fileio_out_abort(o); D2_ERROR(D2_ENOMEM, "out of memory"); }
    *out = o;
    *fp = o->f;
    return D2_OK;
}

const char *fileio_out_tmp(const fileio_out *o) { return o->tmp; }

static void out_free(fileio_out *o)
{
    fileio_tmp_forget(o->tmp);
    free(o->path); free(o->tmp); free(o);
}

int fileio_out_commit(fileio_out *o)
{
    int rc = D2_OK;
    if (fclose(o->f)) { rc = D2_EIO; d2_err_set("%s: write error: %s", o->path, strerror(errno)); }
    o->f = NULL;
    if (!rc) rc = fileio_out_check(o->path); /* it may have been replaced meanwhile */
    if (!rc && rename(o->tmp, o->path)) { rc = D2_EIO; d2_err_set("%s: cannot rename %s over it: %s", o->path, o->tmp, strerror(errno)); }
    if (!rc) { /* this process's own output from now on: reading it back (a check) does not make it an input */
        struct stat st;
        if (stat(o->path, &st) == 0) note_stat(&st, o->path, 0, 1);
    }
    if (rc) unlink(o->tmp);
    out_free(o);
    return rc;
}

void fileio_out_abort(fileio_out *o)
{
    if (!o) return;
    if (o->f) fclose(o->f);
    unlink(o->tmp);
    out_free(o);
}

static void version_from(const struct stat *st, fileio_version *v)
{
    *v = (fileio_version){.dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino, .size = (int64_t)st->st_size,
                          .mtime_s = (int64_t)st->st_mtim.tv_sec, .mtime_ns = (int64_t)st->st_mtim.tv_nsec,
                          .ctime_s = (int64_t)st->st_ctim.tv_sec, .ctime_ns = (int64_t)st->st_ctim.tv_nsec};
}

int fileio_version_of(const char *path, fileio_version *v)
{
    struct stat st;
    memset(v, 0, sizeof *v);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return D2_ENOTFOUND;
    version_from(&st, v);
    return D2_OK;
}

int fileio_version_of_fd(int fd, fileio_version *v)
{
    struct stat st;
    memset(v, 0, sizeof *v);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return D2_ENOTFOUND;
    version_from(&st, v);
    return D2_OK;
}

int fileio_version_same(const fileio_version *a, const fileio_version *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
           a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* ---- a process's memo of what files gave ------------------------------- */

#define FILEIO_MEMO_SLOTS 32 /* files remembered (round robin) */

typedef struct memo_slot {
    const void *kind;
    char *path;            /* NULL = empty slot */
    fileio_version v;
    void *data;
    size_t n;              /* bytes */
} memo_slot;

static memo_slot memo_slots[FILEIO_MEMO_SLOTS];
static unsigned memo_next;
static pthread_mutex_t memo_mu = PTHREAD_MUTEX_INITIALIZER;

int fileio_memo_get(const void *kind, const char *path, const fileio_version *v, void *out, size_t n)
{
    int hit = 0;
    pthread_mutex_lock(&memo_mu);
    for (unsigned i = 0; i < FILEIO_MEMO_SLOTS && !hit; i++) {
        const memo_slot *m = &memo_slots[i];
        if (m->path && m->kind == kind && m->n == n && fileio_version_same(&m->v, v) && !strcmp(m->path, path)) {
            memcpy(out, m->data, n);
            hit = 1;
        }
    }
    pthread_mutex_unlock(&memo_mu);
    return hit;
}

void fileio_memo_put(const void *kind, const char *path, const fileio_version *v, const void *data, size_t n)
{
    fileio_version now;
    if (fileio_version_of(path, &now) != D2_OK || !fileio_version_same(&now, v)) return; /* changed while read */
    /* a file changed within the last seconds is not remembered: a file's
     * times move in clock ticks, so a rewrite of the same size in the same
     * tick would keep its version; one changed after this (seconds after
     * its last change) gets new times */
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || v->mtime_s + 2 >= (int64_t)ts.tv_sec || v->ctime_s + 2 >= (int64_t)ts.tv_sec) return;
    char *p = strdup(path);
    void *d = malloc(n ? n : 1);
    if (!p || !d) { free(p); free(d); return; }
    memcpy(d, data, n);
    pthread_mutex_lock(&memo_mu);
    memo_slot *m = &memo_slots[memo_next++ % FILEIO_MEMO_SLOTS];
    free(m->path);
    free(m->data);
    *m = (memo_slot){.kind = kind, .path = p, .v = *v, .data = d, .n = n};
    pthread_mutex_unlock(&memo_mu);
}
