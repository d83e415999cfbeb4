/* prefault.h - fault in, in one call, pages a caller is about to write:
 * prefault(p, n) asks the kernel to back the whole pages inside [p, p + n)
 * (MADV_POPULATE_WRITE, Linux 5.14) instead of one page fault per first
 * touch.  On the 2-core VM the project is measured on a first touch costs
 * ~12 us and a populated page ~6 us (docs/simulator.md, "Speed"); on
 * common hardware both are well under 1 us.  Best effort: where the call is
 * unknown or refused nothing happens and the pages fault in as usual.  It
 * never changes the memory's contents, allocates nothing and is not a
 * reservation (memory already touched is left as it is). */
#ifndef D2_CORE_PREFAULT_H
#define D2_CORE_PREFAULT_H

#include <stddef.h>

void prefault(void *p, size_t n);

#endif
