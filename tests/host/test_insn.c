/*
 * test_insn.c - the patch engine's instruction decoder and relocator
 * (patch/insn.c, compiled unchanged) against GNU objdump.
 *
 * Why objdump: lengths typed by hand would only repeat the decoder's own
 * beliefs. Here objdump is the reference everywhere:
 *   1. every instruction it lists in the built kernel's .text (TINYPV_KERNEL
 *      overrides build/tinypv.elf) is decoded at its address, and a linear
 *      walk with the decoder must land on objdump's boundaries only;
 *   2. a table of tricky encodings, each disassembled by objdump from a
 *      temporary file;
 *   3. relocated sequences, disassembled at their old and new addresses:
 *      branch and RIP-relative targets must be the same (or, for targets
 *      inside the block, moved with it).
 * Beyond the length, each decoded instruction is checked for self-
 * consistency (the displacement and immediate end where the next field
 * starts), for RIP-relative detection ("(%rip)" in objdump's text) and for
 * the targets objdump prints, recomputed from the fields the decoder found.
 *
 * Where objdump prints "(bad)" (or ".byte") the decoder must say 0
 * (invalid) or agree on the length; the walk steps over a byte the decoder
 * rejects, as objdump does for the one-byte opcodes invalid in 64-bit mode.
 */
#include <ctype.h>
#include <elf.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "insn.h"
#include "ktap.h"
#include "patch.h"
#include "pvop_abi.h"

#define MAX_REPORTED 20

/* ---- objdump ---- */

struct od_insn {
	uint64_t addr;
	unsigned len;
	bool bad;
	char text[112];
};

struct od_list {
	struct od_insn *v;
	size_t n, cap;
};

static const char *objdump_prog(void)
{
	const char *p = getenv("OBJDUMP");

	return p && *p ? p : "objdump";
}

/* One "addr:\tbytes\ttext" line of `objdump -d -w`; false for others. */
static bool parse_od_line(const char *s, struct od_insn *o)
{
	char *e;
	size_t k;

	while (*s == ' ')
		s++;
	o->addr = strtoull(s, &e, 16);
	if (e == s || e[0] != ':' || e[1] != '\t')
		return false;
	s = e + 2;
	o->len = 0;
	while (isxdigit((unsigned char)s[0]) && isxdigit((unsigned char)s[1]) &&
	       (s[2] == ' ' || s[2] == '\t' || s[2] == '\n' || !s[2])) {
		o->len++;
		s += 2;
		while (*s == ' ')
			s++;
	}
	if (*s == '\t')
		s++;
	for (k = 0; s[k] && s[k] != '\n' && k < sizeof(o->text) - 1; k++)
		o->text[k] = s[k];
	o->text[k] = 0;
	o->bad = strstr(o->text, "(bad)") || !strncmp(o->text, ".byte", 5);
	return o->len > 0;
}

/* Runs an objdump command line; false if it could not be run. */
static bool run_objdump(const char *args, struct od_list *out)
{
	char cmd[1024], line[512];
	struct od_insn o;
	FILE *f;

	out->n = 0;
	snprintf(cmd, sizeof(cmd), "%s %s 2>/dev/null", objdump_prog(), args);
	f = popen(cmd, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (!parse_od_line(line, &o))
			continue;
		if (out->n == out->cap) {
			out->cap = out->cap ? 2 * out->cap : 256;
			out->v = realloc(out->v, out->cap * sizeof(*out->v));
			if (!out->v)
				abort();
		}
		out->v[out->n++] = o;
	}
	return pclose(f) == 0 && out->n > 0;
}

/* Disassembles bytes as if they sat at addr (objdump -b binary). */
static bool objdump_bytes(const uint8_t *p, size_t n, uint64_t addr,
			  bool intel64, struct od_list *out)
{
	char path[] = "/tmp/test_insn.XXXXXX", args[256];
	int fd = mkstemp(path);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, p, n) == (ssize_t)n;
	close(fd);
	snprintf(args, sizeof(args),
		 "-D -b binary -mi386:x86-64 -w -z %s --adjust-vma=0x%" PRIx64
		 " '%s'",
		 intel64 ? "-M intel64" : "", addr, path);
	ok = ok && run_objdump(args, out);
	unlink(path);
	return ok;
}

/* The first word of objdump's text after hint/size prefixes. */
static const char *od_mnemonic(const char *t, size_t *len)
{
	static const char *const skip[] = {"data16", "addr32",	"cs",	"ds",
					   "es",     "ss",	"fs",	"gs",
					   "bnd",    "notrack", "lock", NULL};

	for (;;) {
		size_t k = strcspn(t, " ");
		bool prefix = !strncmp(t, "rex", 3) && (k == 3 || t[3] == '.');

		for (int i = 0; skip[i] && !prefix; i++)
			prefix =
			    strlen(skip[i]) == k && !strncmp(t, skip[i], k);
		if (!prefix || !t[k]) {
			*len = k;
			return t;
		}
		t += k;
		while (*t == ' ')
			t++;
	}
}

/*
 * The target objdump printed: a direct branch's operand, or the address
 * after "#" of a RIP-relative operand. False if there is none.
 */
static bool od_target(const char *t, bool *branch, uint64_t *target)
{
	size_t k;
	const char *m = od_mnemonic(t, &k), *op, *hash;

	*branch = false;
	hash = strstr(t, "(%rip)") ? strstr(t, "# ") : NULL;
	if (hash) {
		*target = strtoull(hash + 2, NULL, 16);
		return true;
	}
	if (m[0] != 'j' && strncmp(m, "call", 4) && strncmp(m, "loop", 4) &&
	    strncmp(m, "xbegin", 6))
		return false;
	op = m + k;
	while (*op == ' ')
		op++;
	if (!isxdigit((unsigned char)*op))
		return false; /* indirect */
	*branch = true;
	*target = strtoull(op, NULL, 16);
	return true;
}

/* ---- checking one decoded instruction against objdump ---- */

static int64_t read_signed(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned k = size; k-- > 0;)
		v = v << 8 | p[k];
	if (size && size < 8 && (v >> (8 * size - 1)))
		v |= ~0ull << (8 * size);
	return (int64_t)v;
}

/* The decoder's fields must describe the bytes consistently. */
static const char *self_check(const struct insn *in)
{
	unsigned end_of_disp = in->imm_size ? in->imm_off : in->len;

	if (in->imm_size && in->imm_off + in->imm_size != in->len)
		return "immediate does not end the instruction";
	if (in->disp_size && in->disp_off + in->disp_size != end_of_disp)
		return "displacement not followed by the immediate";
	if (in->rel_size && in->rel_size != in->imm_size)
		return "branch displacement is not the immediate";
	if (in->rip_rel && in->disp_size != 4)
		return "RIP-relative without disp32";
	if (in->emulate_len && in->emulate_len != INSN_EMULATE_PREFIX_LEN)
		return "odd emulate_len";
	return NULL;
}

