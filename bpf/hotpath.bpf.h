/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The context-switch and wakeup paths, included twice by schedrec.bpf.c with:
 *   SFX          suffix of the functions defined here (_btf, _raw)
 *   RD(p, f)     read field path f of kernel pointer p
 *   RD_SMALL(s, f)  read a small integer field whose size changed across
 *                kernels (se->on_rq: int before 6.12, char since)
 *   RD_RQ_CPU(p) p->se.cfs_rq->rq->cpu
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

static __always_inline void CAT(read_avg, SFX)(struct task_struct *p, struct sr_avg *a)
{
	struct sched_entity *se = &p->se;

	a->runnable_avg = RD(p, se.avg.runnable_avg);
	a->util_avg = RD(p, se.avg.util_avg);
	a->load_avg = RD(p, se.avg.load_avg);
	a->last_update_time = RD(p, se.avg.last_update_time);
	if (bpf_core_field_size(p->se.avg.util_est) == sizeof(unsigned int)) {
		a->util_est = RD(p, se.avg.util_est);
	} else {
		struct sched_avg___pre68 *old = (void *)&se->avg;
		a->util_est = BPF_CORE_READ(old, util_est.ewma);
	}
	a->flags = 0;
	if (RD_SMALL(se, on_rq))
		a->flags |= SR_PELT_ON_RQ;
	if (bpf_core_field_exists(se->sched_delayed) && RD_SMALL(se, sched_delayed))
		a->flags |= SR_PELT_DELAYED;
}

static __always_inline void CAT(read_sums, SFX)(struct task_struct *p, struct sr_sums *s)
{
	s->load_sum = RD(p, se.avg.load_sum);
	s->runnable_sum = RD(p, se.avg.runnable_sum);
	s->util_sum = RD(p, se.avg.util_sum);
	s->period_contrib = RD(p, se.avg.period_contrib);
	s->pad = 0;
}

static __always_inline int CAT(handle_switch, SFX)(bool preempt, struct task_struct *prev,
						   struct task_struct *next, unsigned int prev_state)
{
	if (hooks_only)
		return 0;
	u32 cpu = bpf_get_smp_processor_id();
	u64 ts = bpf_ktime_get_ns();
	struct sr_cpu *st;
	struct sr_switch *e;

	if (!cpu_selected(cpu))
		return 0;
	st = state();
	if (!st)
		return 0;
	/* Always advance the counters, so that a filtered or lost record does
	 * not merge two slices into the next one. */
	struct sr_counters ctr;
	if (ctr_mask) {
		__builtin_memset(&ctr, 0, sizeof(ctr));
		read_counters(st, ctr.c);
	}
	u32 prev_pid = RD(prev, pid), next_pid = RD(next, pid);
	u32 prev_tgid = RD(prev, tgid), next_tgid = RD(next, tgid);
	if (filter_tasks && !filter_cgroups && !bpf_map_lookup_elem(&tracked, &prev_tgid) &&
	    !bpf_map_lookup_elem(&tracked, &next_tgid))
		return 0;
	if (filter_cgroups && !task_selected(prev) && !task_selected(next))
		return 0;
	/* Metadata on first sight. `prev` was this CPU's last `next`, already
	 * noted, unless the recording started while it ran. */
	if (prev_pid != st->last_next)
		note_task(prev, prev_pid, ts, cpu, st);
	note_task(next, next_pid, ts, cpu, st);
	st->last_next = next_pid;

	/* Both sizes are constants once the read-only configuration is loaded. */
	u32 base = pelt_mode == 2 ? sizeof(struct sr_switch_full) : sizeof(struct sr_switch);
	u32 size = base + (ctr_mask ? sizeof(struct sr_counters) : 0);
	struct pcb_res res;
	e = pcb_reserve(cpu, size, &res, st, ts);
	if (!e)
		return 0;
	hdr(&e->h, ts, cpu, pelt_mode == 2 ? SR_EV_SWITCH_FULL : SR_EV_SWITCH,
	    preempt ? SR_F_PREEMPT : 0);
	e->prev_pid = prev_pid;
	e->prev_tgid = prev_tgid;
	e->prev_prio = RD(prev, prio);
	e->next_pid = next_pid;
	e->next_tgid = next_tgid;
	e->next_prio = RD(next, prio);
	e->prev_state = prev_state;
	e->pad = 0;
	if (ctr_mask)
		__builtin_memcpy((void *)e + base, &ctr, sizeof(ctr));
	if (pelt_mode)
		CAT(read_avg, SFX)(prev, &e->prev);
	else
		__builtin_memset(&e->prev, 0, sizeof(e->prev));
	if (pelt_mode == 2) {
		struct sr_switch_full *f = (void *)e;
		CAT(read_sums, SFX)(prev, &f->prev_sums);
		CAT(read_avg, SFX)(next, &f->next);
		CAT(read_sums, SFX)(next, &f->next_sums);
	}
	pcb_commit(&res);
	return 0;
}

static __always_inline int CAT(handle_wakeup, SFX)(struct task_struct *p, u16 flags)
{
	if (hooks_only)
		return 0;
	u32 cpu = bpf_get_smp_processor_id();
	u64 ts = bpf_ktime_get_ns();
	struct sr_cpu *st = state();
	struct sr_wakeup *e;
	u32 pid = RD(p, pid);
	u32 target = cpu;

	/* The CPU of the task's run-queue: task->se.cfs_rq->rq->cpu (the
	 * per-CPU `runqueues` symbol does not resolve on every kernel). */
	if (bpf_core_field_exists(((struct cfs_rq *)0)->rq))
		target = RD_RQ_CPU(p);

	if (!cpu_selected(target) || !task_selected(p))
		return 0;
	note_task(p, pid, ts, cpu, st);
	struct pcb_res res;
	if (pelt_mode == 2)
		e = pcb_reserve(cpu, sizeof(struct sr_wakeup_full), &res, st, ts);
	else
		e = pcb_reserve(cpu, sizeof(struct sr_wakeup), &res, st, ts);
	if (!e)
		return 0;
	hdr(&e->h, ts, cpu, pelt_mode == 2 ? SR_EV_WAKEUP_FULL : SR_EV_WAKEUP, flags);
	e->pid = pid;
	e->target_cpu = target;
	if (pelt_mode)
		CAT(read_avg, SFX)(p, &e->avg);
	else
		__builtin_memset(&e->avg, 0, sizeof(e->avg));
	if (pelt_mode == 2)
		CAT(read_sums, SFX)(p, &((struct sr_wakeup_full *)e)->sums);
	pcb_commit(&res);
	return 0;
}

#undef CAT
#undef CAT_
