#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ragward/alloc.h"
#include "ragward/chunk.h"
#include "ragward/error.h"
#include "core/limits.h"
#include "core/banned.h"

static int teardown(void **state)
{
	(void)state;
	ward_alloc_fail_reset();
	ward_error_clear();
	return 0;
}

/* An extracted document built by hand, as the extractor would: blocks joined
 * with "\n\n". */
typedef struct {
	ward_extracted x;
	size_t cap, capblocks;
} doc;

static void doc_init(doc *d, const char *title)
{
	memset(d, 0, sizeof(*d));
	d->x.type = WARD_TYPE_HTML;
	d->x.title = strdup(title ? title : "");
	d->cap = 1024;
	d->x.text = calloc(1, d->cap);
	assert_non_null(d->x.text);
}

static void doc_add(doc *d, ward_block_kind kind, int level, const char *s, size_t n)
{
	if (d->x.nblocks > 0) {
		while (d->x.len + 2 + 1 > d->cap)
			d->x.text = realloc(d->x.text, d->cap *= 2);
		memcpy(d->x.text + d->x.len, "\n\n", 2);
		d->x.len += 2;
	}
	while (d->x.len + n + 1 > d->cap)
		d->x.text = realloc(d->x.text, d->cap *= 2);
	assert_non_null(d->x.text);
	memcpy(d->x.text + d->x.len, s, n);
	if (d->x.nblocks == d->capblocks) {
		d->capblocks = d->capblocks ? 2 * d->capblocks : 16;
		d->x.blocks = realloc(d->x.blocks, d->capblocks * sizeof(ward_block));
		assert_non_null(d->x.blocks);
	}
	d->x.blocks[d->x.nblocks].kind = kind;
	d->x.blocks[d->x.nblocks].level = level;
	d->x.blocks[d->x.nblocks].start = d->x.len;
	d->x.blocks[d->x.nblocks].end = d->x.len + n;
	d->x.nblocks++;
	d->x.len += n;
	d->x.text[d->x.len] = '\0';
}

static void doc_str(doc *d, ward_block_kind kind, int level, const char *s)
{
	doc_add(d, kind, level, s, strlen(s));
}

static void doc_dispose(doc *d)
{
	free(d->x.title);
	free(d->x.text);
	free(d->x.blocks);
}

static int is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Properties every chunking must have. */
static void check_chunks(const doc *d, const ward_chunk *c, size_t n, size_t target, size_t max)
{
	size_t i, prev_end = 0;

	for (i = 0; i < n; i++) {
		size_t b, bodies = 0;

		assert_int_equal(c[i].ordinal, i);
		assert_true(c[i].start < c[i].end);
		assert_true(c[i].start >= prev_end);
		assert_true(c[i].end <= d->x.len);
		if (c[i].end - c[i].start > max)
			fail_msg("chunk %zu has %zu bytes, max %zu", i, c[i].end - c[i].start, max);
		assert_false(is_cont((unsigned char)d->x.text[c[i].start]));
		if (c[i].end < d->x.len)
			assert_false(is_cont((unsigned char)d->x.text[c[i].end]));
		assert_non_null(c[i].heading_path);
		/* Over target only when one body block (or a piece of one) is in it. */
		for (b = 0; b < d->x.nblocks; b++) {
			const ward_block *bl = &d->x.blocks[b];

			if (bl->kind == WARD_BLOCK_HEADING || bl->kind == WARD_BLOCK_TITLE)
				continue;
			if (bl->start < c[i].end && bl->end > c[i].start)
				bodies++;
		}
		if (c[i].end - c[i].start > target && bodies > 1)
			fail_msg("chunk %zu has %zu bytes (target %zu) and %zu body blocks", i, c[i].end - c[i].start,
				 target, bodies);
		prev_end = c[i].end;
	}
}

static void chunk_ok(ward_chunk **c, size_t *n, const doc *d, size_t target, size_t max)
{
	ward_chunk_opts o = {target, max};
	int rc = ward_chunk_text(c, n, &d->x, &o);

	if (rc != 0)
		fail_msg("ward_chunk_text: %d %s", rc, ward_error_last()->message);
	check_chunks(d, *c, *n, target ? target : WARD_CHUNK_TARGET, max ? max : WARD_CHUNK_MAX);
}

