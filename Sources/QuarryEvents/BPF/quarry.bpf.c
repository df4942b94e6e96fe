// Quarry's event programs: one BPF object, loaded once per agent process and shared by every
// watch_ebpf() query. Built by the QuarryBPF build-tool plugin (clang -target bpf, CO-RE) and
// embedded in the binary; nothing here is compiled against kernel headers.
//
// Every hook does the same three things: (1) is any subscription slot interested in this event
// type? (one map lookup, then return); (2) do the kernel filters (uid, process name, path
// prefix) leave any slot? (3) build the record in a per-CPU scratch buffer and copy it into
// the ring buffer, counting a loss when the ring buffer is full.
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "kernel_types.h"
#include "quarry_events.h"

char LICENSE[] SEC("license") = "GPL";

#define PATH_HALF 4096
#define PATH_MAX_COMPONENTS 32
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define PTRACE_MODE_ATTACH 0x02

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 8 << 20); /* resized by user space before load */
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct qe_config);
} config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, QE_COUNTER_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

struct scratch_buffer { __u8 data[QE_SCRATCH_SIZE]; };
struct path_buffer { __u8 data[PATH_HALF * 2]; };

/* Process-context hooks and the network (softirq) hooks never share a scratch buffer, since a
 * softirq can interrupt a tracing program on the same CPU. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct scratch_buffer);
} scratch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct path_buffer);
} paths SEC(".maps");

/* Who owns a socket: recorded when it sends, read when a reply arrives in softirq context. */
struct socket_owner {
    struct qe_header header;
};

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct socket_owner);
} socket_owners SEC(".maps");

static __always_inline void count(__u32 which) {
    __u64 *value = bpf_map_lookup_elem(&counters, &which);
    if (value) *value += 1;
}

static __always_inline struct qe_config *get_config(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&config, &zero);
}

static __always_inline __u8 *get_scratch(__u32 which) {
    return bpf_map_lookup_elem(&scratch, &which);
}

// ---- Kernel filters ---------------------------------------------------------------------------

static __always_inline __u64 filter_identity(struct qe_config *cfg, __u64 slots, __u32 uid, const char *comm) {
    if (slots & cfg->uid_filtered) {
        __u64 passing = 0;
        for (int i = 0; i < QE_MAX_UIDS; i++) {
            if (i >= cfg->uid_count) break;
            if (cfg->uids[i].uid == uid) passing |= cfg->uids[i].slots;
        }
        slots &= ~cfg->uid_filtered | passing;
    }
    if (slots & cfg->comm_filtered) {
        __u64 c0 = 0, c1 = 0;
        __builtin_memcpy(&c0, comm, 8);
        __builtin_memcpy(&c1, comm + 8, 8);
        __u64 passing = 0;
        for (int i = 0; i < QE_MAX_COMMS; i++) {
            if (i >= cfg->comm_count) break;
            __u64 e0 = 0, e1 = 0;
            __builtin_memcpy(&e0, cfg->comms[i].comm, 8);
            __builtin_memcpy(&e1, cfg->comms[i].comm + 8, 8);
            if (e0 == c0 && e1 == c1) passing |= cfg->comms[i].slots;
        }
        slots &= ~cfg->comm_filtered | passing;
    }
    return slots;
}

/* Slots whose path-prefix table accepts `path` (8-byte aligned, `length` valid bytes). */
static __noinline __u64 path_slots(struct qe_config *cfg, const __u64 *path, __u32 length) {
    __u64 passing = 0;
    if (!cfg || !path) return 0;
    for (int i = 0; i < QE_MAX_PREFIXES; i++) {
        if (i >= cfg->prefix_count) break;
        struct qe_prefix_entry *entry = &cfg->prefixes[i];
        if (length < entry->length) continue;
        int same = 1;
        for (int k = 0; k < QE_PREFIX_WORDS; k++) {
            if ((path[k] & entry->masks[k]) != entry->words[k]) { same = 0; break; }
        }
        if (same) passing |= entry->slots;
    }
    return passing;
}

static __always_inline __u64 filter_path(struct qe_config *cfg, __u64 slots, const __u8 *path, __u32 length) {
    if (!(slots & cfg->path_filtered)) return slots;
    return slots & (~cfg->path_filtered | path_slots(cfg, (const __u64 *)path, length));
}

/* Slots interested in an event of `type` by the current task, after uid and name filters. */
static __always_inline __u64 wanted(struct qe_config *cfg, __u32 type) {
    if (!cfg || type >= QE_EVENT_COUNT) return 0;
    __u64 slots = cfg->event_slots[type];
    if (!slots) return 0;
    char comm[16];
    bpf_get_current_comm(comm, sizeof(comm));
    __u32 uid = (__u32)bpf_get_current_uid_gid();
    slots = filter_identity(cfg, slots, uid, comm);
    if (!slots) count(QE_COUNTER_FILTERED);
    return slots;
}

