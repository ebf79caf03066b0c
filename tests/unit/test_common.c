/*
 * test_common.c - unit tests for common/: errors, capped buffers, the
 * arena and the value parsing of the report model.
 *
 * Proves: dm_error_set/prefix keep one bounded sentence and map codes to
 * sysexits; dm_buf and dm_arena refuse to pass their caps and leave what
 * they hold untouched when they do; arena pointers never move however
 * many allocations follow, and a reset reuses the same memory;
 * dm_enum_parse normalises every enumeration (exact, case, white space,
 * aliases, unrecognised); dm_parse_uint64, dm_parse_epoch and
 * dm_ip_canonical accept exactly what report.h documents; dm_warnings_add
 * counts repeats and caps distinct sentences at DM_MAX_WARNINGS;
 * dm_dl_need loads a library by soname and fills its typed table, and a
 * missing library or symbol fails with DM_E_UNAVAILABLE (exit 69) naming
 * the soname, the purpose and the symbol, the same way on every call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/dl.h"
#include "common/error.h"
#include "common/report.h"

/* Errors */

static void
test_error_set(void **state)
{
	struct dm_error err;

	(void)state;
	dm_error_clear(&err);
	assert_int_equal(err.code, DM_E_NONE);
	assert_string_equal(err.msg, "");
	assert_int_equal(dm_error_set(&err, DM_E_DATA, "bad %s at %d",
	    "count", 12), -1);
	assert_int_equal(err.code, DM_E_DATA);
	assert_string_equal(err.msg, "bad count at 12");
	/* A NULL error is allowed and still says "failed". */
	assert_int_equal(dm_error_set(NULL, DM_E_IO, "x"), -1);
	dm_error_clear(&err);
	assert_int_equal(err.code, DM_E_NONE);
	assert_string_equal(err.msg, "");
}

static void
test_error_set_long_message_is_cut(void **state)
{
	struct dm_error err;
	char big[3 * DM_ERROR_MSG_MAX];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	dm_error_set(&err, DM_E_LIMIT, "%s", big);
	assert_int_equal(strlen(err.msg), DM_ERROR_MSG_MAX - 1);
}

static void
test_error_prefix(void **state)
{
	struct dm_error err;
	char big[2 * DM_ERROR_MSG_MAX];

	(void)state;
	dm_error_set(&err, DM_E_DATA, "'-1' is negative");
	dm_error_prefix(&err, "%s: %s", "r.xml", "gzip");
	assert_string_equal(err.msg, "r.xml: gzip: '-1' is negative");
	assert_int_equal(err.code, DM_E_DATA);

	/* A prefix longer than the buffer is cut; the result stays a string. */
	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	dm_error_set(&err, DM_E_DATA, "tail");
	dm_error_prefix(&err, "%s", big);
	assert_true(strlen(err.msg) < DM_ERROR_MSG_MAX);
	assert_int_equal(err.msg[0], 'p');

	/* A long message after a short prefix is cut at the end. */
	memset(big, 'm', DM_ERROR_MSG_MAX);
	big[DM_ERROR_MSG_MAX - 1] = '\0';
	dm_error_set(&err, DM_E_DATA, "%s", big);
	dm_error_prefix(&err, "ctx");
	assert_int_equal(strlen(err.msg), DM_ERROR_MSG_MAX - 1);
	assert_memory_equal(err.msg, "ctx: mmm", 8);

	dm_error_prefix(NULL, "ignored");	/* must not crash */
}

static void
test_error_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(dm_error_exit_code(DM_E_NONE), 0);
	assert_int_equal(dm_error_exit_code(DM_E_DATA), 65);
	assert_int_equal(dm_error_exit_code(DM_E_LIMIT), 65);
	assert_int_equal(dm_error_exit_code(DM_E_NOINPUT), 66);
	assert_int_equal(dm_error_exit_code(DM_E_IO), 74);
	assert_int_equal(dm_error_exit_code(DM_E_TEMP), 75);
	assert_int_equal(dm_error_exit_code(DM_E_NOMEM), 75);
	assert_int_equal(dm_error_exit_code(DM_E_USAGE), 64);
	assert_int_equal(dm_error_exit_code(DM_E_UNAVAILABLE), 69);
	assert_int_equal(dm_error_exit_code(DM_E_INTERNAL), 70);
	assert_int_equal(dm_error_exit_code((enum dm_error_code)999), 70);

	assert_true(dm_error_is_data(DM_E_DATA));
	assert_true(dm_error_is_data(DM_E_LIMIT));
	assert_false(dm_error_is_data(DM_E_NONE));
	assert_false(dm_error_is_data(DM_E_IO));
	assert_false(dm_error_is_data(DM_E_UNAVAILABLE));
	assert_false(dm_error_is_data(DM_E_TEMP));
	assert_false(dm_error_is_data(DM_E_NOMEM));
	assert_false(dm_error_is_data(DM_E_INTERNAL));
}

/* Buffers */

