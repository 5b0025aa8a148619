/*
 * bench_thunks.S - retpoline-style thunks for the benchmark's `retpoline`
 * mode, one per op: called directly, they go to pv_ops[op] through a
 * `ret` whose return address was replaced, so a mispredicted return is
 * caught in a pause/lfence loop (the retpoline construction). No scratch
 * register is needed: the return address is popped and the target pushed.
 */
#include "asm.h"
#include "pvop_abi.h"

	.text
	.irp op, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
	.balign 16
FUNC(bench_retpoline_\op)
	call	1f
2:	pause
	lfence
	jmp	2b
1:	lea	8(%rsp), %rsp
	pushq	pv_ops + 8 * \op(%rip)
	ret
ENDFUNC(bench_retpoline_\op)
	.endr

/*
 * A retpoline through %rax (the select benchmark, bench_select.h): the
 * return address is overwritten with the target, so the `ret` goes there
 * and a mispredicted return is caught in the pause/lfence loop.
 */
	.balign 16
FUNC(bench_retpoline_rax)
	call	1f
2:	pause
	lfence
	jmp	2b
1:	mov	%rax, (%rsp)
	ret
ENDFUNC(bench_retpoline_rax)