/*
 * Decodes p (avail bytes) as the instruction objdump listed at addr and
 * says why they disagree, or NULL. *decoded gets the decoder's length.
 */
static const char *check_against(const uint8_t *p, size_t avail,
				 const struct od_insn *od, unsigned *decoded)
{
	static char why[160];
	struct insn in;
	unsigned len = insn_decode(p, avail, 0, &in);
	bool has_target, branch, rip_text;
	uint64_t target, mine;
	const char *bad;

	*decoded = len;
	if (od->bad) {
		if (len == 0 || len == od->len)
			return NULL;
		snprintf(why, sizeof(why), "decoder %u, objdump (bad) of %u",
			 len, od->len);
		return why;
	}
	if (len != od->len) {
		snprintf(why, sizeof(why), "decoder %u, objdump %u", len,
			 od->len);
		return why;
	}
	bad = self_check(&in);
	if (bad)
		return bad;
	rip_text = strstr(od->text, "(%rip)") || strstr(od->text, "(%eip)");
	if (in.rip_rel != rip_text)
		return in.rip_rel ? "decoder says RIP-relative"
				  : "decoder missed RIP-relative";
	has_target = od_target(od->text, &branch, &target);
	if (branch != (in.rel_size != 0)) {
		snprintf(why, sizeof(why), "rel_size %u for %s", in.rel_size,
			 branch ? "a direct branch" : "no direct branch");
		return why;
	}
	/* objdump wraps addr32 and rel16 targets; those are not compared */
	if (!has_target || (!branch && (in.legacy & INSN_PFX_ADSIZE)) ||
	    in.rel_size == 2)
		return NULL;
	mine = od->addr + len +
	       read_signed(p + (branch ? in.imm_off : in.disp_off),
			   branch ? in.rel_size : 4);
	if (mine != target) {
		snprintf(why, sizeof(why),
			 "target %" PRIx64 " from the decoded field", mine);
		return why;
	}
	return NULL;
}

static void print_mismatch(const struct od_insn *o, const uint8_t *p,
			   const char *why)
{
	char hex[3 * 16 + 1] = "";

	for (unsigned k = 0; k < o->len && k < 16; k++)
		sprintf(hex + 3 * k, "%02x ", p[k]);
	printf("# mismatch at %" PRIx64 ": %s'%s': %s\n", o->addr, hex, o->text,
	       why);
}

/* ---- 1. the kernel's .text ---- */

struct section {
	const uint8_t *bytes;
	uint64_t addr, size;
};

static struct kernel {
	const char *path;
	uint8_t *file;
	const char *err; /* why it could not be read, or NULL */
	struct section text, templates;
} kernel;

static bool find_section(const char *name, long size, struct section *s)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)kernel.file;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(kernel.file + eh->e_shoff);
	const char *names =
	    (const char *)kernel.file + sh[eh->e_shstrndx].sh_offset;

	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (strcmp(names + sh[i].sh_name, name) ||
		    sh[i].sh_type != SHT_PROGBITS ||
		    sh[i].sh_offset + sh[i].sh_size > (uint64_t)size)
			continue;
		s->bytes = kernel.file + sh[i].sh_offset;
		s->addr = sh[i].sh_addr;
		s->size = sh[i].sh_size;
		return true;
	}
	return false;
}

/* Reads the kernel and finds .text and .pvop.templates in it. */
static const char *load_kernel(void)
{
	FILE *f;
	long size;
	const Elf64_Ehdr *eh;

	kernel.path = getenv("TINYPV_KERNEL");
	if (!kernel.path || !*kernel.path)
		kernel.path = "build/tinypv.elf";
	f = fopen(kernel.path, "rb");
	if (!f)
		return "cannot open the kernel";
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	kernel.file = malloc(size > 0 ? size : 1);
	if (size <= 0 || fread(kernel.file, 1, size, f) != (size_t)size) {
		fclose(f);
		return "cannot read the kernel";
	}
	fclose(f);
	eh = (const Elf64_Ehdr *)kernel.file;
	if ((size_t)size < sizeof(*eh) ||
	    memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shstrndx >= eh->e_shnum ||
	    eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) >
		(uint64_t)size)
		return "not an ELF64 file with section headers";
	if (!find_section(".text", size, &kernel.text))
		return "no .text section";
	if (!find_section(".pvop.templates", size, &kernel.templates))
		return "no .pvop.templates section";
	return NULL;
}

static size_t kernel_decoded, kernel_mismatches, kernel_bad, walk_steps;

static void kernel_text(void)
{
	const struct section *t = &kernel.text;
	struct od_list od = {0};
	char args[512];
	uint8_t *starts = NULL;
	size_t bad_same_len = 0, walk_bad = 0, walk_mismatches = 0;

	ktap_case("objdump_kernel_text");
	snprintf(args, sizeof(args), "-d -w -z -j .text '%s'", kernel.path);
	if (kernel.err || !run_objdump(args, &od)) {
		KTAP_CHECK(0, "%s: %s", kernel.path,
			   kernel.err ? kernel.err : "objdump failed");
		ktap_end_case();
		ktap_case("decoder_walk_kernel_text");
		KTAP_CHECK(0, "no kernel to walk");
		ktap_end_case();
		goto out;
	}
	starts = calloc(t->size, 1);
	for (size_t i = 0; i < od.n; i++) {
		const struct od_insn *o = &od.v[i];
		uint64_t off = o->addr - t->addr;
		unsigned len = 0;
		const char *why = "outside .text";

		if (off < t->size) {
			starts[off] = 1;
			why = check_against(t->bytes + off, t->size - off, o,
					    &len);
		}
		kernel_decoded++;
		kernel_bad += o->bad;
		bad_same_len += o->bad && len;
		if (!why)
			continue;
		if (++kernel_mismatches <= MAX_REPORTED)
			print_mismatch(o, t->bytes + off, why);
	}
	printf("# decoded %zu instructions, %zu mismatches; objdump said "
	       "(bad) %zu times: decoder invalid %zu, same length %zu\n",
	       kernel_decoded, kernel_mismatches, kernel_bad,
	       kernel_bad - bad_same_len, bad_same_len);
	KTAP_CHECK(kernel_mismatches == 0, "%zu of %zu instructions disagree",
		   kernel_mismatches, kernel_decoded);
	ktap_end_case();

	/* The decoder's own instruction stream, from the first byte. */
	ktap_case("decoder_walk_kernel_text");
	for (uint64_t off = 0; off < t->size;) {
		struct insn in;
		unsigned len =
		    insn_decode(t->bytes + off, t->size - off, 0, &in);

		if (!starts[off] && ++walk_mismatches <= MAX_REPORTED)
			printf("# walk: %" PRIx64 " is not an objdump "
			       "boundary\n",
			       t->addr + off);
		if (!len) {
			len = 1; /* resynchronise as objdump does */
			walk_bad++;
		}
		off += len;
		walk_steps++;
	}
	printf("# walk: %zu instructions (%zu bytes skipped as invalid), "
	       "%zu off objdump's boundaries\n",
	       walk_steps, walk_bad, walk_mismatches);
	KTAP_CHECK(walk_mismatches == 0, "%zu boundaries disagree",
		   walk_mismatches);
	KTAP_CHECK(walk_steps == od.n,
		   "walk found %zu instructions, objdump %zu", walk_steps,
		   od.n);
	KTAP_CHECK(walk_bad + bad_same_len == kernel_bad,
		   "walk skipped %zu, objdump (bad) %zu", walk_bad, kernel_bad);
	ktap_end_case();
out:
	free(starts);
	free(od.v);
}