static void
test_buf_cap(void **state)
{
	struct dm_buf b;

	(void)state;
	dm_buf_init(&b, 10);
	assert_string_equal(dm_buf_cstr(&b), "");
	assert_int_equal(dm_buf_append(&b, "12345678", 8), 0);
	/* Past the cap: nothing of it is appended. */
	assert_int_equal(dm_buf_append(&b, "abc", 3), -1);
	assert_int_equal(b.len, 8);
	assert_string_equal(dm_buf_cstr(&b), "12345678");
	/* Exactly up to the cap is fine. */
	assert_int_equal(dm_buf_append(&b, "ab", 2), 0);
	assert_string_equal(dm_buf_cstr(&b), "12345678ab");
	assert_int_equal(dm_buf_append(&b, "c", 1), -1);
	assert_int_equal(dm_buf_append(&b, "", 0), 0);
	assert_string_equal(dm_buf_cstr(&b), "12345678ab");
	/* A length that would wrap size_t. */
	assert_int_equal(dm_buf_append(&b, "x", SIZE_MAX), -1);
	assert_int_equal(b.len, 10);
	assert_true(b.alloc <= b.max + 1);

	dm_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(dm_buf_cstr(&b), "");
	assert_int_equal(dm_buf_append(&b, "xyz", 3), 0);
	assert_string_equal(dm_buf_cstr(&b), "xyz");
	dm_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_buf_grows_and_keeps_content(void **state)
{
	struct dm_buf b;
	char chunk[100];
	size_t i;

	(void)state;
	dm_buf_init(&b, 100000);
	for (i = 0; i < 1000; i++) {
		memset(chunk, 'a' + (int)(i % 26), sizeof(chunk));
		assert_int_equal(dm_buf_append(&b, chunk, sizeof(chunk)), 0);
	}
	assert_int_equal(b.len, 100000);
	assert_int_equal(dm_buf_append(&b, "z", 1), -1);
	for (i = 0; i < 1000; i++)
		assert_int_equal(b.data[i * 100 + 99], 'a' + (int)(i % 26));
	assert_int_equal(b.data[b.len], '\0');
	dm_buf_free(&b);
}

static void
test_buf_printf_cap(void **state)
{
	struct dm_buf b;
	char big[2000];

	(void)state;
	dm_buf_init(&b, 1500);
	assert_int_equal(dm_buf_printf(&b, "%s=%d;", "count", 42), 0);
	assert_string_equal(dm_buf_cstr(&b), "count=42;");
	/* Longer than the 512-byte fast path, still under the cap. */
	memset(big, 'x', 1000);
	big[1000] = '\0';
	assert_int_equal(dm_buf_printf(&b, "%s", big), 0);
	assert_int_equal(b.len, 1009);
	/* Past the cap: refused whole. */
	assert_int_equal(dm_buf_printf(&b, "%s", big), -1);
	assert_int_equal(b.len, 1009);
	assert_int_equal(dm_buf_cstr(&b)[1009], '\0');
	dm_buf_free(&b);
}

/* Arena */

static void
test_arena_cap(void **state)
{
	struct dm_arena a;
	char *p, *q;

	(void)state;
	dm_arena_init(&a, 64);
	p = dm_arena_strndup(&a, "hello", 5);
	assert_non_null(p);
	assert_string_equal(p, "hello");
	/* 6 bytes take 16; 48 are left. */
	q = dm_arena_alloc(&a, 49);
	assert_null(q);
	assert_string_equal(p, "hello");
	q = dm_arena_alloc(&a, 48);
	assert_non_null(q);
	assert_null(dm_arena_alloc(&a, 1));
	assert_null(dm_arena_strndup(&a, "", 0));
	assert_null(dm_arena_strndup(&a, "x", SIZE_MAX));
	assert_null(dm_arena_alloc(&a, SIZE_MAX));
	assert_true(a.used <= a.max);
	assert_string_equal(p, "hello");
	dm_arena_reset(&a);
	assert_int_equal(a.used, 0);
	assert_non_null(dm_arena_alloc(&a, 64));
	dm_arena_free(&a);
	assert_null(a.chunks);
}

#define ARENA_STRINGS 20000

/* The i-th test string: 9 to 260 bytes, so that chunks fill unevenly. */
static size_t
arena_text(size_t i, char *buf, size_t size)
{
	size_t len, pad = i % 250;

	len = (size_t)snprintf(buf, size, "string %zu ", i);
	while (pad-- > 0 && len + 1 < size)
		buf[len++] = (char)('a' + (int)(i % 26));
	buf[len] = '\0';
	return len;
}

static void
test_arena_pointers_stable(void **state)
{
	struct dm_arena a;
	char **ptrs, **again;
	char text[300];
	size_t i, len;

	(void)state;
	ptrs = calloc(ARENA_STRINGS, sizeof(*ptrs));
	again = calloc(ARENA_STRINGS, sizeof(*again));
	assert_non_null(ptrs);
	assert_non_null(again);
	dm_arena_init(&a, 64u << 20);
	for (i = 0; i < ARENA_STRINGS; i++) {
		len = arena_text(i, text, sizeof(text));
		ptrs[i] = dm_arena_strndup(&a, text, len);
		assert_non_null(ptrs[i]);
		assert_int_equal((uintptr_t)ptrs[i] % 16, 0);
	}
	/* One larger than a chunk, in between. */
	{
		char *big = dm_arena_alloc(&a, 100000);

		assert_non_null(big);
		memset(big, 'B', 100000);
	}
	/* Every earlier string is still where it was, intact. */
	for (i = 0; i < ARENA_STRINGS; i++) {
		len = arena_text(i, text, sizeof(text));
		assert_memory_equal(ptrs[i], text, len + 1);
	}
	/* A reset hands out the same memory again, in the same order. */
	dm_arena_reset(&a);
	assert_int_equal(a.used, 0);
	for (i = 0; i < ARENA_STRINGS; i++) {
		len = arena_text(i, text, sizeof(text));
		again[i] = dm_arena_strndup(&a, text, len);
		assert_ptr_equal(again[i], ptrs[i]);
	}
	dm_arena_free(&a);
	free(ptrs);
	free(again);
}

static void
test_arena_reset_reuses(void **state)
{
	struct dm_arena a;
	char *first, *p;
	int round, i;

	(void)state;
	dm_arena_init(&a, 1 << 20);
	first = dm_arena_strndup(&a, "first", 5);
	assert_non_null(first);
	/* Many records: memory must stay where the first one put it. */
	for (round = 0; round < 1000; round++) {
		dm_arena_reset(&a);
		p = dm_arena_strndup(&a, "record", 6);
		assert_ptr_equal(p, first);
		for (i = 0; i < 50; i++)
			assert_non_null(dm_arena_alloc(&a, 1000));
		assert_true(a.used <= a.max);
	}
	dm_arena_free(&a);
}

/* Enumerations */

struct enum_case {
	enum dm_enum_type type;
	const char *raw;
	enum dm_enum_match match;
	int value;
};

static const struct enum_case enum_cases[] = {
	{ DM_ENUM_POLICY, "none", DM_MATCH_EXACT, DM_POLICY_NONE },
	{ DM_ENUM_POLICY, "quarantine", DM_MATCH_EXACT, DM_POLICY_QUARANTINE },
	{ DM_ENUM_POLICY, "reject", DM_MATCH_EXACT, DM_POLICY_REJECT },
	{ DM_ENUM_POLICY, "Reject", DM_MATCH_CASE, DM_POLICY_REJECT },
	{ DM_ENUM_POLICY, " QUARANTINE\n", DM_MATCH_CASE,
	    DM_POLICY_QUARANTINE },
	{ DM_ENUM_POLICY, "unknown", DM_MATCH_NONE, DM_POLICY_UNKNOWN },
	{ DM_ENUM_POLICY, "rejected", DM_MATCH_NONE, DM_POLICY_UNKNOWN },

	{ DM_ENUM_ALIGNMENT, "r", DM_MATCH_EXACT, DM_ALIGN_RELAXED },
	{ DM_ENUM_ALIGNMENT, "s", DM_MATCH_EXACT, DM_ALIGN_STRICT },
	{ DM_ENUM_ALIGNMENT, "S", DM_MATCH_CASE, DM_ALIGN_STRICT },
	{ DM_ENUM_ALIGNMENT, "relaxed", DM_MATCH_ALIAS, DM_ALIGN_RELAXED },
	{ DM_ENUM_ALIGNMENT, " Strict ", DM_MATCH_ALIAS, DM_ALIGN_STRICT },
	{ DM_ENUM_ALIGNMENT, "x", DM_MATCH_NONE, DM_ALIGN_UNKNOWN },

	{ DM_ENUM_DISPOSITION, "none", DM_MATCH_EXACT, DM_DISP_NONE },
	{ DM_ENUM_DISPOSITION, "quarantine", DM_MATCH_EXACT,
	    DM_DISP_QUARANTINE },
	{ DM_ENUM_DISPOSITION, "reject", DM_MATCH_EXACT, DM_DISP_REJECT },
	{ DM_ENUM_DISPOSITION, "pass", DM_MATCH_EXACT, DM_DISP_PASS },
	{ DM_ENUM_DISPOSITION, "None", DM_MATCH_CASE, DM_DISP_NONE },
	{ DM_ENUM_DISPOSITION, "delivered", DM_MATCH_NONE, DM_DISP_UNKNOWN },

	{ DM_ENUM_VERDICT, "pass", DM_MATCH_EXACT, DM_VERDICT_PASS },
	{ DM_ENUM_VERDICT, "fail", DM_MATCH_EXACT, DM_VERDICT_FAIL },
	{ DM_ENUM_VERDICT, "FAIL", DM_MATCH_CASE, DM_VERDICT_FAIL },
	{ DM_ENUM_VERDICT, "hardfail", DM_MATCH_ALIAS, DM_VERDICT_FAIL },
	{ DM_ENUM_VERDICT, "softfail", DM_MATCH_NONE, DM_VERDICT_UNKNOWN },

	{ DM_ENUM_DKIM_RESULT, "none", DM_MATCH_EXACT, DM_RESULT_NONE },
	{ DM_ENUM_DKIM_RESULT, "pass", DM_MATCH_EXACT, DM_RESULT_PASS },
	{ DM_ENUM_DKIM_RESULT, "fail", DM_MATCH_EXACT, DM_RESULT_FAIL },
	{ DM_ENUM_DKIM_RESULT, "policy", DM_MATCH_EXACT, DM_RESULT_POLICY },
	{ DM_ENUM_DKIM_RESULT, "neutral", DM_MATCH_EXACT, DM_RESULT_NEUTRAL },
	{ DM_ENUM_DKIM_RESULT, "temperror", DM_MATCH_EXACT,
	    DM_RESULT_TEMPERROR },
	{ DM_ENUM_DKIM_RESULT, "permerror", DM_MATCH_EXACT,
	    DM_RESULT_PERMERROR },
	{ DM_ENUM_DKIM_RESULT, "Pass", DM_MATCH_CASE, DM_RESULT_PASS },
	{ DM_ENUM_DKIM_RESULT, "PermError", DM_MATCH_CASE,
	    DM_RESULT_PERMERROR },
	{ DM_ENUM_DKIM_RESULT, "hardfail", DM_MATCH_ALIAS, DM_RESULT_FAIL },
	{ DM_ENUM_DKIM_RESULT, "unknown", DM_MATCH_ALIAS,
	    DM_RESULT_PERMERROR },
	{ DM_ENUM_DKIM_RESULT, "error", DM_MATCH_ALIAS, DM_RESULT_TEMPERROR },
	{ DM_ENUM_DKIM_RESULT, "temp_error", DM_MATCH_ALIAS,
	    DM_RESULT_TEMPERROR },
	{ DM_ENUM_DKIM_RESULT, "perm_error", DM_MATCH_ALIAS,
	    DM_RESULT_PERMERROR },
	{ DM_ENUM_DKIM_RESULT, "passed", DM_MATCH_NONE, DM_RESULT_UNKNOWN },

	{ DM_ENUM_SPF_RESULT, "softfail", DM_MATCH_EXACT, DM_RESULT_SOFTFAIL },
	{ DM_ENUM_SPF_RESULT, "SoftFail", DM_MATCH_CASE, DM_RESULT_SOFTFAIL },
	{ DM_ENUM_SPF_RESULT, "\tnone ", DM_MATCH_CASE, DM_RESULT_NONE },
	{ DM_ENUM_SPF_RESULT, "HardFail", DM_MATCH_ALIAS, DM_RESULT_FAIL },
	{ DM_ENUM_SPF_RESULT, "Unknown", DM_MATCH_ALIAS, DM_RESULT_PERMERROR },
	{ DM_ENUM_SPF_RESULT, "ERROR", DM_MATCH_ALIAS, DM_RESULT_TEMPERROR },
	{ DM_ENUM_SPF_RESULT, "sort of", DM_MATCH_NONE, DM_RESULT_UNKNOWN },

	{ DM_ENUM_SPF_SCOPE, "mfrom", DM_MATCH_EXACT, DM_SCOPE_MFROM },
	{ DM_ENUM_SPF_SCOPE, "helo", DM_MATCH_EXACT, DM_SCOPE_HELO },
	{ DM_ENUM_SPF_SCOPE, "HELO", DM_MATCH_CASE, DM_SCOPE_HELO },
	{ DM_ENUM_SPF_SCOPE, "rcpt", DM_MATCH_NONE, DM_SCOPE_UNKNOWN },

	{ DM_ENUM_REASON, "forwarded", DM_MATCH_EXACT, DM_REASON_FORWARDED },
	{ DM_ENUM_REASON, "sampled_out", DM_MATCH_EXACT,
	    DM_REASON_SAMPLED_OUT },
	{ DM_ENUM_REASON, "trusted_forwarder", DM_MATCH_EXACT,
	    DM_REASON_TRUSTED_FORWARDER },
	{ DM_ENUM_REASON, "mailing_list", DM_MATCH_EXACT,
	    DM_REASON_MAILING_LIST },
	{ DM_ENUM_REASON, "local_policy", DM_MATCH_EXACT,
	    DM_REASON_LOCAL_POLICY },
	{ DM_ENUM_REASON, "other", DM_MATCH_EXACT, DM_REASON_OTHER },
	{ DM_ENUM_REASON, "policy_test_mode", DM_MATCH_EXACT,
	    DM_REASON_POLICY_TEST_MODE },
	{ DM_ENUM_REASON, "Mailing_List", DM_MATCH_CASE,
	    DM_REASON_MAILING_LIST },
	{ DM_ENUM_REASON, "trusted-forwarder", DM_MATCH_ALIAS,
	    DM_REASON_TRUSTED_FORWARDER },
	{ DM_ENUM_REASON, "mailing-list", DM_MATCH_ALIAS,
	    DM_REASON_MAILING_LIST },
	{ DM_ENUM_REASON, "local-policy", DM_MATCH_ALIAS,
	    DM_REASON_LOCAL_POLICY },
	{ DM_ENUM_REASON, "Sampled-Out", DM_MATCH_ALIAS,
	    DM_REASON_SAMPLED_OUT },
	{ DM_ENUM_REASON, "arc", DM_MATCH_NONE, DM_REASON_UNKNOWN },

	{ DM_ENUM_TESTING, "n", DM_MATCH_EXACT, DM_TESTING_N },
	{ DM_ENUM_TESTING, "y", DM_MATCH_EXACT, DM_TESTING_Y },
	{ DM_ENUM_TESTING, "Y", DM_MATCH_CASE, DM_TESTING_Y },
	{ DM_ENUM_TESTING, "yes", DM_MATCH_ALIAS, DM_TESTING_Y },
	{ DM_ENUM_TESTING, "No", DM_MATCH_ALIAS, DM_TESTING_N },
	{ DM_ENUM_TESTING, "maybe", DM_MATCH_NONE, DM_TESTING_UNKNOWN },

	{ DM_ENUM_DISCOVERY, "psl", DM_MATCH_EXACT, DM_DISCOVERY_PSL },
	{ DM_ENUM_DISCOVERY, "treewalk", DM_MATCH_EXACT,
	    DM_DISCOVERY_TREEWALK },
	{ DM_ENUM_DISCOVERY, "TreeWalk", DM_MATCH_CASE,
	    DM_DISCOVERY_TREEWALK },
	{ DM_ENUM_DISCOVERY, "dns", DM_MATCH_NONE, DM_DISCOVERY_UNKNOWN },
};

static const char *const match_names[] = { "exact", "case", "alias",
	"none" };

static void
test_enum_parse_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(enum_cases) / sizeof(enum_cases[0]); i++) {
		const struct enum_case *c = &enum_cases[i];
		enum dm_enum_match m;
		int value = -12345;

		m = dm_enum_parse(c->type, c->raw, strlen(c->raw), &value);
		if (m != c->match || value != c->value)
			fail_msg("type %d '%s': got %s/%d, want %s/%d",
			    (int)c->type, c->raw, match_names[m], value,
			    match_names[c->match], c->value);
	}
}

