#include "driftgate/verdict.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
dg_reason_set(struct dg_reason *r, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(r->code, sizeof r->code, "%s", code);
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof r->detail, fmt, ap);
	va_end(ap);
	/* Details quote untrusted paths: keep them to one printable line. */
	for (char *p = r->detail; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f)
			*p = '?';
	}
}