static void test_ingest_chunk__heading_paths(void **state)
{
	doc d;
	ward_chunk *c = NULL;
	size_t n = 0;

	(void)state;
	doc_init(&d, "Guide");
	doc_str(&d, WARD_BLOCK_HEADING, 1, "Intro");
	doc_str(&d, WARD_BLOCK_PARAGRAPH, 0, "Welcome to the guide.");
	doc_str(&d, WARD_BLOCK_HEADING, 2, "Setup");
	doc_str(&d, WARD_BLOCK_PARAGRAPH, 0, "Install it.");
	doc_str(&d, WARD_BLOCK_HEADING, 3, "On   Linux\n");
	doc_str(&d, WARD_BLOCK_LIST_ITEM, 1, "apt install it");
	doc_str(&d, WARD_BLOCK_HEADING, 2, "Usage");
	doc_str(&d, WARD_BLOCK_PARAGRAPH, 0, "Run it.");
	doc_str(&d, WARD_BLOCK_HEADING, 1, "FAQ");
	doc_str(&d, WARD_BLOCK_HEADING, 2, "Why?");
	doc_str(&d, WARD_BLOCK_PARAGRAPH, 0, "Because.");
	chunk_ok(&c, &n, &d, 0, 0);
	assert_int_equal(n, 5);
	assert_string_equal(c[0].heading_path, "Guide > Intro");
	assert_string_equal(c[1].heading_path, "Guide > Intro > Setup");
	assert_string_equal(c[2].heading_path, "Guide > Intro > Setup > On Linux");
	assert_string_equal(c[3].heading_path, "Guide > Intro > Usage");
	assert_string_equal(c[4].heading_path, "Guide > FAQ > Why?");
	/* Each chunk opens with its heading(s); the body follows. */
	assert_memory_equal(d.x.text + c[0].start, "Intro\n\nWelcome", 14);
	assert_int_equal(c[1].end - c[1].start, strlen("Setup\n\nInstall it."));
	assert_memory_equal(d.x.text + c[1].start, "Setup\n\nInstall it.", c[1].end - c[1].start);
	assert_memory_equal(d.x.text + c[2].start, "On   Linux\n\n\napt install it", 27);
	assert_memory_equal(d.x.text + c[4].start, "FAQ\n\nWhy?\n\nBecause.", 19);
	assert_int_equal(c[4].end, d.x.len);
	ward_chunks_free(c, n);

	/* A TITLE block replaces x->title; text before any heading has the title path. */
	doc_dispose(&d);
	doc_init(&d, "");
	doc_str(&d, WARD_BLOCK_PARAGRAPH, 0, "Preamble.");
	doc_str(&d, WARD_BLOCK_TITLE, 0, "Real Title");
	doc_str(&d, WARD_BLOCK_PARAGRAPH, 0, "Body.");
	chunk_ok(&c, &n, &d, 0, 0);
	assert_int_equal(n, 2);
	assert_string_equal(c[0].heading_path, "");
	assert_string_equal(c[1].heading_path, "Real Title");
	ward_chunks_free(c, n);
	doc_dispose(&d);
}

/* Deterministic pseudo-random prose. */
static uint32_t rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) & 0xFFFFFF;
}

static void make_prose(char *buf, size_t len, uint32_t *seed)
{
	static const char *words[] = {"alpha", "beta", "gamma", "delta", "retrieval", "index", "signed", "chunk"};
	size_t at = 0;

	while (at < len) {
		const char *w = words[rnd(seed) % 8];
		size_t wl = strlen(w);
		int end = rnd(seed) % 9 == 0;

		if (at + wl + 2 > len)
			break;
		memcpy(buf + at, w, wl);
		at += wl;
		buf[at++] = end ? '.' : ' ';
		if (end && at < len)
			buf[at++] = ' ';
	}
	while (at < len)
		buf[at++] = 'x';
	buf[len - 1] = '.';
}