static void
test_enum_parse_edges(void **state)
{
	int type, value;

	(void)state;
	for (type = 0; type < DM_ENUM_TYPE_COUNT; type++) {
		const char *last;

		/* Empty and white space only: present but not recognised. */
		value = -1;
		assert_int_equal(dm_enum_parse((enum dm_enum_type)type, "", 0,
		    &value), DM_MATCH_NONE);
		assert_true(value > 0);
		last = dm_enum_name((enum dm_enum_type)type, value);
		assert_non_null(last);
		assert_string_equal(last, "unknown");
		value = -1;
		assert_int_equal(dm_enum_parse((enum dm_enum_type)type, "  \n",
		    3, &value), DM_MATCH_NONE);
		assert_string_equal(dm_enum_name((enum dm_enum_type)type,
		    value), "unknown");
		/* The unset value has no name. */
		assert_null(dm_enum_name((enum dm_enum_type)type, 0));
		assert_null(dm_enum_name((enum dm_enum_type)type, value + 1));
		assert_null(dm_enum_name((enum dm_enum_type)type, -1));
	}
	/* Only len bytes are read: no NUL needed. */
	assert_int_equal(dm_enum_parse(DM_ENUM_VERDICT, "passXYZ", 4, &value),
	    DM_MATCH_EXACT);
	assert_int_equal(value, DM_VERDICT_PASS);
	assert_int_equal(dm_enum_parse(DM_ENUM_VERDICT, "pas", 3, &value),
	    DM_MATCH_NONE);
	assert_int_equal(dm_enum_parse(DM_ENUM_VERDICT, "passes", 6, &value),
	    DM_MATCH_NONE);
	assert_null(dm_enum_name(DM_ENUM_TYPE_COUNT, 1));
	assert_string_equal(dm_enum_name(DM_ENUM_POLICY, DM_POLICY_REJECT),
	    "reject");
	assert_string_equal(dm_enum_name(DM_ENUM_ALIGNMENT, DM_ALIGN_STRICT),
	    "s");
	assert_string_equal(dm_enum_name(DM_ENUM_REASON,
	    DM_REASON_POLICY_TEST_MODE), "policy_test_mode");
	assert_string_equal(dm_enum_name(DM_ENUM_SPF_RESULT,
	    DM_RESULT_SOFTFAIL), "softfail");
	assert_string_equal(dm_kind_name(DM_KIND_AGGREGATE), "aggregate");
	assert_string_equal(dm_kind_name(DM_KIND_FAILURE), "failure");
	assert_string_equal(dm_kind_name(DM_KIND_TLSRPT), "tlsrpt");
	assert_string_equal(dm_kind_name(DM_KIND_UNKNOWN), "unknown");
	assert_string_equal(dm_schema_name(DM_SCHEMA_RFC7489), "rfc7489");
	assert_string_equal(dm_schema_name(DM_SCHEMA_DMARC2), "dmarc-2.0");
	assert_string_equal(dm_schema_name(DM_SCHEMA_UNKNOWN), "unknown");
}