/* ---- 2. tricky encodings ---- */

/*
 * what: "" (valid, objdump's length), "invalid" (decoder 0, objdump (bad)
 * or .byte at offset 0), "stray-rex" (a REX then a prefix: the CPU ignores
 * the REX, objdump lists it apart; the length covers both), "intel"
 * (disassemble with -M intel64: 66 does not shorten a near branch), then
 * optionally the disp, imm and rel sizes the decoder must report.
 */
struct enc_case {
	const char *name;
	const char *hex;
	const char *what;
};

static const struct enc_case enc_cases[] = {
    /* legacy prefixes, each kind, and repeats */
    {"66 data16 nop", "66 90", ""},
    {"f3 pause", "f3 90", ""},
    {"f0 lock cmpxchg", "f0 48 0f b1 0e", ""},
    {"2e branch hint", "2e 74 00", ""},
    {"3e notrack jmp", "3e ff e0", ""},
    {"26 es", "26 8b 00", ""},
    {"36 ss", "36 8b 00", ""},
    {"64 fs abs disp32", "64 48 8b 04 25 28 00 00 00", "4 0 0"},
    {"65 gs abs disp32", "65 48 8b 04 25 00 00 00 00", "4 0 0"},
    {"67 addr32", "67 8b 00", ""},
    {"67 eip-relative", "67 8b 05 10 00 00 00", "4 0 0"},
    {"f2 movsd", "f2 0f 10 c1", ""},
    {"f3 rep stosq", "f3 48 ab", ""},
    {"f2 repnz scasb", "f2 ae", ""},
    {"66 66 2e nopw", "66 66 2e 0f 1f 84 00 00 00 00 00", ""},
    {"15 bytes", "2e 2e 2e 48 c7 84 24 00 00 00 00 00 00 00 00", ""},
    {"16 bytes", "2e 2e 2e 2e 48 c7 84 24 00 00 00 00 00 00 00 00", "invalid"},
    {"rex then 66", "48 66 90", "stray-rex"},
    {"rex then rex.w", "40 48 90", "stray-rex"},
    /* operand size: imm16/32/64 */
    {"mov imm64", "48 b8 88 77 66 55 44 33 22 11", "0 8 0"},
    {"mov r15 imm64", "49 bf 88 77 66 55 44 33 22 11", "0 8 0"},
    {"mov imm32", "b8 44 33 22 11", "0 4 0"},
    {"66 mov imm16", "66 b8 22 11", "0 2 0"},
    {"66 rex.w mov imm64", "66 48 b8 88 77 66 55 44 33 22 11", "0 8 0"},
    {"rex.w mov imm32", "48 c7 c0 ff ff ff ff", "0 4 0"},
    {"rex.w add rax imm32", "48 05 00 01 00 00", "0 4 0"},
    {"66 add ax imm16", "66 05 00 01", "0 2 0"},
    {"66 81 imm16", "66 81 c1 34 12", "0 2 0"},
    {"66 83 imm8", "66 83 c1 01", "0 1 0"},
    {"66 movw mem imm16", "66 c7 00 34 12", "0 2 0"},
    {"66 push imm16", "66 68 34 12", "0 2 0"},
    {"push imm32", "68 78 56 34 12", "0 4 0"},
    {"push imm8", "6a 01", ""},
    {"imul imm32", "69 c0 00 01 00 00", "0 4 0"},
    {"66 imul imm16", "66 69 c0 00 01", "0 2 0"},
    {"imul imm8", "6b c0 05", ""},
    {"66 test ax imm16", "66 a9 34 12", ""},
    {"test al imm8", "a8 01", ""},
    {"shl imm8", "c0 e0 04", ""},
    {"shl r32 imm8", "c1 e0 04", ""},
    {"shl 1", "d1 e0", ""},
    {"shl cl", "d3 e0", ""},
    {"shl r8 1", "d0 e0", ""},
    {"movb imm8 rip", "c6 05 00 01 00 00 01", "4 1 0"},
    {"movl imm32 rip", "c7 05 00 01 00 00 78 56 34 12", "4 4 0"},
    {"movw imm16 rip", "66 c7 05 00 01 00 00 34 12", "4 2 0"},
    {"movq imm32 rip", "48 c7 05 00 01 00 00 78 56 34 12", "4 4 0"},
    /* group 3: only test has an immediate */
    {"f6 /0 test", "f6 c1 01", "0 1 0"},
    {"f6 /1 test", "f6 c9 01", "0 1 0"},
    {"f6 /2 not", "f6 d1", "0 0 0"},
    {"f6 /3 neg", "f6 d9", "0 0 0"},
    {"f6 /4 mul", "f6 e1", "0 0 0"},
    {"f7 /0 test", "f7 c1 78 56 34 12", "0 4 0"},
    {"66 f7 /0 test", "66 f7 c1 34 12", "0 2 0"},
    {"f7 /2 not", "f7 d1", "0 0 0"},
    {"f7 /3 neg", "f7 d9", "0 0 0"},
    {"f7 /6 div", "48 f7 f1", "0 0 0"},
    {"f6 test rip imm8", "f6 05 00 01 00 00 ff", "4 1 0"},
    {"f7 test rip imm32", "f7 05 00 01 00 00 ff ff ff ff", "4 4 0"},
    {"f7 /7 idiv rip", "f7 3d 00 01 00 00", "4 0 0"},
    /* moffs */
    {"moffs8 load", "a0 88 77 66 55 44 33 22 11", "8 0 0"},
    {"moffs32 load", "a1 88 77 66 55 44 33 22 11", "8 0 0"},
    {"moffs64 store", "48 a3 88 77 66 55 44 33 22 11", "8 0 0"},
    {"66 moffs16", "66 a1 88 77 66 55 44 33 22 11", "8 0 0"},
    {"67 moffs load", "67 a1 44 33 22 11", "4 0 0"},
    {"67 moffs8 store", "67 a2 44 33 22 11", "4 0 0"},
    /* other immediates */
    {"enter", "c8 10 00 01", "0 3 0"},
    {"ret imm16", "c2 08 00", "0 2 0"},
    {"66 ret imm16", "66 c2 08 00", "0 2 0"},
    {"lret imm16", "ca 08 00", "0 2 0"},
    {"int imm8", "cd 80", ""},
    {"int3", "cc", ""},
    {"int1", "f1", ""},
    {"in imm8", "e4 80", ""},
    {"out imm8", "e6 80", ""},
    /* branches */
    {"call rel32", "e8 00 01 00 00", "0 4 4"},
    {"jmp rel32", "e9 00 ff ff ff", "0 4 4"},
    {"jmp rel8", "eb fe", "0 1 1"},
    {"jo rel8", "70 00", "0 1 1"},
    {"jg rel8", "7f fe", "0 1 1"},
    {"loopne", "e0 fe", "0 1 1"},
    {"loope", "e1 fe", "0 1 1"},
    {"loop", "e2 fe", "0 1 1"},
    {"jrcxz", "e3 fe", "0 1 1"},
    {"67 jecxz", "67 e3 fe", "0 1 1"},
    {"je rel32", "0f 84 00 01 00 00", "0 4 4"},
    {"jg rel32", "0f 8f 00 01 00 00", "0 4 4"},
    {"66 call rel32", "66 e8 00 01 00 00", "intel 0 4 4"},
    {"66 jne rel32", "66 0f 85 00 01 00 00", "intel 0 4 4"},
    {"66 jmp rel32", "66 e9 00 01 00 00", "intel 0 4 4"},
    {"xbegin", "c7 f8 00 01 00 00", "0 4 4"},
    {"xabort", "c6 f8 01", "0 1 0"},
    {"call rip", "ff 15 00 01 00 00", "4 0 0"},
    {"call reg", "ff d0", ""},
    {"jmp mem", "ff 20", ""},
    {"lcall mem", "ff 18", ""},
    /* invalid in 64-bit mode, or empty group slots */
    {"push es", "06", "invalid"},
    {"pop es", "07", "invalid"},
    {"push cs", "0e", "invalid"},
    {"push ss", "16", "invalid"},
    {"push ds", "1e", "invalid"},
    {"daa", "27", "invalid"},
    {"das", "2f", "invalid"},
    {"aaa", "37", "invalid"},
    {"aas", "3f", "invalid"},
    {"pusha", "60", "invalid"},
    {"popa", "61", "invalid"},
    {"82 alias", "82 c0 01", "invalid"},
    {"callf ptr", "9a 00 00 00 00 00 00", "invalid"},
    {"into", "ce", "invalid"},
    {"aam", "d4 0a", "invalid"},
    {"aad", "d5 0a", "invalid"},
    {"salc", "d6", "invalid"},
    {"jmpf ptr", "ea 00 00 00 00 00 00", "invalid"},
    {"ff /7", "ff ff", "invalid"},
    {"ff /3 reg", "ff d8", "invalid"},
    {"fe /2", "fe d0", "invalid"},
    {"c6 /1", "c6 08 00", "invalid"},
    {"c7 /1", "c7 c8 00 00 00 00", "invalid"},
    {"c7 /7 not f8", "c7 f9 00 00 00 00", "invalid"},
    {"8f /1 (xop)", "8f c8", "invalid"},
    {"0f 04", "0f 04", "invalid"},
    {"0f 0a", "0f 0a", "invalid"},
    {"0f 24", "0f 24 c0", "invalid"},
    {"0f 7a", "0f 7a c0", "invalid"},
    {"vex map 0", "c4 e0 79 10 c0", "invalid"},
    {"evex map 4", "62 f4 7c 08 58 c0", "invalid"},
    {"evex map 7", "62 f7 7c 08 58 c0", "invalid"},
    {"evex P0 bit 3", "62 f9 fd 48 58 c0", "invalid"},
    /* truncated input */
    {"truncated call", "e8 00 00", "invalid"},
    {"lone 0f", "0f", "invalid"},
    {"truncated vex", "c4 e2", "invalid"},
    {"truncated evex", "62 f1 7c", "invalid"},
    {"truncated sib", "8b 04", "invalid"},
    {"truncated disp32", "8b 84 24 00", "invalid"},
    /* ModRM and SIB */
    {"sib base=101 mod=00", "8b 04 25 00 01 00 00", "4 0 0"},
    {"sib no index no base", "8b 04 65 00 01 00 00", "4 0 0"},
    {"sib index*4 no base", "8b 0c 8d 00 01 00 00", "4 0 0"},
    {"67 sib no base", "67 8b 04 25 00 01 00 00", "4 0 0"},
    {"sib rsp", "8b 04 24", "0 0 0"},
    {"sib disp8", "8b 44 24 08", "1 0 0"},
    {"sib disp32", "8b 84 24 00 01 00 00", "4 0 0"},
    {"sib r12", "41 8b 04 24", "0 0 0"},
    {"r13 disp8", "41 8b 45 00", "1 0 0"},
    {"sib rbp base mod=01", "8b 44 25 08", "1 0 0"},
    {"rip disp32", "8b 05 00 01 00 00", "4 0 0"},
    {"rbp disp8", "8b 45 f8", "1 0 0"},
    {"rbp disp32", "8b 85 00 01 00 00", "4 0 0"},
    {"register", "8b c1", "0 0 0"},
    {"lea rip", "48 8d 05 00 01 00 00", "4 0 0"},
    /* 0f map */
    {"nopl", "0f 1f 00", ""},
    {"nopl disp8", "0f 1f 44 00 00", ""},
    {"nopl disp32", "0f 1f 84 00 00 00 00 00", ""},
    {"nopw disp32", "66 0f 1f 84 00 00 00 00 00", ""},
    {"hint nop 0f 19", "0f 19 c0", ""},
    {"prefetcht0", "0f 18 08", ""},
    {"prefetchw", "0f 0d 08", ""},
    {"ud2", "0f 0b", ""},
    {"lgdt rip", "0f 01 15 00 01 00 00", "4 0 0"},
    {"swapgs", "0f 01 f8", ""},
    {"rdtscp", "0f 01 f9", ""},
    {"xgetbv", "0f 01 d0", ""},
    {"clac", "0f 01 ca", ""},
    {"invlpg", "0f 01 38", ""},
    {"ltr", "0f 00 d8", ""},
    {"bt imm8", "0f ba e0 05", "0 1 0"},
    {"btsq rip imm8", "48 0f ba 2d 00 01 00 00 05", "4 1 0"},
    {"lock btr rip imm8", "f0 48 0f ba 35 5e 26 02 00 00", "4 1 0"},
    {"shld imm8", "0f a4 c2 04", "0 1 0"},
    {"shrd imm8", "48 0f ac d0 20", "0 1 0"},
    {"shld cl", "0f a5 c2", ""},
    {"mov from cr3", "0f 20 d8", ""},
    {"mov to cr3", "0f 22 d8", ""},
    {"mov cr0 mod ignored", "0f 20 05", "0 0 0"},
    {"mov dr mod ignored", "0f 21 45", "0 0 0"},
    {"cpuid", "0f a2", ""},
    {"rdtsc", "0f 31", ""},
    {"wrmsr", "0f 30", ""},
    {"syscall", "0f 05", ""},
    {"sysretq", "48 0f 07", ""},
    {"lfence", "0f ae e8", ""},
    {"clflush", "0f ae 38", ""},
    {"clflushopt", "66 0f ae 38", ""},
    {"endbr64", "f3 0f 1e fa", ""},
    {"popcnt", "f3 48 0f b8 c1", ""},
    {"tzcnt", "f3 49 0f bc dd", ""},
    {"rdrand", "0f c7 f0", ""},
    {"cmpxchg16b", "48 0f c7 0e", ""},
    {"bswap", "0f c8", ""},
    {"cmpps imm8", "0f c2 c1 00", ""},
    {"pshufw imm8", "0f 70 c1 1b", ""},
    {"psrldq imm8", "66 0f 73 d8 04", ""},
    {"pinsrw imm8", "66 0f c4 c0 01", ""},
    {"ud1", "0f b9 00", ""},
    {"ud0", "0f ff 00", ""},
    {"movzbl", "0f b6 c0", ""},
    {"cmove", "0f 44 c1", ""},
    {"sete", "0f 94 c0", ""},
    {"3dnow pfmul", "0f 0f c1 b4", ""},
    {"3dnow rip + suffix", "0f 0f 05 00 01 00 00 b4", "4 1 0"},
    {"vmread", "0f 78 c1", ""},
    {"extrq ib ib", "66 0f 78 c0 01 02", "0 2 0"},
    {"insertq ib ib", "f2 0f 78 c1 01 02", "0 2 0"},
    {"x87 fld", "d9 c0", ""},
    {"x87 fldl rip", "dd 05 00 01 00 00", ""},
    {"fnstsw", "df e0", ""},
    /* 0f 38 and 0f 3a */
    {"pshufb", "66 0f 38 00 c1", ""},
    {"movbe", "0f 38 f0 06", ""},
    {"crc32", "f2 0f 38 f1 c1", ""},
    {"pshufb rip", "66 0f 38 00 05 00 01 00 00", "4 0 0"},
    {"palignr", "66 0f 3a 0f c1 08", "0 1 0"},
    {"pextrd", "66 0f 3a 16 c0 01", "0 1 0"},
    {"palignr rip imm8", "66 0f 3a 0f 05 00 01 00 00 08", "4 1 0"},
    /* VEX */
    {"vzeroupper", "c5 f8 77", ""},
    {"vzeroall", "c5 fc 77", ""},
    {"vzeroall c4", "c4 e1 fc 77", ""},
    {"vmovdqa", "c5 f9 6f c1", ""},
    {"vmovdqa rip", "c5 fd 6f 05 00 01 00 00", "4 0 0"},
    {"vpshufd imm8", "c5 f9 70 c1 1b", ""},
    {"vpsrlq imm8", "c5 f1 73 d1 04", ""},
    {"vcmpps imm8", "c5 f0 c2 c2 01", ""},
    {"vmovq c4", "c4 e1 f9 7e c0", ""},
    {"vbroadcastss map 2", "c4 e2 79 18 c0", ""},
    {"andn map 2", "c4 e2 70 f2 c2", ""},
    {"vpalignr map 3", "c4 e3 79 0f c1 08", "0 1 0"},
    {"vinsertf128", "c4 e3 7d 18 c1 01", ""},
    {"vpalignr rip imm8", "c4 e3 79 0f 05 00 01 00 00 08", "4 1 0"},
    {"rorx", "c4 e3 fb f0 c1 05", ""},
    /* EVEX */
    {"vmovaps zmm", "62 f1 7c 48 28 c1", ""},
    {"vaddpd disp8*N", "62 f1 fd 48 58 40 01", "1 0 0"},
    {"vmovaps rip", "62 f1 7c 48 28 05 00 01 00 00", "4 0 0"},
    {"vcmpps imm8", "62 f1 7c 08 c2 c1 01", ""},
    {"vpsrad imm8", "62 f1 7d 48 72 e1 05", ""},
    {"vpshufb map 2", "62 f2 7d 08 00 c1", ""},
    {"vpternlogd map 3", "62 f3 7d 48 25 c1 01", ""},
    {"vaddph map 5", "62 f5 7c 08 58 c1", ""},
    {"vfmadd132ph map 6", "62 f6 7d 08 98 c1", ""},
    /* plain */
    {"nop", "90", ""},
    {"ret", "c3", ""},
    {"hlt", "f4", ""},
    {"cli", "fa", ""},
    {"iretq", "48 cf", ""},
    {"xchg mem", "4c 87 28", ""},
    {"movsxd", "48 63 c1", ""},
    {"outsb", "6e", ""},
    {"xlat", "d7", ""},
};

