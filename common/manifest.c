/*
 * Rootfs manifests: building one from a tree, strict parsing, lookups and
 * file-level differences.
 *
 * A parsed manifest is an array of entries sorted by path (the order the text
 * must already have), plus two index arrays: regular files sorted by digest
 * (dg_manifest_path_of) and entries whose path holds a space, sorted by the
 * path as the log shows it (dg_manifest_has). Every lookup is a binary search.
 */
#include "driftgate/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driftgate/err.h"
#include "driftgate/fsdigest.h"
#include "driftgate/log.h"
#include "driftgate/text.h"

#define DIGEST_LEN 32
#define DIGEST_HEX_LEN (2 * DIGEST_LEN)
#define MODE_DIGITS 6
/* Offsets of the fields in a line: "<64 hex> <6 octal> <path>\n". */
#define MODE_OFFSET (DIGEST_HEX_LEN + 1)
#define PATH_OFFSET (MODE_OFFSET + MODE_DIGITS + 1)
/* The shortest line: a one-byte path "/x" needs two bytes plus the newline. */
#define LINE_MIN_LEN (PATH_OFFSET + 3)
/* Directory levels walked below the root; each holds one open descriptor. */
#define BUILD_MAX_DEPTH 256
/* Hex digits of a digest that a difference shows. */
#define DIFF_HEX_SHOWN 12 /* even: whole bytes */
#define BUILD_MIN_CAP 64
#define DIR_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

struct manifest_entry {
	const char *path; /* decoded, NUL-terminated, inside dg_manifest.paths */
	uint32_t mode;
	uint8_t digest[DIGEST_LEN];
};

struct dg_manifest {
	struct manifest_entry *entries; /* sorted by path, byte order, unique */
	size_t n_entries;
	char *paths;
	size_t *by_digest; /* regular files: sorted by digest, then path */
	size_t n_by_digest;
	size_t *spaced; /* paths with a space: sorted by logged form, then path */
	size_t n_spaced;
};

/* ---- the text form ---- */

/* A path byte written as \xHH: what would split the line into more tokens or
 * is not printable ASCII. The backslash itself is written "\\". */
static bool
byte_needs_escape(unsigned char ch)
{
	return ch <= 0x20 || ch >= 0x7f;
}

static bool
mode_valid(uint32_t mode)
{
	uint32_t type = mode & S_IFMT;
	return (type == S_IFREG || type == S_IFLNK) && (mode & ~(uint32_t)(S_IFMT | 07777)) == 0;
}

/* The path as dg_log_encode logs it: spaces become '_'. */
static unsigned char
logged_byte(char c)
{
	return c == ' ' ? '_' : (unsigned char)c;
}

static int
logged_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char ca = logged_byte(*a), cb = logged_byte(*b);
		if (ca != cb || ca == '\0')
			return (int)ca - (int)cb;
	}
}

static int
digest_cmp(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, DIGEST_LEN);
}

/* ---- building ---- */

struct build_item {
	char *path;
	uint32_t mode;
	uint8_t digest[DIGEST_LEN];
};

struct build_ctx {
	dev_t dev;                      /* the root's filesystem */
	char path[DG_LOG_MAX_PATH + 1]; /* current path relative to root, "/a/b" */
	size_t path_len;
	struct build_item *items;
	size_t n_items, cap_items;
	EVP_MD *sha256;
};

static int
build_add(struct build_ctx *c, uint32_t mode, const uint8_t digest[DIGEST_LEN])
{
	struct build_item *item;

	if (c->n_items == c->cap_items) {
		size_t cap = c->cap_items == 0 ? BUILD_MIN_CAP : 2 * c->cap_items;
		struct build_item *grown = realloc(c->items, cap * sizeof *grown);
		if (grown == NULL)
			return DG_ERR_NOMEM;
		c->items = grown;
		c->cap_items = cap;
	}
	item = &c->items[c->n_items];
	if ((item->path = strndup(c->path, c->path_len)) == NULL)
		return DG_ERR_NOMEM;
	item->mode = mode;
	memcpy(item->digest, digest, DIGEST_LEN);
	c->n_items++;
	return DG_OK;
}

