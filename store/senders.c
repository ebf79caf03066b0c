/*
 * senders.c - the sender map's data files, read and checked.
 *
 * sql/platforms.tsv and sql/sender_rules.tsv are built into dmarcd
 * (sql/embed_senders.sh makes them C strings) and loaded into
 * dmarcd.platforms and dmarcd.sender_rules by store_senders_sync() on
 * every `dmarcd migrate`. This file only reads them: no database here,
 * so that the unit test checks the very text the binary carries.
 *
 * FORMAT: UTF-8 text, one record a line, fields separated by one tab.
 * Lines starting with '#' and empty lines are skipped; the first other
 * line is the header, which must name the fields in order:
 *
 *	platforms.tsv		name kind spf_fix dkim_fix url
 *	sender_rules.tsv	kind suffix platform
 *
 * CHECKS: every field but url is non-empty and has no control character
 * nor surrounding blank; a platform's kind is one of esp, mailbox, crm,
 * helpdesk, marketing, recruiting, survey; its url is empty or https://;
 * a rule's kind is ptr, dkim or spf; its suffix is a lower-case domain
 * name (LDH labels, no leading or trailing dot, two labels or more, 253
 * bytes at most); its platform is a row of platforms.tsv; no platform
 * name twice (case folded), no (kind, suffix) twice. No CR (a file saved
 * with CRLF), no NUL, no invalid UTF-8.
 *
 * DIAGNOSTICS: -1 with DM_E_DATA naming the file, the line and what is
 * wrong ("sql/sender_rules.tsv line 12: suffix \"Foo.com\" is not a
 * lower-case domain name"); DM_E_LIMIT past STORE_SENDERS_MAX_* rows;
 * DM_E_NOMEM.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

#define LINE_MAX_BYTES	4096	/* one record */
#define NAME_MAX_BYTES	64	/* a platform's name */
#define FIX_MAX_BYTES	1000	/* spf_fix, dkim_fix */
#define URL_MAX_BYTES	512

static const char *const platform_kinds[] = {
	"esp", "mailbox", "crm", "helpdesk", "marketing", "recruiting",
	"survey", NULL
};
static const char *const rule_kinds[] = { "ptr", "dkim", "spf", NULL };

/* One file being read: its text (a copy, cut in place) and position. */
struct reader {
	const char *file;	/* for messages */
	char *p;		/* the next line */
	unsigned line;		/* number of the line last returned */
};

