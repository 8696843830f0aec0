/* Keeps the test-support library non-empty. */
typedef int ward_testsupport_empty;