// ---- Record building --------------------------------------------------------------------------

static __always_inline void fill_task(struct qe_header *h, struct task_struct *task) {
    h->host_tid = BPF_CORE_READ(task, pid);
    h->host_pid = BPF_CORE_READ(task, tgid);
    struct task_struct *leader = BPF_CORE_READ(task, group_leader);
    h->start_time_ns = BPF_CORE_READ(leader, start_boottime);
    struct task_struct *parent = BPF_CORE_READ(leader, real_parent);
    h->host_ppid = BPF_CORE_READ(parent, tgid);

    struct pid *tp = BPF_CORE_READ(task, thread_pid);
    unsigned int level = BPF_CORE_READ(tp, level) & 31;
    h->tid = BPF_CORE_READ(tp, numbers[level].nr);
    struct pid_namespace *ns = BPF_CORE_READ(tp, numbers[level].ns);
    h->pid_ns = BPF_CORE_READ(ns, ns.inum);
    struct pid *lp = BPF_CORE_READ(leader, thread_pid);
    h->pid = BPF_CORE_READ(lp, numbers[level].nr);
    struct pid *pp = BPF_CORE_READ(parent, thread_pid);
    unsigned int plevel = BPF_CORE_READ(pp, level);
    /* The parent may live in an outer namespace; it is then 0 from inside, as in the kernel. */
    h->ppid = plevel >= level ? BPF_CORE_READ(pp, numbers[level].nr) : 0;
    h->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
    BPF_CORE_READ_STR_INTO(&h->comm, task, comm);
}

static __always_inline struct qe_header *begin(__u8 *buf, __u32 type, __u64 slots, struct task_struct *task) {
    struct qe_header *h = (struct qe_header *)buf;
    __builtin_memset(h, 0, sizeof(*h));
    h->timestamp_ns = bpf_ktime_get_boot_ns();
    h->type = type;
    h->matched = slots;
    h->cpu = bpf_get_smp_processor_id();
    h->cgroup_id = bpf_get_current_cgroup_id();
    __u64 ids = bpf_get_current_uid_gid();
    h->uid = (__u32)ids;
    h->gid = (__u32)(ids >> 32);
    fill_task(h, task);
    return h;
}

/* Unread bytes in the ring at which the reader is woken at once. Below it no wakeup is sent: the
 * reader drains the ring on its own every QE_DRAIN_MS milliseconds, so a burst of events costs
 * one wakeup instead of one per event (at 1,000 execs a second that halved the agent's CPU). */
#define QE_WAKEUP_BYTES (256 * 1024)

static __always_inline void submit(__u8 *buf, __u32 size) {
    struct qe_header *h = (struct qe_header *)buf;
    if (size > QE_SCRATCH_SIZE) size = QE_SCRATCH_SIZE;
    if (size < sizeof(struct qe_header)) return;
    h->size = size;
    __u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= QE_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
    if (bpf_ringbuf_output(&events, buf, size, flags) == 0) count(QE_COUNTER_SENT);
    else count(QE_COUNTER_LOST);
}

/* Appends a kernel string as string number `index`; returns the new end offset. */
static __always_inline __u32 put_kernel_string(__u8 *buf, __u32 offset, int index, const void *source) {
    struct qe_header *h = (struct qe_header *)buf;
    if (!source || index >= 8) return offset;
    long n = bpf_probe_read_kernel_str(buf + (offset & (QE_SCRATCH_SIZE / 2 - 1)), QE_STRING_MAX, source);
    if (n <= 1) return offset;
    h->str_len[index & 7] = (__u16)(n - 1);
    return offset + (__u32)(n - 1);
}

static __always_inline __u32 put_user_string(__u8 *buf, __u32 offset, int index, const void *source) {
    struct qe_header *h = (struct qe_header *)buf;
    if (!source || index >= 8) return offset;
    long n = bpf_probe_read_user_str(buf + (offset & (QE_SCRATCH_SIZE / 2 - 1)), QE_STRING_MAX, source);
    if (n <= 1) return offset;
    h->str_len[index & 7] = (__u16)(n - 1);
    return offset + (__u32)(n - 1);
}

/* Appends `length` bytes of user memory (argv, environment) as string `index`. */
static __always_inline __u32 put_user_bytes(__u8 *buf, __u32 offset, int index, unsigned long start, unsigned long end) {
    struct qe_header *h = (struct qe_header *)buf;
    if (!start || end <= start || index >= 8) return offset;
    unsigned long length = end - start;
    if (length > QE_STRING_MAX - 1) length = QE_STRING_MAX - 1;
    length &= QE_STRING_MAX - 1;
    if (length == 0) return offset;
    if (bpf_probe_read_user(buf + (offset & (QE_SCRATCH_SIZE / 2 - 1)), length, (const void *)start) != 0) return offset;
    h->str_len[index & 7] = (__u16)length;
    return offset + (__u32)length;
}

