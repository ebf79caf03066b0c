/*
 * fuzz_api.c - libFuzzer target for what the API parses of a request
 * before any SQL: percent-unescaping, the path's segments, every query
 * parameter grammar (times, counts, cursors, domains), the printable
 * copy for error messages, and the Authorization header (Bearer, and
 * Basic for the status page). api/params.c and api/token.c, no HTTP.
 *
 * The input is "PATH[?QUERY]\nAUTHORIZATION": PATH is unescaped and
 * split as server.c does, each segment and each QUERY value (split at
 * '&' and '=') goes through every parser. Besides ASan and UBSan, the
 * results are checked against the grammar (api.h): a difference aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW	INT64_C(1767225600)	/* 2026-01-01T00:00:00Z */
#define FUZZ_MAX_INPUT	(16 * 1024)

static size_t fuzz_sink;

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_api: %s\n", what);
		abort();
	}
}

/* One value through every parameter parser. */
static void
parse_value(const char *value)
{
	char domain[256], printable[80];
	uint64_t count;
	int64_t t, cursor_t, cursor_id;
	size_t i;

	if (api_parse_time(value, FUZZ_NOW, &t) == 0)
		check(t >= INT64_C(0) && t <= INT64_C(253402300799),
		    "api_parse_time outside 1970..9999");
	if (api_parse_count(value, 1, API_LIMIT_MAX, &count) == 0)
		check(count >= 1 && count <= API_LIMIT_MAX,
		    "api_parse_count outside its range");
	/* routes.c's report id */
	if (api_parse_count(value, 1, INT64_MAX, &count) == 0)
		check(count >= 1 && count <= INT64_MAX,
		    "api_parse_count outside 1..INT64_MAX");
	if (api_parse_domain(value, domain, sizeof(domain)) == 0) {
		check(strlen(domain) == strlen(value) && strlen(domain) <= 253,
		    "api_parse_domain changed the length");
		for (i = 0; domain[i] != '\0'; i++)
			check((domain[i] >= 'a' && domain[i] <= 'z') ||
			    (domain[i] >= '0' && domain[i] <= '9') ||
			    strchr("-_.", domain[i]) != NULL,
			    "api_parse_domain let a bad character through");
	}
	if (api_parse_cursor(value, &cursor_t, &cursor_id) == 0)
		check(cursor_id >= 0, "api_parse_cursor: a negative id");
	api_printable(value, 64, printable, sizeof(printable));
	for (i = 0; printable[i] != '\0'; i++)
		check(printable[i] >= 0x20 && printable[i] < 0x7f,
		    "api_printable let a control byte through");
	fuzz_sink += i;
}

/* QUERY: name=value&..., each value unescaped (as libmicrohttpd does). */
static void
parse_query(char *query)
{
	char *item, *save = NULL, *eq;

	for (item = strtok_r(query, "&", &save); item != NULL;
	    item = strtok_r(NULL, "&", &save)) {
		eq = strchr(item, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		api_unescape(eq + 1);
		parse_value(eq + 1);
	}
}

static void
parse_authorization(const char *h, unsigned mode)
{
	/* routes.c's authorize_page: user ":" password, token up to 512 */
	char password[256 + 1 + 512 + 1];
	const char *token, *p;
	size_t len, size;

	token = api_bearer(h, &len);
	if (token != NULL) {
		check(len <= strlen(token),
		    "api_bearer: a length past the end");
		check(len == 0 || (token[0] != ' ' && token[len - 1] != ' '),
		    "api_bearer kept a space");
		return;
	}
	if (strncmp(h, "Basic ", 6) != 0)
		return;
	for (p = h + 6; *p == ' '; p++)
		;
	/* A small out now and then, to reach "larger than out". */
	size = mode & 1 ? mode % 16 : sizeof(password);
	if (api_basic_password(p, password, size, &len) == 0) {
		check(size > 0 && len < size && password[len] == '\0',
		    "api_basic_password: no NUL after the password");
		check(memchr(password, '\0', len) == NULL,
		    "api_basic_password: a NUL byte in the password");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_req req;
	char *text, *nl, *query, *path;
	size_t i, before;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';	/* a NUL inside ends the input early */

	nl = strchr(text, '\n');
	if (nl != NULL) {
		*nl = '\0';
		parse_authorization(nl + 1, (unsigned)data[0]);
	}
	path = text;
	query = strchr(path, '?');
	if (query != NULL)
		*query++ = '\0';

	before = strlen(path);
	check(api_unescape(path) == strlen(path) && strlen(path) <= before,
	    "api_unescape: a wrong length");
	memset(&req, 0, sizeof(req));
	if (strlen(path) <= API_PATH_MAX &&
	    api_split_path(&req, path) == 0) {
		check(req.nseg <= API_MAX_SEGMENTS, "too many segments");
		for (i = 0; i < req.nseg; i++) {
			check(req.seg[i][0] != '\0' &&
			    strchr(req.seg[i], '/') == NULL,
			    "api_split_path: an empty segment or a '/'");
			parse_value(req.seg[i]);
		}
	}
	if (query != NULL)
		parse_query(query);
	free(text);
	return 0;
}