static void test_ingest_chunk__target_and_max_respected(void **state)
{
	static const size_t opts[][2] = {{0, 0}, {300, 700}, {100, 100}, {16, 16}};
	doc d;
	uint32_t seed = 42;
	char buf[5000];
	size_t i, o;

	(void)state;
	doc_init(&d, "Doc");
	for (i = 0; i < 120; i++) {
		size_t len = 20 + rnd(&seed) % 3000;
		ward_block_kind kinds[] = {WARD_BLOCK_PARAGRAPH, WARD_BLOCK_LIST_ITEM, WARD_BLOCK_TABLE_ROW,
					   WARD_BLOCK_CODE, WARD_BLOCK_QUOTE};

		if (i % 7 == 0) {
			snprintf(buf, sizeof(buf), "Section %zu", i);
			doc_str(&d, WARD_BLOCK_HEADING, 1 + (int)(i % 3), buf);
		}
		make_prose(buf, len, &seed);
		doc_add(&d, kinds[rnd(&seed) % 5], 0, buf, len);
	}
	for (o = 0; o < sizeof(opts) / sizeof(opts[0]); o++) {
		ward_chunk *c = NULL;
		size_t n = 0, j, k;

		chunk_ok(&c, &n, &d, opts[o][0], opts[o][1]);
		assert_true(n > 0);
		/* Every non-blank byte of the text is in some chunk. */
		for (j = 0, k = 0; j < d.x.len; j++) {
			while (k < n && c[k].end <= j)
				k++;
			if (d.x.text[j] != ' ' && d.x.text[j] != '\n')
				assert_true(k < n && c[k].start <= j);
		}
		ward_chunks_free(c, n);
	}
	doc_dispose(&d);
}

static void test_ingest_chunk__small_blocks_never_split(void **state)
{
	doc d;
	ward_chunk *c = NULL;
	size_t n = 0, i, b;
	char row[128];

	(void)state;
	doc_init(&d, NULL);
	for (i = 0; i < 40; i++) {
		snprintf(row, sizeof(row), "row %02zu | cell with some words | another cell | %zu", i, i * 7);
		doc_str(&d, i < 20 ? WARD_BLOCK_TABLE_ROW : WARD_BLOCK_LIST_ITEM, 1, row);
	}
	chunk_ok(&c, &n, &d, 250, 400);
	assert_true(n > 1);
	/* Every chunk boundary is a block boundary. */
	for (i = 0; i < n; i++) {
		int s_ok = 0, e_ok = 0;

		for (b = 0; b < d.x.nblocks; b++) {
			s_ok |= d.x.blocks[b].start == c[i].start;
			e_ok |= d.x.blocks[b].end == c[i].end;
		}
		assert_true(s_ok && e_ok);
	}
	ward_chunks_free(c, n);
	doc_dispose(&d);
}

static void test_ingest_chunk__long_paragraph_split_at_sentence_end(void **state)
{
	doc d;
	ward_chunk *c = NULL;
	size_t n = 0, i, at = 0;
	char *p = malloc(6000);

	(void)state;
	assert_non_null(p);
	for (i = 0; at + 64 < 6000; i++)
		at += (size_t)snprintf(p + at, 6000 - at, "Sentence number %zu says something useful. ", i);
	while (at > 0 && p[at - 1] == ' ')
		at--;
	doc_init(&d, NULL);
	doc_str(&d, WARD_BLOCK_HEADING, 1, "Long");
	doc_add(&d, WARD_BLOCK_PARAGRAPH, 0, p, at);
	chunk_ok(&c, &n, &d, 0, 0);
	assert_true(n >= 3);
	for (i = 0; i < n; i++) {
		assert_int_equal(d.x.text[c[i].end - 1], '.');
		assert_int_equal(d.x.text[c[i].start] == ' ', 0);
		assert_string_equal(c[i].heading_path, "Long");
	}
	/* The heading stays with the first piece. */
	assert_memory_equal(d.x.text + c[0].start, "Long\n\nSentence number 0", 23);
	ward_chunks_free(c, n);

	/* Code is cut at line ends. */
	doc_dispose(&d);
	for (i = 0, at = 0; at + 40 < 6000; i++)
		at += (size_t)snprintf(p + at, 6000 - at, "int value_%04zu = compute(%zu);\n", i, i);
	doc_init(&d, NULL);
	doc_add(&d, WARD_BLOCK_CODE, 0, p, at - 1);
	chunk_ok(&c, &n, &d, 0, 0);
	assert_true(n >= 3);
	for (i = 0; i + 1 < n; i++) {
		assert_int_equal(d.x.text[c[i].end - 1], ';');
		assert_int_equal(d.x.text[c[i].end], '\n');
	}
	ward_chunks_free(c, n);
	doc_dispose(&d);
	free(p);
}

