/* The wire format between Quarry's BPF programs (Sources/QuarryEvents/BPF/quarry.bpf.c) and
 * the Swift decoder (Sources/QuarryEvents/EBPF/EventDecoder.swift). Both sides include this one
 * header, so the layouts cannot drift apart. Fixed-width types only; every struct is padded by
 * hand to 8-byte multiples so clang lays it out identically for the BPF and host targets. */
#ifndef QUARRY_EVENTS_H
#define QUARRY_EVENTS_H

#include <linux/types.h>

#define QE_COMM_LEN 16
/* Kernel filter tables: at most this many uids, process names and path prefixes in all. */
#define QE_MAX_UIDS 16
#define QE_MAX_COMMS 16
#define QE_MAX_PREFIXES 16
#define QE_PREFIX_WORDS 16 /* a path prefix is at most 128 bytes */
/* Per-CPU scratch record; strings are written at offsets masked to half of it. */
#define QE_SCRATCH_SIZE 16384
#define QE_STRING_MAX 4096
#define QE_DNS_PAYLOAD_MAX 512

/* Event kinds. Names (Tracee's) live in the Swift catalogue; numbers only travel here. */
enum qe_event_type {
    QE_EXEC = 1,
    QE_EXIT = 2,
    QE_CONNECT = 3,
    QE_ACCEPT = 4,
    QE_BIND = 5,
    QE_DNS = 6,
    QE_FILE_OPEN = 7,
    QE_COMMIT_CREDS = 8,
    QE_MODULE_LOAD = 9,
    QE_INIT_MODULE = 10,
    QE_FINIT_MODULE = 11,
    QE_PTRACE = 12,
    QE_MEMFD_CREATE = 13,
    QE_SETUID = 14,
    QE_FORK = 15,
    QE_EVENT_COUNT = 16
};

/* Global switches in qe_config.flags. */
#define QE_FLAG_INCLUDE_ENV 1u

/* Every record starts with this: who did it, when, and which subscriptions' kernel filters
 * matched (bit i = slot i). Strings that follow are u16-length-prefixed, not NUL-terminated. */
struct qe_header {
    __u64 timestamp_ns;   /* CLOCK_BOOTTIME */
    __u64 start_time_ns;  /* the thread group leader's start, CLOCK_BOOTTIME */
    __u64 cgroup_id;
    __u64 matched;
    __s64 retval;
    __u32 type;
    __u32 size;           /* whole record, header included */
    __u32 host_pid, host_tid, host_ppid;
    __u32 pid, tid, ppid; /* as seen in the task's own pid namespace */
    __u32 uid, gid;
    __u32 mnt_ns, pid_ns;
    __u32 cpu;
    __u32 reserved;
    char comm[QE_COMM_LEN];
    __u16 str_len[8];     /* lengths of the strings after the payload, in order */
};

/* sched_process_exec: then strings cmdpath, pathname, interp, argv (NUL-separated), env. */
struct qe_exec {
    __u64 inode;
    __u64 ctime_ns;
    __u32 dev;
    __u32 inode_mode;
    __u32 argc;
    __u32 fileless; /* the executable has no name on any filesystem (memfd, deleted) */
};

/* sched_process_exit */
struct qe_exit {
    __s32 exit_code;
    __u32 group_exit;
};

/* sched_process_fork (for the process tracker) */
struct qe_fork {
    __u32 child_host_pid;
    __u32 child_pid;
    __u64 child_start_time_ns;
};

/* Socket address as the kernel saw it: family, port (host order), 16 address bytes, or a path. */
struct qe_sockaddr {
    __u16 family;
    __u16 port;
    __u32 scope;
    __u8 addr[16];
};

/* security_socket_connect / accept / bind: `addr` is the address asked for (connect: remote,
 * bind: local; accept: the new socket's local address), `peer` the other end when known
 * (connect: the local address chosen, accept: the remote peer). Then string unix_path. */
struct qe_socket {
    struct qe_sockaddr addr;
    struct qe_sockaddr peer;
    __s64 fd;
    __u32 type;
    __u32 protocol;
};

/* net_packet_dns: then the UDP payload (length payload_len, at most QE_DNS_PAYLOAD_MAX). */
struct qe_dns {
    struct qe_sockaddr src;
    struct qe_sockaddr dst;
    __u32 ingress;
    __u32 payload_len;
    __u32 packet_len;
    __u32 owner_known;
};

/* security_file_open: then string pathname. */
struct qe_file_open {
    __u64 inode;
    __u64 ctime_ns;
    __u32 flags;
    __u32 dev;
    __u32 mode;
    __u32 reserved;
};

struct qe_cred {
    __u32 uid, gid, suid, sgid, euid, egid, fsuid, fsgid;
    __u32 securebits;
    __u32 reserved;
    __u64 cap_inheritable, cap_permitted, cap_effective, cap_bounding, cap_ambient;
};

/* commit_creds */
struct qe_commit_creds {
    struct qe_cred old_cred;
    struct qe_cred new_cred;
};

/* module_load: then strings name, version, srcversion. init_module/finit_module: then string
 * param_values; `fd` is finit_module's descriptor (-1 for init_module). */
struct qe_module {
    __s64 fd;
    __u64 length;
    __u32 flags;
    __u32 reserved;
};

/* ptrace (the syscall): request, target pid, addr, data. */
struct qe_ptrace {
    __s64 request;
    __s64 target;
    __u64 addr;
    __u64 data;
};

/* memfd_create: then string name. */
struct qe_memfd {
    __u32 flags;
    __u32 reserved;
};

/* setuid (the syscall). */
struct qe_setuid {
    __u32 uid;
    __u32 reserved;
};

/* The kernel-side filter, one value in the `config` array map. A subscription owns one slot
 * (bit) in every mask; an event is sent when at least one slot wants its type and passes that
 * slot's uid, process name and path prefix tables (slots without a table pass it). */
struct qe_uid_entry {
    __u32 uid;
    __u32 reserved;
    __u64 slots;
};

struct qe_comm_entry {
    char comm[QE_COMM_LEN];
    __u64 slots;
};

struct qe_prefix_entry {
    __u64 words[QE_PREFIX_WORDS];
    __u64 masks[QE_PREFIX_WORDS];
    __u32 length;
    __u32 reserved;
    __u64 slots;
};

struct qe_config {
    __u64 event_slots[QE_EVENT_COUNT];
    __u64 uid_filtered;
    __u64 comm_filtered;
    __u64 path_filtered;
    __u32 uid_count;
    __u32 comm_count;
    __u32 prefix_count;
    __u32 flags;
    __u32 self_tgid; /* the agent: its own file opens are never reported (no feedback loops) */
    __u32 reserved;
    struct qe_uid_entry uids[QE_MAX_UIDS];
    struct qe_comm_entry comms[QE_MAX_COMMS];
    struct qe_prefix_entry prefixes[QE_MAX_PREFIXES];
};

/* Indexes of the per-CPU `counters` array map. */
enum qe_counter {
    QE_COUNTER_LOST = 0,      /* ring buffer full: records dropped */
    QE_COUNTER_SENT = 1,      /* records written to the ring buffer */
    QE_COUNTER_FILTERED = 2,  /* events seen by a hook and dropped by the kernel filter */
    QE_COUNTER_COUNT = 3
};

#endif
