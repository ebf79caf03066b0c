/*
 * rollup.c - a big report's daily rollup, added up while it is parsed.
 *
 * dmarcd.rollup_add() works a report's rollup out of its stored records,
 * reading them all back; for a report of a million records that costs as
 * much as copying them. Here the records are added up as they pass, by
 * the same rule (dmarcd.report_days(): a count n goes to a UTC day as
 * floor(n * hi / total) - floor(n * lo / total)), into a table of bounded
 * size; what does not fit goes to a temporary file. At the report's end
 * the sums go in with one upsert per slice, lower-casing header_from and
 * merging equal keys on the server, exactly as rollup_add() does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/align.h"
#include "common/arena.h"
#include "store/pq.h"
#include "store/store_private.h"

#define ROLLUP_SLOTS	32768	/* hash slots (power of two) */
#define ROLLUP_KEYS	16384	/* entries held before spilling */
#define ROLLUP_TEXT	(1024 * 1024)	/* their strings */
#define ROLLUP_SLICE	4000	/* rows per upsert */
#define DAY		86400

struct rollup_entry {
	uint32_t hash;
	int day;			/* index into the report's days */
	const char *ip, *hf;		/* NULL: SQL NULL */
	unsigned char da, sa;		/* the receiver's verdict */
	const char *disp;		/* static: an enum name or "" */
	int auth;			/* dmarcd's (common/align.h) */
	const char *dkd, *spd;		/* its DKIM and SPF domains */
	const char *ovr;		/* static: a reason name or "" */
	unsigned __int128 n;
};

struct store_rollup {
	/* the report's days: [lo, hi) seconds from begin, of total */
	int64_t lo[STORE_ROLLUP_DAYS], hi[STORE_ROLLUP_DAYS], total;
	char date[STORE_ROLLUP_DAYS][16];	/* YYYY-MM-DD */
	int ndays;
	struct rollup_entry *entries;
	size_t count;
	int *slots;			/* entry index + 1; 0: free */
	struct dm_arena text;
	FILE *spill;			/* entries that did not fit */
	int failed;
};

/* v in decimal into buf[48]; returns where the digits start. */
static const char *
u128_text(unsigned __int128 v, char buf[48])
{
	int k = 47;

	buf[k] = '\0';
	do {
		buf[--k] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v > 0);
	return buf + k;
}

static uint32_t
mix(uint32_t h, const char *s)
{
	if (s == NULL)
		return h * 16777619U ^ 0xff;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619U;
	return h ^ 0xfe;
}

