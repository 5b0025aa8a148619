/*
 * insn.c - x86-64 instruction length/operand decoder and the relocator
 * built on it (interface and coverage: patch/include/insn.h).
 *
 * Table-driven so that it stays small and checkable: one character per
 * opcode says what follows it (ModRM, which immediate), laid out like the
 * SDM's opcode maps (Vol. 2, Appendix A: one row per high nibble), so a
 * row can be compared with the manual at a glance. The handful of opcodes
 * whose form depends on ModRM.reg or on a prefix are fixed up in code.
 * Kernel code: freestanding, no library calls.
 */
#include "insn.h"

/*
 * Forms, one character per opcode:
 *   .  no operand bytes        m  ModRM                  R  ModRM, always
 *   b  imm8                    B  ModRM + imm8              register form
 *   w  imm16                   e  imm16 + imm8 (enter)   o  moffs
 *   z  imm16/32 (66)           Z  ModRM + imm16/32       v  imm16/32/64
 *   j  rel8                    J  rel32 (Intel: 66 does not shorten it)
 *   p  prefix or escape (handled before the lookup)
 *   x  invalid in 64-bit mode
 */
static const char one_byte_map[257] =
    /* 0123456789abcdef */
    "mmmmbzxxmmmmbzxp"	/* 0: add or; 0f escape */
    "mmmmbzxxmmmmbzxx"	/* 1: adc sbb */
    "mmmmbzpxmmmmbzpx"	/* 2: and sub; es cs */
    "mmmmbzpxmmmmbzpx"	/* 3: xor cmp; ss ds */
    "pppppppppppppppp"	/* 4: REX */
    "................"	/* 5: push pop */
    "xxpmppppzZbB...."	/* 6: 62 EVEX, movsxd, fs gs 66 67, imul, ins outs */
    "jjjjjjjjjjjjjjjj"	/* 7: jcc rel8 */
    "BZxBmmmmmmmmmmmm"	/* 8: group 1, test xchg mov lea, 8f pop */
    "..........x....."	/* 9: xchg cwde cdq fwait pushf popf sahf lahf */
    "oooo....bz......"	/* a: mov moffs, string ops, test */
    "bbbbbbbbvvvvvvvv"	/* b: mov imm */
    "BBw.ppBZe.w..bx."	/* c: shifts, ret, c4 c5 VEX, mov, enter, int */
    "mmmmxxx.mmmmmmmm"	/* d: shifts, xlat, x87 */
    "jjjjbbbbJJxj...."	/* e: loop jrcxz, in out, call jmp */
    "p.pp..BZ......mm"; /* f: lock int1 rep, group 3, flags, groups 4/5 */

static const char two_byte_map[257] =
    /* 0123456789abcdef */
    "mmmmx.....x.xm.B"	/* 0: groups 6/7, lar lsl, syscall, ud2, 3DNow! */
    "mmmmmmmmmmmmmmmm"	/* 1: SSE moves, prefetch, hint nops, endbr */
    "RRRRxxxxmmmmmmmm"	/* 2: mov cr/dr, SSE */
    "......x.pxpxxxxx"	/* 3: wrmsr rdtsc rdmsr..., 38 and 3a escapes */
    "mmmmmmmmmmmmmmmm"	/* 4: cmovcc */
    "mmmmmmmmmmmmmmmm"	/* 5: SSE */
    "mmmmmmmmmmmmmmmm"	/* 6: MMX/SSE */
    "BBBBmmm.mmxxmmmm"	/* 7: pshuf, shift groups, emms, vmread/write */
    "JJJJJJJJJJJJJJJJ"	/* 8: jcc rel32 */
    "mmmmmmmmmmmmmmmm"	/* 9: setcc */
    "...mBmxx...mBmmm"	/* a: push/pop fs gs, cpuid, bt shld bts shrd */
    "mmmmmmmmmmBmmmmm"	/* b: cmpxchg, movzx, popcnt, ud1, group 8 */
    "mmBmBBBm........"	/* c: xadd, cmpps, pinsrw..shufps, group 9, bswap */
    "mmmmmmmmmmmmmmmm"	/* d: MMX/SSE */
    "mmmmmmmmmmmmmmmm"	/* e: MMX/SSE */
    "mmmmmmmmmmmmmmmm"; /* f: MMX/SSE, ud0 */

