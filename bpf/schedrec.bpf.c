// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * schedrec's kernel side: one record per context switch (with per-slice
 * counter deltas and the leaving task's PELT state), wakeups, migrations,
 * task metadata on first sight and on fork/exec/exit, and in --pelt full
 * mode the kernel's PELT update streams. Switch and wakeup records go to
 * per-CPU buffers (see schedrec.h), the rest to one ring buffer, submitted
 * without waking the reader until enough data is pending.
 *
 * Only tp_btf and raw_tp programs: kprobes and fentry are not available on
 * every host (lockdown, CONFIG_KPROBES=n), and tracefs may not be mounted.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "schedrec.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the recorder before load (read-only afterwards). */
const volatile u32 pelt_mode = 1;      /* 0 off, 1 switch, 2 full */
const volatile u32 ctr_mask = 0;       /* counter slots with an open perf event */
const volatile u64 wakeup_bytes = 256 << 10;
const volatile u32 filter_tasks = 0;   /* only tasks whose tgid is in `tracked` */
const volatile u32 filter_cpus = 0;    /* only CPUs set to 1 in `cpu_filter` */
const volatile u32 filter_cgroups = 0; /* only tasks whose cgroup v2 id is in `cgroup_filter` */
/* `bench overhead`'s floor: the switch and wakeup programs return at once,
 * so only the kernel's cost of calling them is left. */
const volatile u32 hooks_only = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sr_cpu);
} cpu_state SEC(".maps");

/* The per-CPU buffers (see schedrec.h). The recorder sizes both maps before
 * load: pcb_chunks elements of `pcb` per possible CPU (a power of two), one
 * `pcb_pos` each. */
const volatile u32 pcb_chunks = 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sr_pcb_chunk);
} pcb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sr_pos);
} pcb_pos SEC(".maps");

/* --cpus: 1 for each selected CPU (a map lookup keeps the verifier happy
 * with a CPU number read from kernel memory). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8192);
	__type(key, u32);
	__type(value, u8);
} cpu_filter SEC(".maps");

/* Tasks whose metadata was already emitted (pid -> 1). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, u32);
	__type(value, u32);
} seen SEC(".maps");

/* tgids to record when filter_tasks is set (the recorder seeds it; forks add children). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 14);
	__type(key, u32);
	__type(value, u32);
} tracked SEC(".maps");

/* --cgroup: cgroup v2 ids (a directory and every directory below it at
 * the start of the recording). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 14);
	__type(key, u64);
	__type(value, u8);
} cgroup_filter SEC(".maps");

/* One perf event per CPU for each counter slot, opened by the recorder. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} ctr0 SEC(".maps"), ctr1 SEC(".maps"), ctr2 SEC(".maps"), ctr3 SEC(".maps");

static __always_inline struct sr_cpu *state(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&cpu_state, &zero);
}

static __always_inline bool cpu_selected(u32 cpu)
{
	u8 *on;

	if (!filter_cpus)
		return true;
	on = bpf_map_lookup_elem(&cpu_filter, &cpu);
	return on && *on;
}

/* Whether any task filter is on (--tgid/--only-cmd, --cgroup). */
static __always_inline bool filtering(void)
{
	return filter_tasks || filter_cgroups;
}

/* A task is recorded when it matches any filter given. */
static __always_inline bool task_selected(struct task_struct *p)
{
	if (!filtering())
		return true;
	if (filter_tasks) {
		u32 tgid = BPF_CORE_READ(p, tgid);
		if (bpf_map_lookup_elem(&tracked, &tgid))
			return true;
	}
	if (filter_cgroups) {
		u64 id = BPF_CORE_READ(p, cgroups, dfl_cgrp, kn, id);
		if (bpf_map_lookup_elem(&cgroup_filter, &id))
			return true;
	}
	return false;
}

static __always_inline void count_loss(struct sr_cpu *st, u64 ts)
{
	__sync_fetch_and_add(&st->lost, 1);
	st->lost_last_ts = ts;
}

static __always_inline void *reserve(struct sr_cpu *st, u64 size, u64 ts)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e && st)
		count_loss(st, ts);
	return e;
}

/* Bytes a CPU submits between two looks at the ring buffer's fill level. */
#define SR_QUERY_BYTES (32 << 10)

