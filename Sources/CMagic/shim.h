#ifndef QUARRY_CMAGIC_SHIM_H
#define QUARRY_CMAGIC_SHIM_H
#include <magic.h>
#endif