static size_t parse_hex(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (*s && n < max) {
		char *e;
		unsigned long v = strtoul(s, &e, 16);

		if (e == s)
			break;
		out[n++] = (uint8_t)v;
		s = e;
	}
	return n;
}

static size_t enc_run, enc_invalid;

static bool starts(const char *s, const char *word)
{
	return !strncmp(s, word, strlen(word));
}

static void check_encoding(const struct enc_case *c)
{
	uint8_t b[32], padded[48];
	size_t n = parse_hex(c->hex, b, sizeof(b));
	bool intel = starts(c->what, "intel"), stray = starts(c->what, "stray");
	const char *sizes = c->what + strcspn(c->what, "0123456789");
	struct od_list od = {0};
	struct od_insn *o;
	struct insn in;
	unsigned want = 0, got, len, d, i, r;
	const char *why;

	enc_run++;
	if (!objdump_bytes(b, n, 0, intel, &od)) {
		KTAP_CHECK(0, "%s: objdump failed", c->name);
		return;
	}
	o = &od.v[0];
	got = insn_decode(b, n, 0, &in);
	if (starts(c->what, "invalid")) {
		enc_invalid++;
		KTAP_CHECK(o->addr == 0 && o->bad,
			   "%s: objdump decodes it: %u '%s'", c->name, o->len,
			   o->text);
		KTAP_CHECK(got == 0, "%s: decoder length %u, want invalid",
			   c->name, got);
		goto out;
	}
	if (stray) {
		size_t k = 0;

		while (k + 1 < od.n && starts(od.v[k].text, "rex") &&
		       !strchr(od.v[k].text, ' '))
			want += od.v[k++].len;
		o = &od.v[k];
		KTAP_CHECK(k > 0, "%s: objdump shows no stray REX", c->name);
	}
	want += o->len;
	KTAP_CHECK(!o->bad, "%s: objdump says '%s'", c->name, o->text);
	KTAP_CHECK(want == n, "%s: objdump length %u of %zu bytes ('%s')",
		   c->name, want, n, o->text);
	KTAP_CHECK(got == want, "%s: decoder %u, objdump %u ('%s')", c->name,
		   got, want, o->text);
	if (!stray) {
		/* the same checks as for the kernel: fields, rip, targets */
		why = check_against(b, n, o, &len);
		KTAP_CHECK(!why, "%s: %s ('%s')", c->name, why, o->text);
	}
	if (*sizes)
		KTAP_CHECK(sscanf(sizes, "%u %u %u", &d, &i, &r) == 3 &&
			       in.disp_size == d && in.imm_size == i &&
			       in.rel_size == r,
			   "%s: disp/imm/rel sizes %u %u %u, want %s", c->name,
			   in.disp_size, in.imm_size, in.rel_size, sizes);
	/* Every shorter input is truncated; more input changes nothing. */
	for (size_t k = 0; k < want; k++)
		KTAP_CHECK(insn_decode(b, k, 0, &in) == 0,
			   "%s: decodes from %zu of %u bytes", c->name, k,
			   want);
	memcpy(padded, b, n);
	memset(padded + n, 0x90, sizeof(padded) - n);
	KTAP_CHECK(insn_decode(padded, sizeof(padded), 0, &in) == want,
		   "%s: length changes with trailing bytes", c->name);
out:
	free(od.v);
}

