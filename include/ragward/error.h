/*
 * ragward error model.
 *
 * Every fallible library function returns an int: 0 on success or one of the
 * negative WARD_E* codes below. The failing function also records a one-line
 * message in a thread-local slot, read with ward_error_last(). Messages are
 * lowercase, name the failing subject in quotes and say what failed first,
 * e.g. "source 7: cannot approve: state is 'rejected'".
 */
#ifndef RAGWARD_ERROR_H
#define RAGWARD_ERROR_H

#include <stdarg.h>

#if defined(__GNUC__)
#define WARD_MUST_CHECK __attribute__((warn_unused_result))
#define WARD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WARD_MUST_CHECK
#define WARD_PRINTF(f, a)
#endif

/* One code per expected failure. Keep ward_error_name() in sync. */
typedef enum {
	WARD_OK = 0,
	WARD_ENOMEM = -1,    /* an allocation failed */
	WARD_EINVAL = -2,    /* malformed argument or input (bad URL, bad YAML, ...) */
	WARD_EIO = -3,       /* file system or OS call failed */
	WARD_EDB = -4,       /* the database reported an error */
	WARD_ETOOBIG = -5,   /* an input exceeded its cap */
	WARD_EPOLICY = -6,   /* refused by policy (not approved, two-person rule, ...) */
	WARD_EVERIFY = -7,   /* a hash, signature or audit check failed */
	WARD_ENOTFOUND = -8, /* the named object does not exist */
	WARD_EEXISTS = -9,   /* the object already exists */
	WARD_ESTATE = -10,   /* illegal state transition */
	WARD_EKEY = -11,     /* a key file is unsafe (permissions, symlink) or unreadable */
	WARD_ECRYPTO = -12,  /* OpenSSL failed for a reason other than a bad signature */
	WARD_ESCHEMA = -13,  /* the store's schema is newer than this binary */
	WARD_EBUSY = -14,    /* the store or a lock is held by someone else */
	WARD_EVERSION = -15, /* a runtime library is older than the tested minimum */
	WARD_ENET = -16,     /* a network transfer failed */
	WARD_ETIMEOUT = -17, /* a time cap was hit */
} ward_err;

typedef struct {
	int code;          /* a ward_err value */
	char message[512]; /* one line, no trailing newline */
} ward_error;

/* Records code and message for this thread and returns code, so callers can
 * write `return ward_error_set(WARD_EINVAL, "...")`. */
int ward_error_set(int code, const char *fmt, ...) WARD_PRINTF(2, 3);
int ward_error_vset(int code, const char *fmt, va_list ap) WARD_PRINTF(2, 0);

/* Prefixes the current message with context, keeping the code:
 * "opening store: <previous message>". Returns the current code. */
int ward_error_wrap(const char *fmt, ...) WARD_PRINTF(1, 2);

/* The last error recorded on this thread (never NULL; code 0 when none). */
const ward_error *ward_error_last(void);
void ward_error_clear(void);

/* Stable short name of a code ("EPOLICY"), for JSON output. */
const char *ward_error_name(int code);

#endif
