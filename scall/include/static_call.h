/*
 * static_call.h - calls whose target changes rarely, at run time, and cost
 * what a direct call costs (seed mails 000, 001, 003; doc/static-calls.md).
 *
 *   int serial_put(const char *s, size_t n);
 *   int xen_put(const char *s, size_t n);
 *
 *   DEFINE_STATIC_CALL(console_put, serial_put);   // one .c file
 *   DECLARE_STATIC_CALL(console_put, serial_put);  // a header, for callers
 *
 *   static_call(console_put)("hello\n", 6);       // a call, type-checked
 *   static_call_update(console_put, xen_put);      // every caller, now
 *   static_call_update(console_put, NULL);         // calls become no-ops
 *   if (static_call_query(console_put) == xen_put) ...
 *
 * What a call is. Each key has a trampoline, __SCT__name: eight bytes of
 * text that begin as `jmp *key.early(%rip)` (correct before any patching)
 * and are patched at boot to `jmp rel32 target` (`ret` for NULL, `jmp
 * __static_call_return0` for the return-0 target). static_call(name) is a
 * plain C call to the trampoline, so the compiler emits `call __SCT__name` (or a
 * tail `jmp`) with the full C calling convention. Those call instructions
 * are found after a first link (scripts/scall_sites.py, the role objtool
 * plays in Linux), recorded as PATCH_KIND_SCALL sites, and checked by
 * scripts/check_sites.py.
 *
 * Two modes, chosen at boot with staticcall=:
 *   outline  every call goes through the trampoline; an update rewrites
 *            only the trampoline's jmp;
 *   inline   (default) every call site that does not cross a 64-byte
 *            cache line (Andy Lutomirski's rule, seed 003) is rewritten to
 *            `call target` itself (NOPs for NULL, `mov $0,%eax` for
 *            return-0); a site that crosses one stays a call to the
 *            trampoline, which is always kept correct.
 *
 * Updates go through the patch engine (patch/), which writes every site
 * of the key in one batch and, with other CPUs running, by the live
 * protocol. Updates are serialised by one lock; several keys can share a
 * batch:
 *
 *   static_call_batch_begin();
 *   static_call_update(a, fa);
 *   static_call_update(b, fb);
 *   static_call_batch_end();     // one engine batch for both keys
 *
 * NULL is for calls whose value is not used (void functions): the no-op
 * returns whatever %rax held. A caller that needs a value uses the
 * return-0 target: static_call_update(name, static_call_ret0(name)).
 */
#ifndef TINYPV_STATIC_CALL_H
#define TINYPV_STATIC_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "patch_abi.h"

struct static_call_key {
	void *func;  /* the target static_call_query() returns; NULL = no-op */
	void *early; /* what the trampoline jumps through before patching */
	const char *name;
	const struct patch_site *tramp; /* set by static_call_init() */
	const struct patch_site *sites; /* its call sites, contiguous */
	uint32_t nsites;
	uint32_t ninline; /* sites currently rewritten to the target */
	uint64_t updates;
	uint32_t flags; /* STATIC_CALL_KEY_* */
};
/* Its sites are never inlined, whatever the mode (a benchmark's control). */
#define STATIC_CALL_KEY_OUTLINE 1
#define STATIC_CALL_KEY_EARLY 8 /* offsetof(early), for the trampoline */
_Static_assert(offsetof(struct static_call_key, early) == STATIC_CALL_KEY_EARLY,
	       "the trampoline's indirect jmp reads key.early");

#define STATIC_CALL_TRAMP_LEN 8 /* bytes of a trampoline site */

/* Targets with a meaning of their own (scall/static_call.c). */
void __static_call_nop(void);	  /* `ret`: the early form of NULL */
long __static_call_return0(void); /* `xor %eax,%eax; ret` */

#define __SC_STR(x) #x
#define __SC_XSTR(x) __SC_STR(x)