static void encodings(void)
{
	ktap_case("objdump_encodings");
	for (size_t i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++)
		check_encoding(&enc_cases[i]);
	printf("# %zu encodings checked against objdump, %zu of them "
	       "invalid or truncated\n",
	       enc_run, enc_invalid);
	ktap_end_case();
}

/* Xen's and KVM's forced-emulation prefix. */
static void emulate_prefix(void)
{
	static const uint8_t xen_cpuid[] = {0x0f, 0x0b, 'x', 'e',
					    'n',  0x0f, 0xa2};
	static const uint8_t kvm_cpuid[] = {0x0f, 0x0b, 'k', 'v',
					    'm',  0x0f, 0xa2};
	static const uint8_t xen_rip[] = {0x0f, 0x0b, 'x', 'e', 'n', 0x8b,
					  0x05, 0x10, 0,   0,	0};
	struct od_list od = {0};
	struct insn in;
	unsigned len;

	ktap_case("emulate_prefix");
	len =
	    insn_decode(xen_cpuid, sizeof(xen_cpuid), INSN_EMULATE_PREFIX, &in);
	KTAP_CHECK(len == 7 && in.emulate_len == 5 && in.map == 1 &&
		       in.opcode == 0xa2,
		   "xen cpuid: len %u emulate_len %u map %u opcode %02x", len,
		   in.emulate_len, in.map, in.opcode);
	/* objdump sees ud2, two stray instructions, then cpuid at +5 */
	if (objdump_bytes(xen_cpuid, sizeof(xen_cpuid), 0, false, &od)) {
		const struct od_insn *last = &od.v[od.n - 1];

		KTAP_CHECK(last->addr == 5 && !strcmp(last->text, "cpuid") &&
			       5 + last->len == len,
			   "objdump ends with %u '%s' at +%" PRIu64, last->len,
			   last->text, last->addr);
	} else {
		KTAP_CHECK(0, "objdump failed");
	}
	len = insn_decode(xen_cpuid, sizeof(xen_cpuid), 0, &in);
	KTAP_CHECK(len == 2 && in.emulate_len == 0,
		   "without the flag: len %u, want ud2 (2)", len);
	len =
	    insn_decode(kvm_cpuid, sizeof(kvm_cpuid), INSN_EMULATE_PREFIX, &in);
	KTAP_CHECK(len == 7 && in.emulate_len == 5, "kvm cpuid: len %u", len);
	len = insn_decode(xen_rip, sizeof(xen_rip), INSN_EMULATE_PREFIX, &in);
	KTAP_CHECK(len == 11 && in.rip_rel && in.disp_off == 7 &&
		       in.disp_size == 4,
		   "xen mov rip: len %u rip %d disp_off %u", len, in.rip_rel,
		   in.disp_off);
	len = insn_decode(xen_cpuid, 6, INSN_EMULATE_PREFIX, &in);
	KTAP_CHECK(len == 0, "truncated after the prefix: len %u", len);
	free(od.v);
	ktap_end_case();
}