static __always_inline void submit(void *e, u64 size, struct sr_cpu *st)
{
	/* Never wake the reader per record: a wake-up is an IPI (a VM exit on
	 * a guest), and the reader's own switches would be recorded. It drains
	 * on its own timer; each CPU looks at the fill level once per
	 * SR_QUERY_BYTES it submits (the query reads the reader's cache line)
	 * and wakes the reader when more than wakeup_bytes are pending. */
	u64 flags = BPF_RB_NO_WAKEUP;
	if (st) {
		st->unqueried += size;
		if (st->unqueried >= SR_QUERY_BYTES) {
			st->unqueried = 0;
			if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
				flags = BPF_RB_FORCE_WAKEUP;
		}
	}
	bpf_ringbuf_submit(e, flags);
}

/* A reservation in this CPU's buffer, published by pcb_commit(). */
struct pcb_res {
	struct sr_pos *pos;
	struct sr_cpu *st;
	u64 advance;  /* skipped bytes + the record */
	u64 new_head; /* `head` once the record is published */
};

/*
 * Only this CPU writes its buffer, and a BPF program is not migrated, but
 * one write can interrupt another: sched_switch runs with interrupts off,
 * and so does sched_wakeup almost always, but a task waking itself
 * (try_to_wake_up's p == current path) fires sched_wakeup with interrupts
 * on, and an interrupt there can wake another task. Newer kernels skip a
 * raw-tracepoint program that re-enters itself (a recursion miss of the
 * program); where a nested one does run, a record that finds the buffer
 * busy is counted as lost instead. Nothing runs in NMI context. So no
 * lock and no atomic operation is needed until the record is published.
 */
static __always_inline void *pcb_reserve(u32 cpu, u32 size, struct pcb_res *res,
					 struct sr_cpu *st, u64 ts)
{
	struct sr_pos *pos = bpf_map_lookup_elem(&pcb_pos, &cpu);
	struct sr_pcb_chunk *c;
	u64 head, off, skip = 0;
	u32 idx;

	if (!st)
		return 0;
	if (st->pcb_busy) {
		count_loss(st, ts);
		return 0;
	}
	/* Busy before `head` is read: a write that interrupts this one from
	 * here on is refused, rather than taking the same room. */
	st->pcb_busy = 1;
	asm volatile("" ::: "memory");
	if (!pos)
		goto lost;
	head = pos->head;
	off = head & (SR_PCB_CHUNK - 1);
	if (off + size > SR_PCB_CHUNK)
		skip = SR_PCB_CHUNK - off;
	if (head + skip + size - *(volatile u64 *)&pos->tail > (u64)pcb_chunks * SR_PCB_CHUNK)
		goto lost;
	if (skip) {
		if (skip >= sizeof(struct sr_hdr)) {
			idx = cpu * pcb_chunks + ((u32)(head / SR_PCB_CHUNK) & (pcb_chunks - 1));
			c = bpf_map_lookup_elem(&pcb, &idx);
			if (c)
				((struct sr_hdr *)&c->data[off & (SR_PCB_CHUNK - 1)])->type = SR_EV_PAD;
		}
		head += skip;
		off = 0;
	}
	idx = cpu * pcb_chunks + ((u32)(head / SR_PCB_CHUNK) & (pcb_chunks - 1));
	c = bpf_map_lookup_elem(&pcb, &idx);
	if (!c)
		goto lost;
	res->pos = pos;
	res->st = st;
	res->advance = skip + size;
	res->new_head = head + size;
	return &c->data[off & (SR_PCB_CHUNK - 1)];
lost:
	st->pcb_busy = 0;
	count_loss(st, ts);
	return 0;
}

static __always_inline void pcb_commit(struct pcb_res *res)
{
#if defined(__TARGET_ARCH_x86)
	/* x86 keeps stores in order (TSO), and only this CPU's program writes
	 * `head` (pcb_busy keeps a nested one out): a plain store after the
	 * record's, kept after them by the compiler barrier, publishes it. A
	 * locked add would also wait for the record's stores to leave the
	 * store buffer (cache misses in a buffer the reader emptied) first. */
	asm volatile("" ::: "memory");
	*(volatile u64 *)&res->pos->head = res->new_head;
	/* Not busy only once published: a nested record that came in between
	 * would take the same room. */
	asm volatile("" ::: "memory");
#else
	/* Elsewhere only the fetching form of the atomic add is fully ordered
	 * (the plain one is relaxed on arm64 and riscv): its result is used.
	 * build.rs compiles with -mcpu=v3 there (kernel 5.12+). */
	if (__sync_fetch_and_add(&res->pos->head, res->advance) == ~0ULL)
		res->st->lost_last_ts = 0;
#endif
	res->st->pcb_busy = 0;
}