/* Numbers */

static void
test_parse_uint64(void **state)
{
	uint64_t v;
	const char *why;

	(void)state;
	assert_int_equal(dm_parse_uint64("0", &v, &why), 0);
	assert_true(v == 0);
	assert_int_equal(dm_parse_uint64("42", &v, &why), 0);
	assert_true(v == 42);
	assert_int_equal(dm_parse_uint64("  17\n", &v, &why), 0);
	assert_true(v == 17);
	assert_int_equal(dm_parse_uint64("007", &v, &why), 0);
	assert_true(v == 7);
	/* Counts are stored as bigint: INT64_MAX is the largest. */
	assert_int_equal(dm_parse_uint64("9223372036854775807", &v, &why), 0);
	assert_true(v == (uint64_t)INT64_MAX);

	v = 99;
	why = NULL;
	assert_int_equal(dm_parse_uint64("9223372036854775808", &v, &why),
	    -1);
	assert_non_null(strstr(why, "larger than 9223372036854775807"));
	assert_true(v == 99);
	assert_int_equal(dm_parse_uint64("18446744073709551616", &v, &why),
	    -1);
	assert_non_null(strstr(why, "larger than"));
	assert_int_equal(dm_parse_uint64("99999999999999999999", &v, &why),
	    -1);
	assert_non_null(strstr(why, "larger than"));
	assert_int_equal(dm_parse_uint64("-1", &v, &why), -1);
	assert_string_equal(why, "is negative");
	assert_int_equal(dm_parse_uint64(" -0", &v, &why), -1);
	assert_string_equal(why, "is negative");
	assert_int_equal(dm_parse_uint64("", &v, &why), -1);
	assert_string_equal(why, "is not a whole number");
	assert_int_equal(dm_parse_uint64("   ", &v, &why), -1);
	assert_string_equal(why, "is not a whole number");
	assert_int_equal(dm_parse_uint64("12abc", &v, &why), -1);
	assert_string_equal(why, "is not a whole number");
	assert_int_equal(dm_parse_uint64("1 2", &v, &why), -1);
	assert_string_equal(why, "is not a whole number");
	assert_int_equal(dm_parse_uint64("1.0", &v, &why), -1);
	assert_int_equal(dm_parse_uint64("0x10", &v, &why), -1);
	assert_int_equal(dm_parse_uint64("abc", &v, &why), -1);
	assert_true(v == 99);
}