/* ---- 3. relocation ---- */

#define SRC 0xffffffff80200000ull
#define MIB 0x100000ull
#define GIB 0x40000000ull

/* Builds a sequence as assembled at SRC. */
struct emit {
	uint8_t b[64];
	size_t n;
};

static void hex(struct emit *e, const char *s)
{
	e->n += parse_hex(s, e->b + e->n, sizeof(e->b) - e->n);
}

static void le(struct emit *e, uint64_t v, unsigned size)
{
	for (unsigned k = 0; k < size; k++, v >>= 8)
		e->b[e->n++] = (uint8_t)v;
}

/*
 * A displacement to target, counted from the end of the instruction, which
 * has tail more bytes after the displacement.
 */
static void disp_to(struct emit *e, uint64_t target, unsigned size,
		    unsigned tail)
{
	le(e, target - (SRC + e->n + size + tail), size);
}

static void b_call_out(struct emit *e)
{
	hex(e, "e8");
	disp_to(e, SRC + 0x5000, 4, 0);
}

static void b_jmp_out(struct emit *e)
{
	hex(e, "90 e9");
	disp_to(e, SRC - 0x3000, 4, 0);
}

static void b_jcc_out(struct emit *e)
{
	hex(e, "85 c0 0f 85");
	disp_to(e, SRC + 0x800, 4, 0);
}

static void b_jmp8_internal(struct emit *e)
{
	hex(e, "eb 02 90 90 74 fa c3");
}

static void b_jz8_out(struct emit *e)
{
	hex(e, "85 c0 74");
	disp_to(e, SRC + 0x40, 1, 0);
}

static void b_lea_out(struct emit *e)
{
	hex(e, "48 8d 05");
	disp_to(e, SRC + 0x20000, 4, 0);
}

static void b_cmpb_rip_imm(struct emit *e)
{
	hex(e, "80 3d");
	disp_to(e, SRC + 0x1234, 4, 1);
	hex(e, "00");
}

static void b_movl_rip_imm32(struct emit *e)
{
	hex(e, "c7 05");
	disp_to(e, SRC - 0x10000, 4, 4);
	hex(e, "78 56 34 12");
}

static void b_testb_rip_imm_jz(struct emit *e)
{
	hex(e, "f6 05");
	disp_to(e, SRC + 0x9000, 4, 1);
	hex(e, "ff 0f 84");
	disp_to(e, SRC + 0x9100, 4, 0);
}

static void b_internal_call(struct emit *e)
{
	hex(e, "e8");
	disp_to(e, SRC + 7, 4, 0);
	hex(e, "eb 01 c3 c3");
}

static void b_rip_internal(struct emit *e)
{
	hex(e, "48 8d 05");
	disp_to(e, SRC + 14, 4, 0); /* the block's end */
	hex(e, "48 8b 05");
	disp_to(e, SRC, 4, 0);
}

