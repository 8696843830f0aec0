/*
 * The allocation hook. Every library allocation funnels through hook_realloc()
 * so a test can make the Nth allocation fail and check the failure path.
 *
 * The counters are process-global C11 atomics: the fault injection is meant
 * for single-threaded tests, but the server allocates from several threads and
 * plain statics would be a data race there even with injection disabled.
 * Counting is "successful allocations"; frees are not counted.
 */
#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ragward/alloc.h"
#include "core/banned.h"

static atomic_long alloc_count;
static atomic_long fail_remaining = -1; /* < 0: injection disabled */
static atomic_int fail_happened;

/* Returns 1 when this allocation must fail. Decrements the budget atomically
 * so two threads cannot both take the last allowed allocation. */
static int should_fail(void)
{
	long r = atomic_load_explicit(&fail_remaining, memory_order_relaxed);

	for (;;) {
		if (r < 0)
			return 0;
		if (r == 0) {
			atomic_store_explicit(&fail_happened, 1, memory_order_relaxed);
			return 1;
		}
		if (atomic_compare_exchange_weak_explicit(&fail_remaining, &r, r - 1, memory_order_relaxed,
							  memory_order_relaxed))
			return 0;
	}
}

/* realloc(p, 0) is implementation-defined (may free and return NULL, which
 * callers would read as ENOMEM), so zero-size requests get one byte. */
static void *hook_realloc(void *p, size_t n)
{
	void *q;

	if (should_fail())
		return NULL;
	q = realloc(p, n == 0 ? 1 : n);
	if (q != NULL)
		atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
	return q;
}

void *ward_malloc(size_t n)
{
	return hook_realloc(NULL, n);
}

void *ward_calloc(size_t count, size_t size)
{
	void *p;

	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	p = hook_realloc(NULL, count * size);
	if (p != NULL)
		memset(p, 0, count * size);
	return p;
}

void *ward_realloc(void *p, size_t n)
{
	return hook_realloc(p, n);
}

char *ward_strdup(const char *s)
{
	if (s == NULL)
		return NULL;
	return ward_strndup(s, strlen(s));
}

char *ward_strndup(const char *s, size_t n)
{
	char *d;
	size_t len;

	if (s == NULL)
		return NULL;
	len = strnlen(s, n);
	if (len == SIZE_MAX)
		return NULL;
	d = ward_malloc(len + 1);
	if (d == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

void ward_free(void *p)
{
	free(p);
}

void ward_alloc_fail_after(long n)
{
	atomic_store(&fail_happened, 0);
	atomic_store(&fail_remaining, n < 0 ? -1 : n);
}

void ward_alloc_fail_reset(void)
{
	atomic_store(&fail_remaining, -1);
	atomic_store(&fail_happened, 0);
	atomic_store(&alloc_count, 0);
}

long ward_alloc_count(void)
{
	return atomic_load(&alloc_count);
}

int ward_alloc_failed(void)
{
	return atomic_load(&fail_happened);
}

void ward_alloc_install_jansson(void)
{
	json_set_alloc_funcs(ward_malloc, ward_free);
}
