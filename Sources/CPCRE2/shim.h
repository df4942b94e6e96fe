#ifndef QUARRY_CPCRE2_SHIM_H
#define QUARRY_CPCRE2_SHIM_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Swift cannot import function-like or cast macros; expose what the wrapper needs. */
static inline size_t quarry_pcre2_zero_terminated(void) { return PCRE2_ZERO_TERMINATED; }
static inline size_t quarry_pcre2_unset(void) { return PCRE2_UNSET; }
#endif
