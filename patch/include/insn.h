/*
 * insn.h - the patch engine's x86-64 instruction decoder and relocator.
 *
 * The engine copies instruction sequences (templates, replacements) from
 * where they were assembled to where they will run. Relative branches and
 * RIP-relative operands that reach outside the copied block then point at
 * the wrong place; to fix them the engine must know where every instruction
 * starts and which bytes are displacements. insn_decode() finds that out
 * for one instruction: its length, prefixes, opcode map, ModRM, and the
 * offset and size of its displacement and immediate. insn_relocate() walks
 * a block with it and rewrites what needs rewriting, or says precisely why
 * it cannot.
 *
 * Coverage: 64-bit mode only; the whole one-byte map, the 0f, 0f 38 and
 * 0f 3a maps, 3DNow! (0f 0f), VEX (c4/c5) and EVEX (62) with their maps
 * (EVEX maps 5 and 6 too). Lengths follow Intel's rules: a 66 prefix does
 * not shorten a near branch (e8/e9/0f 8x stay rel32). XOP (8f with a
 * ModRM.reg other than 0), VIA PadLock (0f a6/a7) and APX are not
 * decoded. Encodings that do not exist in 64-bit mode decode as invalid
 * (len 0): the one-byte opcodes 06 07 0e 16 17 1e 1f 27 2f 37 3f 60 61 82
 * 9a ce d4 d5 d6 ea, the empty slots of groups fe, ff, 8f, c6, c7, and a
 * few empty 0f-map slots. Other reserved encodings still get the length
 * their form implies: the decoder measures, it does not validate every
 * opcode. Boundaries are the CPU's: a REX followed by another prefix is
 * ignored but counted, and fwait (9b) is an instruction of its own (objdump
 * shows the first apart and merges the second with a following x87 op).
 *
 * Usage:
 *
 *	struct insn in;
 *	for (size_t off = 0; off < n; off += in.len)
 *		if (!insn_decode(code + off, n - off, 0, &in))
 *			return "undecodable";
 *
 *	err = insn_relocate(copy, len, (uint64_t)tpl, (uint64_t)site, 0);
 *
 * Freestanding: no libc, no floating point, nothing on the stack beyond a
 * few scalars. Shared by the kernel and the host tests
 * (tests/host/test_insn.c checks it against objdump over the whole kernel).
 */
#ifndef TINYPV_INSN_H
#define TINYPV_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INSN_MAX_LEN 15

/*
 * Flag: treat Xen's/KVM's forced-emulation prefix (ud2 = 0f 0b, then the
 * ASCII bytes "xen" or "kvm") as a prefix of the instruction that follows.
 * Its 5 bytes count in len and emulate_len; the 15-byte limit applies to
 * the instruction after it, so such a len may reach 20.
 */
#define INSN_EMULATE_PREFIX 0x1
#define INSN_EMULATE_PREFIX_LEN 5

/* Bits of insn.legacy: which legacy prefixes are present. */
#define INSN_PFX_OPSIZE 0x001 /* 66 */
#define INSN_PFX_ADSIZE 0x002 /* 67 */
#define INSN_PFX_LOCK 0x004   /* f0 */
#define INSN_PFX_REPNE 0x008  /* f2 */
#define INSN_PFX_REP 0x010    /* f3 */
#define INSN_PFX_SEG 0x020    /* any of 2e 36 3e 26 64 65 */

struct insn {
	uint8_t len;	     /* total length in bytes; 0 = undecodable */
	uint8_t emulate_len; /* bytes of forced-emulation prefix in len (0/5) */
	uint8_t prefixes;    /* count of legacy prefix bytes (66 67 f0 f2 f3
				2e 36 3e 26 64 65), repeats included */
	uint16_t legacy;     /* INSN_PFX_* bits of those prefixes */
	uint8_t seg;	     /* last segment prefix byte, or 0 */
	uint8_t rex;	     /* REX byte, or 0; a REX not directly before the
				opcode is ignored, as the CPU does */
	uint8_t map;	     /* 0 one-byte, 1 = 0f, 2 = 0f 38, 3 = 0f 3a; for
				VEX/EVEX their map field (EVEX: 1-3, 5, 6) */
	uint8_t opcode;	     /* the opcode byte within its map */
	bool vex;	     /* VEX (c4/c5) or EVEX (62) encoded */
	bool evex;	     /* EVEX (62) encoded */
	bool has_modrm;
	uint8_t modrm;
	bool has_sib;
	uint8_t sib;
	uint8_t disp_off, disp_size; /* displacement: offset in the insn, size
					0/1/4, or 8/4 for a moffs (a0-a3;
					4 with 67) */
	uint8_t imm_off, imm_size;   /* immediate(s), total size (enter: 3) */
	bool rip_rel;	  /* ModRM mod=00 rm=101 in 64-bit mode: disp32 is
			     relative to the end of the instruction (EIP-
			     relative with 67, which relocation refuses) */
	uint8_t rel_size; /* relative branch displacement size 0/1/4 (2 only
			     for 66 xbegin); it is the immediate */
};

/*
 * Decodes one instruction at p, of which n bytes are readable (n may exceed
 * 15). Returns its length, also stored in out->len, or 0 when the bytes are
 * invalid in 64-bit mode, the input ends inside the instruction, or it
 * would be longer than 15 bytes. out is always written.
 */
unsigned insn_decode(const uint8_t *p, size_t n, unsigned flags,
		     struct insn *out);

/*
 * Relocates code: buf holds n bytes copied from address src, about to be
 * placed at address dst. Every rel8/rel32 branch and every RIP-relative
 * disp32 whose target lies outside the block is adjusted so that it reaches
 * the same target from dst. Targets inside the block, including its end
 * (src + n: a "1:" label after the last instruction), move with it and are
 * left alone; a rel8 branch leaving the block is adjusted when the new
 * displacement still fits, else it is an error. flags are insn_decode()'s
 * (INSN_EMULATE_PREFIX for templates that use the prefix).
 *
 * Returns NULL on success, else a message naming the offending
 * instruction's offset in buf: "undecodable instruction at +3",
 * "instruction at +9 runs past the end", "rel8 branch at +2 leaves the
 * replacement", "relocated target out of rel32 range at +5", and for the
 * two forms it does not handle "rel16 branch at +0 cannot be relocated"
 * (66 xbegin), "addr32 RIP-relative operand at +0 cannot be relocated". The
 * message lives in one static buffer, valid until the next call (boot-time
 * patching is single-threaded). buf is unchanged on failure.
 */
const char *insn_relocate(uint8_t *buf, size_t n, uint64_t src, uint64_t dst,
			  unsigned flags);

#endif