/* What follows the opcode bytes. */
struct form {
	bool modrm;
	bool reg_only; /* mod is ignored: no SIB, no displacement */
	uint8_t imm;   /* immediate bytes */
	uint8_t rel;   /* of which a branch displacement */
	uint8_t moffs; /* absolute address bytes, in place of ModRM */
};

/* A reading position; lim is where reading must stop. */
struct cursor {
	const uint8_t *p;
	unsigned i;
	unsigned lim;	 /* end of the input or the 15-byte limit */
	bool input_ends; /* lim is the end of the input */
};

static int next(struct cursor *c)
{
	if (c->i >= c->lim)
		return -1;
	return c->p[c->i++];
}

static bool skip(struct cursor *c, unsigned k)
{
	if (c->i + k > c->lim)
		return false;
	c->i += k;
	return true;
}

static unsigned legacy_bit(int b)
{
	switch (b) {
	case 0x66:
		return INSN_PFX_OPSIZE;
	case 0x67:
		return INSN_PFX_ADSIZE;
	case 0xf0:
		return INSN_PFX_LOCK;
	case 0xf2:
		return INSN_PFX_REPNE;
	case 0xf3:
		return INSN_PFX_REP;
	case 0x26:
	case 0x2e:
	case 0x36:
	case 0x3e:
	case 0x64:
	case 0x65:
		return INSN_PFX_SEG;
	}
	return 0;
}

static bool is_emulate_prefix(const uint8_t *p, size_t n)
{
	if (n < INSN_EMULATE_PREFIX_LEN || p[0] != 0x0f || p[1] != 0x0b)
		return false;
	return (p[2] == 'x' && p[3] == 'e' && p[4] == 'n') ||
	       (p[2] == 'k' && p[3] == 'v' && p[4] == 'm');
}

/* Legacy prefixes and REX; stops at the first other byte (not consumed). */
static bool read_prefixes(struct cursor *c, struct insn *in)
{
	for (;;) {
		int b = next(c);
		unsigned bit;

		if (b < 0)
			return false;
		bit = legacy_bit(b);
		if (bit) {
			in->prefixes++;
			in->legacy |= bit;
			if (bit == INSN_PFX_SEG)
				in->seg = b;
			in->rex = 0; /* a REX must come last to count */
		} else if ((b & 0xf0) == 0x40) {
			in->rex = b;
		} else {
			c->i--;
			return true;
		}
	}
}

/*
 * The rest of a VEX or EVEX prefix, then the opcode:
 *   c5 RvvvvLpp
 *   c4 RXBmmmmm WvvvvLpp
 *   62 RXBR'0mmm Wvvvv1pp zL'LbV'aaa
 * Returns 0 for an invalid map or reserved bit, -1 when out of bytes.
 */
static int read_vex(struct cursor *c, int esc, struct insn *in, struct form *f)
{
	int p0 = next(c), p1 = esc == 0xc5 ? 0 : next(c), op;

	if (esc == 0x62)
		next(c); /* P2: masking, vector length, broadcast */
	op = next(c);

	if (op < 0)
		return -1;
	in->vex = true;
	if (esc == 0xc5) {
		in->map = 1;
	} else if (esc == 0xc4) {
		in->map = p0 & 0x1f;
		if (in->map < 1 || in->map > 3)
			return 0;
	} else {
		in->evex = true;
		in->map = p0 & 0x07;
		if ((p0 & 0x08) || !(p1 & 0x04) || in->map == 0 ||
		    in->map == 4 || in->map == 7)
			return 0;
	}
	in->opcode = op;
	f->modrm = !(in->map == 1 && op == 0x77 && !in->evex); /* vzero* */
	if (in->map == 3)
		f->imm = 1;
	else if (in->map == 1 && ((op >= 0x70 && op <= 0x73) || op == 0xc2 ||
				  (op >= 0xc4 && op <= 0xc6)))
		f->imm = 1;
	return 1;
}

