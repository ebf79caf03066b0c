/*
 * dnsquery_cli.c - rdns_query() from the command line, for
 * tests/integration/dnsquery.py (a test program: not installed, not a
 * dmarcd subcommand).
 *
 *	dnsquery_cli --server ADDR:PORT [--timeout MS] [--deadline MS]
 *	    NAME TYPE
 *
 * TYPE is A, AAAA, MX, TXT, PTR or CNAME (or a number, passed as it is).
 * Prints the answer as one JSON line:
 *	{"status":"ok","truncated":false,"cnames":["..."],"records":[
 *	 {"type":16,"ttl":300,"txt":"...","txt_len":610,"strings":3,
 *	  "longest":255}, {"type":15,"ttl":300,"pref":10,"name":"..."},
 *	 {"type":1,"ttl":300,"addr":"192.0.2.1"}, ...]}
 * Every byte of a text outside printable ASCII is written \u00XX, so
 * that a NUL inside a TXT record shows. Exit 0 once printed; 64 bad
 * usage; 69 no resolver (rdns_new); 70 out of memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collector/rdns.h"

static void
json_text(const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i;

	putchar('"');
	for (i = 0; i < len; i++) {
		if (p[i] == '"' || p[i] == '\\')
			printf("\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			printf("\\u%04x", p[i]);
		else
			putchar(p[i]);
	}
	putchar('"');
}

static int
type_of(const char *text)
{
	static const struct {
		const char *name;
		int type;
	} types[] = {
		{"A", 1}, {"CNAME", 5}, {"PTR", 12}, {"MX", 15}, {"TXT", 16},
		{"AAAA", 28}
	};
	unsigned long v;
	char *end;
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(text, types[i].name) == 0)
			return types[i].type;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v > 65535)
		return -1;
	return (int)v;
}

static int
ms_of(const char *text, unsigned *ms)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v == 0 ||
	    v > 600000)
		return -1;
	*ms = (unsigned)v;
	return 0;
}

static int
usage(void)
{
	fprintf(stderr, "usage: dnsquery_cli --server ADDR:PORT "
	    "[--timeout MS] [--deadline MS] NAME TYPE\n");
	return 64;
}

int
main(int argc, char **argv)
{
	struct rdns_options opt;
	struct rdns_answer a;
	struct dm_error err;
	struct rdns *r = NULL;
	unsigned deadline_ms = 10000;
	size_t i;
	int argi = 1, type;

	memset(&opt, 0, sizeof(opt));
	opt.timeout_ms = 3000;
	while (argi + 1 < argc && strncmp(argv[argi], "--", 2) == 0) {
		if (strcmp(argv[argi], "--server") == 0)
			opt.servers = argv[argi + 1];
		else if (strcmp(argv[argi], "--timeout") == 0) {
			if (ms_of(argv[argi + 1], &opt.timeout_ms) != 0)
				return usage();
		} else if (strcmp(argv[argi], "--deadline") == 0) {
			if (ms_of(argv[argi + 1], &deadline_ms) != 0)
				return usage();
		} else
			return usage();
		argi += 2;
	}
	if (argc - argi != 2 || opt.servers == NULL ||
	    (type = type_of(argv[argi + 1])) < 0)
		return usage();
	dm_error_clear(&err);
	if (rdns_new(&r, &opt, &err) != 0) {
		fprintf(stderr, "dnsquery_cli: %s\n", err.msg);
		return 69;
	}
	if (rdns_query(r, argv[argi], type, &a, rdns_now() +
	    deadline_ms / 1000.0, NULL, &err) != 0) {
		fprintf(stderr, "dnsquery_cli: %s\n", err.msg);
		rdns_free(&r);
		return 70;
	}
	printf("{\"status\":\"%s\",\"truncated\":%s,\"cnames\":[",
	    rdns_status_name(a.status), a.truncated ? "true" : "false");
	for (i = 0; i < a.cnames; i++) {
		if (i > 0)
			putchar(',');
		json_text(a.cname[i], strlen(a.cname[i]));
	}
	printf("],\"records\":[");
	for (i = 0; i < a.count; i++) {
		const struct rdns_rr *rr = &a.rr[i];

		printf("%s{\"type\":%d,\"ttl\":%lu", i > 0 ? "," : "",
		    rr->type, (unsigned long)rr->ttl);
		switch (rr->type) {
		case 1:
		case 28:
			printf(",\"addr\":");
			json_text(rr->addr, strlen(rr->addr));
			break;
		case 15:
			printf(",\"pref\":%u", rr->pref);
			/* FALLTHROUGH */
		case 5:
		case 12:
			printf(",\"name\":");
			json_text(rr->name, strlen(rr->name));
			break;
		case 16:
			printf(",\"txt\":");
			json_text(rr->txt, rr->txt_len);
			printf(",\"txt_len\":%zu,\"strings\":%u,"
			    "\"longest\":%zu", rr->txt_len, rr->strings,
			    rr->longest);
			break;
		}
		putchar('}');
	}
	printf("]}\n");
	rdns_answer_free(&a);
	rdns_free(&r);
	return fflush(stdout) == 0 ? 0 : 70;
}