static void test_ingest_chunk__utf8_boundaries_never_broken(void **state)
{
	/* 3-byte CJK and 4-byte emoji with no spaces or sentence ends. */
	static const char *glyphs[] = {"\xe6\x97\xa5", "\xe6\x9c\xac", "\xf0\x9f\x98\x80", "\xe8\xaa\x9e",
				       "\xf0\x9f\x91\x8d"};
	doc d;
	uint32_t seed = 7;
	size_t maxes[] = {16, 17, 18, 19, 100, 101, 2000};
	size_t i, m, at = 0;
	char *p = malloc(30000);

	(void)state;
	assert_non_null(p);
	while (at + 4 < 30000) {
		const char *g = glyphs[rnd(&seed) % 5];

		memcpy(p + at, g, strlen(g));
		at += strlen(g);
	}
	doc_init(&d, NULL);
	doc_add(&d, WARD_BLOCK_PARAGRAPH, 0, p, at);
	for (m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
		ward_chunk *c = NULL;
		size_t n = 0, total = 0;

		chunk_ok(&c, &n, &d, maxes[m] / 2, maxes[m]);
		for (i = 0; i < n; i++)
			total += c[i].end - c[i].start;
		assert_int_equal(total, at); /* nothing lost, nothing doubled */
		ward_chunks_free(c, n);
	}
	doc_dispose(&d);

	/* With ideographic full stops the cut lands after one. */
	for (i = 0, at = 0; i < 300; i++) {
		memcpy(p + at, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x80\x82", 12); /* 日本語。 */
		at += 12;
	}
	doc_init(&d, NULL);
	doc_add(&d, WARD_BLOCK_PARAGRAPH, 0, p, at);
	{
		ward_chunk *c = NULL;
		size_t n = 0;

		chunk_ok(&c, &n, &d, 100, 200);
		for (i = 0; i < n; i++)
			assert_memory_equal(d.x.text + c[i].end - 3, "\xe3\x80\x82", 3);
		ward_chunks_free(c, n);
	}
	doc_dispose(&d);
	free(p);
}

static void test_ingest_chunk__deterministic(void **state)
{
	doc d;
	uint32_t seed = 99;
	char buf[4000];
	ward_chunk *a = NULL, *b = NULL;
	size_t na = 0, nb = 0, i;

	(void)state;
	doc_init(&d, "Same");
	for (i = 0; i < 50; i++) {
		size_t len = 10 + rnd(&seed) % 2500;

		if (i % 5 == 0)
			doc_str(&d, WARD_BLOCK_HEADING, 2, "Part");
		make_prose(buf, len, &seed);
		doc_add(&d, WARD_BLOCK_PARAGRAPH, 0, buf, len);
	}
	chunk_ok(&a, &na, &d, 0, 0);
	chunk_ok(&b, &nb, &d, 0, 0);
	assert_int_equal(na, nb);
	for (i = 0; i < na; i++) {
		assert_int_equal(a[i].ordinal, i);
		assert_int_equal(a[i].ordinal, b[i].ordinal);
		assert_int_equal(a[i].start, b[i].start);
		assert_int_equal(a[i].end, b[i].end);
		assert_string_equal(a[i].heading_path, b[i].heading_path);
	}
	ward_chunks_free(a, na);
	ward_chunks_free(b, nb);
	doc_dispose(&d);
}

static void test_ingest_chunk__empty_text(void **state)
{
	doc d;
	ward_chunk *c = (ward_chunk *)1;
	size_t n = 99;

	(void)state;
	doc_init(&d, "Title only");
	assert_int_equal(ward_chunk_text(&c, &n, &d.x, NULL), 0);
	assert_null(c);
	assert_int_equal(n, 0);
	/* Blank blocks make no chunks either. */
	doc_str(&d, WARD_BLOCK_PARAGRAPH, 0, "   ");
	assert_int_equal(ward_chunk_text(&c, &n, &d.x, NULL), 0);
	assert_int_equal(n, 0);
	ward_chunks_free(NULL, 0);
	doc_dispose(&d);
}

static void test_ingest_chunk__text_outside_blocks_is_kept(void **state)
{
	ward_extracted x;
	ward_chunk *c = NULL;
	size_t n = 0;
	char text[] = "First paragraph.\n\nSecond paragraph.";

	(void)state;
	memset(&x, 0, sizeof(x));
	x.text = text;
	x.len = strlen(text);
	x.title = (char *)"";
	assert_int_equal(ward_chunk_text(&c, &n, &x, NULL), 0);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].start, 0);
	assert_int_equal(c[0].end, x.len);
	ward_chunks_free(c, n);
}

