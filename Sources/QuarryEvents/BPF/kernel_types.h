/* Minimal kernel types for CO-RE: only the fields Quarry's programs read. Every struct carries
 * preserve_access_index, so libbpf relocates each field access against the running kernel's BTF
 * (/sys/kernel/btf/vmlinux) at load time: no vmlinux.h, no kernel headers, no bpftool at build
 * time. Field names must match the kernel's; members of anonymous unions/structs are found by
 * name. Fields that moved between kernel versions are read through bpf_core_field_exists(). */
#ifndef QUARRY_KERNEL_TYPES_H
#define QUARRY_KERNEL_TYPES_H

#define CORE __attribute__((preserve_access_index))

struct qstr { __u32 hash; __u32 len; const unsigned char *name; } CORE;
struct hlist_bl_node { void *next; void **pprev; } CORE;
struct super_block { __u32 s_dev; } CORE;
struct timespec64 { __s64 tv_sec; long tv_nsec; } CORE;
struct inode {
    unsigned short i_mode;
    struct super_block *i_sb;
    unsigned long i_ino;
    unsigned int i_nlink;
    __s64 i_ctime_sec;       /* 6.11+ */
    __u32 i_ctime_nsec;      /* 6.11+ */
    struct timespec64 __i_ctime; /* 6.6 - 6.10 */
    struct timespec64 i_ctime;   /* before 6.6 */
} CORE;
struct dentry { struct hlist_bl_node d_hash; struct dentry *d_parent; struct qstr d_name; struct inode *d_inode; } CORE;
struct vfsmount { struct dentry *mnt_root; struct super_block *mnt_sb; } CORE;
struct mount { struct mount *mnt_parent; struct dentry *mnt_mountpoint; struct vfsmount mnt; } CORE;
struct path { struct vfsmount *mnt; struct dentry *dentry; } CORE;
struct file { struct path f_path; struct inode *f_inode; unsigned int f_flags; unsigned int f_mode; void *private_data; } CORE;
struct fdtable { unsigned int max_fds; struct file **fd; } CORE;
struct files_struct { struct fdtable *fdt; } CORE;

struct ns_common { unsigned int inum; } CORE;
struct pid_namespace { unsigned int level; struct ns_common ns; } CORE;
struct mnt_namespace { struct ns_common ns; } CORE;
struct upid { int nr; struct pid_namespace *ns; } CORE;
struct pid { unsigned int level; struct upid numbers[1]; } CORE;
struct nsproxy { struct mnt_namespace *mnt_ns; struct pid_namespace *pid_ns_for_children; } CORE;
typedef struct { int counter; } atomic_t;
struct signal_struct { atomic_t live; } CORE;
struct mm_struct { unsigned long arg_start, arg_end, env_start, env_end; } CORE;
typedef struct { __u64 val; } kernel_cap_t;
typedef struct { __u32 val; } kuid_t;
typedef struct { __u32 val; } kgid_t;
struct cred {
    kuid_t uid, suid, euid, fsuid;
    kgid_t gid, sgid, egid, fsgid;
    unsigned int securebits;
    kernel_cap_t cap_inheritable, cap_permitted, cap_effective, cap_bset, cap_ambient;
} CORE;
struct task_struct {
    int pid;
    int tgid;
    int exit_code;
    struct task_struct *real_parent;
    struct task_struct *group_leader;
    struct pid *thread_pid;
    struct nsproxy *nsproxy;
    struct signal_struct *signal;
    struct mm_struct *mm;
    struct files_struct *files;
    const struct cred *real_cred;
    const struct cred *cred;
    __u64 start_boottime;
    char comm[16];
} CORE;
struct linux_binprm { struct file *file; const char *filename; const char *interp; int argc; } CORE;
struct module { char name[56]; const char *version; const char *srcversion; } CORE;

struct in6_addr { union { __u8 u6_addr8[16]; } in6_u; } CORE;
struct sock_common {
    unsigned short skc_family;
    __u32 skc_daddr;
    __u32 skc_rcv_saddr;
    __u16 skc_dport;
    __u16 skc_num;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
} CORE;
struct sock { struct sock_common __sk_common; __u16 sk_protocol; } CORE;
struct socket { short type; struct sock *sk; } CORE;
struct sockaddr;

/* Syscall arguments from the saved user registers (still intact at sys_exit), and the numbers
 * of the syscalls Quarry reports, per architecture. */
#if defined(__TARGET_ARCH_x86)
struct pt_regs { unsigned long di, si, dx, r10, r8, orig_ax; } CORE;
#define NR_open 2
#define NR_creat 85
#define NR_openat 257
#define NR_openat2 437
#define NR_connect 42
#define NR_accept 43
#define NR_accept4 288
#define NR_bind 49
#define NR_ptrace 101
#define NR_memfd_create 319
#define NR_setuid 105
#define NR_setgid 106
#define NR_setreuid 113
#define NR_setregid 114
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_capset 126
#define NR_init_module 175
#define NR_finit_module 313
#define NR_execve 59
#define NR_execveat 322
#define SYSCALL_NR(regs) ((long)BPF_CORE_READ(regs, orig_ax))
#define SYSCALL_ARG1(regs) BPF_CORE_READ(regs, di)
#define SYSCALL_ARG2(regs) BPF_CORE_READ(regs, si)
#define SYSCALL_ARG3(regs) BPF_CORE_READ(regs, dx)
#define SYSCALL_ARG4(regs) BPF_CORE_READ(regs, r10)
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs { __u64 regs[31]; } CORE;
struct pt_regs { struct user_pt_regs user_regs; __u64 orig_x0; __s32 syscallno; } CORE;
#define SYSCALL_NR(regs) ((long)BPF_CORE_READ(regs, syscallno))
#define SYSCALL_ARG1(regs) BPF_CORE_READ(regs, orig_x0)
#define SYSCALL_ARG2(regs) BPF_CORE_READ(regs, user_regs.regs[1])
#define SYSCALL_ARG3(regs) BPF_CORE_READ(regs, user_regs.regs[2])
#define SYSCALL_ARG4(regs) BPF_CORE_READ(regs, user_regs.regs[3])
#define NR_open -1
#define NR_creat -1
#define NR_openat 56
#define NR_openat2 437
#define NR_connect 203
#define NR_accept 202
#define NR_accept4 242
#define NR_bind 200
#define NR_ptrace 117
#define NR_memfd_create 279
#define NR_setuid 146
#define NR_setgid 144
#define NR_setreuid 145
#define NR_setregid 143
#define NR_setresuid 147
#define NR_setresgid 149
#define NR_setfsuid 151
#define NR_setfsgid 152
#define NR_capset 91
#define NR_init_module 105
#define NR_finit_module 273
#define NR_execve 221
#define NR_execveat 281
#else
#error "unsupported architecture for Quarry's BPF programs"
#endif

#endif