static int
build_file(struct build_ctx *c, int dir_fd, const char *name, const struct stat *seen)
{
	uint8_t digest[DIGEST_LEN];
	struct stat st;
	int rc, fd;

	/* O_NONBLOCK: should the file have become a FIFO since the lstat, the
	 * open must not hang; the fstat below then refuses it. */
	fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return DG_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != seen->st_ino ||
	    st.st_dev != seen->st_dev) {
		rc = DG_ERR_IO;
		goto out;
	}
	if ((rc = dg_fsdigest_fd(fd, digest)) != DG_OK)
		goto out;
	rc = build_add(c, (uint32_t)st.st_mode, digest);
out:
	close(fd);
	return rc;
}

static int
build_symlink(struct build_ctx *c, int dir_fd, const char *name, const struct stat *seen)
{
	char target[DG_LOG_MAX_PATH + 1];
	uint8_t digest[DIGEST_LEN];
	ssize_t n = readlinkat(dir_fd, name, target, sizeof target);

	if (n < 0)
		return DG_ERR_IO;
	if ((size_t)n == sizeof target)
		return DG_ERR_TOOBIG;
	if (EVP_Digest(target, (size_t)n, digest, NULL, c->sha256, NULL) != 1)
		return DG_ERR_CRYPTO;
	return build_add(c, (uint32_t)seen->st_mode, digest);
}

/* Walk one directory; takes over dir_fd. c->path names it. */
static int
/* NOLINTNEXTLINE(misc-no-recursion): bounded by BUILD_MAX_DEPTH */
build_dir(struct build_ctx *c, int dir_fd, unsigned depth)
{
	DIR *dir = fdopendir(dir_fd);
	struct dirent *de;
	int rc = DG_OK;

	if (dir == NULL) {
		close(dir_fd);
		return DG_ERR_IO;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			rc = errno != 0 ? DG_ERR_IO : DG_OK;
			goto out;
		}
		const char *name = de->d_name;
		size_t name_len = strlen(name);
		size_t parent_len = c->path_len;
		struct stat st;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (parent_len + 1 + name_len > DG_LOG_MAX_PATH) {
			rc = DG_ERR_TOOBIG;
			goto out;
		}
		if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = DG_ERR_IO;
			goto out;
		}
		/* Another filesystem mounted here (a volume, /proc) is not the image. */
		if (st.st_dev != c->dev)
			continue;
		c->path[parent_len] = '/';
		memcpy(c->path + parent_len + 1, name, name_len);
		c->path_len = parent_len + 1 + name_len;
		c->path[c->path_len] = '\0';
		if (S_ISREG(st.st_mode)) {
			rc = build_file(c, dirfd(dir), name, &st);
		} else if (S_ISLNK(st.st_mode)) {
			rc = build_symlink(c, dirfd(dir), name, &st);
		} else if (S_ISDIR(st.st_mode)) {
			int sub = -1;
			struct stat sub_st;
			if (depth >= BUILD_MAX_DEPTH) {
				rc = DG_ERR_TOOBIG;
			} else if ((sub = openat(dirfd(dir), name, DIR_OPEN_FLAGS)) < 0 ||
			           fstat(sub, &sub_st) != 0 || sub_st.st_ino != st.st_ino ||
			           sub_st.st_dev != st.st_dev) {
				/* Replaced, or mounted over, since the fstatat. */
				if (sub >= 0)
					close(sub);
				rc = DG_ERR_IO;
			} else {
				rc = build_dir(c, sub, depth + 1);
			}
		}
		c->path_len = parent_len;
		c->path[parent_len] = '\0';
		if (rc != DG_OK)
			goto out;
	}
out:
	closedir(dir);
	return rc;
}

static int
item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct build_item *)a)->path, ((const struct build_item *)b)->path);
}

/* Escaped length of a path; paths are at most DG_LOG_MAX_PATH bytes. */
static size_t
escaped_len(const char *path)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++)
		n += *p == '\\' ? 2 : byte_needs_escape(*p) ? 4 : 1;
	return n;
}