/* report.h: "digits only (surrounding white space allowed), no sign". */
static void
test_parse_uint64_rejects_plus_sign(void **state)
{
	uint64_t v = 99;
	const char *why = NULL;

	(void)state;
	assert_int_equal(dm_parse_uint64("+5", &v, &why), -1);
	assert_true(v == 99);
}

static void
test_parse_epoch(void **state)
{
	int64_t t;
	const char *why, *repair;

	(void)state;
	assert_int_equal(dm_parse_epoch("1700000000", &t, &why, &repair), 0);
	assert_true(t == 1700000000);
	assert_null(repair);
	assert_int_equal(dm_parse_epoch(" 1700000000\n", &t, &why, &repair),
	    0);
	assert_true(t == 1700000000);
	assert_null(repair);

	assert_int_equal(dm_parse_epoch("123.0", &t, &why, &repair), 0);
	assert_true(t == 123);
	assert_string_equal(repair, "float timestamp read as integer");
	assert_int_equal(dm_parse_epoch("123.5", &t, &why, &repair), 0);
	assert_true(t == 123);
	assert_string_equal(repair, "fractional seconds dropped");
	assert_int_equal(dm_parse_epoch("1538204542.999", &t, &why, &repair),
	    0);
	assert_true(t == 1538204542);

	/* Milliseconds: values above 10^11. */
	assert_int_equal(dm_parse_epoch("1700000000123", &t, &why, &repair), 0);
	assert_true(t == 1700000000);
	assert_string_equal(repair, "milliseconds converted to seconds");
	assert_int_equal(dm_parse_epoch("100000000000", &t, &why, &repair), 0);
	assert_true(t == 100000000000LL);
	assert_null(repair);
	assert_int_equal(dm_parse_epoch("100000000001", &t, &why, &repair), 0);
	assert_true(t == 100000000);
	assert_non_null(repair);

	t = 7;
	assert_int_equal(dm_parse_epoch("-5", &t, &why, &repair), -1);
	assert_string_equal(why, "is negative");
	assert_int_equal(dm_parse_epoch("-1700000000.5", &t, &why, &repair),
	    -1);
	assert_string_equal(why, "is negative");
	assert_int_equal(dm_parse_epoch("", &t, &why, &repair), -1);
	assert_string_equal(why, "is not a timestamp");
	assert_int_equal(dm_parse_epoch("abc", &t, &why, &repair), -1);
	assert_string_equal(why, "is not a timestamp");
	assert_int_equal(dm_parse_epoch("12abc", &t, &why, &repair), -1);
	assert_string_equal(why, "is not a timestamp");
	assert_int_equal(dm_parse_epoch(".5", &t, &why, &repair), -1);
	assert_int_equal(dm_parse_epoch("1.5e9", &t, &why, &repair), -1);
	assert_int_equal(dm_parse_epoch("2024-01-01", &t, &why, &repair), -1);
	assert_int_equal(dm_parse_epoch("99999999999999999999", &t, &why,
	    &repair), -1);
	assert_string_equal(why, "is out of range");
	assert_true(t == 7);
}

