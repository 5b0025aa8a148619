/*
 * acpi.h - the few ACPI tables tinypv reads: RSDP -> XSDT (or RSDT) ->
 * MADT, for the list of CPUs (local APIC and x2APIC entries).
 *
 * /usr/include has no ACPI headers usable freestanding, so the layouts are
 * here, from the ACPI 6.x specification (5.2.5 RSDP, 5.2.6 SDT header,
 * 5.2.12 MADT), with their sizes asserted. Every table's checksum is
 * checked before it is trusted (acpi_checksum_ok): all its bytes sum to 0.
 *
 *   uint32_t ids[NR_CPUS_MAX];
 *   struct acpi_cpus c = acpi_find_cpus(rsdp_pa, ids, NR_CPUS_MAX);
 *   // c.present CPUs enabled in the MADT, the first c.listed in ids[]
 */
#ifndef TINYPV_ACPI_H
#define TINYPV_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* over the first 20 bytes */
	char oem_id[6];
	uint8_t revision; /* 0: ACPI 1.0 (RSDT only); 2: has XSDT */
	uint32_t rsdt_address;
	/* revision >= 2 */
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all `length` bytes */
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "ACPI RSDP is 36 bytes");
_Static_assert(offsetof(struct acpi_rsdp, length) == 20, "RSDP v1 part");

struct acpi_sdt_header {
	char signature[4]; /* "XSDT", "RSDT", "APIC" (the MADT), ... */
	uint32_t length;   /* of the whole table, header included */
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_sdt_header) == 36, "SDT header is 36 bytes");

/* The XSDT's entries are 64-bit table addresses, the RSDT's 32-bit. */

struct acpi_madt {
	struct acpi_sdt_header header;
	uint32_t lapic_address;
	uint32_t flags; /* bit 0: PC-AT 8259s present */
	/* then variable-length entries: struct acpi_madt_entry ... */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT fixed part is 44 bytes");

struct acpi_madt_entry {
	uint8_t type;
	uint8_t length;
} __attribute__((packed));

#define ACPI_MADT_LAPIC 0
#define ACPI_MADT_X2APIC 9
#define ACPI_MADT_ENABLED (1u << 0)
#define ACPI_MADT_ONLINE_CAPABLE (1u << 1)

struct acpi_madt_lapic {
	struct acpi_madt_entry h; /* type 0, length 8 */
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT LAPIC is 8 bytes");

struct acpi_madt_x2apic {
	struct acpi_madt_entry h; /* type 9, length 16 */
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t processor_uid;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_x2apic) == 16,
	       "MADT x2APIC is 16 bytes");

/* True if the n bytes at p sum to 0 (mod 256): ACPI's checksum rule. */
bool acpi_checksum_ok(const void *p, size_t n);

struct acpi_cpus {
	unsigned present;    /* enabled CPUs the MADT lists */
	unsigned listed;     /* of them, written to ids[] (at most max) */
	const char *problem; /* why no MADT was used, or NULL */
};

/*
 * The APIC ids of the enabled CPUs in the MADT, in table order (the boot
 * CPU is not necessarily first). rsdp_pa 0: search the BIOS area
 * 0xe0000-0xfffff. On any problem (no RSDP, a bad checksum, no MADT),
 * present is 0 and problem says why.
 */
struct acpi_cpus acpi_find_cpus(uint64_t rsdp_pa, uint32_t *ids, unsigned max);

#endif
