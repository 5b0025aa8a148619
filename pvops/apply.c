/*
 * apply.c - the kernel side of the patcher: walk .pvop.sites, check each
 * site's bytes, write the plan through text_poke(), count what happened.
 *
 * A site must hold either its original bytes (the indirect call and the
 * assembler's NOPs) or exactly what this backend and mode want (so running
 * the patcher twice changes nothing). Anything else means the table and
 * the text disagree: we panic and name the site, op and bytes.
 */
#include "cmdline.h"
#include "kernel.h"
#include "mm.h"
#include "platform.h"
#include "pvop_backend.h"
#include "timer.h"

struct pvop_stats pvop_stats;
const struct pvop_backend *pvop_current;
enum pvop_mode pvop_mode = PVOP_MODE_INLINE;
enum pvop_pad pvop_pad = PVOP_PAD_DEFAULT;

void pvop_install_table(const struct pvop_backend *b)
{
	for (int op = 0; op < PVOP_NR; op++) {
		if (!b->op[op].call)
			panic("pvops: backend %s has no function for %s",
			      b->name, pvop_names[op]);
		pv_ops.fn[op] = b->op[op].call;
	}
}

static void dump_bytes(const char *what, const uint8_t *p, unsigned n)
{
	char buf[3 * PVOP_MAX_SLOT + 1];
	unsigned k = 0;
	for (unsigned i = 0; i < n && i < PVOP_MAX_SLOT; i++)
		k += snprintf(buf + k, sizeof(buf) - k, "%02x ", p[i]);
	buf[k ? k - 1 : 0] = '\0';
	printk("  %s: %s\n", what, buf);
}

static void check_site_bounds(const struct pvop_site *s,
			      const struct pvop_site *prev)
{
	if (s->op >= PVOP_NR)
		panic("pvops: site %016lx has unknown op %u", s->addr, s->op);
	if (s->len != pvop_slots[s->op])
		panic("pvops: site %016lx (%s) is %u bytes, its slot is %u",
		      s->addr, pvop_names[s->op], s->len, pvop_slots[s->op]);
	if (s->addr < (uint64_t)_text_start ||
	    s->addr + s->len > (uint64_t)_text_end)
		panic("pvops: site %016lx (%s) is outside kernel text", s->addr,
		      pvop_names[s->op]);
	/*
	 * A cheap check of neighbouring records only: the authority on
	 * overlaps, whatever the table order, is scripts/check_sites.py at
	 * build time.
	 */
	if (prev && s->addr < prev->addr + prev->len && s->addr >= prev->addr)
		panic("pvops: site %016lx (%s) overlaps site %016lx (%s)",
		      s->addr, pvop_names[s->op], prev->addr,
		      pvop_names[prev->op]);
}

int pvop_expected(const struct pvop_site *s, uint8_t *out)
{
	const char *why = "";
	int kind = pvop_site_plan(s, &pvop_current->op[s->op], pvop_mode,
				  pvop_pad, (uint64_t)&pv_ops, out, &why);
	if (kind < 0)
		panic(
		    "pvops: cannot patch site %016lx (%s, %u bytes) for %s: %s",
		    s->addr, pvop_names[s->op], s->len, pvop_current->name,
		    why);
	return kind;
}

static int patch_site(const struct pvop_site *s)
{
	uint8_t want[PVOP_MAX_SLOT];
	const uint8_t *cur = (const uint8_t *)s->addr;
	int kind = pvop_expected(s, want);

	if (!memcmp(cur, want, s->len))
		return kind;
	if (!pvop_site_is_original(s, (uint64_t)&pv_ops, cur)) {
		printk("tinypv: pvops: site %016lx (op %s, %u bytes) holds "
		       "unexpected bytes\n",
		       s->addr, pvop_names[s->op], s->len);
		dump_bytes("found", cur, s->len);
		dump_bytes("wanted", want, s->len);
		panic("pvops: corrupt or mismatched site table at %016lx",
		      s->addr);
	}
	/* Original bytes already are the indirect form: nothing to write. */
	if (kind != PVOP_KIND_INDIRECT)
		text_poke((void *)s->addr, want, s->len);
	return kind;
}

void pvop_patch_all(const struct pvop_backend *b, enum pvop_mode mode,
		    enum pvop_pad pad)
{
	const struct pvop_site *prev = NULL;
	uint64_t t0 = rdtsc_ordered();

	pvop_install_table(b);
	pvop_current = b;
	pvop_mode = mode;
	pvop_pad = pad;
	memset(&pvop_stats, 0, sizeof(pvop_stats));
	for (const struct pvop_site *s = __pvop_sites_start;
	     s < __pvop_sites_end; prev = s, s++) {
		check_site_bounds(s, prev);
		int kind = patch_site(s);
		/* Benchmark sites pin their mode: count them apart. */
		if (s->flags & PVOP_SITE_FORCE_MASK)
			pvop_stats.pinned++;
		else
			pvop_stats.sites[s->op][kind]++;
		pvop_stats.total++;
	}
	pvop_stats.done_tsc = rdtsc_ordered();
	pvop_stats.tsc_cycles = pvop_stats.done_tsc - t0;
}

void pvop_report(void)
{
	static const char *const mode_names[] = {"off", "noinline", "on"};

	printk("pvops: %s, mode %s, padding %s, %u sites (%u of them "
	       "benchmark sites pinned to a mode)\n",
	       pvop_current->name, mode_names[pvop_mode],
	       pvop_pad_names[pvop_pad], pvop_stats.total, pvop_stats.pinned);
	/* Under QEMU -icount shift=0 a TSC tick is one instruction. */
	printk("pvops: patching took %lu %s (%lu us; %lu per site)\n",
	       pvop_stats.tsc_cycles,
	       opts.icount ? "guest instructions" : "TSC ticks",
	       tsc_khz ? pvop_stats.tsc_cycles * 1000 / tsc_khz : 0,
	       pvop_stats.total ? pvop_stats.tsc_cycles / pvop_stats.total : 0);
	for (int op = 0; op < PVOP_NR; op++) {
		const unsigned *k = pvop_stats.sites[op];
		const struct pvop_impl *impl = &pvop_current->op[op];
		printk("pvop %-13s sites %2u: inline %u call %u nop %u "
		       "indirect %u  (%s)\n",
		       pvop_names[op], k[0] + k[1] + k[2] + k[3],
		       k[PVOP_KIND_INLINE], k[PVOP_KIND_CALL], k[PVOP_KIND_NOP],
		       k[PVOP_KIND_INDIRECT],
		       impl->nop   ? "nothing"
		       : impl->tpl ? "template"
				   : "function");
	}
}
