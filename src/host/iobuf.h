/* iobuf.h - the memory O_DIRECT reads fill, allocated one way for
 * `d2moe calibrate` (its storage fit and its reader threads) and for
 * `d2moe execute` (its weight pool): an anonymous mapping aligned to and
 * rounded up to 2 MiB, with transparent huge pages asked for (madvise
 * MADV_HUGEPAGE), zeroed by the CPU so its pages exist before a read.
 *
 * Why one way: the page size under a read's destination sets the read's
 * speed on this VM (811,008-byte O_DIRECT reads at random offsets, six
 * interleaved blocks of 100: 279 - 291 us into huge pages, 510 - 519 us into
 * 4 KiB pages; docs/log/validation.md, "The page size under a read"), and
 * before this module the allocator chose it by its history: a buffer that
 * landed in memory the quantizer had once asked huge pages for was fast,
 * the same buffer elsewhere slow, so a calibration and the run after it
 * could measure two different disks.
 *
 * Not for: other allocations (the kernels' weights have their own chunks,
 * quant/mwq.c); guaranteeing huge pages (the kernel may decline: THP
 * "never", fragmentation); iobuf_huge_bytes says what it gave. */
#ifndef D2_HOST_IOBUF_H
#define D2_HOST_IOBUF_H

#include <stddef.h>
#include <stdint.h>

#define IOBUF_ALIGN ((size_t)2 << 20) /* bytes: the mapping's alignment and size step (one x86-64 huge page) */

/* A zeroed buffer of at least `bytes` (> 0) bytes: D2_OK, or D2_ENOMEM
 * (also for sizes that do not fit a size_t once rounded). */
int iobuf_alloc(size_t bytes, void **out);
/* Free a buffer of iobuf_alloc(bytes) (NULL is ignored). */
void iobuf_free(void *p, size_t bytes);
/* The bytes of iobuf_alloc(bytes)'s mapping at p the kernel backs with
 * huge pages (AnonHugePages of its /proc/self/smaps entries), at most
 * `bytes`: D2_OK, or D2_ENOTFOUND (*huge = 0) when smaps cannot tell (not
 * Linux, no such mapping). */
int iobuf_huge_bytes(const void *p, size_t bytes, int64_t *huge);

#endif
