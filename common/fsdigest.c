/* SHA-256 of files, read in large chunks straight into the digest; and a
 * parallel tree hasher reporting in walk order. */
#include "driftgate/fsdigest.h"

#include "driftgate/err.h"
#include "driftgate/fswalk.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large reads keep syscall overhead well below the hashing cost. */
#define FSDIGEST_CHUNK (256 * 1024)
/* Upper bound on tree-hashing threads, whatever the caller asks. */
#define FSDIGEST_MAX_THREADS 64

/* What hashing one file needs, reusable across files (one per thread). */
struct fsdigest_hasher {
	EVP_MD *sha256;
	EVP_MD_CTX *ctx;
	uint8_t *chunk;
};

static void
hasher_fini(struct fsdigest_hasher *h)
{
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->sha256);
	free(h->chunk);
	memset(h, 0, sizeof *h);
}

static int
hasher_init(struct fsdigest_hasher *h)
{
	memset(h, 0, sizeof *h);
	if ((h->chunk = malloc(FSDIGEST_CHUNK)) == NULL || (h->ctx = EVP_MD_CTX_new()) == NULL) {
		hasher_fini(h);
		return DG_ERR_NOMEM;
	}
	if ((h->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		hasher_fini(h);
		return DG_ERR_CRYPTO;
	}
	return DG_OK;
}

static int
hasher_fd(struct fsdigest_hasher *h, int fd, uint8_t out[32])
{
	ssize_t n;

	if (EVP_DigestInit_ex2(h->ctx, h->sha256, NULL) != 1)
		return DG_ERR_CRYPTO;
	for (;;) {
		n = read(fd, h->chunk, FSDIGEST_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return DG_ERR_IO;
		if (n == 0)
			break;
		if (EVP_DigestUpdate(h->ctx, h->chunk, (size_t)n) != 1)
			return DG_ERR_CRYPTO;
	}
	return EVP_DigestFinal_ex(h->ctx, out, NULL) == 1 ? DG_OK : DG_ERR_CRYPTO;
}

static int
hasher_path(struct fsdigest_hasher *h, const char *path, uint8_t out[32])
{
	struct stat st;
	int fd, rc = DG_ERR_IO;

	/* O_NONBLOCK so a FIFO planted at path cannot stall us before the
	 * regular-file check; it changes nothing for regular files. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) != 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	rc = hasher_fd(h, fd, out);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int
dg_fsdigest_fd(int fd, uint8_t out[32])
{
	struct fsdigest_hasher h;
	int rc = hasher_init(&h);
	if (rc == DG_OK)
		rc = hasher_fd(&h, fd, out);
	hasher_fini(&h);
	return rc;
}

int
dg_fsdigest_path(const char *path, uint8_t out[32])
{
	struct fsdigest_hasher h;
	int rc = hasher_init(&h);
	if (rc == DG_OK)
		rc = hasher_path(&h, path, out);
	hasher_fini(&h);
	return rc;
}

/*
 * Tree hashing. The calling thread walks and appends items; workers (and the
 * calling thread when it has nothing else to do) claim items in order and hash
 * them; the calling thread reports finished items strictly in order. Items and
 * the counters below are shared under mu; an item's digest and rc are written
 * by the thread that claimed it before it sets done (under mu) and read by the
 * reporter only after it sees done (under mu).
 */
struct tree_item {
	char *path;
	uint8_t digest[32];
	int rc;
	bool done;
};

struct tree {
	pthread_mutex_t mu;
	pthread_cond_t work; /* new items, walk finished or stop */
	pthread_cond_t done; /* an item finished */
	struct tree_item **items;
	size_t cap;
	size_t count;   /* items appended by the walk */
	size_t claimed; /* items handed to a hasher: [0, claimed) */
	size_t next;    /* next item to report */
	bool walk_done;
	bool stop;
	unsigned backlog; /* walk helps hashing beyond this many unclaimed items */
	/* Reporting. */
	struct fsdigest_hasher main_hasher;
	dg_fsdigest_tree_fn fn;
	void *arg;
	char *failed;
	size_t failed_cap;
	int rc; /* first failure in walk order, DG_OK so far */
};

/* Hash the next unclaimed item; mu held on entry and exit. */
static void
tree_hash_one(struct tree *t, struct fsdigest_hasher *h)
{
	struct tree_item *it = t->items[t->claimed++];
	pthread_mutex_unlock(&t->mu);
	it->rc = hasher_path(h, it->path, it->digest);
	pthread_mutex_lock(&t->mu);
	it->done = true;
	pthread_cond_signal(&t->done);
}

static void *
tree_worker(void *arg)
{
	struct tree *t = arg;
	struct fsdigest_hasher h;
	bool ok = hasher_init(&h) == DG_OK;

	pthread_mutex_lock(&t->mu);
	/* Without a hasher this worker just leaves the work to the others. */
	while (ok) {
		while (!t->stop && t->claimed == t->count && !t->walk_done)
			pthread_cond_wait(&t->work, &t->mu);
		if (t->stop || t->claimed == t->count)
			break;
		tree_hash_one(t, &h);
	}
	pthread_mutex_unlock(&t->mu);
	hasher_fini(&h);
	return NULL;
}

/*
 * Report finished items in order; mu held on entry and exit. When block is
 * set, wait for (or hash) items until all appended ones are reported.
 * Returns false once reporting has failed (t->rc set, t->stop raised).
 */
static bool
tree_report(struct tree *t, bool block)
{
	while (t->rc == DG_OK && t->next < t->count) {
		struct tree_item *it = t->items[t->next];
		if (!it->done) {
			if (!block)
				break;
			if (t->claimed < t->count)
				tree_hash_one(t, &t->main_hasher);
			else
				pthread_cond_wait(&t->done, &t->mu);
			continue;
		}
		pthread_mutex_unlock(&t->mu);
		int rc = it->rc;
		if (rc == DG_OK)
			rc = t->fn(it->path, it->digest, t->arg);
		else if (t->failed != NULL && t->failed_cap > 0)
			snprintf(t->failed, t->failed_cap, "%s", it->path);
		free(it->path);
		free(it);
		pthread_mutex_lock(&t->mu);
		t->items[t->next++] = NULL;
		if (rc != DG_OK) {
			t->rc = rc;
			t->stop = true;
			pthread_cond_broadcast(&t->work);
		}
	}
	return t->rc == DG_OK;
}

static int
tree_walk_cb(const char *path, void *arg)
{
	struct tree *t = arg;
	struct tree_item *it = calloc(1, sizeof *it);
	char *copy = strdup(path);
	int rc = DG_OK;

	pthread_mutex_lock(&t->mu);
	if (it == NULL || copy == NULL) {
		rc = DG_ERR_NOMEM;
		goto out;
	}
	if (t->count == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		struct tree_item **items = realloc(t->items, cap * sizeof *items);
		if (items == NULL) {
			rc = DG_ERR_NOMEM;
			goto out;
		}
		t->items = items;
		t->cap = cap;
	}
	it->path = copy;
	t->items[t->count++] = it;
	it = NULL;
	copy = NULL;
	pthread_cond_signal(&t->work);
	/* Keep the backlog bounded by helping, and report what is ready. */
	while (t->count - t->claimed > t->backlog)
		tree_hash_one(t, &t->main_hasher);
	if (!tree_report(t, false))
		rc = t->rc;
out:
	pthread_mutex_unlock(&t->mu);
	free(copy);
	free(it);
	return rc;
}

int
dg_fsdigest_tree(const char *root, unsigned threads, dg_fsdigest_tree_fn fn, void *arg,
                 char *failed, size_t failed_cap)
{
	struct tree t = {
		.mu = PTHREAD_MUTEX_INITIALIZER,
		.work = PTHREAD_COND_INITIALIZER,
		.done = PTHREAD_COND_INITIALIZER,
		.fn = fn,
		.arg = arg,
		.failed = failed,
		.failed_cap = failed_cap,
	};
	pthread_t workers[FSDIGEST_MAX_THREADS];
	unsigned n_workers = 0;
	int rc;

	if (failed != NULL && failed_cap > 0)
		failed[0] = '\0';
	if (root == NULL || fn == NULL)
		return DG_ERR_INVAL;
	if (threads == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cpus > 0 ? (unsigned)cpus : 1;
	}
	if (threads > FSDIGEST_MAX_THREADS)
		threads = FSDIGEST_MAX_THREADS;
	t.backlog = 4 * threads;
	if ((rc = hasher_init(&t.main_hasher)) != DG_OK)
		return rc;
	/* The calling thread is one of the hashers; a worker that cannot be
	 * started only costs parallelism. */
	for (unsigned i = 0; i + 1 < threads; i++) {
		if (pthread_create(&workers[n_workers], NULL, tree_worker, &t) != 0)
			break;
		n_workers++;
	}

	int walk_rc = dg_fswalk(root, tree_walk_cb, &t);

	pthread_mutex_lock(&t.mu);
	t.walk_done = true;
	pthread_cond_broadcast(&t.work);
	/* Everything the walk appended before it stopped is still reported. */
	if (tree_report(&t, true) && walk_rc != DG_OK)
		t.rc = walk_rc;
	t.stop = true;
	pthread_cond_broadcast(&t.work);
	pthread_mutex_unlock(&t.mu);

	for (unsigned i = 0; i < n_workers; i++)
		pthread_join(workers[i], NULL);
	/* After a failure, items claimed or hashed but never reported remain. */
	for (size_t i = t.next; i < t.count; i++) {
		free(t.items[i]->path);
		free(t.items[i]);
	}
	free(t.items);
	hasher_fini(&t.main_hasher);
	pthread_mutex_destroy(&t.mu);
	pthread_cond_destroy(&t.work);
	pthread_cond_destroy(&t.done);
	return t.rc;
}
