/*
 * Configuration files shared by both daemons: one "key = value" per line,
 * '#' starts a comment, keys are the long command-line option names, so that
 * every option can live in the file and the command line overrides it.
 */
#ifndef DRIFTGATE_CONF_H
#define DRIFTGATE_CONF_H

#include <stdbool.h>
#include <stddef.h>

#define DG_CONF_MAX_BYTES (1024 * 1024)

/* Called for each setting; a non-zero return stops parsing and is returned. */
typedef int (*dg_conf_fn)(const char *key, const char *value, void *arg);

/* Parse text; on a malformed line returns DG_ERR_FORMAT with "line N: ..." in err. */
int dg_conf_parse(const char *text, size_t len, dg_conf_fn fn, void *arg, char *err,
                  size_t err_cap);
/* Read path (at most DG_CONF_MAX_BYTES) and parse it. */
int dg_conf_load(const char *path, dg_conf_fn fn, void *arg, char *err, size_t err_cap);

/* Option values, for the setters: a non-empty string that fits (DG_ERR_INVAL
 * otherwise), an unsigned number in [min, max] (decimal, or 0x hex), and a
 * boolean spelled true/false, yes/no or 1/0. */
int dg_conf_str(char *dst, size_t cap, const char *value);
int dg_conf_uint(const char *value, unsigned long min, unsigned long max, unsigned long *out);
int dg_conf_bool(const char *value, bool *out);

struct option;

/*
 * The tools' command lines: "PROG COMMAND [OPTIONS] [ARGS]". The file named by
 * -c/--config is read first, so that options given on the command line win;
 * then every option is handed to fn with its long name and value ("true" for
 * an option without an argument). Errors are printed as "PROG: ...".
 * Returns DG_OK with *first_arg the index of the first argument after the
 * options, DG_ERR_NOTFOUND if -h/--help was given, or DG_ERR_INVAL on a
 * usage error.
 */
int dg_conf_getopt(const char *prog, int argc, char **argv, const char *shortopts,
                   const struct option *longopts, dg_conf_fn fn, void *arg, int *first_arg);

#endif