/* The form a map character stands for; false for 'x' and 'p'. */
static bool form_of(char ch, const struct insn *in, struct form *f)
{
	bool rex_w = in->rex & 0x08;
	unsigned z = (in->legacy & INSN_PFX_OPSIZE) && !rex_w ? 2 : 4;

	switch (ch) {
	case '.':
		return true;
	case 'R':
		f->reg_only = true;
		/* fall through */
	case 'm':
		f->modrm = true;
		return true;
	case 'B':
		f->modrm = true;
		/* fall through */
	case 'b':
		f->imm = 1;
		return true;
	case 'w':
		f->imm = 2;
		return true;
	case 'e':
		f->imm = 3;
		return true;
	case 'Z':
		f->modrm = true;
		/* fall through */
	case 'z':
		f->imm = z;
		return true;
	case 'v':
		f->imm = rex_w ? 8 : z;
		return true;
	case 'o':
		f->moffs = in->legacy & INSN_PFX_ADSIZE ? 4 : 8;
		return true;
	case 'j':
		f->imm = f->rel = 1;
		return true;
	case 'J':
		f->imm = f->rel = 4;
		return true;
	}
	return false;
}

/* ModRM, SIB and displacement sizes; 32-bit addressing (67) has the same. */
static bool read_modrm(struct cursor *c, struct insn *in, bool reg_only)
{
	int m = next(c), mod, rm;

	if (m < 0)
		return false;
	in->has_modrm = true;
	in->modrm = m;
	mod = reg_only ? 3 : m >> 6;
	rm = m & 7;
	if (mod == 3)
		return true;
	if (rm == 4) {
		int sib = next(c);

		if (sib < 0)
			return false;
		in->has_sib = true;
		in->sib = sib;
		if (mod == 0 && (sib & 7) == 5)
			in->disp_size = 4;
	} else if (mod == 0 && rm == 5) {
		in->disp_size = 4;
		in->rip_rel = true;
	}
	if (mod == 1)
		in->disp_size = 1;
	else if (mod == 2)
		in->disp_size = 4;
	return true;
}

/* Opcodes whose operands or validity depend on ModRM.reg or a prefix. */
static bool fix_up(struct insn *in, struct form *f)
{
	unsigned reg = (in->modrm >> 3) & 7, mod = in->modrm >> 6;

	if (in->vex)
		return true;
	if (in->map == 1 && in->opcode == 0x78 &&
	    (in->legacy & (INSN_PFX_OPSIZE | INSN_PFX_REPNE)))
		f->imm = 2; /* extrq/insertq ib, ib (SSE4a) */
	if (in->map != 0)
		return true;
	switch (in->opcode) {
	case 0xf6: /* group 3: only test (/0, /1) has an immediate */
	case 0xf7:
		if (reg >= 2)
			f->imm = 0;
		return true;
	case 0xfe: /* group 4: inc, dec */
		return reg < 2;
	case 0xff: /* group 5: no /7, far call/jmp need memory */
		return reg != 7 && !(mod == 3 && (reg == 3 || reg == 5));
	case 0x8f: /* group 1a: pop; other reg values are XOP */
		return reg == 0;
	case 0xc6: /* group 11: mov, and xabort ib / xbegin rel */
	case 0xc7:
		if (reg == 7 && in->modrm == 0xf8) {
			if (in->opcode == 0xc7)
				f->rel = f->imm;
			return true;
		}
		return reg == 0;
	}
	return true;
}

/* Returns the length, 0 if invalid or too long, -1 if the input ends. */
static int decode(const uint8_t *p, size_t n, unsigned flags, struct insn *in)
{
	struct cursor c = {.p = p};
	struct form f = {0};
	int b, ok;
	const char *map = one_byte_map;

	*in = (struct insn){0};
	if ((flags & INSN_EMULATE_PREFIX) && is_emulate_prefix(p, n))
		c.i = in->emulate_len = INSN_EMULATE_PREFIX_LEN;
	c.lim = c.i + INSN_MAX_LEN;
	if (n < c.lim) {
		c.lim = n;
		c.input_ends = true;
	}
	if (!read_prefixes(&c, in))
		goto overrun;
	b = next(&c);
	if (b == 0xc4 || b == 0xc5 || b == 0x62) {
		ok = read_vex(&c, b, in, &f);
		if (ok < 0)
			goto overrun;
		if (!ok)
			return 0;
	} else {
		if (b == 0x0f) {
			b = next(&c);
			in->map = 1;
			map = two_byte_map;
			if (b == 0x38 || b == 0x3a) {
				in->map = b == 0x38 ? 2 : 3;
				f.modrm = true;
				f.imm = in->map == 3;
				b = next(&c);
			}
		}
		if (b < 0)
			goto overrun;
		in->opcode = b;
		if (in->map <= 1 && !form_of(map[b], in, &f))
			return 0;
	}
	if (f.modrm && !read_modrm(&c, in, f.reg_only))
		goto overrun;
	if (!fix_up(in, &f))
		return 0;
	if (f.moffs)
		in->disp_size = f.moffs;
	in->disp_off = in->disp_size ? c.i : 0;
	if (!skip(&c, in->disp_size))
		goto overrun;
	in->imm_size = f.imm;
	in->imm_off = f.imm ? c.i : 0;
	in->rel_size = f.rel;
	if (!skip(&c, f.imm))
		goto overrun;
	in->len = c.i;
	return c.i;
overrun:
	return c.input_ends ? -1 : 0;
}