/*
 * The trampoline: an 8-byte site of kind SCALL (flag TRAMP) whose payload
 * is the key. Its `jmp *early(%rip)` is 6 bytes; two int3 fill the rest.
 */
#define __STATIC_CALL_TRAMP(_name)                                                                \
	asm(".pushsection .text.scall, \"ax\"\n\t"                                                \
	    ".balign 8\n\t"                                                                       \
	    ".globl __SCT__" #_name "\n\t"                                                        \
	    ".type __SCT__" #_name ", @function\n"                                                \
	    "__SCT__" #_name ":\n\t"                                                              \
	    "jmp *__SCK__" #_name "+" __SC_XSTR(                                                  \
		STATIC_CALL_KEY_EARLY) "(%rip)\n\t"                                               \
				       "int3\n\tint3\n"                                           \
				       ".size __SCT__" #_name ", " __SC_XSTR(                     \
					   STATIC_CALL_TRAMP_LEN) "\n\t"                          \
								  ".popsectio"                    \
								  "n\n"                           \
								  "\t" PATCH_RECORD_ASM_IN(       \
								      ".patch"                    \
								      ".sites"                    \
								      ".scal"                     \
								      "l",                        \
								      "__SCT_"                    \
								      "_" #_name,                 \
								      "__SCT_"                    \
								      "_" #_name                  \
								      " +"                        \
								      " " __SC_XSTR(              \
									  STATIC_CALL_TRAMP_LEN), \
								      "__SCK_"                    \
								      "_" #_name,                 \
								      __SC_XSTR(                  \
									  PATCH_KIND_SCALL),      \
								      __SC_XSTR(                  \
									  PATCH_SCALL_TRAMP),     \
								      "0",                        \
								      "0"))

#define DECLARE_STATIC_CALL(_name, _func)                                      \
	extern struct static_call_key __SCK__##_name;                          \
	extern __typeof__(_func) __SCT__##_name

/* A key whose calls go to _func until updated. */
#define DEFINE_STATIC_CALL(_name, _func)                                       \
	DECLARE_STATIC_CALL(_name, _func);                                     \
	struct static_call_key __SCK__##_name = {.func = (void *)(_func),      \
						 .early = (void *)(_func),     \
						 .name = #_name};              \
	__STATIC_CALL_TRAMP(_name)

/* A key whose calls always go through the trampoline, in either mode. */
#define DEFINE_STATIC_CALL_OUTLINE(_name, _func)                               \
	DECLARE_STATIC_CALL(_name, _func);                                     \
	struct static_call_key __SCK__##_name = {.func = (void *)(_func),      \
						 .early = (void *)(_func),     \
						 .name = #_name,               \
						 .flags =                      \
						     STATIC_CALL_KEY_OUTLINE}; \
	__STATIC_CALL_TRAMP(_name)

/* A key whose calls do nothing until updated (_func gives its type). */
#define DEFINE_STATIC_CALL_NULL(_name, _func)                                  \
	DECLARE_STATIC_CALL(_name, _func);                                     \
	struct static_call_key __SCK__##_name = {                              \
	    .func = NULL, .early = (void *)__static_call_nop, .name = #_name}; \
	__STATIC_CALL_TRAMP(_name)

/* A key whose calls return 0 until updated (_func gives its type). */
#define DEFINE_STATIC_CALL_RET0(_name, _func)                                  \
	DECLARE_STATIC_CALL(_name, _func);                                     \
	struct static_call_key __SCK__##_name = {                              \
	    .func = (void *)__static_call_return0,                             \
	    .early = (void *)__static_call_return0,                            \
	    .name = #_name};                                                   \
	__STATIC_CALL_TRAMP(_name)

#define static_call(_name) (__SCT__##_name)