static void
test_ip_canonical(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(dm_ip_canonical("192.0.2.1", out, sizeof(out)), 0);
	assert_string_equal(out, "192.0.2.1");
	assert_int_equal(dm_ip_canonical(" 192.0.2.1\n", out, sizeof(out)), 0);
	assert_string_equal(out, "192.0.2.1");
	assert_int_equal(dm_ip_canonical("2001:DB8:0:0::1", out, sizeof(out)),
	    0);
	assert_string_equal(out, "2001:db8::1");
	assert_int_equal(dm_ip_canonical("2001:0db8:0000:0000:0000:0000:0000:"
	    "0001", out, sizeof(out)), 0);
	assert_string_equal(out, "2001:db8::1");
	assert_int_equal(dm_ip_canonical("::FFFF:192.0.2.1", out, sizeof(out)),
	    0);
	assert_string_equal(out, "::ffff:192.0.2.1");
	assert_int_equal(dm_ip_canonical("::", out, sizeof(out)), 0);
	assert_string_equal(out, "::");

	assert_int_equal(dm_ip_canonical("X.X.X.X", out, sizeof(out)), -1);
	assert_int_equal(dm_ip_canonical("", out, sizeof(out)), -1);
	assert_int_equal(dm_ip_canonical("   ", out, sizeof(out)), -1);
	assert_int_equal(dm_ip_canonical("192.0.2.256", out, sizeof(out)), -1);
	assert_int_equal(dm_ip_canonical("192.0.2.1/24", out, sizeof(out)),
	    -1);
	assert_int_equal(dm_ip_canonical("192.0.2", out, sizeof(out)), -1);
	assert_int_equal(dm_ip_canonical("2001:db8::1::2", out, sizeof(out)),
	    -1);
	assert_int_equal(dm_ip_canonical("1.2.3.4 5.6.7.8", out, sizeof(out)),
	    -1);
	/* Longer than any address: refused, not cut. */
	assert_int_equal(dm_ip_canonical("1111:2222:3333:4444:5555:6666:7777:"
	    "8888:9999:aaaa:bbbb", out, sizeof(out)), -1);
	/* Output too small. */
	assert_int_equal(dm_ip_canonical("192.0.2.1", out, 4), -1);
}

