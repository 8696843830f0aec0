/*
 * The fault-injecting wrapper VFS (see faultvfs.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "tests/support/faultvfs.h"
#include "tests/support/testutil.h"
#include "core/banned.h"

typedef struct {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
} fault_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static int registered;

static int skip_real_sync;
static int armed;
static long countdown = -1; /* < 0: no failure pending */
static int mode_bits;
static long failures;
static long ops; /* counted write/sync calls seen while armed */

/* `what` is FAULTVFS_WRITES or FAULTVFS_SYNCS. */
static int fault_hit(int what)
{
	int filter = mode_bits & (FAULTVFS_WRITES | FAULTVFS_SYNCS);

	if (!armed || (filter && !(filter & what)))
		return 0;
	ops++;
	if (countdown < 0)
		return 0;
	if (countdown == 0) {
		failures++;
		if (!(mode_bits & FAULTVFS_PERSISTENT))
			countdown = -1;
		return 1;
	}
	countdown--;
	return 0;
}

void faultvfs_arm(long n, int mode)
{
	failures = 0;
	ops = 0;
	mode_bits = mode;
	countdown = n;
	armed = n >= 0;
}

void faultvfs_disarm(void)
{
	armed = 0;
	countdown = -1;
}

void faultvfs_skip_real_sync(int on)
{
	skip_real_sync = on;
}

int faultvfs_fired(void)
{
	return failures > 0;
}

long faultvfs_failures(void)
{
	return failures;
}

long faultvfs_ops(void)
{
	return ops;
}

#define REAL(f) (((fault_file *)(f))->real)

static int ff_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int ff_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int ff_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (fault_hit(FAULTVFS_WRITES))
		return (mode_bits & FAULTVFS_FULL) ? SQLITE_FULL : SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags)
{
	if (fault_hit(FAULTVFS_SYNCS))
		return SQLITE_IOERR_FSYNC;
	if (skip_real_sync)
		return SQLITE_OK;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int ff_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int ff_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int ff_check_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int ff_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int ff_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int ff_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods fault_io = {
        3,           ff_close,       ff_read,       ff_write, ff_truncate, ff_sync,    ff_size,
        ff_lock,     ff_unlock,      ff_check_lock, ff_fcntl, ff_sector,   ff_devchar, ff_shm_map,
        ff_shm_lock, ff_shm_barrier, ff_shm_unmap,  ff_fetch, ff_unfetch,
};

static int fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	fault_file *ff = (fault_file *)file;
	int rc;

	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
	file->pMethods = ff->real->pMethods ? &fault_io : NULL;
	return rc;
}

void faultvfs_register(void)
{
	if (registered)
		return;
	real_vfs = sqlite3_vfs_find(NULL);
	if (!real_vfs) {
		fprintf(stderr, "faultvfs: no default sqlite3_vfs\n");
		abort();
	}
	fault_vfs = *real_vfs;
	fault_vfs.zName = "ward_fault";
	fault_vfs.szOsFile = (int)sizeof(fault_file) + real_vfs->szOsFile;
	fault_vfs.xOpen = fault_open;
	fault_vfs.pNext = NULL;
	if (sqlite3_vfs_register(&fault_vfs, 1) != SQLITE_OK) {
		fprintf(stderr, "faultvfs: sqlite3_vfs_register failed\n");
		abort();
	}
	registered = 1;
}

char *faultvfs_crash_image(const char *home)
{
	char *img = tu_home_path("faults-img"), *keys, *src_keys, *p, *q;
	static const char *const files[] = {"store.db", "store.db-wal", "anchor.checkpoint"};
	DIR *d;
	struct dirent *e;

	assert_int_equal(mkdir(img, 0700), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p = tu_path(home, files[i]);
		q = tu_path(img, files[i]);
		tu_copy_file(p, q); /* a missing file (no WAL yet) is fine */
		free(p);
		free(q);
	}
	keys = tu_path(img, "keys");
	src_keys = tu_path(home, "keys");
	assert_int_equal(mkdir(keys, 0700), 0);
	d = opendir(src_keys);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		p = tu_path(src_keys, e->d_name);
		q = tu_path(keys, e->d_name);
		assert_int_equal(tu_copy_file(p, q), 0);
		free(p);
		free(q);
	}
	closedir(d);
	free(src_keys);
	free(keys);
	return img;
}
