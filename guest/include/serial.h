/*
 * serial.h - the native console: COM1, 115200 8N1, polled.
 */
#ifndef TINYPV_SERIAL_H
#define TINYPV_SERIAL_H

#include <stddef.h>

void serial_init(void);
void serial_write(const char *s, size_t n);

#endif
