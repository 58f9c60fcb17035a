/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The kernel types schedrec's BPF programs read, and nothing else.
 *
 * Every struct carries preserve_access_index: field offsets are relocated
 * by libbpf against the running kernel's BTF (CO-RE), so the order and the
 * absence of other fields here do not matter, only the names and types of
 * the fields we read. Variants for older kernels use libbpf's "___suffix"
 * convention and are selected at load time with bpf_core_field_*().
 */
#ifndef __SCHEDREC_VMLINUX_MIN_H
#define __SCHEDREC_VMLINUX_MIN_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
/* Needed by libbpf's bpf_helper_defs.h. */
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };
typedef int pid_t;

/* The parts of uapi/linux/bpf.h we use. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};
enum { BPF_ANY = 0, BPF_NOEXIST = 1, BPF_EXIST = 2 };
#define BPF_F_INDEX_MASK 0xffffffffULL
#define BPF_F_CURRENT_CPU BPF_F_INDEX_MASK
enum { BPF_RB_NO_WAKEUP = 1, BPF_RB_FORCE_WAKEUP = 2 };
#define BPF_F_MMAPABLE (1U << 10) /* map_flags: user space may mmap the values */
enum { BPF_RB_AVAIL_DATA = 0 };
struct bpf_perf_event_value {
	__u64 counter;
	__u64 enabled;
	__u64 running;
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct cfs_rq;

/* Linux >= 6.8: util_est is one unsigned int (bit 31 = UTIL_AVG_UNCHANGED). */
struct sched_avg {
	u64 last_update_time;
	u64 load_sum;
	u64 runnable_sum;
	u32 util_sum;
	u32 period_contrib;
	unsigned long load_avg;
	unsigned long runnable_avg;
	unsigned long util_avg;
	unsigned int util_est;
};

/* Linux < 6.8: struct util_est { enqueued, ewma }. */
struct util_est___pre68 {
	unsigned int enqueued;
	unsigned int ewma;
};
struct sched_avg___pre68 {
	struct util_est___pre68 util_est;
};

struct rq;
struct cfs_rq {
	struct rq *rq; /* CONFIG_FAIR_GROUP_SCHED */
	struct sched_avg avg;
};

struct rq {
	int cpu;
	struct cfs_rq cfs;
};

struct sched_entity {
	struct sched_avg avg;
	/* unsigned int before 6.12, unsigned char since: read with
	 * BPF_CORE_READ_BITFIELD_PROBED, which follows the kernel's size. */
	unsigned char on_rq;
	unsigned char sched_delayed; /* Linux >= 6.12 */
	struct cfs_rq *cfs_rq;
	struct cfs_rq *my_q; /* non-NULL for group entities (CONFIG_FAIR_GROUP_SCHED) */
};

/* --cgroup: a task's cgroup v2 id is task->cgroups->dfl_cgrp->kn->id
 * (the inode number of its directory in cgroupfs). */
struct kernfs_node {
	u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct task_struct {
	unsigned int __state;
	int prio;
	unsigned int policy;
	pid_t pid;
	pid_t tgid;
	char comm[16];
	struct sched_entity se;
	struct task_struct *real_parent;
	struct css_set *cgroups;
};

/* Linux < 5.14 called __state "state". */
struct task_struct___pre514 {
	long state;
};

#pragma clang attribute pop

#endif
