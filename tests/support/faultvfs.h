/*
 * A wrapper sqlite3_vfs for I/O-failure sweeps (security-controls T39, T51;
 * SQLite's ioerr tests): "ward_fault" delegates everything to the default
 * VFS and wraps each file so that xWrite and xSync consult a countdown. Armed
 * with N, the Nth (0-based) write/sync call fails; once (FAULTVFS_ONCE) or
 * that call and every later one (FAULTVFS_PERSISTENT) until disarmed.
 *
 *   faultvfs_register();               once, in main(), before any store opens
 *   faultvfs_arm(n, FAULTVFS_ONCE);    ... run the change ...
 *   fired = faultvfs_fired();
 *   faultvfs_disarm();
 *
 * The VFS becomes SQLite's default, so every connection opened afterwards
 * (the library's and the tests' raw ones) goes through it; disarmed it only
 * forwards. Single-threaded use: the counters are plain statics.
 */
#ifndef RAGWARD_TESTS_FAULTVFS_H
#define RAGWARD_TESTS_FAULTVFS_H

enum {
	FAULTVFS_ONCE = 0,            /* only the Nth call fails */
	FAULTVFS_PERSISTENT = 1 << 0, /* the Nth call and all later ones fail */
	FAULTVFS_WRITES = 1 << 1,     /* count xWrite calls (neither bit: both) */
	FAULTVFS_SYNCS = 1 << 2,      /* count xSync calls (neither bit: both) */
	FAULTVFS_FULL = 1 << 3,       /* a failed write is SQLITE_FULL (ENOSPC), not SQLITE_IOERR_WRITE */
};

/* Registers "ward_fault" as the default VFS (idempotent). Aborts on failure,
 * so it may be called outside a cmocka test. */
void faultvfs_register(void);

/* Arms the countdown: the n-th (from 0) counted call fails. Resets the
 * counters. n < 0 disarms. */
void faultvfs_arm(long n, int mode);
void faultvfs_disarm(void);

/* 1: a counted xSync that is not failed returns SQLITE_OK without calling
 * the real xSync (no fsync(2)). The sweeps' crash images are copies of the
 * files as the OS holds them, so the physical flush is not what they test,
 * and skipping it takes the disk's fsync latency out of long sweeps. Off by
 * default; the calls are counted and failed exactly as with it off. */
void faultvfs_skip_real_sync(int on);

/* Since the last arm: 1 when a failure was injected, the number of injected
 * failures, and the counted (write/sync) calls seen while armed. */
int faultvfs_fired(void);
long faultvfs_failures(void);
long faultvfs_ops(void);

/* The store's files as they are on disk now (store.db, store.db-wal,
 * anchor.checkpoint and keys/), copied into a fresh home: what a crash at
 * this moment would leave. store.db-shm is not copied (it is rebuilt). Free
 * with tu_home_free. Asserts (call inside a cmocka test). */
char *faultvfs_crash_image(const char *home);

#endif
