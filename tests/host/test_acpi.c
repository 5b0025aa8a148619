/*
 * test_acpi.c - the MADT walk (guest/acpi.c, compiled unchanged) over
 * tables built in a buffer that stands in for physical memory: RSDP
 * revisions, XSDT and RSDT, the BIOS-area search, checksums, disabled and
 * x2APIC entries, truncation to the caller's array, a malformed entry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "ktap.h"

uint64_t phys_map_base; /* mm.h: phys_to_virt(pa) = phys_map_base + pa */

#define MEM_SIZE 0x100000 /* the first MiB: the RSDP search area included */
static uint8_t *mem;

#define RSDP_PA 0x9000
#define XSDT_PA 0x10000
#define RSDT_PA 0x11000
#define MADT_PA 0x12000
#define OTHER_PA 0x13000

static void *at(uint64_t pa)
{
	return mem + pa;
}

static void fix_checksum(void *p, size_t n, uint8_t *field)
{
	uint8_t sum = 0;
	*field = 0;
	for (size_t i = 0; i < n; i++)
		sum += ((uint8_t *)p)[i];
	*field = (uint8_t)-sum;
}

static void sdt(uint64_t pa, const char *sig, uint32_t len)
{
	struct acpi_sdt_header *h = at(pa);
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = 1;
	fix_checksum(h, len, &h->checksum);
}

static void rsdp(uint64_t pa, int revision)
{
	struct acpi_rsdp *r = at(pa);
	memcpy(r->signature, "RSD PTR ", 8);
	r->revision = revision;
	r->rsdt_address = RSDT_PA;
	r->xsdt_address = XSDT_PA;
	r->length = sizeof(*r);
	fix_checksum(r, 20, &r->checksum);
	fix_checksum(r, sizeof(*r), &r->extended_checksum);
}

/* A MADT: n LAPIC entries (id i, enabled unless i == off) + one x2APIC. */
static void madt(unsigned n, unsigned off, uint32_t x2id)
{
	struct acpi_madt *m = at(MADT_PA);
	uint8_t *p = (uint8_t *)(m + 1);

	m->lapic_address = 0xfee00000;
	for (unsigned i = 0; i < n; i++, p += 8) {
		struct acpi_madt_lapic *l = (void *)p;
		*l = (struct acpi_madt_lapic){{ACPI_MADT_LAPIC, 8},
					      i,
					      i,
					      i == off ? 0 : ACPI_MADT_ENABLED};
	}
	if (x2id) {
		struct acpi_madt_x2apic *x = (void *)p;
		*x = (struct acpi_madt_x2apic){
		    {ACPI_MADT_X2APIC, 16}, 0, x2id, ACPI_MADT_ENABLED, 99};
		p += 16;
	}
	sdt(MADT_PA, "APIC", p - (uint8_t *)m);
}

/* Root tables: another table first, then the MADT. */
static void roots(void)
{
	uint64_t *x = (uint64_t *)((struct acpi_sdt_header *)at(XSDT_PA) + 1);
	uint32_t *r = (uint32_t *)((struct acpi_sdt_header *)at(RSDT_PA) + 1);

	sdt(OTHER_PA, "FACP", 36);
	x[0] = OTHER_PA;
	x[1] = MADT_PA;
	r[0] = OTHER_PA;
	r[1] = MADT_PA;
	sdt(XSDT_PA, "XSDT", 36 + 16);
	sdt(RSDT_PA, "RSDT", 36 + 8);
}

static void fresh(void)
{
	memset(mem, 0, MEM_SIZE);
	roots();
	madt(4, 2, 300); /* ids 0 1 3 and x2APIC 300; 2 disabled */
	rsdp(RSDP_PA, 2);
}

static void expect_ids(struct acpi_cpus c, const uint32_t *ids,
		       const uint32_t *want, unsigned n)
{
	KTAP_CHECK(c.listed == n, "listed %u, want %u", c.listed, n);
	for (unsigned i = 0; i < n && i < c.listed; i++)
		KTAP_CHECK(ids[i] == want[i], "ids[%u] = %u, want %u", i,
			   ids[i], want[i]);
}

static void xsdt_lists_enabled_cpus(void)
{
	uint32_t ids[16], want[] = {0, 1, 3, 300};

	ktap_case("xsdt_lists_enabled_cpus");
	fresh();
	struct acpi_cpus c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(c.present == 4 && !c.problem, "present %u, problem %s",
		   c.present, c.problem ? c.problem : "none");
	expect_ids(c, ids, want, 4);
	ktap_end_case();
}

static void rsdt_for_revision_0(void)
{
	uint32_t ids[16], want[] = {0, 1, 3, 300};

	ktap_case("rsdt_for_revision_0");
	fresh();
	sdt(XSDT_PA, "XXXX", 36); /* an XSDT that must not be used */
	rsdp(RSDP_PA, 0);
	struct acpi_cpus c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(c.present == 4, "present %u", c.present);
	expect_ids(c, ids, want, 4);
	ktap_end_case();
}

