/*
 * The search query -> FTS5 transformation. Whatever the user typed, the
 * result is a list of double-quoted terms joined by " OR " (quotes inside a
 * term doubled), each term a piece of the input, and *nterms counts them: no
 * FTS5 syntax of the caller survives.
 */
#include "fuzz_common.h"
#include "ragward/alloc.h"
#include "ragward/retrieve.h"

#define FUZZ_MAX_INPUT (16 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *fts = NULL, *term = NULL;
	const char *p;
	size_t nterms = 0, seen = 0;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	in = fuzz_cstr(data, size);
	if (ward_query_to_fts(&fts, &nterms, (const char *)data, size) != 0) {
		FUZZ_CHECK(fts == NULL);
		goto done;
	}
	FUZZ_CHECK(fts != NULL && nterms >= 1);
	FUZZ_CHECK(memchr(data, '\0', size) == NULL);
	term = malloc(strlen(fts) + 1);
	FUZZ_CHECK(term != NULL);
	p = fts;
	for (;;) {
		size_t tl = 0;

		FUZZ_CHECK(*p == '"');
		p++;
		for (;;) {
			FUZZ_CHECK(*p != '\0');
			if (*p == '"') {
				if (p[1] != '"')
					break;
				p++;
			}
			term[tl++] = *p++;
		}
		p++; /* closing quote */
		term[tl] = '\0';
		FUZZ_CHECK(tl > 0);
		/* The term is a verbatim piece of the query. */
		FUZZ_CHECK(strstr(in, term) != NULL);
		seen++;
		if (*p == '\0')
			break;
		FUZZ_CHECK(strncmp(p, " OR ", 4) == 0);
		p += 4;
	}
	FUZZ_CHECK(seen == nterms);
done:
	free(term);
	ward_free(fts);
	free(in);
	return 0;
}