/* Resolves a path by walking dentries and mounts up to the root, like d_path() but usable from
 * any hook. One bpf_loop step per component keeps the verifier's work constant. */
struct walk_state {
    struct dentry *dentry;
    struct vfsmount *vfsmnt;
    struct mount *mnt;
    struct mount *mnt_parent;
    __u32 position;
    __u32 reserved;
};

static long walk_step(__u32 index, void *ctx) {
    struct walk_state *w = ctx;
    __u32 zero = 0;
    struct path_buffer *pb = bpf_map_lookup_elem(&paths, &zero);
    if (!pb) return 1;
    /* Locals, not w->field, inside BPF_CORE_READ: walk_state itself is not a kernel type. */
    struct dentry *dentry = w->dentry;
    struct vfsmount *vfsmnt = w->vfsmnt;
    struct mount *mnt = w->mnt;
    struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
    struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
    if (dentry == mnt_root || dentry == parent) {
        if (dentry != mnt_root) return 1;
        if (mnt != w->mnt_parent) {
            w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
            struct mount *up = w->mnt_parent;
            w->mnt = up;
            w->mnt_parent = BPF_CORE_READ(up, mnt_parent);
            w->vfsmnt = (struct vfsmount *)((char *)up + bpf_core_field_offset(struct mount, mnt));
            return 0;
        }
        return 1;
    }
    __u32 length = BPF_CORE_READ(dentry, d_name.len) & 255;
    const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
    __u32 position = w->position;
    if (position < length + 1 || position > PATH_HALF) return 1;
    position -= length;
    bpf_probe_read_kernel(&pb->data[position & (PATH_HALF - 1)], length, name);
    position -= 1;
    pb->data[position & (PATH_HALF - 1)] = '/';
    w->position = position;
    w->dentry = parent;
    return 0;
}

/* Writes the path at `out` (8-byte aligned, in the scratch buffer) and returns its length (0
 * when it cannot be read). */
static __noinline __u32 resolve_path(struct path *path, __u8 *out) {
    __u32 zero = 0;
    struct path_buffer *pb = bpf_map_lookup_elem(&paths, &zero);
    if (!pb || !path || !out) return 0;
    struct walk_state w = {};
    w.dentry = BPF_CORE_READ(path, dentry);
    w.vfsmnt = BPF_CORE_READ(path, mnt);
    /* container_of(), with the member's offset relocated for this kernel. */
    w.mnt = (struct mount *)((char *)w.vfsmnt - bpf_core_field_offset(struct mount, mnt));
    struct mount *mnt = w.mnt;
    w.mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
    w.position = PATH_HALF;
    bpf_loop(PATH_MAX_COMPONENTS, walk_step, &w, 0);
    __u32 position = w.position;
    if (position >= PATH_HALF) {
        /* The root itself, or a pseudo file: use the bare dentry name. */
        struct dentry *last = w.dentry;
        const unsigned char *name = BPF_CORE_READ(last, d_name.name);
        long n = bpf_probe_read_kernel_str(out, 256, name);
        return n > 1 ? (__u32)(n - 1) : 0;
    }
    __u32 length = PATH_HALF - position;
    if (length > QE_STRING_MAX - 1) length = QE_STRING_MAX - 1;
    length &= QE_STRING_MAX - 1;
    if (length == 0) return 0;
    if (bpf_probe_read_kernel(out, length, &pb->data[position & (PATH_HALF - 1)]) != 0) return 0;
    return length;
}

static __always_inline __u64 inode_ctime(struct inode *inode) {
    if (bpf_core_field_exists(inode->i_ctime_sec))
        return (__u64)BPF_CORE_READ(inode, i_ctime_sec) * 1000000000ull + BPF_CORE_READ(inode, i_ctime_nsec);
    if (bpf_core_field_exists(inode->__i_ctime))
        return (__u64)BPF_CORE_READ(inode, __i_ctime.tv_sec) * 1000000000ull + BPF_CORE_READ(inode, __i_ctime.tv_nsec);
    return (__u64)BPF_CORE_READ(inode, i_ctime.tv_sec) * 1000000000ull + BPF_CORE_READ(inode, i_ctime.tv_nsec);
}

// ---- Credentials: compared before and after the syscalls (and execs) that change them ---------

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, struct qe_cred);
} creds_before SEC(".maps");

