#ifndef QUARRY_CRESPONSE_SHIM_H
#define QUARRY_CRESPONSE_SHIM_H
/* System calls the response actions need that Swift's Glibc module does not export:
 * pidfd_open and pidfd_send_signal (signals that cannot hit a recycled pid), the
 * extended-attribute calls quarantine keeps and restores, a detached spawn, and the spawn
 * file action that sets a child's working directory (shell sessions). */
#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <fcntl.h>

/* glibc declares this flag only under _GNU_SOURCE; its value is fixed. */
#ifndef POSIX_SPAWN_SETSID
#define POSIX_SPAWN_SETSID 0x80
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* open(2)'s O_NOATIME (declared by glibc only under _GNU_SOURCE): reads leave atime alone. */
static const int quarry_o_noatime = 01000000;

/* A descriptor that refers to the process `pid` for as long as it is open, or -1 (errno set). */
static inline int quarry_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* Sends `sig` to the process behind `pidfd`; 0 on success, -1 (errno set) otherwise. */
static inline int quarry_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, (void *)0, 0);
}

/* Starts `argv` detached: a new session, stdin/stdout/stderr on /dev/null and every other
 * descriptor closed, so it outlives its parent and holds none of its pipes open.
 * Returns the child's pid, or -1 with errno set. */
static inline pid_t quarry_spawn_detached(const char *path, char *const argv[], char *const envp[]) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    pid_t pid = -1;
    if (posix_spawn_file_actions_init(&actions) != 0) return -1;
    if (posix_spawnattr_init(&attributes) != 0) { posix_spawn_file_actions_destroy(&actions); return -1; }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    /* Default dispositions and an empty mask: the caller's thread may block or ignore signals. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (rc != 0) { errno = rc; return -1; }
    return pid;
}
/* glibc (2.29+) declares this only under _GNU_SOURCE. */
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
static inline int quarry_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}
/* glibc (2.34+), also _GNU_SOURCE only: the child closes every descriptor from `from` up, so it
 * inherits none of the agent's sockets, pipes or files. */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
static inline int quarry_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

#endif