static int
same(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

struct store_rollup *
store_rollup_new(void)
{
	struct store_rollup *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->entries = malloc(ROLLUP_KEYS * sizeof(*r->entries));
	r->slots = calloc(ROLLUP_SLOTS, sizeof(*r->slots));
	if (r->entries == NULL || r->slots == NULL) {
		store_rollup_free(r);
		return NULL;
	}
	dm_arena_init(&r->text, ROLLUP_TEXT + 64 * 1024);
	return r;
}

void
store_rollup_free(struct store_rollup *r)
{
	if (r == NULL)
		return;
	if (r->spill != NULL)
		fclose(r->spill);
	dm_arena_free(&r->text);
	free(r->entries);
	free(r->slots);
	free(r);
}

static void
clear(struct store_rollup *r)
{
	r->count = 0;
	memset(r->slots, 0, ROLLUP_SLOTS * sizeof(*r->slots));
	dm_arena_reset(&r->text);
}

/* A report begins: the sums start from nothing. */
void
store_rollup_begin(struct store_rollup *r, int64_t begin, int64_t end)
{
	clear(r);
	if (r->spill != NULL) {
		fclose(r->spill);
		r->spill = NULL;
	}
	r->failed = 0;
	store_rollup_days(r, begin, end);
}

/* The days of [begin, end), as dmarcd.report_days() has them. */
void
store_rollup_days(struct store_rollup *r, int64_t begin, int64_t end)
{
	int64_t b = begin, e = end, d;

	if (e - b <= 0 || e - b > 62 * (int64_t)DAY)
		e = b + 1;
	r->total = e - b;
	d = b - (((b % DAY) + DAY) % DAY);
	for (r->ndays = 0; d < e && r->ndays < STORE_ROLLUP_DAYS; d += DAY) {
		time_t t = (time_t)d;
		struct tm tm;

		r->lo[r->ndays] = (d > b ? d : b) - b;
		r->hi[r->ndays] = (d + DAY < e ? d + DAY : e) - b;
		gmtime_r(&t, &tm);
		strftime(r->date[r->ndays], sizeof(r->date[0]), "%Y-%m-%d",
		    &tm);
		r->ndays++;
	}
}

/* The messages of a count that fall on day i. */
static unsigned __int128
day_part(const struct store_rollup *r, int i, uint64_t count)
{
	unsigned __int128 n = count;

	return n * (uint64_t)r->hi[i] / (uint64_t)r->total -
	    n * (uint64_t)r->lo[i] / (uint64_t)r->total;
}

/*
 * store_rollup_lines - a record's rollup rows as COPY text lines appended
 * to out, one per day it counts on (the days of store_rollup_days):
 * domain, day, source_ip, header_from (as given: lower-cased on the
 * server, like rollup_add()), dkim and spf aligned, disposition,
 * auth, dkim_domain, spf_domain, override, messages. For small reports, whose rows are merged at the batch's end
 * (ingest.c, flush_batch).
 */
int
store_rollup_lines(const struct store_rollup *r, const char *domain,
    const struct dm_record *rec, const struct dm_alignment *a, struct dm_buf *out)
{
	const char *disp = dm_enum_name(DM_ENUM_DISPOSITION, rec->disposition);
	int i, rc = 0;

	for (i = 0; i < r->ndays; i++) {
		unsigned __int128 part = day_part(r, i, rec->count);
		char num[48];

		if (part == 0)
			continue;
		rc |= store_copy_escape(out, domain);
		rc |= dm_buf_printf(out, "\t%s\t", r->date[i]);
		rc |= store_copy_escape(out, rec->source_ip);
		rc |= dm_buf_append(out, "\t", 1);
		rc |= store_copy_escape(out, rec->header_from);
		rc |= dm_buf_printf(out, "\t%c\t%c\t",
		    rec->dkim == DM_VERDICT_PASS ? 't' : 'f',
		    rec->spf == DM_VERDICT_PASS ? 't' : 'f');
		rc |= store_copy_escape(out, disp != NULL ? disp : "");
		rc |= dm_buf_printf(out, "\t%u\t", a->bits);
		rc |= store_copy_escape(out, a->dkim_domain);
		rc |= dm_buf_append(out, "\t", 1);
		rc |= store_copy_escape(out, a->spf_domain);
		rc |= dm_buf_append(out, "\t", 1);
		rc |= store_copy_escape(out, a->override);
		rc |= dm_buf_printf(out, "\t%s\n", u128_text(part, num));
	}
	return rc ? -1 : 0;
}

/*
 * The entries to the spill file, each as SPILL_FIELDS NUL-terminated
 * fields: day, ip, header_from (both 'N' for NULL, else 'V' and the text),
 * dkim and spf aligned, disposition, auth, dkim_domain, spf_domain,
 * override, messages.
 */
static int
spill(struct store_rollup *r)
{
	size_t i;

	if (r->spill == NULL && (r->spill = tmpfile()) == NULL)
		return -1;
	for (i = 0; i < r->count; i++) {
		const struct rollup_entry *x = &r->entries[i];
		char num[48];

		if (fprintf(r->spill, "%d%c%c%s%c%c%s%c%d%c%d%c%s%c%d%c%s%c%s%c"
		    "%s%c%s%c", x->day, 0, x->ip != NULL ? 'V' : 'N',
		    x->ip != NULL ? x->ip : "", 0, x->hf != NULL ? 'V' : 'N',
		    x->hf != NULL ? x->hf : "", 0, x->da, 0, x->sa, 0, x->disp,
		    0, x->auth, 0, x->dkd, 0, x->spd, 0, x->ovr, 0,
		    u128_text(x->n, num), 0) < 0)
			return -1;
	}
	clear(r);
	return 0;
}

static char *
keep(struct store_rollup *r, const char *s)
{
	return s == NULL ? NULL : dm_arena_strndup(&r->text, s, strlen(s));
}

static int
add(struct store_rollup *r, int day, const char *ip, const char *hf,
    int da, int sa, const char *disp, const struct dm_alignment *a,
    unsigned __int128 n)
{
	uint32_t h = mix(mix(mix(mix(mix(2166136261U ^ (uint32_t)day, ip), hf),
	    disp), a->dkim_domain), a->spf_domain) ^
	    (uint32_t)(da << 1 | sa) ^ (uint32_t)a->bits << 2;
	size_t slot = h & (ROLLUP_SLOTS - 1);
	struct rollup_entry *x;

	for (; r->slots[slot] != 0; slot = (slot + 1) & (ROLLUP_SLOTS - 1)) {
		x = &r->entries[r->slots[slot] - 1];
		if (x->hash == h && x->day == day && x->da == da &&
		    x->sa == sa && x->disp == disp && same(x->ip, ip) &&
		    same(x->hf, hf) && x->auth == (int)a->bits &&
		    x->ovr == a->override &&
		    strcmp(x->dkd, a->dkim_domain) == 0 &&
		    strcmp(x->spd, a->spf_domain) == 0) {
			x->n += n;
			return 0;
		}
	}
	if (r->count == ROLLUP_KEYS ||
	    r->text.used > ROLLUP_TEXT) {
		if (spill(r) != 0)
			return -1;
		return add(r, day, ip, hf, da, sa, disp, a, n);
	}
	x = &r->entries[r->count];
	x->hash = h;
	x->day = day;
	x->ip = keep(r, ip);
	x->hf = keep(r, hf);
	x->dkd = keep(r, a->dkim_domain);
	x->spd = keep(r, a->spf_domain);
	if ((ip != NULL && x->ip == NULL) || (hf != NULL && x->hf == NULL) ||
	    x->dkd == NULL || x->spd == NULL)
		return -1;
	x->auth = (int)a->bits;
	x->ovr = a->override;
	x->da = (unsigned char)da;
	x->sa = (unsigned char)sa;
	x->disp = disp;
	x->n = n;
	r->slots[slot] = (int)++r->count;
	return 0;
}

void
store_rollup_record(struct store_rollup *r, const struct dm_record *rec,
    const struct dm_alignment *a)
{
	const char *disp = dm_enum_name(DM_ENUM_DISPOSITION, rec->disposition);
	int i;

	if (r->failed)
		return;
	for (i = 0; i < r->ndays; i++) {
		unsigned __int128 part = day_part(r, i, rec->count);

		if (part == 0)
			continue;
		if (add(r, i, rec->source_ip, rec->header_from,
		    rec->dkim == DM_VERDICT_PASS, rec->spf == DM_VERDICT_PASS,
		    disp != NULL ? disp : "", a, part) != 0) {
			r->failed = 1;
			return;
		}
	}
}

/* ---- to the server ---- */

#define SLICE_COLS	11	/* and SPILL_FIELDS */

struct slice {
	struct dm_buf day, ip, hf, da, sa, disp, auth, dkd, spd, ovr, n;
	size_t rows;
};

static int
elem(struct dm_buf *b, const char *s, size_t rows)
{
	int rc = dm_buf_append(b, rows ? "," : "{", 1);

	if (s == NULL)
		return rc | dm_buf_append(b, "NULL", 4);
	rc |= dm_buf_append(b, "\"", 1);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			rc |= dm_buf_append(b, "\\", 1);
		rc |= dm_buf_append(b, s, 1);
	}
	return rc | dm_buf_append(b, "\"", 1);
}

