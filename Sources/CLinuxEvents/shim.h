#ifndef QUARRY_CLINUXEVENTS_SHIM_H
#define QUARRY_CLINUXEVENTS_SHIM_H
/* Kernel interfaces the event fallbacks use that Swift's Glibc module does not export:
 * fanotify, inotify, the netlink process connector and the audit netlink protocol. */
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/connector.h>
#include <linux/cn_proc.h>
#include <linux/audit.h>
#endif