static int
one_of(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* utf8_check - 0 if s is valid UTF-8 (no overlong form, no surrogate). */
static int
utf8_check(const unsigned char *s, size_t *bad_r)
{
	const unsigned char *start = s;
	unsigned c, n, i, cp, min;

	while ((c = *s) != '\0') {
		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07, min = 0x10000;
		else
			goto bad;
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		s += n + 1;
	}
	return 0;
bad:
	*bad_r = (size_t)(s - start);
	return -1;
}

/* line_of - the number of the line holding byte offset off of text. */
static unsigned
line_of(const char *text, size_t off)
{
	unsigned line = 1;

	for (size_t i = 0; i < off; i++)
		if (text[i] == '\n')
			line++;
	return line;
}

/*
 * next_record - the next line that is neither empty nor a comment, cut
 * into at most max fields; the number of fields in *n_r. 0 with a
 * record, 1 at the end, -1 with err.
 */
static int
next_record(struct reader *r, char **fields, size_t max, size_t *n_r,
    struct dm_error *err)
{
	char *line, *end, *f;
	size_t n;

	for (;;) {
		if (r->p == NULL || *r->p == '\0')
			return 1;
		line = r->p;
		end = strchr(line, '\n');
		if (end != NULL) {
			*end = '\0';
			r->p = end + 1;
		} else
			r->p = NULL;
		r->line++;
		if (strlen(line) > LINE_MAX_BYTES)
			return dm_error_set(err, DM_E_DATA, "%s line %u: "
			    "longer than %d bytes", r->file, r->line,
			    LINE_MAX_BYTES);
		if (strchr(line, '\r') != NULL)
			return dm_error_set(err, DM_E_DATA, "%s line %u: a "
			    "carriage return (save the file with LF line "
			    "ends)", r->file, r->line);
		if (*line != '\0' && *line != '#')
			break;
	}
	n = 0;
	for (f = line;; f = end + 1) {
		end = strchr(f, '\t');
		if (n == max)
			return dm_error_set(err, DM_E_DATA, "%s line %u: more "
			    "than %zu tab-separated fields", r->file, r->line,
			    max);
		fields[n++] = f;
		if (end == NULL)
			break;
		*end = '\0';
	}
	*n_r = n;
	return 0;
}

/* check_text - a field: length bounds, no control, no surrounding blank. */
static int
check_text(const struct reader *r, const char *what, const char *s,
    size_t min, size_t max, struct dm_error *err)
{
	size_t len = strlen(s);

	if (len < min)
		return dm_error_set(err, DM_E_DATA, "%s line %u: %s is empty",
		    r->file, r->line, what);
	if (len > max)
		return dm_error_set(err, DM_E_DATA, "%s line %u: %s is longer "
		    "than %zu bytes", r->file, r->line, what, max);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return dm_error_set(err, DM_E_DATA, "%s line %u: %s "
			    "holds a control character", r->file, r->line,
			    what);
	if (len > 0 && (s[0] == ' ' || s[len - 1] == ' '))
		return dm_error_set(err, DM_E_DATA, "%s line %u: %s begins or "
		    "ends with a space", r->file, r->line, what);
	return 0;
}

int
store_senders_suffix_ok(const char *s)
{
	size_t len = strlen(s), label = 0, labels = 1;
	const char *c;

	if (len == 0 || len > 253 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (c = s; *c != '\0'; c++) {
		if (*c == '.') {
			if (label == 0 || c[-1] == '-')
				return 0;
			label = 0;
			labels++;
			continue;
		}
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		    *c == '-'))
			return 0;
		if (*c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return c[-1] != '-' && labels >= 2;
}

static int
check_header(struct reader *r, const char *const *want, size_t count,
    const char *names, struct dm_error *err)
{
	char *fields[8];
	size_t n, i;
	int rc;

	rc = next_record(r, fields, 8, &n, err);
	if (rc < 0)
		return -1;
	if (rc == 1)
		return dm_error_set(err, DM_E_DATA, "%s: no header line",
		    r->file);
	for (i = 0; i < count; i++)
		if (n != count || strcmp(fields[i], want[i]) != 0)
			break;
	if (i < count)
		return dm_error_set(err, DM_E_DATA, "%s line %u: not the "
		    "header line (the field names %s, tab-separated)", r->file,
		    r->line, names);
	return 0;
}

static int
read_platforms(struct store_senders *m, struct reader *r,
    struct dm_error *err)
{
	static const char *const header[] = { "name", "kind", "spf_fix",
		"dkim_fix", "url" };
	char *f[5];
	size_t n, i;
	int rc;

	if (check_header(r, header, 5, "name, kind, spf_fix, dkim_fix, url",
	    err) != 0)
		return -1;
	while ((rc = next_record(r, f, 5, &n, err)) == 0) {
		struct store_sender_platform *p;

		if (n != 5)
			return dm_error_set(err, DM_E_DATA, "%s line %u: %zu "
			    "fields, expected 5 (name, kind, spf_fix, "
			    "dkim_fix, url)", r->file, r->line, n);
		if (check_text(r, "name", f[0], 1, NAME_MAX_BYTES, err) ||
		    check_text(r, "spf_fix", f[2], 1, FIX_MAX_BYTES, err) ||
		    check_text(r, "dkim_fix", f[3], 1, FIX_MAX_BYTES, err) ||
		    check_text(r, "url", f[4], 0, URL_MAX_BYTES, err))
			return -1;
		if (!one_of(f[1], platform_kinds))
			return dm_error_set(err, DM_E_DATA, "%s line %u: kind "
			    "\"%.32s\" is none of esp, mailbox, crm, helpdesk, "
			    "marketing, recruiting, survey", r->file, r->line,
			    f[1]);
		if (f[4][0] != '\0' && (strncmp(f[4], "https://", 8) != 0 ||
		    f[4][8] == '\0' || strchr(f[4], ' ') != NULL))
			return dm_error_set(err, DM_E_DATA, "%s line %u: url "
			    "is not an https:// address", r->file, r->line);
		for (i = 0; i < m->platform_count; i++)
			if (strcasecmp(m->platforms[i].name, f[0]) == 0)
				return dm_error_set(err, DM_E_DATA, "%s line "
				    "%u: platform \"%s\" named twice",
				    r->file, r->line, f[0]);
		if (m->platform_count == STORE_SENDERS_MAX_PLATFORMS)
			return dm_error_set(err, DM_E_LIMIT, "%s: more than %d "
			    "platforms", r->file, STORE_SENDERS_MAX_PLATFORMS);
		p = &m->platforms[m->platform_count++];
		p->name = f[0];
		p->kind = f[1];
		p->spf_fix = f[2];
		p->dkim_fix = f[3];
		p->url = f[4];
	}
	return rc < 0 ? -1 : 0;
}

static int
read_rules(struct store_senders *m, struct reader *r, struct dm_error *err)
{
	static const char *const header[] = { "kind", "suffix", "platform" };
	char *f[3];
	size_t n, i;
	int rc, known;

	if (check_header(r, header, 3, "kind, suffix, platform", err) != 0)
		return -1;
	while ((rc = next_record(r, f, 3, &n, err)) == 0) {
		struct store_sender_rule *x;

		if (n != 3)
			return dm_error_set(err, DM_E_DATA, "%s line %u: %zu "
			    "fields, expected 3 (kind, suffix, platform)",
			    r->file, r->line, n);
		if (!one_of(f[0], rule_kinds))
			return dm_error_set(err, DM_E_DATA, "%s line %u: kind "
			    "\"%.32s\" is none of ptr, dkim, spf", r->file,
			    r->line, f[0]);
		if (!store_senders_suffix_ok(f[1]))
			return dm_error_set(err, DM_E_DATA, "%s line %u: "
			    "suffix \"%.64s\" is not a lower-case domain name "
			    "of two labels or more without a leading dot",
			    r->file, r->line, f[1]);
		known = 0;
		for (i = 0; i < m->platform_count; i++)
			if (strcmp(m->platforms[i].name, f[2]) == 0)
				known = 1;
		if (!known)
			return dm_error_set(err, DM_E_DATA, "%s line %u: "
			    "platform \"%.64s\" is not in the platforms file",
			    r->file, r->line, f[2]);
		for (i = 0; i < m->rule_count; i++)
			if (strcmp(m->rules[i].kind, f[0]) == 0 &&
			    strcmp(m->rules[i].suffix, f[1]) == 0)
				return dm_error_set(err, DM_E_DATA, "%s line "
				    "%u: rule %s %s given twice", r->file,
				    r->line, f[0], f[1]);
		if (m->rule_count == STORE_SENDERS_MAX_RULES)
			return dm_error_set(err, DM_E_LIMIT, "%s: more than %d "
			    "rules", r->file, STORE_SENDERS_MAX_RULES);
		x = &m->rules[m->rule_count++];
		x->kind = f[0];
		x->suffix = f[1];
		x->platform = f[2];
	}
	return rc < 0 ? -1 : 0;
}

/* copy_checked - a copy of text once it is known to be UTF-8. */
static char *
copy_checked(const char *text, const char *file, struct dm_error *err)
{
	size_t bad;
	char *copy;

	if (utf8_check((const unsigned char *)text, &bad) != 0) {
		dm_error_set(err, DM_E_DATA, "%s line %u: invalid UTF-8", file,
		    line_of(text, bad));
		return NULL;
	}
	copy = strdup(text);
	if (copy == NULL)
		dm_error_set(err, DM_E_NOMEM, "out of memory");
	return copy;
}

int
store_senders_parse(struct store_senders **map_r, const char *platforms_tsv,
    const char *platforms_file, const char *rules_tsv, const char *rules_file,
    struct dm_error *err)
{
	struct store_senders *m;
	struct reader r;

	*map_r = NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	m->platforms = calloc(STORE_SENDERS_MAX_PLATFORMS,
	    sizeof(*m->platforms));
	m->rules = calloc(STORE_SENDERS_MAX_RULES, sizeof(*m->rules));
	if (m->platforms == NULL || m->rules == NULL) {
		store_senders_free(&m);
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	}
	if ((m->platforms_text = copy_checked(platforms_tsv, platforms_file,
	    err)) == NULL ||
	    (m->rules_text = copy_checked(rules_tsv, rules_file, err)) ==
	    NULL) {
		store_senders_free(&m);
		return -1;
	}
	r = (struct reader){ platforms_file, m->platforms_text, 0 };
	if (read_platforms(m, &r, err) != 0) {
		store_senders_free(&m);
		return -1;
	}
	r = (struct reader){ rules_file, m->rules_text, 0 };
	if (read_rules(m, &r, err) != 0) {
		store_senders_free(&m);
		return -1;
	}
	*map_r = m;
	return 0;
}

int
store_senders_builtin(struct store_senders **map_r, struct dm_error *err)
{
	return store_senders_parse(map_r, store_senders_platforms_tsv,
	    "sql/platforms.tsv", store_senders_rules_tsv,
	    "sql/sender_rules.tsv", err);
}

void
store_senders_free(struct store_senders **map)
{
	if (*map == NULL)
		return;
	free((*map)->platforms);
	free((*map)->rules);
	free((*map)->platforms_text);
	free((*map)->rules_text);
	free(*map);
	*map = NULL;
}