static int
send_slice(struct store *s, struct slice *x, const char *domain,
    struct dm_error *err)
{
	struct dm_buf *all[] = { &x->day, &x->ip, &x->hf, &x->da, &x->sa,
	    &x->disp, &x->auth, &x->dkd, &x->spd, &x->ovr, &x->n };
	const char *p[SLICE_COLS + 1];
	PGresult *res;
	size_t i;

	if (x->rows == 0)
		return 0;
	p[0] = domain;
	for (i = 0; i < SLICE_COLS; i++) {
		if (dm_buf_append(all[i], "}", 1) != 0)
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		p[i + 1] = dm_buf_cstr(all[i]);
	}
	res = store_pq_params(s->conn, "INSERT INTO dmarcd.rollup_daily AS t "
	    "(domain, day, source_ip, header_from, dkim_aligned, spf_aligned, "
	    "disposition, auth, dkim_domain, spf_domain, override, messages) "
	    "SELECT $1, x.day, x.ip, coalesce(lower(x.hf), ''), x.da, x.sa, "
	    "x.disp, x.auth, x.dkd, x.spd, x.ovr, sum(x.n) FROM "
	    "unnest($2::date[], $3::inet[], $4::text[], $5::boolean[], "
	    "$6::boolean[], $7::text[], $8::smallint[], $9::text[], "
	    "$10::text[], $11::text[], $12::numeric[]) AS x(day, ip, hf, da, "
	    "sa, disp, auth, dkd, spd, ovr, n) "
	    "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 HAVING sum(x.n) <> 0 "
	    "ON CONFLICT ON CONSTRAINT rollup_daily_key DO UPDATE SET "
	    "messages = t.messages + excluded.messages", SLICE_COLS + 1, p,
	    err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
	for (i = 0; i < SLICE_COLS; i++)
		dm_buf_reset(all[i]);
	x->rows = 0;
	return 0;
}

static int
slice_add(struct store *s, struct store_rollup *r, struct slice *x,
    const char *domain, int day, const char *ip, const char *hf, int da,
    int sa, const char *disp, int auth, const char *dkd, const char *spd,
    const char *ovr, const char *n, struct dm_error *err)
{
	char authtext[16];
	int rc = 0;

	snprintf(authtext, sizeof(authtext), "%d", auth);
	rc |= elem(&x->day, r->date[day], x->rows);
	rc |= elem(&x->ip, ip, x->rows);
	rc |= elem(&x->hf, hf, x->rows);
	rc |= elem(&x->da, da ? "t" : "f", x->rows);
	rc |= elem(&x->sa, sa ? "t" : "f", x->rows);
	rc |= elem(&x->disp, disp, x->rows);
	rc |= elem(&x->auth, authtext, x->rows);
	rc |= elem(&x->dkd, dkd, x->rows);
	rc |= elem(&x->spd, spd, x->rows);
	rc |= elem(&x->ovr, ovr, x->rows);
	rc |= elem(&x->n, n, x->rows);
	if (rc != 0)
		return dm_error_set(err, DM_E_NOMEM, "out of memory");
	if (++x->rows == ROLLUP_SLICE)
		return send_slice(s, x, domain, err);
	return 0;
}

/*
 * store_rollup_flush - add the report's sums to dmarcd.rollup_daily under
 * domain. -1 with err (also when adding up failed on the way).
 */
int
store_rollup_flush(struct store *s, struct store_rollup *r,
    const char *domain, struct dm_error *err)
{
	struct slice x;
	struct dm_buf *all[] = { &x.day, &x.ip, &x.hf, &x.da, &x.sa, &x.disp,
	    &x.auth, &x.dkd, &x.spd, &x.ovr, &x.n };
	struct dm_buf fields;
	char *line = NULL;
	size_t cap = 0, i;
	ssize_t len;
	int rc = -1;

	if (r->failed)
		return dm_error_set(err, DM_E_IO, "cannot add up the daily "
		    "rollup: %s", strerror(errno));
	memset(&x, 0, sizeof(x));
	dm_buf_init(&fields, SLICE_COLS * (size_t)DM_MAX_TEXT + 256);
	for (i = 0; i < SLICE_COLS; i++)
		dm_buf_init(all[i], (size_t)ROLLUP_SLICE * (DM_MAX_TEXT + 8));
	if (r->spill != NULL) {
		if (fflush(r->spill) != 0 || fseeko(r->spill, 0, SEEK_SET) != 0)
			goto io;
		for (;;) {
			char *f[SLICE_COLS];
			size_t at[SLICE_COLS], used = 0;
			int k;

			for (k = 0; k < SLICE_COLS; k++) {
				len = getdelim(&line, &cap, '\0', r->spill);
				if (len <= 0)
					break;
				/* Fields are copied into one buffer: getdelim
				 * reuses line. */
				if (dm_buf_append(&fields, line, (size_t)len) != 0)
					goto nomem;
				at[k] = used;
				used += (size_t)len;
			}
			if (k == 0 && len <= 0)
				break;
			if (k < SLICE_COLS)
				goto io;
			for (k = 0; k < SLICE_COLS; k++)
				f[k] = fields.data + at[k];
			if (slice_add(s, r, &x, domain, atoi(f[0]),
			    f[1][0] == 'V' ? f[1] + 1 : NULL,
			    f[2][0] == 'V' ? f[2] + 1 : NULL, atoi(f[3]),
			    atoi(f[4]), f[5], atoi(f[6]), f[7], f[8], f[9],
			    f[10], err) != 0)
				goto out;
			dm_buf_reset(&fields);
		}
		if (ferror(r->spill))
			goto io;
	}
	for (i = 0; i < r->count; i++) {
		const struct rollup_entry *e = &r->entries[i];
		char num[48];

		if (slice_add(s, r, &x, domain, e->day, e->ip, e->hf, e->da,
		    e->sa, e->disp, e->auth, e->dkd, e->spd, e->ovr,
		    u128_text(e->n, num), err) != 0)
			goto out;
	}
	if (send_slice(s, &x, domain, err) != 0)
		goto out;
	rc = 0;
	goto out;
nomem:
	dm_error_set(err, DM_E_NOMEM, "out of memory");
	goto out;
io:
	dm_error_set(err, DM_E_IO, "cannot read the daily rollup back from "
	    "a temporary file");
out:
	free(line);
	dm_buf_free(&fields);
	for (i = 0; i < SLICE_COLS; i++)
		dm_buf_free(all[i]);
	clear(r);
	if (r->spill != NULL) {
		fclose(r->spill);
		r->spill = NULL;
	}
	return rc;
}