/* Warnings */

static void
test_warnings_dedupe(void **state)
{
	struct dm_warnings *w;
	char text[DM_MAX_WARNING_TEXT + 64];
	char long_text[2 * DM_MAX_WARNING_TEXT];

	(void)state;
	w = calloc(1, sizeof(*w));
	assert_non_null(w);
	dm_warnings_add(w, 12, "dkim result '%s' normalised", "Pass");
	dm_warnings_add(w, 40, "dkim result '%s' normalised", "Pass");
	dm_warnings_add(w, 41, "dkim result '%s' normalised", "Pass");
	dm_warnings_add(w, 13, "other");
	assert_int_equal(w->count, 2);
	assert_string_equal(w->items[0].text, "dkim result 'Pass' normalised");
	assert_true(w->items[0].count == 3);
	/* The line is the first occurrence's. */
	assert_int_equal(w->items[0].line, 12);
	assert_true(w->items[1].count == 1);
	assert_true(w->dropped == 0);

	dm_warning_format(&w->items[0], text, sizeof(text));
	assert_string_equal(text,
	    "line 12: dkim result 'Pass' normalised (3 times)");
	dm_warning_format(&w->items[1], text, sizeof(text));
	assert_string_equal(text, "line 13: other");
	w->items[1].line = 0;
	dm_warning_format(&w->items[1], text, sizeof(text));
	assert_string_equal(text, "other");

	/* Long sentences are cut to the item's size, still a string. */
	memset(long_text, 'w', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	dm_warnings_add(w, 0, "%s", long_text);
	assert_int_equal(w->count, 3);
	assert_int_equal(strlen(w->items[2].text), DM_MAX_WARNING_TEXT - 1);

	dm_warnings_add(NULL, 1, "nowhere");	/* allowed */
	dm_warnings_clear(w);
	assert_int_equal(w->count, 0);
	assert_true(w->dropped == 0);
	free(w);
}

static void
test_warnings_cap(void **state)
{
	struct dm_warnings *w;
	int i;

	(void)state;
	w = calloc(1, sizeof(*w));
	assert_non_null(w);
	for (i = 0; i < DM_MAX_WARNINGS; i++)
		dm_warnings_add(w, (unsigned long)i + 1, "warning %d", i);
	assert_int_equal(w->count, DM_MAX_WARNINGS);
	assert_true(w->dropped == 0);
	/* Distinct sentences past the cap are only counted. */
	for (i = 0; i < 10; i++)
		dm_warnings_add(w, 1000, "new warning %d", i);
	assert_int_equal(w->count, DM_MAX_WARNINGS);
	assert_true(w->dropped == 10);
	/* A repeat of a kept one still counts on its entry. */
	dm_warnings_add(w, 2000, "warning %d", 5);
	assert_true(w->items[5].count == 2);
	assert_true(w->dropped == 10);
	assert_string_equal(w->items[DM_MAX_WARNINGS - 1].text, "warning 63");
	free(w);
}

/* Libraries loaded on first use */

#define ZLIB_SYMS(X, a) X(a, zlibVersion) X(a, crc32)

struct zlib_api {
	DM_DL_FIELDS(ZLIB_SYMS)
};

static const struct dm_dl_sym zlib_syms[] = {
	DM_DL_SYMS(struct zlib_api, ZLIB_SYMS)
};

static void
test_dl_loads_and_fills(void **state)
{
	struct zlib_api api = { 0 };
	struct dm_dl_lib lib = DM_DL_LIB("libz.so.1", "to test", zlib_syms,
	    &api);
	struct dm_error err;

	(void)state;
	dm_error_clear(&err);
	assert_false(dm_dl_loaded(&lib));
	assert_int_equal(dm_dl_need(&lib, &err), 0);
	assert_true(dm_dl_loaded(&lib));
	assert_non_null(api.zlibVersion);
	assert_non_null(api.crc32);
	/* The very library the test links: same version, same answers. */
	assert_string_equal(api.zlibVersion(), zlibVersion());
	assert_int_equal(api.crc32(0, (const Bytef *)"dmarc", 5),
	    crc32(0, (const Bytef *)"dmarc", 5));
	/* Once loaded, again is free and still succeeds. */
	assert_int_equal(dm_dl_need(&lib, &err), 0);
	assert_int_equal(err.code, DM_E_NONE);
}

static void
test_dl_missing_library(void **state)
{
	struct zlib_api api = { 0 };
	struct dm_dl_lib lib = DM_DL_LIB("libdmarcd-no-such.so.7",
	    "to read nothing", zlib_syms, &api);
	struct dm_error err;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		dm_error_clear(&err);
		assert_int_equal(dm_dl_need(&lib, &err), -1);
		assert_int_equal(err.code, DM_E_UNAVAILABLE);
		assert_int_equal(dm_error_exit_code(err.code), 69);
		assert_non_null(strstr(err.msg, "cannot load "
		    "libdmarcd-no-such.so.7, needed to read nothing: "));
		assert_false(dm_dl_loaded(&lib));
		assert_null(api.zlibVersion);
	}
	/* No error pointer: still -1, no crash. */
	assert_int_equal(dm_dl_need(&lib, NULL), -1);
}