static void b_mixed(struct emit *e)
{
	hex(e, "48 8b 05");
	disp_to(e, SRC + 0x4000, 4, 0);
	hex(e, "48 85 c0 74 05 e8");
	disp_to(e, SRC - 0x200, 4, 0);
	hex(e, "0f 1f 00 66 90 ff 15");
	disp_to(e, SRC + 0x100, 4, 0);
	hex(e, "c3");
}

/* The Xen irq_enable template (pvops/templates.S); jz goes to its end. */
static void b_xen_irq_enable(struct emit *e)
{
	hex(e, "65 c6 04 25 41 00 00 00 00"); /* movb $0,%gs:0x41 */
	hex(e, "65 f6 04 25 40 00 00 00 ff"); /* testb $0xff,%gs:0x40 */
	hex(e, "74 05");		      /* jz 1f */
	hex(e, "e8");			      /* call xen_force_upcall */
	disp_to(e, SRC + 0x7000, 4, 0);	      /* 1: */
}

static void b_call_to_end(struct emit *e)
{
	hex(e, "e8");
	disp_to(e, SRC + 5, 4, 0);
}

static void b_xen_prefix_rip(struct emit *e)
{
	hex(e, "0f 0b 78 65 6e 48 8b 05");
	disp_to(e, SRC + 0x3000, 4, 0);
}

static void b_undecodable(struct emit *e)
{
	hex(e, "90 90 90 06 90");
}

static void b_truncated(struct emit *e)
{
	hex(e, "90 90 e8 00 00");
}

static void b_xbegin16(struct emit *e)
{
	hex(e, "66 c7 f8 00 10");
}

static void b_addr32_rip(struct emit *e)
{
	hex(e, "67 8b 05 00 10 00 00");
}

struct rel_case {
	const char *name;
	void (*build)(struct emit *e);
	int64_t delta; /* dst - src */
	unsigned flags;
	const char *err; /* expected message, or NULL */
};

static const struct rel_case rel_cases[] = {
    {"call rel32 out", b_call_out, MIB, 0, NULL},
    {"jmp rel32 out, backwards", b_jmp_out, -3 * MIB, 0, NULL},
    {"jcc rel32 out", b_jcc_out, MIB, 0, NULL},
    {"jmp/jz rel8 internal", b_jmp8_internal, MIB, 0, NULL},
    {"jz rel8 out", b_jz8_out, MIB, 0,
     "rel8 branch at +2 leaves the replacement"},
    {"jz rel8 out, still reachable", b_jz8_out, 0x10, 0, NULL},
    {"jz rel8 out, dst = src", b_jz8_out, 0, 0, NULL},
    {"lea rip out", b_lea_out, MIB, 0, NULL},
    {"cmpb imm8 rip out", b_cmpb_rip_imm, MIB, 0, NULL},
    {"movl imm32 rip out", b_movl_rip_imm32, -MIB, 0, NULL},
    {"testb imm8 rip + je rel32", b_testb_rip_imm_jz, 5 * MIB, 0, NULL},
    {"internal call", b_internal_call, MIB, 0, NULL},
    {"rip targets inside and at the end", b_rip_internal, 3 * GIB, 0, NULL},
    {"mixed sequence", b_mixed, 7 * MIB, 0, NULL},
    {"mixed sequence, 1 GiB down", b_mixed, -(int64_t)GIB, 0, NULL},
    {"xen irq_enable template", b_xen_irq_enable, 2 * MIB, 0, NULL},
    {"call to the block's end", b_call_to_end, 3 * GIB, 0, NULL},
    {"call moved 4 GiB", b_call_out, 4 * GIB, 0,
     "relocated target out of rel32 range at +0"},
    {"lea moved 3 GiB down", b_lea_out, -3 * (int64_t)GIB, 0,
     "relocated target out of rel32 range at +0"},
    {"mixed sequence moved 2 GiB", b_mixed, 2 * GIB, 0,
     "relocated target out of rel32 range at +12"},
    {"xen prefix + rip", b_xen_prefix_rip, MIB, INSN_EMULATE_PREFIX, NULL},
    {"undecodable", b_undecodable, MIB, 0, "undecodable instruction at +3"},
    {"runs past the end", b_truncated, MIB, 0,
     "instruction at +2 runs past the end"},
    {"66 xbegin rel16", b_xbegin16, MIB, 0,
     "rel16 branch at +0 cannot be relocated"},
    {"addr32 rip", b_addr32_rip, MIB, 0,
     "addr32 RIP-relative operand at +0 cannot be relocated"},
};

/* objdump's text without the displacement or target it spells out. */
static void normalise(const char *t, char *out, size_t size)
{
	char *cut, *rip;
	size_t k;
	bool branch;
	uint64_t target;

	snprintf(out, size, "%s", t);
	cut = strstr(out, " #");
	if (cut)
		*cut = 0;
	rip = strstr(out, "(%rip)");
	if (rip) {
		char *s = rip;

		while (s > out && s[-1] != ',' && s[-1] != ' ')
			s--;
		memmove(s, rip, strlen(rip) + 1);
	} else if (od_target(out, &branch, &target) && branch) {
		const char *m = od_mnemonic(out, &k);

		out[m - out + k] = 0;
	}
}

static size_t rel_total_targets;

/*
 * Disassembles orig at src and moved at dst, from byte skip on, and checks
 * that the instructions are the same and every target is the same, or
 * moved with the block when it lies inside (or at the end of) it.
 */
static void same_targets(const char *name, const uint8_t *orig,
			 const uint8_t *moved, size_t n, size_t skip,
			 uint64_t src, uint64_t dst)
{
	struct od_list a = {0}, b = {0};

	if (n <= skip)
		return;
	if (!objdump_bytes(orig + skip, n - skip, src + skip, true, &a) ||
	    !objdump_bytes(moved + skip, n - skip, dst + skip, true, &b)) {
		KTAP_CHECK(0, "%s: objdump failed", name);
		goto out;
	}
	KTAP_CHECK(a.n == b.n, "%s: %zu instructions before, %zu after", name,
		   a.n, b.n);
	for (size_t i = 0; i < a.n && i < b.n; i++) {
		const struct od_insn *x = &a.v[i], *y = &b.v[i];
		char nx[112], ny[112];
		bool bx, by;
		uint64_t tx, ty, want;
		bool hx = od_target(x->text, &bx, &tx);
		bool hy = od_target(y->text, &by, &ty);

		KTAP_CHECK(!x->bad && !y->bad, "%s: (bad) in the listing",
			   name);
		KTAP_CHECK(x->len == y->len && x->addr - src == y->addr - dst,
			   "%s: instruction %zu moved or resized", name, i);
		normalise(x->text, nx, sizeof(nx));
		normalise(y->text, ny, sizeof(ny));
		KTAP_CHECK(!strcmp(nx, ny), "%s: '%s' became '%s'", name,
			   x->text, y->text);
		KTAP_CHECK(hx == hy, "%s: target appeared/vanished at %zu",
			   name, i);
		if (!hx || !hy)
			continue;
		rel_total_targets++;
		want = tx - src <= n ? tx + (dst - src) : tx;
		KTAP_CHECK(ty == want,
			   "%s: '%s' at %" PRIx64 " -> '%s' at %" PRIx64
			   ", want target %" PRIx64,
			   name, x->text, x->addr, y->text, y->addr, want);
	}
out:
	free(a.v);
	free(b.v);
}

