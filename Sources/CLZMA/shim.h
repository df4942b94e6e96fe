#ifndef QUARRY_CLZMA_SHIM_H
#define QUARRY_CLZMA_SHIM_H
#include <lzma.h>
/* LZMA_STREAM_INIT is a macro; give Swift a function. */
static inline lzma_stream quarry_lzma_stream_init(void) { lzma_stream s = LZMA_STREAM_INIT; return s; }
#endif
