/*
 * nops.c - multi-byte NOPs: writing them and recognising them.
 */
#include "nops.h"

const char *const patch_pad_names[PATCH_PAD_NR] = {
    [PATCH_PAD_NOPS] = "nops",	   [PATCH_PAD_NOP1] = "nop1",
    [PATCH_PAD_JMP] = "jmp",	   [PATCH_PAD_SINGLE] = "single",
    [PATCH_PAD_PREFIX] = "prefix",
};

/* The recommended long NOPs (Intel SDM, NOP instruction), 1 to 9 bytes. */
static const uint8_t nop_table[NOP_MAX_LEN + 1][NOP_MAX_LEN] = {
    [1] = {0x90},
    [2] = {0x66, 0x90},
    [3] = {0x0f, 0x1f, 0x00},
    [4] = {0x0f, 0x1f, 0x40, 0x00},
    [5] = {0x0f, 0x1f, 0x44, 0x00, 0x00},
    [6] = {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
    [7] = {0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
    [8] = {0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
    [9] = {0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
};

static void fill_long_nops(uint8_t *p, size_t n)
{
	while (n) {
		size_t k = n > NOP_MAX_LEN ? NOP_MAX_LEN : n;
		for (size_t i = 0; i < k; i++)
			p[i] = nop_table[k][i];
		p += k;
		n -= k;
	}
}

/* One NOP of n (10..15) bytes: the 9-byte form behind more 0x66s. */
static void fill_one_long_nop(uint8_t *p, size_t n)
{
	size_t extra = n - NOP_MAX_LEN;
	for (size_t i = 0; i < extra; i++)
		p[i] = 0x66;
	for (size_t i = 0; i < NOP_MAX_LEN; i++)
		p[extra + i] = nop_table[NOP_MAX_LEN][i];
}

void nops_fill(uint8_t *p, size_t n, enum patch_pad style)
{
	switch (style) {
	case PATCH_PAD_SINGLE:
	case PATCH_PAD_PREFIX:
		if (n > NOP_MAX_LEN && n <= NOP_INSN_MAX_LEN) {
			fill_one_long_nop(p, n);
			return;
		}
		if (n > NOP_INSN_MAX_LEN) {
			nops_fill(p, n, PATCH_PAD_JMP);
			return;
		}
		fill_long_nops(p, n);
		return;
	case PATCH_PAD_NOP1:
		for (size_t i = 0; i < n; i++)
			p[i] = 0x90;
		return;
	case PATCH_PAD_JMP:
		if (n > 2 && n - 2 <= 127) {
			p[0] = 0xeb;
			p[1] = (uint8_t)(n - 2);
			fill_long_nops(p + 2, n - 2);
			return;
		}
		fill_long_nops(p, n);
		return;
	default:
		fill_long_nops(p, n);
		return;
	}
}

size_t nop_insn_len(const uint8_t *p, size_t n)
{
	size_t i = 0;

	/* Operand-size and segment prefixes, as assemblers pad with. */
	while (i < n && i < NOP_INSN_MAX_LEN &&
	       (p[i] == 0x66 || p[i] == 0x2e || p[i] == 0x3e))
		i++;
	if (i < n && p[i] == 0x90)
		return i + 1 <= NOP_INSN_MAX_LEN ? i + 1 : 0;
	/* A short jmp over NOPs is padding too (PATCH_PAD_JMP). */
	if (i == 0 && n >= 2 && p[0] == 0xeb && (size_t)p[1] + 2 <= n)
		return nops_valid(p + 2, p[1]) ? (size_t)p[1] + 2 : 0;
	if (i + 3 > n || p[i] != 0x0f || p[i + 1] != 0x1f)
		return 0;
	uint8_t modrm = p[i + 2];
	size_t len = i + 3;
	unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
	if (reg != 0)
		return 0;
	if (mod != 3 && rm == 4) {
		if (len >= n)
			return 0;
		/* SIB; base 101 with mod 00 means a disp32, no base */
		if (mod == 0 && (p[len] & 7) == 5)
			len += 4;
		len++;
	}
	if (mod == 1)
		len += 1;
	else if (mod == 2 || (mod == 0 && rm == 5))
		len += 4;
	return len <= n && len <= NOP_INSN_MAX_LEN ? len : 0;
}

bool nops_valid(const uint8_t *p, size_t n)
{
	while (n) {
		size_t k = nop_insn_len(p, n);
		if (!k)
			return false;
		p += k;
		n -= k;
	}
	return true;
}