static __always_inline void read_cred(struct qe_cred *out, struct cred *c) {
    out->uid = BPF_CORE_READ(c, uid.val);
    out->gid = BPF_CORE_READ(c, gid.val);
    out->suid = BPF_CORE_READ(c, suid.val);
    out->sgid = BPF_CORE_READ(c, sgid.val);
    out->euid = BPF_CORE_READ(c, euid.val);
    out->egid = BPF_CORE_READ(c, egid.val);
    out->fsuid = BPF_CORE_READ(c, fsuid.val);
    out->fsgid = BPF_CORE_READ(c, fsgid.val);
    out->securebits = BPF_CORE_READ(c, securebits);
    out->reserved = 0;
    /* kernel_cap_t is one u64 since 6.3 and two u32 before: 8 bytes either way. */
    bpf_core_read(&out->cap_inheritable, 8, &c->cap_inheritable);
    bpf_core_read(&out->cap_permitted, 8, &c->cap_permitted);
    bpf_core_read(&out->cap_effective, 8, &c->cap_effective);
    bpf_core_read(&out->cap_bounding, 8, &c->cap_bset);
    bpf_core_read(&out->cap_ambient, 8, &c->cap_ambient);
}

static __always_inline int creds_changing(long id) {
    return id == NR_setuid || id == NR_setgid || id == NR_setreuid || id == NR_setregid || id == NR_setresuid ||
           id == NR_setresgid || id == NR_setfsuid || id == NR_setfsgid || id == NR_capset || id == NR_execve ||
           id == NR_execveat;
}

/* Before: remember the credentials of a task entering a credential-changing syscall. */
static __always_inline void creds_enter(struct qe_config *cfg) {
    if (!cfg->event_slots[QE_COMMIT_CREDS]) return;
    struct task_struct *task = bpf_get_current_task_btf();
    struct qe_cred before = {};
    read_cred(&before, (struct cred *)BPF_CORE_READ(task, real_cred));
    __u64 key = bpf_get_current_pid_tgid();
    bpf_map_update_elem(&creds_before, &key, &before, BPF_ANY);
}

/* After (sys_exit, or the exec tracepoint): report when anything changed. */
static __always_inline int creds_exit(struct qe_config *cfg, struct task_struct *task, long ret) {
    __u64 key = bpf_get_current_pid_tgid();
    struct qe_cred *before = bpf_map_lookup_elem(&creds_before, &key);
    if (!before) return 0;
    __u64 slots = wanted(cfg, QE_COMMIT_CREDS);
    __u8 *buf = get_scratch(0);
    if (!slots || !buf) { bpf_map_delete_elem(&creds_before, &key); return 0; }
    struct qe_commit_creds *e = (struct qe_commit_creds *)(buf + sizeof(struct qe_header));
    __builtin_memcpy(&e->old_cred, before, sizeof(e->old_cred));
    bpf_map_delete_elem(&creds_before, &key);
    read_cred(&e->new_cred, (struct cred *)BPF_CORE_READ(task, real_cred));
    const __u64 *a = (const __u64 *)&e->old_cred, *b = (const __u64 *)&e->new_cred;
    int same = 1;
    for (int i = 0; i < (int)(sizeof(struct qe_cred) / 8); i++) {
        if (a[i] != b[i]) { same = 0; break; }
    }
    if (same) return 0;
    struct qe_header *h = begin(buf, QE_COMMIT_CREDS, slots, task);
    h->retval = ret;
    submit(buf, sizeof(struct qe_header) + sizeof(struct qe_commit_creds));
    return 0;
}

// ---- Processes --------------------------------------------------------------------------------

#define EXEC_STRINGS (sizeof(struct qe_header) + sizeof(struct qe_exec))