#define BAD_SYMS(X, a) X(a, zlibVersion) X(a, dmarcd_no_such_function)

extern const char *dmarcd_no_such_function(void);

struct bad_api {
	DM_DL_FIELDS(BAD_SYMS)
};

static const struct dm_dl_sym bad_syms[] = {
	DM_DL_SYMS(struct bad_api, BAD_SYMS)
};

static void
test_dl_missing_symbol(void **state)
{
	struct bad_api api = { 0 };
	struct dm_dl_lib lib = DM_DL_LIB("libz.so.1", "to test", bad_syms,
	    &api);
	struct dm_error err;

	(void)state;
	dm_error_clear(&err);
	assert_int_equal(dm_dl_need(&lib, &err), -1);
	assert_int_equal(err.code, DM_E_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "libz.so.1"));
	assert_non_null(strstr(err.msg, "no symbol dmarcd_no_such_function"));
	assert_false(dm_dl_loaded(&lib));
	dm_error_clear(&err);
	assert_int_equal(dm_dl_need(&lib, &err), -1);
	assert_non_null(strstr(err.msg, "dmarcd_no_such_function"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_set),
		cmocka_unit_test(test_error_set_long_message_is_cut),
		cmocka_unit_test(test_error_prefix),
		cmocka_unit_test(test_error_exit_codes),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_grows_and_keeps_content),
		cmocka_unit_test(test_buf_printf_cap),
		cmocka_unit_test(test_arena_cap),
		cmocka_unit_test(test_arena_pointers_stable),
		cmocka_unit_test(test_arena_reset_reuses),
		cmocka_unit_test(test_enum_parse_table),
		cmocka_unit_test(test_enum_parse_edges),
		cmocka_unit_test(test_parse_uint64),
		cmocka_unit_test(test_parse_uint64_rejects_plus_sign),
		cmocka_unit_test(test_parse_epoch),
		cmocka_unit_test(test_ip_canonical),
		cmocka_unit_test(test_warnings_dedupe),
		cmocka_unit_test(test_warnings_cap),
		cmocka_unit_test(test_dl_loads_and_fills),
		cmocka_unit_test(test_dl_missing_library),
		cmocka_unit_test(test_dl_missing_symbol),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