/*
 * A CS-prefixed call site (Linus Torvalds' proposal in seed 003): the call
 * is inline asm, `cs call __SCT__name`, 6 bytes whose first is a prefix
 * that does nothing, so the live update's int3 can replace the prefix
 * alone (doc/patching.md). The asm must know the calling convention, so
 * only keys of type void(void) may have such sites; everything the C ABI
 * lets the callee clobber is declared clobbered. What the compiler cannot
 * be told is which functions the asm calls: a target that writes a
 * file-static variable whose address never escapes may have that write
 * ignored by the caller (GCC's IPA assumes only visible calls write it).
 * Targets of cs sites must write only data visible outside their file.
 */
#define static_call_cs_void(_name)                                             \
	do {                                                                   \
		_Static_assert(                                                \
		    __builtin_types_compatible_p(__typeof__(&__SCT__##_name),  \
						 void (*)(void)),              \
		    "cs call sites need a void(void) key");                    \
		/* gas drops a cs prefix written on a 64-bit call */           \
		asm volatile(".byte 0x2e\n\tcall __SCT__" #_name               \
:PATCH_CALL_CONSTRAINT                                                         \
			     :                                                 \
			     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9",  \
			       "r10", "r11", "memory", "cc");                  \
	} while (0)

/* The return-0 target, typed as the key's target. */
#define static_call_ret0(_name)                                                \
	((__typeof__(&__SCT__##_name))(void *)__static_call_return0)

/* The target now (NULL for the no-op). */
#define static_call_query(_name)                                               \
	((__typeof__(&__SCT__##_name))__atomic_load_n(&__SCK__##_name.func,    \
						      __ATOMIC_RELAXED))

/*
 * Point every call of _name at f: a function of exactly its type, or
 * NULL. Anything else does not compile (tests/host/test_static_call_types.sh).
 * The conditional makes a function designator decay to its pointer.
 */
#define static_call_update(_name, f)                                           \
	({                                                                     \
		_Static_assert(                                                \
		    __builtin_types_compatible_p(                              \
			__typeof__(1 ? (f) : (f)),                             \
			__typeof__(&__SCT__##_name)) ||                        \
			__builtin_types_compatible_p(                          \
			    __typeof__(1 ? (f) : (f)), void *),                \
		    "static_call_update: target's type is not " #_name "'s");  \
		__static_call_update(&__SCK__##_name, (void *)(f));            \
	})

void __static_call_update(struct static_call_key *key, void *func);

/* Several updates, one engine batch (they nest: the outermost writes). */
void static_call_batch_begin(void);
void static_call_batch_end(void);

/* ---- the kernel side (scall/static_call.c) ---- */
enum static_call_mode {
	STATIC_CALL_INLINE,
	STATIC_CALL_OUTLINE,
};
extern enum static_call_mode static_call_mode;
extern const char *const static_call_mode_names[];

/* Register the SCALL kind with the engine (before patch_init()). */
void static_call_register_kind(void);
/*
 * After patch_init(): find each key's trampoline and sites, and patch
 * them all for the mode, in one batch. Panics on a malformed table.
 */
void static_call_init(enum static_call_mode mode);

/* Keys found by static_call_init() (one trampoline record each). */
unsigned static_call_nr_keys(void);

/*
 * What a site of key should hold now (r->len bytes into out), by the key's
 * target and the mode; false if the site is left as assembled.
 */
bool static_call_site_expected(const struct static_call_key *key,
			       const struct patch_site *r, uint8_t *out);
/* Sites whose text differs from what they should hold (0 = all right);
 * prints each. */
unsigned static_call_verify(const struct static_call_key *key);
unsigned static_call_verify_all(void);

/* True if the 5-byte call at r crosses a 64-byte line (never inlined). */
bool static_call_site_crosses_line(const struct patch_site *r);
/* True if call site r is rewritten to its target (mode, key, line rule). */
bool static_call_site_inlined(const struct patch_site *r);

/* Boot report lines. */
void static_call_report(void);

struct static_call_stats {
	unsigned keys, sites, tail_sites, cs_sites, inlined, crossing, pinned;
	uint64_t updates, site_writes;
	uint64_t contended; /* updates that found another CPU's in flight */
};
extern struct static_call_stats static_call_stats;

#endif
