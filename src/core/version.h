/* version.h - the code version stored with every result, part of a stored
 * job's identity: `git describe --always --tags` of a clean build, and
 * `<describe>-dirty.<12 hex of a hash of the sources>` of a build with
 * changes, so every edit of the code gets its own (src/core/version.sh). */
#ifndef D2_CORE_VERSION_H
#define D2_CORE_VERSION_H
const char *d2_version(void);
#endif
