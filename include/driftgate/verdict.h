/* A verdict reason: machine-readable code plus a human detail line. */
#ifndef DRIFTGATE_VERDICT_H
#define DRIFTGATE_VERDICT_H

#define DG_REASON_CODE_MAX 32
#define DG_REASON_DETAIL_MAX 512
#define DG_VERDICT_MAX_REASONS 32

struct dg_reason {
	char code[DG_REASON_CODE_MAX];     /* e.g. "unknown-file", "pcr-mismatch" */
	char detail[DG_REASON_DETAIL_MAX]; /* printable ASCII only, no newlines */
};

/* Fill r, truncating safely and replacing control or non-ASCII bytes in the
 * detail with '?', so untrusted paths cannot inject lines into logs. */
void dg_reason_set(struct dg_reason *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