static __always_inline int exec_event(struct qe_config *cfg, struct task_struct *task, struct linux_binprm *bprm) {
    __u64 slots = wanted(cfg, QE_EXEC);
    if (!slots) return 0;
    __u8 *buf = get_scratch(0);
    if (!buf) return 0;
    begin(buf, QE_EXEC, slots, task);
    struct qe_exec *e = (struct qe_exec *)(buf + sizeof(struct qe_header));
    __builtin_memset(e, 0, sizeof(*e));
    struct file *file = BPF_CORE_READ(bprm, file);
    struct inode *inode = BPF_CORE_READ(file, f_inode);
    e->inode = BPF_CORE_READ(inode, i_ino);
    e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
    e->inode_mode = BPF_CORE_READ(inode, i_mode);
    e->ctime_ns = inode_ctime(inode);
    e->argc = BPF_CORE_READ(bprm, argc);
    struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
    e->fileless = BPF_CORE_READ(dentry, d_hash.pprev) == 0;

    struct qe_header *h = (struct qe_header *)buf;
    /* String 0 is the resolved path, at a fixed aligned offset so the prefix filter can read it. */
    __u32 length = resolve_path(&file->f_path, buf + EXEC_STRINGS);
    slots = filter_path(cfg, slots, buf + EXEC_STRINGS, length);
    if (!slots) { count(QE_COUNTER_FILTERED); return 0; }
    h->matched = slots;
    h->str_len[0] = (__u16)length;
    __u32 offset = EXEC_STRINGS + length;
    offset = put_kernel_string(buf, offset, 1, BPF_CORE_READ(bprm, filename));
    offset = put_kernel_string(buf, offset, 2, BPF_CORE_READ(bprm, interp));
    struct mm_struct *mm = BPF_CORE_READ(task, mm);
    offset = put_user_bytes(buf, offset, 3, BPF_CORE_READ(mm, arg_start), BPF_CORE_READ(mm, arg_end));
    if (cfg->flags & QE_FLAG_INCLUDE_ENV)
        offset = put_user_bytes(buf, offset, 4, BPF_CORE_READ(mm, env_start), BPF_CORE_READ(mm, env_end));
    submit(buf, offset);
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, int old_pid, struct linux_binprm *bprm) {
    struct qe_config *cfg = get_config();
    if (!cfg) return 0;
    /* An exec of a set-user-id program changes credentials: compare with sys_enter's copy. */
    if (cfg->event_slots[QE_COMMIT_CREDS]) creds_exit(cfg, task, 0);
    return exec_event(cfg, task, bprm);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task) {
    /* Only the whole process: the last thread of the group. */
    if (BPF_CORE_READ(task, signal, live.counter) != 0) return 0;
    struct qe_config *cfg = get_config();
    __u64 slots = wanted(cfg, QE_EXIT);
    if (!slots) return 0;
    __u8 *buf = get_scratch(0);
    if (!buf) return 0;
    begin(buf, QE_EXIT, slots, task);
    struct qe_exit *e = (struct qe_exit *)(buf + sizeof(struct qe_header));
    e->exit_code = BPF_CORE_READ(task, exit_code);
    e->group_exit = 1;
    submit(buf, sizeof(struct qe_header) + sizeof(struct qe_exit));
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child) {
    /* New processes only, not new threads. */
    if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid)) return 0;
    struct qe_config *cfg = get_config();
    __u64 slots = wanted(cfg, QE_FORK);
    if (!slots) return 0;
    __u8 *buf = get_scratch(0);
    if (!buf) return 0;
    begin(buf, QE_FORK, slots, parent);
    struct qe_fork *e = (struct qe_fork *)(buf + sizeof(struct qe_header));
    e->child_host_pid = BPF_CORE_READ(child, tgid);
    struct pid *cp = BPF_CORE_READ(child, thread_pid);
    unsigned int level = BPF_CORE_READ(cp, level) & 31;
    e->child_pid = BPF_CORE_READ(cp, numbers[level].nr);
    e->child_start_time_ns = BPF_CORE_READ(child, start_boottime);
    submit(buf, sizeof(struct qe_header) + sizeof(struct qe_fork));
    return 0;
}

// ---- DNS (UDP port 53, both directions, every socket in the cgroup v2 hierarchy) --------------

