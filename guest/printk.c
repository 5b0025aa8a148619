/*
 * printk.c - formatted output to the platform console.
 */
#include "kernel.h"
#include "platform.h"

#define PRINTK_MAX 512 /* bytes of one printk, with the NUL */

/*
 * A message longer than the buffer is cut: what fits is written, then a
 * marker saying how much was lost, then a newline, so the next message
 * still starts a line of its own.
 */
int vprintk(const char *fmt, va_list ap)
{
	char buf[PRINTK_MAX];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (!platform || !platform->console_write || n < 0)
		return n;
	if (n < (int)sizeof(buf)) {
		platform->console_write(buf, n);
		return n;
	}
	char mark[48];
	int m = snprintf(mark, sizeof(mark), " [printk: %d more bytes cut]\n",
			 n - (int)(sizeof(buf) - 1));
	platform->console_write(buf, sizeof(buf) - 1);
	platform->console_write(mark, m);
	return n;
}

int printk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintk(fmt, ap);
	va_end(ap);
	return n;
}
