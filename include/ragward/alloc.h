/*
 * Allocation hook. All library allocations go through these functions so that
 * tests can make the Nth allocation fail (curl's torture mode, SQLite's OOM
 * tests) and check that every failure path is clean.
 */
#ifndef RAGWARD_ALLOC_H
#define RAGWARD_ALLOC_H

#include <stddef.h>

void *ward_malloc(size_t n);
void *ward_calloc(size_t count, size_t size);
void *ward_realloc(void *p, size_t n);
char *ward_strdup(const char *s);
char *ward_strndup(const char *s, size_t n);
void ward_free(void *p);

/* Fault injection, for tests only. After `n` more successful allocations every
 * further allocation fails until ward_alloc_fail_reset(); n < 0 disables it.
 * ward_alloc_count() is the number of allocations since the last reset. */
void ward_alloc_fail_after(long n);
void ward_alloc_fail_reset(void);
long ward_alloc_count(void);
int ward_alloc_failed(void); /* 1 when an injected failure has happened */

/* Routes jansson's allocations through the hook (call once, before any JSON). */
void ward_alloc_install_jansson(void);

#endif
