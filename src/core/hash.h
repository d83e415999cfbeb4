/* hash.h - content hashes for input identity and file checksums (xxHash).
 * XXH3-128 of a file identifies an input stored with a result; XXH3-64
 * checksums detect truncated or altered .d2t/.mwq data.  Not cryptographic. */
#ifndef D2_CORE_HASH_H
#define D2_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 32 hex digits + NUL of the XXH3-128 of a whole file.  Computed once per
 * process for a given file version (path, device, inode, size, mtime,
 * ctime): a second call answers from a cache. */
int hash_file_hex(const char *path, char out[33]);
/* Same for a memory block. */
void hash_mem_hex(const void *p, size_t n, char out[33]);
uint64_t hash64(const void *p, size_t n);

/* The XXH3-128 of pieces fed in turn, kept on the caller's stack (no
 * allocation, so no failure): hash_acc_hex gives what hash_mem_hex gives
 * for the pieces joined. */
typedef struct hash_acc {
    _Alignas(64) unsigned char state[704]; /* xxHash's XXH3 state (checked in hash.c) */
} hash_acc;
void hash_acc_reset(hash_acc *a);
void hash_acc_add(hash_acc *a, const void *p, size_t n);
void hash_acc_hex(hash_acc *a, char out[33]);

#endif