static __always_inline void hdr(struct sr_hdr *h, u64 ts, u32 cpu, u16 type, u16 flags)
{
	h->ts = ts;
	h->cpu = cpu;
	h->type = type;
	h->flags = flags;
}

/* Averages of a sched_avg that is not a task's (group entity, cfs_rq). */
static __always_inline void read_sched_avg(struct sched_avg *avg, struct sr_avg *a)
{
	a->runnable_avg = BPF_CORE_READ(avg, runnable_avg);
	a->util_avg = BPF_CORE_READ(avg, util_avg);
	a->load_avg = BPF_CORE_READ(avg, load_avg);
	a->last_update_time = BPF_CORE_READ(avg, last_update_time);
	a->util_est = 0;
	a->flags = 0;
}

static __always_inline void read_sums(struct sched_avg *avg, struct sr_sums *s)
{
	s->load_sum = BPF_CORE_READ(avg, load_sum);
	s->runnable_sum = BPF_CORE_READ(avg, runnable_sum);
	s->util_sum = BPF_CORE_READ(avg, util_sum);
	s->period_contrib = BPF_CORE_READ(avg, period_contrib);
	s->pad = 0;
}

/* A task record; `new_comm` (task_rename) overrides the task's current comm. */
static __always_inline void emit_task_comm(struct task_struct *p, u32 event, u64 ts, u32 cpu,
					   struct sr_cpu *st, const char *new_comm)
{
	struct sr_task *e = reserve(st, sizeof(*e), ts);
	if (!e)
		return;
	hdr(&e->h, ts, cpu, SR_EV_TASK, 0);
	e->pid = BPF_CORE_READ(p, pid);
	e->tgid = BPF_CORE_READ(p, tgid);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->prio = BPF_CORE_READ(p, prio);
	e->policy = BPF_CORE_READ(p, policy);
	e->event = event;
	if (new_comm)
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), new_comm);
	else
		BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
	submit(e, sizeof(*e), st);
}

static __always_inline void emit_task(struct task_struct *p, u32 event, u64 ts, u32 cpu, struct sr_cpu *st)
{
	emit_task_comm(p, event, ts, cpu, st, 0);
}

/* Task metadata the first time a task is seen: never a comm per switch. */
static __always_inline void note_task(struct task_struct *p, u32 pid, u64 ts, u32 cpu,
				      struct sr_cpu *st)
{
	u32 one = 1;

	if (pid == 0)
		return;
	if (st && st->seen_cache[pid & 63] == pid)
		return;
	if (!bpf_map_lookup_elem(&seen, &pid) &&
	    bpf_map_update_elem(&seen, &pid, &one, BPF_NOEXIST) == 0)
		emit_task(p, SR_TASK_SEEN, ts, cpu, st);
	if (st)
		st->seen_cache[pid & 63] = pid;
}

#define READ_CTR(k, map)                                                            \
	if (ctr_mask & (1 << k)) {                                                      \
		struct bpf_perf_event_value v = {};                                         \
		if (bpf_perf_event_read_value(&map, BPF_F_CURRENT_CPU, &v, sizeof(v)) == 0) { \
			if (st->last[k].enabled) {                                          \
				out[k].value = v.counter - st->last[k].counter;             \
				out[k].enabled = v.enabled - st->last[k].enabled;           \
				out[k].running = v.running - st->last[k].running;           \
			}                                                                   \
			st->last[k] = v;                                                    \
		}                                                                           \
	}

static __always_inline void read_counters(struct sr_cpu *st, struct sr_counter *out)
{
	READ_CTR(0, ctr0);
	READ_CTR(1, ctr1);
	READ_CTR(2, ctr2);
	READ_CTR(3, ctr3);
}

/* The CPU of a task's run-queue: task->se.cfs_rq->rq->cpu (the per-CPU
 * `runqueues` symbol does not resolve on every kernel). */
static __always_inline u32 task_rq_cpu(struct task_struct *p, u32 fallback)
{
	if (!bpf_core_field_exists(((struct cfs_rq *)0)->rq))
		return fallback;
	return BPF_CORE_READ(p, se.cfs_rq, rq, cpu);
}