static void test_ingest_chunk__bad_input_refused(void **state)
{
	doc d;
	ward_chunk *c = NULL;
	size_t n = 0;
	ward_chunk_opts o = {500, 400};

	(void)state;
	doc_init(&d, NULL);
	doc_str(&d, WARD_BLOCK_PARAGRAPH, 0, "caf\xc3\xa9");
	assert_int_equal(ward_chunk_text(&c, &n, &d.x, &o), WARD_EINVAL);
	o.target = 4;
	o.max = 8;
	assert_int_equal(ward_chunk_text(&c, &n, &d.x, &o), WARD_EINVAL);
	d.x.blocks[0].end = d.x.len + 1;
	assert_int_equal(ward_chunk_text(&c, &n, &d.x, NULL), WARD_EINVAL);
	d.x.blocks[0].end = d.x.len - 1; /* inside é */
	assert_int_equal(ward_chunk_text(&c, &n, &d.x, NULL), WARD_EINVAL);
	assert_null(c);
	assert_int_equal(ward_chunk_text(&c, &n, NULL, NULL), WARD_EINVAL);
	doc_dispose(&d);
}

static void test_ingest_chunk__ten_megabyte_single_block(void **state)
{
	size_t len = 10 * 1024 * 1024, n = 0;
	uint32_t seed = 3;
	ward_chunk *c = NULL;
	ward_chunk_opts tiny = {50, 100};
	char *p = malloc(len);
	doc d;

	(void)state;
	assert_non_null(p);
	make_prose(p, len, &seed);
	doc_init(&d, "Big");
	doc_add(&d, WARD_BLOCK_PARAGRAPH, 0, p, len);
	free(p);
	chunk_ok(&c, &n, &d, 0, 0);
	assert_true(n > 5000);
	assert_true(n <= WARD_MAX_CHUNKS);
	ward_chunks_free(c, n);
	/* More than WARD_MAX_CHUNKS pieces: a clean error. */
	c = (ward_chunk *)1;
	assert_int_equal(ward_chunk_text(&c, &n, &d.x, &tiny), WARD_ETOOBIG);
	assert_null(c);
	assert_int_equal(n, 0);
	doc_dispose(&d);
}

static void test_ingest_chunk__allocation_failures(void **state)
{
	doc d;
	uint32_t seed = 5;
	char buf[3000];
	size_t i;
	long k;

	(void)state;
	doc_init(&d, "T");
	for (i = 0; i < 20; i++) {
		size_t len = 50 + rnd(&seed) % 2900;

		doc_str(&d, WARD_BLOCK_HEADING, 1, "H");
		make_prose(buf, len, &seed);
		doc_add(&d, WARD_BLOCK_PARAGRAPH, 0, buf, len);
	}
	for (k = 0; k < 10000; k++) {
		ward_chunk *c = NULL;
		size_t n = 0;
		int rc;

		ward_alloc_fail_after(k);
		rc = ward_chunk_text(&c, &n, &d.x, NULL);
		ward_alloc_fail_reset();
		if (rc == 0) {
			assert_true(n > 0);
			ward_chunks_free(c, n);
			break;
		}
		assert_int_equal(rc, WARD_ENOMEM);
		assert_null(c);
		assert_int_equal(n, 0);
	}
	assert_true(k > 0 && k < 10000);
	doc_dispose(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_ingest_chunk__heading_paths, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__target_and_max_respected, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__small_blocks_never_split, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__long_paragraph_split_at_sentence_end, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__utf8_boundaries_never_broken, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__deterministic, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__empty_text, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__text_outside_blocks_is_kept, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__bad_input_refused, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__ten_megabyte_single_block, teardown),
		cmocka_unit_test_teardown(test_ingest_chunk__allocation_failures, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