static __always_inline void dns_packet(struct __sk_buff *skb, __u32 ingress) {
    struct qe_config *cfg = get_config();
    if (!cfg || !cfg->event_slots[QE_DNS]) return;
    struct qe_dns d = {};
    __u32 l4 = 0;
    __u8 protocol = 0;
    if (skb->protocol == bpf_htons(0x0800)) {
        __u8 vihl = 0;
        if (bpf_skb_load_bytes(skb, 0, &vihl, 1) < 0) return;
        l4 = (vihl & 0xf) * 4;
        if (bpf_skb_load_bytes(skb, 9, &protocol, 1) < 0) return;
        d.src.family = d.dst.family = AF_INET;
        if (bpf_skb_load_bytes(skb, 12, d.src.addr, 4) < 0) return;
        if (bpf_skb_load_bytes(skb, 16, d.dst.addr, 4) < 0) return;
    } else if (skb->protocol == bpf_htons(0x86DD)) {
        l4 = 40;
        if (bpf_skb_load_bytes(skb, 6, &protocol, 1) < 0) return;
        d.src.family = d.dst.family = AF_INET6;
        if (bpf_skb_load_bytes(skb, 8, d.src.addr, 16) < 0) return;
        if (bpf_skb_load_bytes(skb, 24, d.dst.addr, 16) < 0) return;
    } else {
        return;
    }
    if (protocol != 17) return;
    __u16 ports[2] = {};
    if (bpf_skb_load_bytes(skb, l4, ports, 4) < 0) return;
    d.src.port = bpf_ntohs(ports[0]);
    d.dst.port = bpf_ntohs(ports[1]);
    if (d.src.port != 53 && d.dst.port != 53) return;

    __u8 *buf = get_scratch(1);
    if (!buf) return;
    struct qe_header *h = (struct qe_header *)buf;
    __builtin_memset(h, 0, sizeof(*h));
    struct bpf_sock *sk = skb->sk;
    if (sk) sk = bpf_sk_fullsock(sk);
    struct socket_owner *owner = 0;
    if (sk) {
        if (!ingress) {
            owner = bpf_sk_storage_get(&socket_owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
            if (owner) {
                /* Egress of a UDP datagram runs in the sending task's context. */
                struct task_struct *task = bpf_get_current_task_btf();
                __builtin_memset(&owner->header, 0, sizeof(owner->header));
                fill_task(&owner->header, task);
                __u64 ids = bpf_get_current_uid_gid();
                owner->header.uid = (__u32)ids;
                owner->header.gid = (__u32)(ids >> 32);
                owner->header.cgroup_id = bpf_get_current_cgroup_id();
            }
        } else {
            owner = bpf_sk_storage_get(&socket_owners, sk, 0, 0);
        }
    }
    if (owner) {
        __builtin_memcpy(h, &owner->header, sizeof(*h));
        d.owner_known = 1;
    }
    __u64 slots = cfg->event_slots[QE_DNS];
    slots = filter_identity(cfg, slots, h->uid, h->comm);
    if (!slots) { count(QE_COUNTER_FILTERED); return; }
    h->timestamp_ns = bpf_ktime_get_boot_ns();
    h->type = QE_DNS;
    h->matched = slots;
    h->cpu = bpf_get_smp_processor_id();
    h->str_len[0] = 0;
    d.ingress = ingress;
    d.packet_len = skb->len;
    __u32 start = l4 + 8;
    __u32 length = 0;
    if (skb->len > start) length = skb->len - start;
    if (length > QE_DNS_PAYLOAD_MAX) length = QE_DNS_PAYLOAD_MAX;
    asm volatile("" : "+r"(length));
    __u32 offset = sizeof(struct qe_header) + sizeof(struct qe_dns);
    if (length >= 1 && length <= QE_DNS_PAYLOAD_MAX && bpf_skb_load_bytes(skb, start, buf + offset, length) == 0) {
        d.payload_len = length;
    } else {
        length = 0;
    }
    __builtin_memcpy(buf + sizeof(struct qe_header), &d, sizeof(d));
    submit(buf, offset + length);
}

SEC("cgroup_skb/egress")
int on_dns_egress(struct __sk_buff *skb) {
    dns_packet(skb, 0);
    return 1;
}

SEC("cgroup_skb/ingress")
int on_dns_ingress(struct __sk_buff *skb) {
    dns_packet(skb, 1);
    return 1;
}

// ---- Files, sockets, credentials and other syscalls: one sys_exit program ---------------------
//
// fentry/LSM attachment is refused on some kernels (and kprobes may be compiled out), so these
// events come from the raw syscall tracepoints, which need neither tracefs nor kprobes. The
// program runs on every syscall while attached (it is attached only while one of these events
// has a subscriber) and returns after one switch for the syscalls it does not report.

/* The struct file behind a descriptor of the current task. */
static __always_inline struct file *file_of(struct task_struct *task, long fd) {
    if (fd < 0) return 0;
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    unsigned int max = BPF_CORE_READ(fdt, max_fds);
    if ((unsigned long)fd >= max) return 0;
    struct file **fds = BPF_CORE_READ(fdt, fd);
    struct file *file = 0;
    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
    return file;
}

#define FILE_STRINGS (sizeof(struct qe_header) + sizeof(struct qe_file_open))

/* The kernel drops O_CREAT, O_EXCL, O_NOCTTY and O_TRUNC from f_flags once the file is open:
 * they come from the syscall's own flags. */
#define OPEN_ONLY_FLAGS (0100 | 0200 | 0400 | 01000)

static __always_inline __u32 open_request_flags(long id, struct pt_regs *regs) {
    if (id == NR_open) return (__u32)SYSCALL_ARG2(regs);
    if (id == NR_openat) return (__u32)SYSCALL_ARG3(regs);
    if (id == NR_creat) return 01 | 0100 | 01000;
    if (id == NR_openat2) {
        __u64 flags = 0;
        bpf_probe_read_user(&flags, sizeof(flags), (const void *)SYSCALL_ARG3(regs));
        return (__u32)flags;
    }
    return 0;
}

static __always_inline int file_open_event(struct qe_config *cfg, struct task_struct *task, long fd, __u32 requested) {
    if ((__u32)(bpf_get_current_pid_tgid() >> 32) == cfg->self_tgid) return 0;
    __u64 slots = wanted(cfg, QE_FILE_OPEN);
    if (!slots) return 0;
    struct file *file = file_of(task, fd);
    if (!file) return 0;
    __u8 *buf = get_scratch(0);
    if (!buf) return 0;
    /* Resolve and filter the path before anything else is read. */
    __u32 length = resolve_path(&file->f_path, buf + FILE_STRINGS);
    slots = filter_path(cfg, slots, buf + FILE_STRINGS, length);
    if (!slots) { count(QE_COUNTER_FILTERED); return 0; }
    begin(buf, QE_FILE_OPEN, slots, task);
    struct qe_file_open *e = (struct qe_file_open *)(buf + sizeof(struct qe_header));
    struct inode *inode = BPF_CORE_READ(file, f_inode);
    e->inode = BPF_CORE_READ(inode, i_ino);
    e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
    e->mode = BPF_CORE_READ(inode, i_mode);
    e->ctime_ns = inode_ctime(inode);
    e->flags = BPF_CORE_READ(file, f_flags) | (requested & OPEN_ONLY_FLAGS);
    e->reserved = 0;
    struct qe_header *h = (struct qe_header *)buf;
    h->retval = fd;
    h->str_len[0] = (__u16)length;
    submit(buf, FILE_STRINGS + length);
    return 0;
}

/* Decodes a socket address from user memory. Returns the unix path length written at
 * `path_out`, or 0. */
static __always_inline __u32 read_user_sockaddr(struct qe_sockaddr *out, const void *address, long addrlen, __u8 *path_out) {
    __u8 raw[28] = {};
    if (!address || addrlen < 2) return 0;
    bpf_probe_read_user(raw, sizeof(raw), address);
    out->family = raw[0] | (raw[1] << 8);
    if (out->family == AF_INET) {
        out->port = (raw[2] << 8) | raw[3];
        __builtin_memcpy(out->addr, raw + 4, 4);
    } else if (out->family == AF_INET6) {
        out->port = (raw[2] << 8) | raw[3];
        __builtin_memcpy(out->addr, raw + 8, 16);
        out->scope = raw[24] | (raw[25] << 8) | (raw[26] << 16) | (raw[27] << 24);
    } else if (out->family == AF_UNIX && path_out) {
        long n = bpf_probe_read_user_str(path_out, 108, (const __u8 *)address + 2);
        return n > 1 ? (__u32)(n - 1) : 0;
    }
    return 0;
}

/* Local (or remote) address of a connected/bound socket. */
static __always_inline void read_sock_address(struct qe_sockaddr *out, struct sock *sk, int remote) {
    out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (remote) out->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    else out->port = BPF_CORE_READ(sk, __sk_common.skc_num);
    if (out->family == AF_INET) {
        __u32 a = remote ? BPF_CORE_READ(sk, __sk_common.skc_daddr) : BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
        __builtin_memcpy(out->addr, &a, 4);
    } else if (out->family == AF_INET6) {
        if (remote) BPF_CORE_READ_INTO(&out->addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
        else BPF_CORE_READ_INTO(&out->addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
    }
}

/* connect/bind (address from the caller) and accept (addresses of the new socket). */
static __always_inline int socket_event(struct qe_config *cfg, __u32 type, struct task_struct *task, struct pt_regs *regs, long ret) {
    __u64 slots = wanted(cfg, type);
    if (!slots) return 0;
    long fd = type == QE_ACCEPT ? ret : (long)SYSCALL_ARG1(regs);
    struct file *file = file_of(task, fd);
    if (!file) return 0;
    struct socket *sock = BPF_CORE_READ(file, private_data);
    __u8 *buf = get_scratch(0);
    if (!buf) return 0;
    struct qe_header *h = begin(buf, type, slots, task);
    h->retval = ret;
    struct qe_socket *e = (struct qe_socket *)(buf + sizeof(struct qe_header));
    __builtin_memset(e, 0, sizeof(*e));
    e->fd = fd;
    e->type = BPF_CORE_READ(sock, type);
    struct sock *sk = BPF_CORE_READ(sock, sk);
    e->protocol = BPF_CORE_READ(sk, sk_protocol);
    __u32 offset = sizeof(struct qe_header) + sizeof(struct qe_socket);
    __u32 path = 0;
    if (type == QE_ACCEPT) {
        read_sock_address(&e->addr, sk, 0);
        read_sock_address(&e->peer, sk, 1);
    } else {
        path = read_user_sockaddr(&e->addr, (const void *)SYSCALL_ARG2(regs), (long)SYSCALL_ARG3(regs), buf + offset);
        if (type == QE_CONNECT) read_sock_address(&e->peer, sk, 0);
    }
    h->str_len[0] = (__u16)(path & 127);
    submit(buf, offset + (path & 127));
    return 0;
}

/* ptrace, memfd_create, setuid, init_module, finit_module: reported with their arguments. */
static __always_inline int syscall_event(struct qe_config *cfg, __u32 type, struct task_struct *task, struct pt_regs *regs, long ret) {
    __u64 slots = wanted(cfg, type);
    if (!slots) return 0;
    __u8 *buf = get_scratch(0);
    if (!buf) return 0;
    struct qe_header *h = begin(buf, type, slots, task);
    h->retval = ret;
    __u8 *payload = buf + sizeof(struct qe_header);
    __u32 offset = sizeof(struct qe_header);
    if (type == QE_PTRACE) {
        struct qe_ptrace *e = (struct qe_ptrace *)payload;
        e->request = (long)SYSCALL_ARG1(regs);
        e->target = (long)SYSCALL_ARG2(regs);
        e->addr = SYSCALL_ARG3(regs);
        e->data = SYSCALL_ARG4(regs);
        offset += sizeof(struct qe_ptrace);
    } else if (type == QE_MEMFD_CREATE) {
        struct qe_memfd *e = (struct qe_memfd *)payload;
        e->flags = (__u32)SYSCALL_ARG2(regs);
        e->reserved = 0;
        offset += sizeof(struct qe_memfd);
        offset = put_user_string(buf, offset, 0, (const void *)SYSCALL_ARG1(regs));
    } else if (type == QE_SETUID) {
        struct qe_setuid *e = (struct qe_setuid *)payload;
        e->uid = (__u32)SYSCALL_ARG1(regs);
        e->reserved = 0;
        offset += sizeof(struct qe_setuid);
    } else {
        struct qe_module *e = (struct qe_module *)payload;
        __builtin_memset(e, 0, sizeof(*e));
        const char *params;
        if (type == QE_FINIT_MODULE) {
            e->fd = (int)SYSCALL_ARG1(regs);
            params = (const char *)SYSCALL_ARG2(regs);
            e->flags = (__u32)SYSCALL_ARG3(regs);
        } else {
            e->fd = -1;
            e->length = SYSCALL_ARG2(regs);
            params = (const char *)SYSCALL_ARG3(regs);
        }
        offset += sizeof(struct qe_module);
        offset = put_user_string(buf, offset, 0, params);
    }
    submit(buf, offset);
    return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id) {
    if (!creds_changing(id)) return 0;
    struct qe_config *cfg = get_config();
    if (cfg) creds_enter(cfg);
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret) {
    long id = SYSCALL_NR(regs);
    __u32 type = 0;
    switch (id) {
    case NR_openat: case NR_open: case NR_creat: case NR_openat2: type = QE_FILE_OPEN; break;
    case NR_connect: type = QE_CONNECT; break;
    case NR_accept: case NR_accept4: type = QE_ACCEPT; break;
    case NR_bind: type = QE_BIND; break;
    case NR_ptrace: type = QE_PTRACE; break;
    case NR_memfd_create: type = QE_MEMFD_CREATE; break;
    case NR_init_module: type = QE_INIT_MODULE; break;
    case NR_finit_module: type = QE_FINIT_MODULE; break;
    case NR_setuid: case NR_setgid: case NR_setreuid: case NR_setregid: case NR_setresuid: case NR_setresgid:
    case NR_setfsuid: case NR_setfsgid: case NR_capset:
        type = QE_COMMIT_CREDS; break;
    default: return 0;
    }
    struct qe_config *cfg = get_config();
    if (!cfg) return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    if (type == QE_COMMIT_CREDS) {
        creds_exit(cfg, task, ret);
        if (id == NR_setuid) syscall_event(cfg, QE_SETUID, task, regs, ret);
        return 0;
    }
    if (type == QE_FILE_OPEN) return ret >= 0 ? file_open_event(cfg, task, ret, open_request_flags(id, regs)) : 0;
    if (type == QE_CONNECT || type == QE_BIND || type == QE_ACCEPT) {
        if (type == QE_ACCEPT && ret < 0) return 0;
        return socket_event(cfg, type, task, regs, ret);
    }
    return syscall_event(cfg, type, task, regs, ret);
}

// ---- Kernel modules (the tracepoint exists only in kernels built with module support) --------

SEC("tp_btf/module_load")
int BPF_PROG(on_module_load, struct module *mod) {
    struct qe_config *cfg = get_config();
    __u64 slots = wanted(cfg, QE_MODULE_LOAD);
    if (!slots) return 0;
    __u8 *buf = get_scratch(0);
    if (!buf) return 0;
    begin(buf, QE_MODULE_LOAD, slots, bpf_get_current_task_btf());
    struct qe_module *e = (struct qe_module *)(buf + sizeof(struct qe_header));
    __builtin_memset(e, 0, sizeof(*e));
    e->fd = -1;
    __u32 offset = sizeof(struct qe_header) + sizeof(struct qe_module);
    offset = put_kernel_string(buf, offset, 0, &mod->name);
    offset = put_kernel_string(buf, offset, 1, BPF_CORE_READ(mod, version));
    offset = put_kernel_string(buf, offset, 2, BPF_CORE_READ(mod, srcversion));
    submit(buf, offset);
    return 0;
}
