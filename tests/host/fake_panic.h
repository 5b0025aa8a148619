/*
 * fake_panic.h - printk and panic for host tests that run the engine:
 * printk output becomes KTAP diagnostics ("# ..."), and a panic either
 * jumps back to the test that expected it (check_refusal-style, through
 * on_panic with expecting_panic set; the message is in panic_msg) or ends
 * the program with status 2. Include once, in the test's only C file.
 *
 *   const char *msg = panics(fn);  // NULL if fn returned without one
 *   ... strstr(msg, "holds bytes the engine did not write") ...
 */
#ifndef TINYPV_FAKE_PANIC_H
#define TINYPV_FAKE_PANIC_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static jmp_buf on_panic;
static int expecting_panic;
static char panic_msg[256];

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!expecting_panic) {
		fputs("# ", stdout);
		vprintf(fmt, ap);
	}
	va_end(ap);
	return 0;
}

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(panic_msg, sizeof(panic_msg), fmt, ap);
	va_end(ap);
	if (expecting_panic)
		longjmp(on_panic, 1);
	printf("# unexpected panic: %s\n", panic_msg);
	exit(2);
}

/* Runs fn; returns the panic message if it panicked, else NULL. */
static inline const char *panics(void (*fn)(void))
{
	expecting_panic = 1;
	if (setjmp(on_panic)) {
		expecting_panic = 0;
		return panic_msg;
	}
	fn();
	expecting_panic = 0;
	return NULL;
}

#endif
