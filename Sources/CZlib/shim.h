#ifndef QUARRY_CZLIB_SHIM_H
#define QUARRY_CZLIB_SHIM_H
#include <zlib.h>
/* inflateInit2 is a macro; wrap it for Swift. */
static inline int quarry_inflate_init_raw(z_stream *s) { return inflateInit2(s, -15); }
#endif