static void relocation(const struct rel_case *c)
{
	char name[128];
	struct emit e = {0};
	uint8_t moved[64];
	uint64_t dst = SRC + c->delta;
	const char *err;

	snprintf(name, sizeof(name), "relocate: %s", c->name);
	ktap_case(name);
	c->build(&e);
	memcpy(moved, e.b, e.n);
	err = insn_relocate(moved, e.n, SRC, dst, c->flags);
	if (c->err) {
		KTAP_CHECK(err && !strcmp(err, c->err), "got '%s', want '%s'",
			   err ? err : "success", c->err);
		KTAP_CHECK(!memcmp(moved, e.b, e.n),
			   "buffer changed on failure");
	} else {
		KTAP_CHECK(!err, "failed: %s", err);
		if (!err)
			same_targets(c->name, e.b, moved, e.n,
				     c->flags & INSN_EMULATE_PREFIX ? 5 : 0,
				     SRC, dst);
	}
	/*
	 * The engine's own path (patch/reloc.c: scan once, apply per site)
	 * must agree: the same bytes where insn_relocate() succeeds, a
	 * refusal where it fails. It is stricter in one way: it never
	 * re-aims a rel8 branch that leaves the bytes, even one that fits.
	 */
	struct patch_reloc rl;
	uint8_t eng[64];
	const char *scan = patch_reloc_scan(e.b, e.n, SRC, c->flags, &rl);
	const char *apply = NULL;
	if (!scan) {
		memcpy(eng, e.b, e.n);
		apply = patch_reloc_apply(&rl, eng, dst);
	}
	if (err)
		KTAP_CHECK(scan || apply,
			   "engine moved what insn_relocate "
			   "refused ('%s')",
			   err);
	else if (scan)
		KTAP_CHECK(strstr(scan, "rel8"), "engine refused: %s", scan);
	else
		KTAP_CHECK(!apply && !memcmp(eng, moved, e.n),
			   "engine's bytes differ from insn_relocate's (%s)",
			   apply ? apply : "same length");
	ktap_end_case();
}

/*
 * One kernel template: decodes it, finds the relative fields that leave it
 * (the engine's relocation scan, patch/reloc.c, must find the same ones),
 * relocates it to dst and compares. Returns the number of leaving fields.
 */
static int check_template(const struct pvop_template *tpl, uint64_t dst)
{
	const struct section *x = &kernel.text;
	uint64_t off = tpl->addr - x->addr;
	const uint8_t *code = x->bytes + off;
	uint8_t moved[64];
	char name[64];
	struct insn in;
	int leaving = -1, found = 0, want;
	size_t ninsn = 0, skip = 0;
	const char *err;

	snprintf(name, sizeof(name), "template at %" PRIx64, tpl->addr);
	if (off >= x->size || tpl->len > x->size - off ||
	    tpl->len > sizeof(moved)) {
		KTAP_CHECK(0, "%s: not inside .text", name);
		return 0;
	}
	for (size_t o = 0; o < tpl->len; o += in.len) {
		uint64_t target;
		unsigned at, size;

		if (!insn_decode(code + o, tpl->len - o, INSN_EMULATE_PREFIX,
				 &in)) {
			KTAP_CHECK(0, "%s: undecodable at +%zu", name, o);
			return 0;
		}
		skip = o ? skip : in.emulate_len;
		ninsn++;
		if (!in.rel_size && !in.rip_rel)
			continue;
		at = in.rel_size ? in.imm_off : in.disp_off;
		size = in.rel_size ? in.rel_size : 4;
		target =
		    tpl->addr + o + in.len + read_signed(code + o + at, size);
		if (target - tpl->addr > tpl->len) {
			leaving = (int)(o + at);
			found++;
		}
	}
	struct patch_reloc rl;
	err = patch_reloc_scan(code, tpl->len, tpl->addr, INSN_EMULATE_PREFIX,
			       &rl);
	want = err || !rl.n ? -1 : rl.off[rl.n - 1];
	KTAP_CHECK(!err && rl.n == found && leaving == want,
		   "%s: %d fields leave it, last at %d; the engine's scan "
		   "finds %d, last at %d (%s)",
		   name, found, leaving, err ? -1 : rl.n, want,
		   err ? err : "ok");
	KTAP_CHECK(!tpl->one_insn || ninsn == 1,
		   "%s: marked one instruction, decodes as %zu", name, ninsn);
	memcpy(moved, code, tpl->len);
	err =
	    insn_relocate(moved, tpl->len, tpl->addr, dst, INSN_EMULATE_PREFIX);
	KTAP_CHECK(!err, "%s: %s", name, err);
	if (!err)
		same_targets(name, code, moved, tpl->len, skip, tpl->addr, dst);
	return found;
}

/* Every pvop template in the kernel, relocated as the patcher will. */
static void kernel_templates(void)
{
	const struct section *t = &kernel.templates;
	size_t count = 0, with_rel = 0;

	ktap_case("relocate: kernel templates");
	KTAP_CHECK(!kernel.err, "%s: %s", kernel.path, kernel.err);
	for (size_t i = 0;
	     !kernel.err && i + sizeof(struct pvop_template) <= t->size;
	     i += sizeof(struct pvop_template)) {
		struct pvop_template tpl;

		memcpy(&tpl, t->bytes + i, sizeof(tpl));
		with_rel += check_template(&tpl, tpl.addr + 0x100000 + i) > 0;
		count++;
	}
	printf("# %zu kernel templates decoded and relocated, %zu with a "
	       "relative field leaving them\n",
	       count, with_rel);
	KTAP_CHECK(kernel.err || count > 0, "no templates");
	ktap_end_case();
}

int main(void)
{
	size_t n_rel = sizeof(rel_cases) / sizeof(rel_cases[0]);

	kernel.err = load_kernel();
	ktap_begin(5 + (int)n_rel);
	kernel_text();
	encodings();
	emulate_prefix();
	for (size_t i = 0; i < n_rel; i++)
		relocation(&rel_cases[i]);
	kernel_templates();
	printf("# insn: kernel .text: decoded %zu instructions, %zu "
	       "mismatches, %zu (bad); walk %zu; %zu encodings; %zu "
	       "relocation cases + kernel templates, %zu targets compared\n",
	       kernel_decoded, kernel_mismatches, kernel_bad, walk_steps,
	       enc_run, n_rel, rel_total_targets);
	free(kernel.file);
	return ktap_finish();
}