unsigned insn_decode(const uint8_t *p, size_t n, unsigned flags,
		     struct insn *out)
{
	int len = decode(p, n, flags, out);

	if (len <= 0) {
		*out = (struct insn){0};
		return 0;
	}
	return len;
}

/* ---- relocation ---- */

static int64_t get_signed(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned k = size; k-- > 0;)
		v = v << 8 | p[k];
	if (size < 8 && (v >> (8 * size - 1)))
		v |= ~0ull << (8 * size);
	return (int64_t)v;
}

static void put(uint8_t *p, unsigned size, int64_t value)
{
	uint64_t v = (uint64_t)value;

	for (unsigned k = 0; k < size; k++, v >>= 8)
		p[k] = (uint8_t)v;
}

static bool fits(int64_t v, unsigned size)
{
	int64_t half = (int64_t)1 << (8 * size - 1);

	return v >= -half && v < half;
}

static char reloc_msg[80];

/* "<head><off><tail>", in the static buffer. */
static const char *fail_at(const char *head, size_t off, const char *tail)
{
	char digits[20];
	unsigned nd = 0, o = 0;

	do {
		digits[nd++] = '0' + off % 10;
		off /= 10;
	} while (off && nd < sizeof(digits));
	while (*head && o < sizeof(reloc_msg) - 1)
		reloc_msg[o++] = *head++;
	while (nd && o < sizeof(reloc_msg) - 1)
		reloc_msg[o++] = digits[--nd];
	while (*tail && o < sizeof(reloc_msg) - 1)
		reloc_msg[o++] = *tail++;
	reloc_msg[o] = 0;
	return reloc_msg;
}

/*
 * Checks, and with write set rewrites, the one relative field of the
 * instruction at buf + off, if it has one.
 */
static const char *fix_field(uint8_t *buf, size_t n, size_t off,
			     const struct insn *in, uint64_t src, uint64_t dst,
			     bool write)
{
	unsigned at, size;
	uint64_t end_src = src + off + in->len, target;
	int64_t moved;

	if (in->rel_size) {
		at = in->imm_off;
		size = in->rel_size;
		if (size == 2)
			return fail_at("rel16 branch at +", off,
				       " cannot be relocated");
	} else if (in->rip_rel) {
		at = in->disp_off;
		size = 4;
		if (in->legacy & INSN_PFX_ADSIZE)
			return fail_at("addr32 RIP-relative operand at +", off,
				       " cannot be relocated");
	} else {
		return NULL;
	}
	target = end_src + get_signed(buf + off + at, size);
	if (target - src <= n)
		return NULL; /* inside the block, or its end: moves with it */
	moved = (int64_t)(target - (dst + off + in->len));
	if (!fits(moved, size))
		return size == 1 ? fail_at("rel8 branch at +", off,
					   " leaves the replacement")
				 : fail_at("relocated target out of rel32 "
					   "range at +",
					   off, "");
	if (write)
		put(buf + off + at, size, moved);
	return NULL;
}

const char *insn_relocate(uint8_t *buf, size_t n, uint64_t src, uint64_t dst,
			  unsigned flags)
{
	struct insn in;
	const char *err;

	/* Pass 0 only checks, so a failure leaves buf untouched. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t off = 0; off < n; off += in.len) {
			int len = decode(buf + off, n - off, flags, &in);

			if (len < 0)
				return fail_at("instruction at +", off,
					       " runs past the end");
			if (len == 0)
				return fail_at("undecodable instruction at +",
					       off, "");
			err = fix_field(buf, n, off, &in, src, dst, pass);
			if (err)
				return err;
		}
	}
	return NULL;
}
