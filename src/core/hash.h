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

#endif
