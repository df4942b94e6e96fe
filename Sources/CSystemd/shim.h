#ifndef QUARRY_CSYSTEMD_SHIM_H
#define QUARRY_CSYSTEMD_SHIM_H
#include <systemd/sd-journal.h>
#endif
