/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Records the BPF programs put in the per-CPU buffers (switches, wakeups)
 * and the ring buffer (the rest). This header is the one
 * definition of their layout: recorder/src/events.rs mirrors it with
 * #[repr(C)] structs and checks every size at compile time, as the
 * _Static_asserts below do here. Change both together.
 *
 * All fields are native-endian (the recorder runs on the recorded host).
 */
#ifndef __SCHEDREC_H
#define __SCHEDREC_H

#define SR_EV_PAD 0 /* per-CPU buffer: the rest of this chunk is unused */
#define SR_EV_SWITCH 1
#define SR_EV_SWITCH_FULL 2
#define SR_EV_WAKEUP 3
#define SR_EV_WAKEUP_FULL 4
#define SR_EV_TASK 5
#define SR_EV_MIGRATE 6
#define SR_EV_PELT 7
#define SR_EV_FREQ 8

/* sr_hdr.flags */
#define SR_F_PREEMPT 1 /* switch: the switch was a preemption */
#define SR_F_NEW 1     /* wakeup: sched_wakeup_new */

/* sr_avg.flags */
#define SR_PELT_ON_RQ 1
#define SR_PELT_DELAYED 2

/* sr_task.event: as the trace format's task event */
#define SR_TASK_SEEN 0
#define SR_TASK_FORK 1
#define SR_TASK_EXEC 2
#define SR_TASK_RENAME 3
#define SR_TASK_EXIT 4

/* sr_pelt.entity */
#define SR_ENT_TASK 0
#define SR_ENT_CFS_RQ 1
#define SR_ENT_GROUP_SE 2

#define SR_COUNTERS 4
#define SR_COMM_LEN 16

struct sr_hdr {
	__u64 ts; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 cpu;
	__u16 type;
	__u16 flags;
};

struct sr_avg {
	__u64 runnable_avg;
	__u64 util_avg;
	__u64 load_avg;
	__u64 last_update_time;
	__u32 util_est;
	__u32 flags;
};

struct sr_sums {
	__u64 load_sum;
	__u64 runnable_sum;
	__u64 util_sum;
	__u32 period_contrib;
	__u32 pad;
};

struct sr_counter {
	__u64 value;
	__u64 enabled;
	__u64 running;
};

/*
 * A switch record is an sr_switch (--pelt off/switch) or an sr_switch_full
 * (--pelt full), followed by an sr_counters when any counter is open: a host
 * without a PMU writes 88 or 192 bytes per switch, not 184 or 288.
 */
struct sr_switch {
	struct sr_hdr h;
	__u32 prev_pid;
	__u32 prev_tgid;
	__u32 next_pid;
	__u32 next_tgid;
	__s32 prev_prio;
	__s32 next_prio;
	__u32 prev_state;
	__u32 pad;
	struct sr_avg prev; /* valid when the header says pelt != off */
};

struct sr_counters {
	struct sr_counter c[SR_COUNTERS];
};

struct sr_switch_full {
	struct sr_switch s;
	struct sr_sums prev_sums;
	struct sr_avg next;
	struct sr_sums next_sums;
};

struct sr_wakeup {
	struct sr_hdr h;
	__u32 pid;
	__u32 target_cpu;
	struct sr_avg avg;
};

struct sr_wakeup_full {
	struct sr_wakeup w;
	struct sr_sums sums;
};

struct sr_task {
	struct sr_hdr h;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__s32 prio;
	__u32 policy;
	__u32 event;
	char comm[SR_COMM_LEN];
};

struct sr_migrate {
	struct sr_hdr h;
	__u32 pid;
	__u32 orig_cpu;
	__u32 dest_cpu;
	__u32 pad;
};

struct sr_pelt {
	struct sr_hdr h;
	__u32 entity;
	__u32 rq_cpu;
	__u32 pid;
	__u32 pad;
	struct sr_avg avg;
	struct sr_sums sums;
};

struct sr_freq {
	struct sr_hdr h;
	__u32 target_cpu;
	__u32 freq_khz;
};

/*
 * The per-CPU buffers of the switch and wakeup records: each CPU owns
 * `pcb_chunks` consecutive elements of the `pcb` array map (SR_PCB_CHUNK
 * bytes of records each, plus slack the verifier needs for its bounds), and
 * one `sr_pos` in `pcb_pos`. Positions count bytes since the start. The
 * CPU's program writes a record at `head`, then publishes it by advancing
 * `head` (one aligned 8-byte store after the record's on x86, whose stores
 * stay in order; a fully ordered atomic add elsewhere); the reader loads
 * `head` with acquire ordering, consumes up to it and then advances
 * `tail`. A record never straddles two chunks: where the next one does not
 * fit, the producer skips to the next chunk, leaving an SR_EV_PAD header
 * when at least a header's room is left. A record that does not fit
 * between `tail` and `head` + capacity is lost and counted.
 */
#define SR_PCB_CHUNK (64 << 10)
#define SR_PCB_SLACK 512

struct sr_pcb_chunk {
	__u8 data[SR_PCB_CHUNK + SR_PCB_SLACK];
};

struct sr_pos {
	__u64 head; /* written by the BPF program of this CPU */
	__u64 pad0[7];
	__u64 tail; /* written by the reader */
	__u64 pad1[7];
};

/* Per-CPU state (a PERCPU_ARRAY of one element). */
struct sr_cpu {
	struct bpf_perf_event_value last[SR_COUNTERS];
	__u64 lost;         /* ring-buffer reservations that failed */
	__u64 lost_last_ts; /* time of the latest one */
	__u32 last_next;    /* pid of the task this CPU last switched to */
	__u32 unqueried;    /* bytes submitted since the last ring-buffer query */
	/* pids whose metadata is known, direct-mapped by pid % 64: most
	 * switches involve a few hot tasks, and this saves a hash lookup. */
	__u32 seen_cache[64];
	__u32 pcb_busy; /* a record of this CPU's buffer is being written */
	__u32 pad;
};

_Static_assert(sizeof(struct sr_hdr) == 16, "sr_hdr");
_Static_assert(sizeof(struct sr_pos) == 128, "sr_pos");
_Static_assert(__builtin_offsetof(struct sr_pos, tail) == 64, "sr_pos.tail");
_Static_assert(__builtin_offsetof(struct sr_hdr, type) == 12, "sr_hdr.type");
_Static_assert(sizeof(struct sr_switch_full) + sizeof(struct sr_counters) <= SR_PCB_SLACK,
	       "the largest record must fit in the verifier's slack");
_Static_assert(sizeof(struct sr_avg) == 40, "sr_avg");
_Static_assert(sizeof(struct sr_sums) == 32, "sr_sums");
_Static_assert(sizeof(struct sr_switch) == 88, "sr_switch");
_Static_assert(sizeof(struct sr_switch_full) == 192, "sr_switch_full");
_Static_assert(sizeof(struct sr_counters) == 96, "sr_counters");
_Static_assert(sizeof(struct sr_wakeup) == 64, "sr_wakeup");
_Static_assert(sizeof(struct sr_wakeup_full) == 96, "sr_wakeup_full");
_Static_assert(sizeof(struct sr_task) == 56, "sr_task");
_Static_assert(sizeof(struct sr_migrate) == 32, "sr_migrate");
_Static_assert(sizeof(struct sr_pelt) == 104, "sr_pelt");
_Static_assert(sizeof(struct sr_freq) == 24, "sr_freq");
_Static_assert(sizeof(struct sr_cpu) == 384, "sr_cpu");

#endif
