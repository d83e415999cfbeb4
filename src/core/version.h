/* version.h - the code version stored with every result: `git describe
 * --always --dirty` at build time, or the package version outside git. */
#ifndef D2_CORE_VERSION_H
#define D2_CORE_VERSION_H
const char *d2_version(void);
#endif
