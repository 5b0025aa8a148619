/*
 * kernel.h - what almost every kernel file needs: printk, panic, basic
 * macros and the freestanding string functions.
 */
#ifndef TINYPV_KERNEL_H
#define TINYPV_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define __noreturn __attribute__((noreturn))
#define __printf(a, b) __attribute__((format(printf, a, b)))
#define __used __attribute__((used))
#define __section(s) __attribute__((section(s)))
#define barrier() asm volatile("" ::: "memory")
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/* guest/lib/format.c: C99 vsnprintf for %d %i %u %x %X %o %p %s %c %%,
 * flags - 0 + space #, width and precision (also *), lengths hh h l ll z t. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);

/* guest/printk.c */
int printk(const char *fmt, ...) __printf(1, 2);
int vprintk(const char *fmt, va_list ap);

/* guest/panic.c: print why, registers and a backtrace; end QEMU (failure). */
void panic(const char *fmt, ...) __printf(1, 2) __noreturn;
/* Prints rip (if non-zero), then the return addresses up the rbp chain. */
void backtrace_from(uint64_t rbp, uint64_t rip);
/* End the machine with a status (EXIT_* in layout.h). */
void machine_exit(int code) __noreturn;

#define BUG_ON(c)                                                              \
	do {                                                                   \
		if (c)                                                         \
			panic("BUG_ON(%s) at %s:%d", #c, __FILE__, __LINE__);  \
	} while (0)

/* guest/lib/string.c */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
bool glob_match(const char *pat, const char *s);

#endif
