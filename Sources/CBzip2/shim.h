#ifndef QUARRY_CBZIP2_SHIM_H
#define QUARRY_CBZIP2_SHIM_H
#include <bzlib.h>
#endif
