#ifndef QUARRY_CRESPONSE_SHIM_H
#define QUARRY_CRESPONSE_SHIM_H
/* System calls the response actions need that Swift's Glibc module does not export:
 * pidfd_open and pidfd_send_signal (signals that cannot hit a recycled pid), and the
 * extended-attribute calls quarantine keeps and restores. */
#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <signal.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* A descriptor that refers to the process `pid` for as long as it is open, or -1 (errno set). */
static inline int quarry_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* Sends `sig` to the process behind `pidfd`; 0 on success, -1 (errno set) otherwise. */
static inline int quarry_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, (void *)0, 0);
}
#endif
