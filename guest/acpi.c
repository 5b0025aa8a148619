/*
 * acpi.c - find the CPUs in the firmware's MADT (acpi.h).
 *
 * Natively only: QEMU's PVH loader passes the RSDP's address in
 * hvm_start_info, and all tables are reached through the direct map.
 */
#include "acpi.h"
#include "kernel.h"
#include "mm.h"

bool acpi_checksum_ok(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += b[i];
	return sum == 0;
}

static const struct acpi_rsdp *rsdp_at(uint64_t pa)
{
	const struct acpi_rsdp *r = phys_to_virt(pa);

	if (memcmp(r->signature, "RSD PTR ", 8) || !acpi_checksum_ok(r, 20))
		return NULL;
	if (r->revision >= 2 &&
	    (r->length < sizeof(*r) || !acpi_checksum_ok(r, r->length)))
		return NULL;
	return r;
}

static const struct acpi_rsdp *rsdp_search(void)
{
	for (uint64_t pa = 0xe0000; pa < 0x100000; pa += 16) {
		const struct acpi_rsdp *r = rsdp_at(pa);
		if (r)
			return r;
	}
	return NULL;
}

/* A table whose signature matches and whose checksum holds, or NULL. */
static const struct acpi_sdt_header *sdt_at(uint64_t pa, const char *sig)
{
	const struct acpi_sdt_header *h;

	if (!pa || pa >= PHYS_MAP_SIZE)
		return NULL;
	h = phys_to_virt(pa);
	if (memcmp(h->signature, sig, 4) || h->length < sizeof(*h) ||
	    h->length > (1u << 20) || !acpi_checksum_ok(h, h->length))
		return NULL;
	return h;
}

static const struct acpi_madt *find_madt(const struct acpi_rsdp *r)
{
	const struct acpi_sdt_header *root;
	unsigned width = 8;

	root = r->revision >= 2 ? sdt_at(r->xsdt_address, "XSDT") : NULL;
	if (!root) {
		root = sdt_at(r->rsdt_address, "RSDT");
		width = 4;
	}
	if (!root)
		return NULL;
	const uint8_t *e = (const uint8_t *)(root + 1);
	unsigned n = (root->length - sizeof(*root)) / width;
	for (unsigned i = 0; i < n; i++) {
		uint64_t pa = 0;
		memcpy(&pa, e + i * width, width);
		const struct acpi_sdt_header *h = sdt_at(pa, "APIC");
		if (h && h->length >= sizeof(struct acpi_madt))
			return (const struct acpi_madt *)h;
	}
	return NULL;
}

static void add_cpu(struct acpi_cpus *c, uint32_t *ids, unsigned max,
		    uint32_t id, uint32_t flags)
{
	if (!(flags & ACPI_MADT_ENABLED))
		return; /* online-capable CPUs need hot-plug: not ours */
	c->present++;
	if (c->listed < max)
		ids[c->listed++] = id;
}

struct acpi_cpus acpi_find_cpus(uint64_t rsdp_pa, uint32_t *ids, unsigned max)
{
	struct acpi_cpus c = {0};
	const struct acpi_rsdp *r = rsdp_pa ? rsdp_at(rsdp_pa) : rsdp_search();

	if (!r) {
		c.problem = "no valid RSDP";
		return c;
	}
	const struct acpi_madt *m = find_madt(r);
	if (!m) {
		c.problem = "no valid MADT";
		return c;
	}
	const uint8_t *p = (const uint8_t *)(m + 1);
	const uint8_t *end = (const uint8_t *)m + m->header.length;
	while (p + sizeof(struct acpi_madt_entry) <= end) {
		const struct acpi_madt_entry *e = (const void *)p;
		if (e->length < 2 || p + e->length > end)
			break;
		if (e->type == ACPI_MADT_LAPIC && e->length >= 8) {
			const struct acpi_madt_lapic *l = (const void *)p;
			add_cpu(&c, ids, max, l->apic_id, l->flags);
		} else if (e->type == ACPI_MADT_X2APIC && e->length >= 16) {
			const struct acpi_madt_x2apic *x = (const void *)p;
			add_cpu(&c, ids, max, x->x2apic_id, x->flags);
		}
		p += e->length;
	}
	if (!c.present)
		c.problem = "the MADT lists no enabled CPU";
	return c;
}