static char *
write_line(char *out, const struct build_item *item)
{
	static const char digits[] = "0123456789abcdef";

	dg_text_hex_encode(item->digest, DIGEST_LEN, out);
	out += DIGEST_HEX_LEN;
	*out++ = ' ';
	for (int i = MODE_DIGITS - 1; i >= 0; i--)
		out[MODE_DIGITS - 1 - i] = (char)('0' + ((item->mode >> (3 * i)) & 7));
	out += MODE_DIGITS;
	*out++ = ' ';
	for (const unsigned char *p = (const unsigned char *)item->path; *p != '\0'; p++) {
		if (*p == '\\') {
			*out++ = '\\';
			*out++ = '\\';
		} else if (byte_needs_escape(*p)) {
			*out++ = '\\';
			*out++ = 'x';
			*out++ = digits[*p >> 4];
			*out++ = digits[*p & 0xf];
		} else {
			*out++ = (char)*p;
		}
	}
	*out++ = '\n';
	return out;
}

int
dg_manifest_build(const char *root, char **text, size_t *len)
{
	struct build_ctx c;
	struct stat st;
	char *buf = NULL, *end;
	size_t total = 0;
	int rc, fd;

	memset(&c, 0, sizeof c);
	if ((c.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		rc = DG_ERR_CRYPTO;
		goto out;
	}
	fd = open(root, DIR_OPEN_FLAGS);
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		rc = DG_ERR_IO;
		goto out;
	}
	c.dev = st.st_dev;
	if ((rc = build_dir(&c, fd, 0)) != DG_OK)
		goto out;
	if (c.n_items > 0) /* an empty root has no array at all */
		qsort(c.items, c.n_items, sizeof *c.items, item_cmp);
	for (size_t i = 0; i < c.n_items; i++) {
		total += PATH_OFFSET + escaped_len(c.items[i].path) + 1;
		if (total > DG_MANIFEST_MAX_TEXT) {
			rc = DG_ERR_TOOBIG;
			goto out;
		}
	}
	if ((buf = malloc(total + 1)) == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	end = buf;
	for (size_t i = 0; i < c.n_items; i++)
		end = write_line(end, &c.items[i]);
	*end = '\0';
	*text = buf;
	*len = total;
	buf = NULL;
	rc = DG_OK;
out:
	free(buf);
	for (size_t i = 0; i < c.n_items; i++)
		free(c.items[i].path);
	free(c.items);
	EVP_MD_free(c.sha256);
	return rc;
}

/* ---- parsing ---- */

/* Decode a canonically escaped path into out (room for len + 1 bytes). */
static int
parse_path(const char *s, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\\' && i + 1 < len && s[i + 1] == '\\') {
			out[n++] = '\\';
			i++;
		} else if (ch == '\\') {
			int hi = i + 3 < len && s[i + 1] == 'x' ? dg_text_hex_digit(s[i + 2], true) : -1;
			int lo = hi >= 0 ? dg_text_hex_digit(s[i + 3], true) : -1;
			if (lo < 0)
				return DG_ERR_FORMAT;
			unsigned char byte = (unsigned char)(hi << 4 | lo);
			/* Only bytes that must be escaped may be: one text per tree. */
			if (byte == 0 || !byte_needs_escape(byte))
				return DG_ERR_FORMAT;
			out[n++] = (char)byte;
			i += 3;
		} else if (byte_needs_escape(ch)) {
			return DG_ERR_FORMAT;
		} else {
			out[n++] = (char)ch;
		}
	}
	out[n] = '\0';
	if (n > DG_LOG_MAX_PATH)
		return DG_ERR_TOOBIG;
	/* Relative to the root, as the walk writes it: "/a/b", no empty, "." or
	 * ".." component. */
	if (n < 2 || out[0] != '/')
		return DG_ERR_FORMAT;
	for (size_t i = 0; i < n; i++) {
		if (out[i] != '/')
			continue;
		size_t comp = i + 1, comp_len = strcspn(out + comp, "/");
		if (comp_len == 0 || (comp_len == 1 && out[comp] == '.') ||
		    (comp_len == 2 && out[comp] == '.' && out[comp + 1] == '.'))
			return DG_ERR_FORMAT;
	}
	return DG_OK;
}

static int
parse_line(const char *s, size_t len, char *path_out, struct manifest_entry *e)
{
	uint32_t mode = 0;

	if (len < LINE_MIN_LEN - 1 || s[MODE_OFFSET - 1] != ' ' || s[PATH_OFFSET - 1] != ' ')
		return DG_ERR_FORMAT;
	if (dg_text_hex_decode(s, DIGEST_HEX_LEN, e->digest, true) != DG_OK)
		return DG_ERR_FORMAT;
	for (size_t i = MODE_OFFSET; i < MODE_OFFSET + MODE_DIGITS; i++) {
		if (s[i] < '0' || s[i] > '7')
			return DG_ERR_FORMAT;
		mode = mode << 3 | (uint32_t)(s[i] - '0');
	}
	if (!mode_valid(mode))
		return DG_ERR_FORMAT;
	e->mode = mode;
	e->path = path_out;
	return parse_path(s + PATH_OFFSET, len - PATH_OFFSET, path_out);
}

