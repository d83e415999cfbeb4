/* pcache.h - the host's page cache in front of flash, for whole files of
 * different byte sizes (one file = one expert level): which files a read()
 * finds in RAM.  Two policies: strict LRU, and Linux's active/inactive file
 * lists with workingset refault detection.  It decides hits and victims; it
 * does not know time, costs, dirty data or the memory of anything else.
 *
 * Policy "lru": one list in access order; a hit moves the file to the head,
 * a miss inserts it at the head after evicting from the tail until it fits.
 *
 * Policy "two-list": the kernel's rules with CONFIG_LRU_GEN off, each with
 * its source (read in Linux 6.1, Debian's linux-source-6.1 6.1.192):
 *  R1 A new file enters the inactive list at its head (mm/filemap.c
 *     filemap_add_folio -> folio_add_lru) and is marked accessed by the read
 *     that faulted it (filemap_read -> folio_mark_accessed): its referenced
 *     flag is set.
 *  R2 A read of a resident file calls folio_mark_accessed (mm/swap.c): if the
 *     referenced flag is clear, set it; else, if the file is on the inactive
 *     list, move it to the active head, clear the flag and age (R6)
 *     (workingset_activation).  A file on the active list is not moved.  So a
 *     new file is activated by its second read while on the inactive list.
 *  R3 Balance (mm/vmscan.c inactive_is_low): the inactive list is low when
 *     inactive * ratio < active, ratio = int_sqrt(10 * GiB) with GiB = (active
 *     + inactive bytes) >> 30, and 1 below 1 GiB.  See pcache_inactive_ratio.
 *  R4 Reclaim (mm/vmscan.c shrink_lruvec) runs when a miss needs room: while
 *     the resident bytes plus the new file exceed the capacity, if the
 *     inactive list is low the active tail is demoted to the inactive head
 *     (shrink_active_list: flag PG_active cleared, PG_referenced kept), else
 *     the inactive tail is evicted (shrink_inactive_list; an unmapped clean
 *     file page is reclaimed even when referenced: folio_check_references
 *     returns FOLIOREF_RECLAIM_CLEAN).
 *  R5 On eviction a shadow is stored for the file = the non-resident age
 *     before this eviction; then the age advances by the file's bytes
 *     (mm/workingset.c workingset_eviction).
 *  R6 The non-resident age advances by a file's bytes on every eviction (R5)
 *     and every activation, by R2 or R7 (workingset_age_nonresident).
 *  R7 Refault (mm/workingset.c workingset_refault, workingset_test_recent):
 *     a miss on a file with a shadow, after the reclaim that made its room,
 *     computes distance = age now - shadow; if distance <= the active list's
 *     bytes the file enters the active list directly (and ages, R6), else
 *     the inactive list (R1).  The shadow is consumed either way.
 *
 * Simplified, on purpose: bytes instead of 4 KiB pages and a whole file as
 * one unit (its pages move together); no readahead, no dirty or mapped pages
 * (so no VM_EXEC rotation and no referenced-PTE activation), no anonymous
 * memory or swap (the workingset size in R7 is the active file list only),
 * one memory cgroup and one NUMA node; reclaim is exact and immediate (no
 * watermarks, batches, per-CPU lru caches, or prepare_scan_count's
 * deactivation after new refault activations); shadows are kept forever
 * (no shadow-node shrinker) at full precision (no bucket_order); the
 * multi-generational LRU (CONFIG_LRU_GEN) is not modelled.  A file larger
 * than the capacity is never cached (a miss that changes nothing).  Every
 * access is O(1) apart from the evictions and demotions it causes, each O(1).
 *
 * What follows from the rules (tests/t_pcache.c): a cold two-list cache is
 * strict LRU until its first hit, so a read sequence on which LRU never hits
 * gets no hit from it either; and a cycle slightly larger than the cache
 * gets 0 hits even with a warm active list, because R7 activates every
 * refault and the active list, never reordered by reads, is a FIFO too.
 * Two-list keeps hits where reads are not a strict cycle (orders that vary)
 * or where a warm active list outlasts long refault distances. */
#ifndef D2_SIM_PCACHE_H
#define D2_SIM_PCACHE_H

#include <stdint.h>

typedef struct pcache pcache;

/* Which list a file is on; the lru policy keeps a single list and reports
 * its files as PCACHE_INACTIVE (nothing there is protected). */
enum pcache_list { PCACHE_ABSENT = 0, PCACHE_INACTIVE = 1, PCACHE_ACTIVE = 2 };

/* A policy: a row of a small table, looked up by name. */
typedef struct pcache_policy_type {
    const char *name;
    const char *summary;
    /* one read of file id: *hit = 1 if resident, else 0 and the file is
     * inserted (if it fits at all) */
    void (*access)(pcache *c, uint32_t id, int *hit);
} pcache_policy_type;

#include "core/registry.h"
/* pcache_policy_find, _list, _count, _at, _names, _register (core/registry.h) */
D2_REGISTRY_DECLARE(pcache_policy, pcache_policy_type)

/* Counters since pcache_new. */
typedef struct pcache_stats {
    int64_t hits;                /* reads that found the file resident */
    int64_t misses;              /* reads that did not (includes too_big) */
    int64_t too_big;             /* misses on a file larger than the capacity */
    int64_t activations;         /* two-list: inactive -> active by a second read (R2) */
    int64_t refault_activations; /* two-list: misses inserted on the active list (R7) */
    int64_t demotions;           /* two-list: active tail -> inactive head (R4) */
    int64_t evictions;           /* files dropped from the (inactive) tail */
    int64_t bytes_active;        /* bytes resident on the active list now */
    int64_t bytes_inactive;      /* bytes resident on the inactive list (lru: the list) */
    uint32_t files_active;       /* files on the active list now */
    uint32_t files_inactive;     /* files on the inactive list (lru: the list) */
    uint64_t nonresident_age;    /* bytes: the age counter of R5-R7 (0 for lru) */
} pcache_stats;

/* policy: a name from pcache_policy_list; capacity_bytes >= 0; n files,
 * file i of bytes_of[i] >= 0 bytes (copied). */
int pcache_new(const char *policy, int64_t capacity_bytes, uint32_t n, const int64_t *bytes_of,
               pcache **out);
void pcache_free(pcache *c);

/* One read() of the whole file id (< n): *hit = 1 or 0. */
int pcache_access(pcache *c, uint32_t id, int *hit);

void pcache_stats_get(const pcache *c, pcache_stats *out);
const pcache_policy_type *pcache_policy(const pcache *c);
int64_t pcache_capacity(const pcache *c); /* bytes */

/* The list file id is on (enum pcache_list); id < n or D2_EINVAL. */
int pcache_file_list(const pcache *c, uint32_t id, int *list);
/* The ids on a list from head (most recent) to tail (next victim): up to
 * max ids into ids[], the list's length into *count. */
int pcache_list_ids(const pcache *c, int list, uint32_t *ids, uint32_t max, uint32_t *count);

/* R3's ratio for lists holding lru_bytes in total: int_sqrt(10 * GiB), 1
 * below 1 GiB (mm/vmscan.c inactive_is_low). */
uint32_t pcache_inactive_ratio(int64_t lru_bytes);

/* Invariant walker: both lists doubly linked and acyclic, every resident
 * file on exactly the list it says, byte and file counts equal to the
 * lists' contents, resident bytes <= capacity, no resident file with a
 * shadow, an empty active list under lru, and misses - too_big = evictions
 * + resident files (each inserted file is resident or was evicted once).
 * D2_EINTERNAL if broken. */
int pcache_check(const pcache *c);

#endif
