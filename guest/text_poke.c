/*
 * text_poke.c - the one path that writes kernel text.
 *
 * Kernel text is never mapped writable. To change it we map the target
 * page(s) at a scratch window (two pages in .bss, so a write may straddle
 * a page boundary), write through that alias, restore the window's own
 * mapping and serialise. The platform supplies the map/unmap steps
 * (native PTE edit + invlpg, or Xen's update_va_mapping).
 *
 * Today the caller is the boot-time patcher on one CPU with interrupts
 * off. Live SMP patching (the int3 protocol) will sit on top of this:
 * write int3, sync all CPUs, write the tail, sync, write the first byte.
 */
#include "kernel.h"
#include "mm.h"
#include "platform.h"
#include "pvops.h"

static uint8_t poke_window[2 * PAGE_SIZE] __attribute__((aligned(4096)));
static uint64_t pokes;

uint64_t text_poke_count(void)
{
	return pokes;
}

void text_poke(void *addr, const void *src, unsigned len)
{
	uintptr_t a = (uintptr_t)addr;
	uintptr_t page = ALIGN_DOWN(a, PAGE_SIZE);
	uintptr_t off = a - page;
	uintptr_t win = (uintptr_t)poke_window;
	bool two = off + len > PAGE_SIZE;

	if (a < (uintptr_t)_text_start || a + len > (uintptr_t)_text_end ||
	    len > PAGE_SIZE)
		panic("text_poke: %p+%u is not inside kernel text", addr, len);

	unsigned long fl = irq_save();
	platform->alias_map(win, page);
	flush_tlb_one(win);
	if (two) {
		platform->alias_map(win + PAGE_SIZE, page + PAGE_SIZE);
		flush_tlb_one(win + PAGE_SIZE);
	}
	memcpy(poke_window + off, src, len);
	if (two) {
		platform->alias_unmap(win + PAGE_SIZE);
		flush_tlb_one(win + PAGE_SIZE);
	}
	platform->alias_unmap(win);
	flush_tlb_one(win);
	/* Serialise so this CPU fetches the new bytes (cpuid serialises). */
	(void)cpuid(0, 0);
	irq_restore(fl);
	if (memcmp(addr, src, len))
		panic("text_poke: %p still differs after the write", addr);
	pokes++;
}
