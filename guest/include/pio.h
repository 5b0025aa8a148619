/*
 * pio.h - port I/O. Out of line on purpose: the build-time checker allows
 * in/out instructions only inside pio_* functions, so every port access in
 * the kernel is easy to find (and, under Xen PV, each one is a trap that
 * Xen emulates for dom0).
 */
#ifndef TINYPV_PIO_H
#define TINYPV_PIO_H

#include <stdint.h>

uint8_t pio_inb(uint16_t port);
void pio_outb(uint16_t port, uint8_t v);

#endif