static void bad_xsdt_falls_back_to_rsdt(void)
{
	uint32_t ids[16];

	ktap_case("bad_xsdt_falls_back_to_rsdt");
	fresh();
	((struct acpi_sdt_header *)at(XSDT_PA))->checksum ^= 1;
	struct acpi_cpus c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(c.present == 4, "present %u", c.present);
	ktap_end_case();
}

static void rsdp_found_in_bios_area(void)
{
	uint32_t ids[16];

	ktap_case("rsdp_found_in_bios_area");
	fresh();
	memset(at(RSDP_PA), 0, sizeof(struct acpi_rsdp));
	rsdp(0xe0010, 2);
	struct acpi_cpus c = acpi_find_cpus(0, ids, 16);
	KTAP_CHECK(c.present == 4, "present %u (%s)", c.present,
		   c.problem ? c.problem : "no problem");
	memset(at(0xe0010), 0, sizeof(struct acpi_rsdp));
	c = acpi_find_cpus(0, ids, 16);
	KTAP_CHECK(!c.present && c.problem &&
		       !strcmp(c.problem, "no valid RSDP"),
		   "no RSDP anywhere: present %u, problem %s", c.present,
		   c.problem ? c.problem : "none");
	ktap_end_case();
}

static void checksums_are_checked(void)
{
	uint32_t ids[16];

	ktap_case("checksums_are_checked");
	fresh();
	((struct acpi_rsdp *)at(RSDP_PA))->checksum ^= 1;
	struct acpi_cpus c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(!c.present && c.problem &&
		       !strcmp(c.problem, "no valid RSDP"),
		   "bad RSDP: present %u, problem %s", c.present,
		   c.problem ? c.problem : "none");
	fresh();
	((struct acpi_rsdp *)at(RSDP_PA))->extended_checksum ^= 1;
	c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(!c.present, "bad extended checksum accepted");
	fresh();
	((struct acpi_madt *)at(MADT_PA))->lapic_address ^= 1;
	c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(!c.present && c.problem &&
		       !strcmp(c.problem, "no valid MADT"),
		   "bad MADT: present %u, problem %s", c.present,
		   c.problem ? c.problem : "none");
	KTAP_CHECK(acpi_checksum_ok("\x01\xff", 2) &&
		       !acpi_checksum_ok("\x01\xfe", 2),
		   "acpi_checksum_ok");
	ktap_end_case();
}

static void more_cpus_than_room(void)
{
	uint32_t ids[2], want[] = {0, 1};

	ktap_case("more_cpus_than_room");
	fresh();
	struct acpi_cpus c = acpi_find_cpus(RSDP_PA, ids, 2);
	KTAP_CHECK(c.present == 4, "present %u", c.present);
	expect_ids(c, ids, want, 2);
	ktap_end_case();
}

static void malformed_entry_ends_the_walk(void)
{
	uint32_t ids[16], want[] = {0};

	ktap_case("malformed_entry_ends_the_walk");
	fresh();
	struct acpi_madt *m = at(MADT_PA);
	uint8_t *second = (uint8_t *)(m + 1) + 8;
	second[1] = 0; /* length 0 would loop for ever */
	sdt(MADT_PA, "APIC", m->header.length);
	struct acpi_cpus c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(c.present == 1, "present %u", c.present);
	expect_ids(c, ids, want, 1);
	second[1] = 200; /* runs past the table */
	sdt(MADT_PA, "APIC", m->header.length);
	c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(c.present == 1, "past the end: present %u", c.present);
	ktap_end_case();
}

static void no_enabled_cpu(void)
{
	uint32_t ids[16];

	ktap_case("no_enabled_cpu");
	fresh();
	madt(1, 0, 0);
	struct acpi_cpus c = acpi_find_cpus(RSDP_PA, ids, 16);
	KTAP_CHECK(!c.present && c.problem &&
		       !strcmp(c.problem, "the MADT lists no enabled CPU"),
		   "present %u, problem %s", c.present,
		   c.problem ? c.problem : "none");
	ktap_end_case();
}

int main(void)
{
	mem = calloc(1, MEM_SIZE);
	if (!mem)
		return 2;
	phys_map_base = (uint64_t)mem;
	ktap_begin(8);
	xsdt_lists_enabled_cpus();
	rsdt_for_revision_0();
	bad_xsdt_falls_back_to_rsdt();
	rsdp_found_in_bios_area();
	checksums_are_checked();
	more_cpus_than_room();
	malformed_entry_ends_the_walk();
	no_enabled_cpu();
	return ktap_finish();
}