/*
 * The switch and wakeup paths run ~10^5-10^6 times a second, so they are
 * built twice from hotpath.bpf.h: for tp_btf, whose task pointers are BTF-typed and read with
 * plain (CO-RE relocated) loads, and for raw_tp, where every read goes
 * through bpf_probe_read_kernel (BPF_CORE_READ), several times slower.
 */
#define SFX _btf
#define RD(p, f) ((p)->f)
#define RD_SMALL(s, f) ((s)->f)
#define RD_RQ_CPU(p) ((p)->se.cfs_rq->rq->cpu)
#include "hotpath.bpf.h"
#undef SFX
#undef RD
#undef RD_SMALL
#undef RD_RQ_CPU

#define SFX _raw
#define RD(p, f) BPF_CORE_READ(p, f)
#define RD_SMALL(s, f) BPF_CORE_READ_BITFIELD_PROBED(s, f)
#define RD_RQ_CPU(p) BPF_CORE_READ(p, se.cfs_rq, rq, cpu)
#include "hotpath.bpf.h"
#undef SFX
#undef RD
#undef RD_SMALL
#undef RD_RQ_CPU

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	return handle_switch_btf(preempt, prev, next, prev_state);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	return handle_switch_raw(preempt, prev, next, prev_state);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup_btf, struct task_struct *p)
{
	return handle_wakeup_btf(p, 0);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(wakeup_raw, struct task_struct *p)
{
	return handle_wakeup_raw(p, 0);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wakeup_new_btf, struct task_struct *p)
{
	return handle_wakeup_btf(p, SR_F_NEW);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(wakeup_new_raw, struct task_struct *p)
{
	return handle_wakeup_raw(p, SR_F_NEW);
}


SEC("raw_tp/sched_migrate_task")
int BPF_PROG(migrate, struct task_struct *p, int dest_cpu)
{
	u32 cpu = bpf_get_smp_processor_id();
	u64 ts = bpf_ktime_get_ns();
	struct sr_cpu *st = state();
	struct sr_migrate *e;
	u32 orig = task_rq_cpu(p, cpu);

	if ((!cpu_selected(orig) && !cpu_selected(dest_cpu)) || !task_selected(p))
		return 0;
	e = reserve(st, sizeof(*e), ts);
	if (!e)
		return 0;
	hdr(&e->h, ts, cpu, SR_EV_MIGRATE, 0);
	e->pid = BPF_CORE_READ(p, pid);
	e->orig_cpu = orig;
	e->dest_cpu = dest_cpu;
	e->pad = 0;
	submit(e, sizeof(*e), st);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(proc_fork, struct task_struct *parent, struct task_struct *child)
{
	u32 cpu = bpf_get_smp_processor_id();
	u64 ts = bpf_ktime_get_ns();
	u32 pid = BPF_CORE_READ(child, pid);
	u32 one = 1;

	if (filtering()) {
		u32 ptgid = BPF_CORE_READ(parent, tgid);
		u32 ctgid = BPF_CORE_READ(child, tgid);
		if (filter_tasks && bpf_map_lookup_elem(&tracked, &ptgid))
			bpf_map_update_elem(&tracked, &ctgid, &one, BPF_ANY);
		/* A child starts in its parent's cgroup, set before this fires. */
		if (!task_selected(child))
			return 0;
	}
	bpf_map_update_elem(&seen, &pid, &one, BPF_ANY);
	emit_task(child, SR_TASK_FORK, ts, cpu, state());
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p)
{
	u32 pid = BPF_CORE_READ(p, pid);
	u32 one = 1;

	if (!task_selected(p))
		return 0;
	bpf_map_update_elem(&seen, &pid, &one, BPF_ANY);
	emit_task(p, SR_TASK_EXEC, bpf_ktime_get_ns(), bpf_get_smp_processor_id(), state());
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *p)
{
	if (!task_selected(p))
		return 0;
	/* The pid stays in `seen`: a task reusing it arrives through fork,
	 * which writes its metadata anew. */
	emit_task(p, SR_TASK_EXIT, bpf_ktime_get_ns(), bpf_get_smp_processor_id(), state());
	return 0;
}

/* prctl(PR_SET_NAME), pthread_setname_np: the new comm, before it is set. */
SEC("raw_tp/task_rename")
int BPF_PROG(task_rename, struct task_struct *p, const char *comm)
{
	u64 ts = bpf_ktime_get_ns();
	u32 cpu = bpf_get_smp_processor_id();
	u32 pid = BPF_CORE_READ(p, pid);
	u32 one = 1;

	if (!task_selected(p))
		return 0;
	bpf_map_update_elem(&seen, &pid, &one, BPF_ANY);
	emit_task_comm(p, SR_TASK_RENAME, ts, cpu, state(), comm);
	return 0;
}

/* --pelt full: every PELT update that crossed a period boundary. */
SEC("raw_tp/pelt_se_tp")
int BPF_PROG(pelt_se, struct sched_entity *se)
{
	u32 cpu = bpf_get_smp_processor_id();
	u64 ts = bpf_ktime_get_ns();
	struct sr_cpu *st = state();
	struct sr_pelt *e;
	struct task_struct *p = 0;
	u32 rq_cpu = BPF_CORE_READ(se, cfs_rq, rq, cpu);

	if (!cpu_selected(rq_cpu))
		return 0;
	if (!bpf_core_field_exists(se->my_q) || !BPF_CORE_READ(se, my_q)) {
		p = (void *)se - bpf_core_field_offset(struct task_struct, se);
		if (!task_selected(p))
			return 0;
	} else if (filtering()) {
		return 0;
	}
	e = reserve(st, sizeof(*e), ts);
	if (!e)
		return 0;
	hdr(&e->h, ts, cpu, SR_EV_PELT, 0);
	e->rq_cpu = rq_cpu;
	e->pad = 0;
	if (p) {
		e->entity = SR_ENT_TASK;
		e->pid = BPF_CORE_READ(p, pid);
		read_avg_raw(p, &e->avg);
	} else {
		e->entity = SR_ENT_GROUP_SE;
		e->pid = 0;
		read_sched_avg(&se->avg, &e->avg);
		e->avg.flags = BPF_CORE_READ_BITFIELD_PROBED(se, on_rq) ? SR_PELT_ON_RQ : 0;
	}
	read_sums(&se->avg, &e->sums);
	submit(e, sizeof(*e), st);
	return 0;
}

SEC("raw_tp/pelt_cfs_tp")
int BPF_PROG(pelt_cfs, struct cfs_rq *cfs_rq)
{
	u32 cpu = bpf_get_smp_processor_id();
	u64 ts = bpf_ktime_get_ns();
	struct sr_cpu *st = state();
	struct sr_pelt *e;
	struct rq *rq = BPF_CORE_READ(cfs_rq, rq);
	u32 rq_cpu = BPF_CORE_READ(rq, cpu);

	/* Only the CPU's root cfs_rq (rq->cfs), not every group's. */
	if ((void *)cfs_rq != (void *)rq + bpf_core_field_offset(struct rq, cfs))
		return 0;
	if (!cpu_selected(rq_cpu) || filtering())
		return 0;
	e = reserve(st, sizeof(*e), ts);
	if (!e)
		return 0;
	hdr(&e->h, ts, cpu, SR_EV_PELT, 0);
	e->entity = SR_ENT_CFS_RQ;
	e->rq_cpu = rq_cpu;
	e->pid = 0;
	e->pad = 0;
	read_sched_avg(&cfs_rq->avg, &e->avg);
	/* The root cfs_rq's util_est: the sum of its enqueued tasks'. */
	if (bpf_core_field_size(cfs_rq->avg.util_est) == sizeof(unsigned int))
		e->avg.util_est = BPF_CORE_READ(cfs_rq, avg.util_est);
	read_sums(&cfs_rq->avg, &e->sums);
	submit(e, sizeof(*e), st);
	return 0;
}

SEC("raw_tp/cpu_frequency")
int BPF_PROG(cpu_frequency, unsigned int frequency, unsigned int cpu_id)
{
	u32 cpu = bpf_get_smp_processor_id();
	u64 ts = bpf_ktime_get_ns();
	struct sr_cpu *st = state();
	struct sr_freq *e;

	if (!cpu_selected(cpu_id))
		return 0;
	e = reserve(st, sizeof(*e), ts);
	if (!e)
		return 0;
	hdr(&e->h, ts, cpu, SR_EV_FREQ, 0);
	e->target_cpu = cpu_id;
	e->freq_khz = frequency;
	submit(e, sizeof(*e), st);
	return 0;
}
