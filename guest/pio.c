/*
 * pio.c - the only place in the kernel with in/out instructions.
 */
#include "pio.h"

uint8_t pio_inb(uint16_t port)
{
	uint8_t v;
	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

void pio_outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
