/*
 * serial.c - 16550 UART on COM1, polled: the native console.
 */
#include "serial.h"
#include "kernel.h"
#include "pio.h"

#define COM1 0x3f8
#define REG_DATA 0
#define REG_IER 1
#define REG_FCR 2
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define LSR_THRE 0x20

void serial_init(void)
{
	pio_outb(COM1 + REG_IER, 0x00);	 /* no interrupts: we poll */
	pio_outb(COM1 + REG_LCR, 0x80);	 /* DLAB */
	pio_outb(COM1 + REG_DATA, 0x01); /* 115200 baud */
	pio_outb(COM1 + REG_IER, 0x00);
	pio_outb(COM1 + REG_LCR, 0x03); /* 8N1 */
	pio_outb(COM1 + REG_FCR, 0xc7); /* FIFO on, cleared */
	pio_outb(COM1 + REG_MCR, 0x03);
}

static void serial_putc(char c)
{
	for (int spin = 0; spin < 100000; spin++)
		if (pio_inb(COM1 + REG_LSR) & LSR_THRE)
			break;
	pio_outb(COM1 + REG_DATA, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			serial_putc('\r');
		serial_putc(s[i]);
	}
}