/* qsort has no context argument: index arrays are sorted as (index, entry
 * pointer) pairs and reduced to indices afterwards. */
struct index_pair {
	size_t index;
	const struct manifest_entry *entry;
};

static int
pair_digest_cmp(const void *a, const void *b)
{
	const struct index_pair *x = a, *y = b;
	int c = digest_cmp(x->entry->digest, y->entry->digest);
	return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

static int
pair_logged_cmp(const void *a, const void *b)
{
	const struct index_pair *x = a, *y = b;
	int c = logged_cmp(x->entry->path, y->entry->path);
	return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* Indices of the entries that keep(), sorted by cmp. */
static int
build_index(const struct dg_manifest *m, bool (*keep)(const struct manifest_entry *),
            int (*cmp)(const void *, const void *), size_t **out, size_t *n_out)
{
	struct index_pair *pairs = malloc((m->n_entries + 1) * sizeof *pairs);
	size_t *index = NULL, n = 0;
	int rc;

	if (pairs == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->n_entries; i++) {
		if (keep(&m->entries[i])) {
			pairs[n].index = i;
			pairs[n].entry = &m->entries[i];
			n++;
		}
	}
	qsort(pairs, n, sizeof *pairs, cmp);
	if ((index = malloc((n + 1) * sizeof *index)) == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		index[i] = pairs[i].index;
	*out = index;
	*n_out = n;
	rc = DG_OK;
out:
	free(pairs);
	return rc;
}

static bool
is_regular(const struct manifest_entry *e)
{
	return (e->mode & S_IFMT) == S_IFREG;
}

static bool
has_space(const struct manifest_entry *e)
{
	return strchr(e->path, ' ') != NULL;
}

int
dg_manifest_parse(const char *text, size_t len, struct dg_manifest **out)
{
	struct dg_manifest *m = NULL;
	size_t lines = 0, off = 0, path_off = 0;
	int rc;

	if (len > DG_MANIFEST_MAX_TEXT)
		return DG_ERR_TOOBIG;
	if (len > 0 && text[len - 1] != '\n')
		return DG_ERR_FORMAT;
	for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))) != NULL; p++)
		lines++;
	if ((m = calloc(1, sizeof *m)) == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	/* A decoded path and its NUL never outgrow the line that holds them. */
	m->entries = calloc(lines + 1, sizeof *m->entries);
	m->paths = malloc(len + 1);
	if (m->entries == NULL || m->paths == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	while (off < len) {
		const char *line = text + off;
		size_t line_len = (size_t)((const char *)memchr(line, '\n', len - off) - line);
		struct manifest_entry *e = &m->entries[m->n_entries];

		if ((rc = parse_line(line, line_len, m->paths + path_off, e)) != DG_OK)
			goto out;
		if (m->n_entries > 0 && strcmp(m->entries[m->n_entries - 1].path, e->path) >= 0) {
			rc = DG_ERR_FORMAT; /* unsorted or repeated */
			goto out;
		}
		path_off += strlen(e->path) + 1;
		m->n_entries++;
		off += line_len + 1;
	}
	if ((rc = build_index(m, is_regular, pair_digest_cmp, &m->by_digest, &m->n_by_digest)) !=
	            DG_OK ||
	    (rc = build_index(m, has_space, pair_logged_cmp, &m->spaced, &m->n_spaced)) != DG_OK)
		goto out;
	*out = m;
	m = NULL;
	rc = DG_OK;
out:
	dg_manifest_free(m);
	return rc;
}

void
dg_manifest_free(struct dg_manifest *m)
{
	if (m == NULL)
		return;
	free(m->entries);
	free(m->paths);
	free(m->by_digest);
	free(m->spaced);
	free(m);
}

size_t
dg_manifest_count(const struct dg_manifest *m)
{
	return m->n_entries;
}

/* ---- lookups ---- */

/* First entry whose path is not below path (n_entries if none). */
static size_t
lower_bound_path(const struct dg_manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n_entries;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(m->entries[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t
lower_bound_digest(const struct dg_manifest *m, const uint8_t digest[DIGEST_LEN])
{
	size_t lo = 0, hi = m->n_by_digest;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (digest_cmp(m->entries[m->by_digest[mid]].digest, digest) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t
lower_bound_logged(const struct dg_manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n_spaced;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (logged_cmp(m->entries[m->spaced[mid]].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
entry_is(const struct manifest_entry *e, const uint8_t digest[DIGEST_LEN])
{
	return is_regular(e) && digest_cmp(e->digest, digest) == 0;
}

bool
dg_manifest_has(const struct dg_manifest *m, const char *path, const uint8_t digest[32])
{
	size_t i = lower_bound_path(m, path);

	if (i < m->n_entries && strcmp(m->entries[i].path, path) == 0 &&
	    entry_is(&m->entries[i], digest))
		return true;
	/* The log shows "/a b" as "/a_b": several real paths may match. */
	if (strchr(path, '_') == NULL)
		return false;
	for (i = lower_bound_logged(m, path);
	     i < m->n_spaced && logged_cmp(m->entries[m->spaced[i]].path, path) == 0; i++) {
		if (entry_is(&m->entries[m->spaced[i]], digest))
			return true;
	}
	return false;
}

const char *
dg_manifest_path_of(const struct dg_manifest *m, const uint8_t digest[32])
{
	size_t i = lower_bound_digest(m, digest);

	if (i < m->n_by_digest && digest_cmp(m->entries[m->by_digest[i]].digest, digest) == 0)
		return m->entries[m->by_digest[i]].path;
	return NULL;
}

/* ---- differences ---- */

static void
digest_prefix(const uint8_t digest[DIGEST_LEN], char out[DIFF_HEX_SHOWN + 1])
{
	dg_text_hex_encode(digest, DIFF_HEX_SHOWN / 2, out);
}

static void
diff_changed(const struct manifest_entry *a, const struct manifest_entry *b,
             struct dg_reason *r)
{
	char old_hex[DIFF_HEX_SHOWN + 1], new_hex[DIFF_HEX_SHOWN + 1];
	bool digest_changed = digest_cmp(a->digest, b->digest) != 0;

	digest_prefix(a->digest, old_hex);
	digest_prefix(b->digest, new_hex);
	if (digest_changed && a->mode != b->mode)
		dg_reason_set(r, "file-changed",
		              "%s: sha256:%s.. -> sha256:%s.., mode %06o -> %06o", a->path, old_hex,
		              new_hex, a->mode, b->mode);
	else if (digest_changed)
		dg_reason_set(r, "file-changed", "%s: sha256:%s.. -> sha256:%s..", a->path, old_hex,
		              new_hex);
	else
		dg_reason_set(r, "file-changed", "%s: mode %06o -> %06o", a->path, a->mode,
		              b->mode);
}

int
dg_manifest_diff(const struct dg_manifest *approved, const struct dg_manifest *seen,
                 struct dg_reason *reasons, size_t max, size_t *n)
{
	size_t i = 0, j = 0, count = 0;
	char hex[DIFF_HEX_SHOWN + 1];

	while (count < max && (i < approved->n_entries || j < seen->n_entries)) {
		const struct manifest_entry *a, *b;
		a = i < approved->n_entries ? &approved->entries[i] : NULL;
		b = j < seen->n_entries ? &seen->entries[j] : NULL;
		/* On the indices, not the pointers: one side always has an entry left. */
		int cmp = i == approved->n_entries ? 1
		          : j == seen->n_entries   ? -1
		                                   : strcmp(a->path, b->path);

		if (cmp < 0) {
			digest_prefix(a->digest, hex);
			dg_reason_set(&reasons[count++], "file-removed", "%s (sha256:%s..)",
			              a->path, hex);
			i++;
		} else if (cmp > 0) {
			digest_prefix(b->digest, hex);
			dg_reason_set(&reasons[count++], "file-added",
			              "%s (sha256:%s.., mode %06o)", b->path, hex, b->mode);
			j++;
		} else {
			if (a->mode != b->mode || digest_cmp(a->digest, b->digest) != 0)
				diff_changed(a, b, &reasons[count++]);
			i++;
			j++;
		}
	}
	*n = count;
	return DG_OK;
}
