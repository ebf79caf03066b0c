/*
 * rollup.c - a big report's daily rollup, added up while it is parsed.
 *
 * dmarcd.rollup_add() works a report's rollup out of its stored records,
 * reading them all back; for a report of a million records that costs as
 * much as copying them. Here the records are added up as they pass, by
 * the same rule (dmarcd.report_days(): a count n goes to a UTC day as
 * floor(n * hi / total) - floor(n * lo / total)), into a table of bounded
 * size. When it is full its entries go to SPILL_PARTS temporary files by
 * their hash (grace hash aggregation): at the report's end each file is
 * read back into the table, which adds its equal keys up, so that a key
 * comes out once however many times the table filled (unless one file's
 * keys alone overflow the table: then some key comes out more than once,
 * and compaction merges it). The sums are COPY'd into dmarcd.rollup_daily
 * with header_from folded (fold()), as rollup_add() has it, and the
 * report's days are marked for compaction (sql/0014_rollup_append.sql:
 * the rollup is appended to at ingest, not upserted, an upsert costing
 * twice an insert; store_compact()).
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
#define SPILL_PARTS	16	/* temporary files, by hash */
#define ROLLUP_COPY	(256 * 1024)	/* COPY bytes per PQputCopyData */
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
	FILE *spill[SPILL_PARTS];	/* entries that did not fit */
	int spilled;
	int failed;
	int failed_errno;		/* of the spill that failed; 0: memory */
	const char *tmpdir;		/* the spill files' (the store's) */
	char hf[DM_MAX_TEXT + 1];	/* header_from, folded (fold()) */
};

/*
 * fold - header_from as the rollup keeps it: lower case in ASCII only,
 * "" for none (as rollup_add() does, sql/0014_rollup_append.sql).
 */
static const char *
fold(struct store_rollup *r, const char *s)
{
	size_t i;

	if (s == NULL)
		return "";
	for (i = 0; i < sizeof(r->hf) - 1 && s[i] != '\0'; i++)
		r->hf[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') :
		    s[i];
	r->hf[i] = '\0';
	return r->hf;
}

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
store_rollup_new(const char *tmpdir)
{
	struct store_rollup *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->tmpdir = tmpdir;
	r->entries = malloc(ROLLUP_KEYS * sizeof(*r->entries));
	r->slots = calloc(ROLLUP_SLOTS, sizeof(*r->slots));
	if (r->entries == NULL || r->slots == NULL) {
		store_rollup_free(r);
		return NULL;
	}
	dm_arena_init(&r->text, ROLLUP_TEXT + 64 * 1024);
	return r;
}

static void
spill_close(struct store_rollup *r)
{
	int i;

	for (i = 0; i < SPILL_PARTS; i++)
		if (r->spill[i] != NULL) {
			fclose(r->spill[i]);
			r->spill[i] = NULL;
		}
	r->spilled = 0;
}

void
store_rollup_free(struct store_rollup *r)
{
	if (r == NULL)
		return;
	spill_close(r);
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
	spill_close(r);
	r->failed = 0;
	r->failed_errno = 0;
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
 * domain, day, source_ip, header_from (folded), dkim and spf aligned,
 * disposition, auth, dkim_domain, spf_domain, override, messages: the
 * columns of dmarcd.rollup_daily, COPY'd into it at the batch's end
 * (ingest.c, flush_batch). For small reports.
 */
int
store_rollup_lines(struct store_rollup *r, const char *domain,
    const struct dm_record *rec, const struct dm_alignment *a, struct dm_buf *out)
{
	const char *disp = dm_enum_name(DM_ENUM_DISPOSITION, rec->disposition);
	const char *hf = fold(r, rec->header_from);
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
		rc |= store_copy_escape(out, hf);
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
 * The entries to the spill files, by the top bits of their hash, each as
 * SPILL_FIELDS NUL-terminated fields: day, ip ('N' for NULL, else 'V' and
 * the text), header_from, dkim and spf aligned, disposition, auth,
 * dkim_domain, spf_domain, override, messages.
 */
#define SPILL_FIELDS	11

static int
spill(struct store_rollup *r)
{
	size_t i;

	for (i = 0; i < r->count; i++) {
		const struct rollup_entry *x = &r->entries[i];
		FILE **f = &r->spill[x->hash >> 28 & (SPILL_PARTS - 1)];
		char num[48];

		if (*f == NULL && (*f = store_tmpfile(r->tmpdir, NULL)) ==
		    NULL) {
			r->failed_errno = errno;
			return -1;
		}
		if (fprintf(*f, "%d%c%c%s%c%s%c%d%c%d%c%s%c%d%c%s%c%s%c%s%c"
		    "%s%c", x->day, 0, x->ip != NULL ? 'V' : 'N',
		    x->ip != NULL ? x->ip : "", 0, x->hf, 0, x->da, 0, x->sa,
		    0, x->disp, 0, x->auth, 0, x->dkd, 0, x->spd, 0, x->ovr, 0,
		    u128_text(x->n, num), 0) < 0) {
			r->failed_errno = errno;
			return -1;
		}
	}
	clear(r);
	r->spilled = 1;
	return 0;
}

static char *
keep(struct store_rollup *r, const char *s)
{
	return s == NULL ? NULL : dm_arena_strndup(&r->text, s, strlen(s));
}

/*
 * add - n messages to the key; 1 when the table is full (nothing done),
 * -1 out of memory. disp and ovr are static names, or "".
 */
static int
add(struct store_rollup *r, int day, const char *ip, const char *hf,
    int da, int sa, const char *disp, int auth, const char *dkd,
    const char *spd, const char *ovr, unsigned __int128 n)
{
	uint32_t h = mix(mix(mix(mix(mix(2166136261U ^ (uint32_t)day, ip), hf),
	    disp), dkd), spd) ^ (uint32_t)(da << 1 | sa) ^ (uint32_t)auth << 2;
	size_t slot = h & (ROLLUP_SLOTS - 1);
	struct rollup_entry *x;

	for (; r->slots[slot] != 0; slot = (slot + 1) & (ROLLUP_SLOTS - 1)) {
		x = &r->entries[r->slots[slot] - 1];
		if (x->hash == h && x->day == day && x->da == da &&
		    x->sa == sa && x->auth == auth && same(x->ip, ip) &&
		    strcmp(x->hf, hf) == 0 && strcmp(x->disp, disp) == 0 &&
		    strcmp(x->ovr, ovr) == 0 && strcmp(x->dkd, dkd) == 0 &&
		    strcmp(x->spd, spd) == 0) {
			x->n += n;
			return 0;
		}
	}
	if (r->count == ROLLUP_KEYS || r->text.used > ROLLUP_TEXT)
		return 1;
	x = &r->entries[r->count];
	x->hash = h;
	x->day = day;
	x->ip = keep(r, ip);
	x->hf = keep(r, hf);
	x->dkd = keep(r, dkd);
	x->spd = keep(r, spd);
	if ((ip != NULL && x->ip == NULL) || x->hf == NULL ||
	    x->dkd == NULL || x->spd == NULL)
		return -1;
	x->auth = auth;
	x->ovr = ovr;
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
	const char *hf = fold(r, rec->header_from);
	int i, rc;

	if (r->failed)
		return;
	for (i = 0; i < r->ndays; i++) {
		unsigned __int128 part = day_part(r, i, rec->count);

		if (part == 0)
			continue;
		do {
			rc = add(r, i, rec->source_ip, hf,
			    rec->dkim == DM_VERDICT_PASS,
			    rec->spf == DM_VERDICT_PASS,
			    disp != NULL ? disp : "", (int)a->bits,
			    a->dkim_domain, a->spf_domain, a->override, part);
		} while (rc == 1 && spill(r) == 0);
		if (rc != 0) {
			r->failed = 1;
			return;
		}
	}
}

/* ---- to the server ---- */

/* The static name of type spelled text (a spill file's field), or "". */
static const char *
static_name(enum dm_enum_type type, const char *text)
{
	const char *n;
	int v;

	for (v = 1; (n = dm_enum_name(type, v)) != NULL; v++)
		if (strcmp(n, text) == 0)
			return n;
	return "";
}

/* The table's entries as COPY lines for dmarcd.rollup_daily, sent when
 * ROLLUP_COPY bytes are waiting (and all of them with all set). */
static int
put_entries(struct store *s, struct store_rollup *r, const char *domain,
    struct dm_buf *b, int all, struct dm_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < r->count; i++) {
		const struct rollup_entry *x = &r->entries[i];
		char num[48];

		rc |= store_copy_escape(b, domain);
		rc |= dm_buf_printf(b, "\t%s\t", r->date[x->day]);
		rc |= store_copy_escape(b, x->ip);
		rc |= dm_buf_append(b, "\t", 1);
		rc |= store_copy_escape(b, x->hf);
		rc |= dm_buf_printf(b, "\t%c\t%c\t", x->da ? 't' : 'f',
		    x->sa ? 't' : 'f');
		rc |= store_copy_escape(b, x->disp);
		rc |= dm_buf_printf(b, "\t%d\t", x->auth);
		rc |= store_copy_escape(b, x->dkd);
		rc |= dm_buf_append(b, "\t", 1);
		rc |= store_copy_escape(b, x->spd);
		rc |= dm_buf_append(b, "\t", 1);
		rc |= store_copy_escape(b, x->ovr);
		rc |= dm_buf_printf(b, "\t%s\n", u128_text(x->n, num));
		if (rc != 0)
			return dm_error_set(err, DM_E_NOMEM, "out of memory");
		if (b->len >= ROLLUP_COPY) {
			if (store_copy_put(s, b->data, b->len, err) != 0)
				return -1;
			dm_buf_reset(b);
		}
	}
	if (all && b->len > 0) {
		if (store_copy_put(s, b->data, b->len, err) != 0)
			return -1;
		dm_buf_reset(b);
	}
	clear(r);
	return 0;
}

/* u128 from decimal text (a spill file's field, written by u128_text). */
static unsigned __int128
u128_parse(const char *t)
{
	unsigned __int128 v = 0;

	for (; *t >= '0' && *t <= '9'; t++)
		v = v * 10 + (unsigned)(*t - '0');
	return v;
}

/*
 * reload - one spill file read back into the table (which adds equal keys
 * up), its entries put as they fill it and at the end. 1 on a read error.
 */
static int
reload(struct store *s, struct store_rollup *r, FILE *f, const char *domain,
    struct dm_buf *b, struct dm_error *err)
{
	struct dm_buf fields;
	char *line = NULL, *v[SPILL_FIELDS];
	size_t cap = 0, at[SPILL_FIELDS];
	ssize_t len = 0;
	int k, rc = -1;

	dm_buf_init(&fields, SPILL_FIELDS * (size_t)DM_MAX_TEXT + 256);
	if (fflush(f) != 0 || fseeko(f, 0, SEEK_SET) != 0) {
		r->failed_errno = errno;
		goto io;
	}
	for (;;) {
		int added;

		dm_buf_reset(&fields);
		for (k = 0; k < SPILL_FIELDS; k++) {
			len = getdelim(&line, &cap, '\0', f);
			if (len <= 0)
				break;
			/* One buffer for the fields: getdelim reuses line. */
			at[k] = fields.len;
			if (dm_buf_append(&fields, line, (size_t)len) != 0)
				goto nomem;
		}
		if (k == 0 && len <= 0)
			break;
		if (k < SPILL_FIELDS)
			goto io;
		for (k = 0; k < SPILL_FIELDS; k++)
			v[k] = fields.data + at[k];
		do {
			added = add(r, atoi(v[0]), v[1][0] == 'V' ? v[1] + 1 :
			    NULL, v[2], atoi(v[3]), atoi(v[4]),
			    static_name(DM_ENUM_DISPOSITION, v[5]), atoi(v[6]),
			    v[7], v[8], static_name(DM_ENUM_REASON, v[9]),
			    u128_parse(v[10]));
		} while (added == 1 &&
		    put_entries(s, r, domain, b, 0, err) == 0);
		if (added == -1)
			goto nomem;
		if (added == 1)
			goto out;	/* put_entries failed: err says why */
	}
	if (ferror(f))
		goto io;
	rc = put_entries(s, r, domain, b, 0, err);
	goto out;
nomem:
	dm_error_set(err, DM_E_NOMEM, "out of memory");
	goto out;
io:
	rc = 1;
out:
	free(line);
	dm_buf_free(&fields);
	return rc;
}

/*
 * mark_days - the report's days in dmarcd.rollup_dirty: its rows are
 * appended, and compacted later (store_compact()).
 */
static int
mark_days(struct store *s, const struct store_rollup *r, const char *domain,
    struct dm_error *err)
{
	char days[STORE_ROLLUP_DAYS * 17 + 4];
	const char *p[2];
	PGresult *res;
	size_t at = 0;
	int i;

	days[at++] = '{';
	for (i = 0; i < r->ndays; i++)
		at += (size_t)snprintf(days + at, sizeof(days) - at, "%s%s",
		    i ? "," : "", r->date[i]);
	snprintf(days + at, sizeof(days) - at, "}");
	p[0] = domain;
	p[1] = days;
	res = store_pq_params(s->conn, "INSERT INTO dmarcd.rollup_dirty "
	    "(domain, day) SELECT $1, unnest($2::date[])", 2, p, err);
	if (res == NULL)
		return -1;
	store_pq.PQclear(res);
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
	struct dm_error ignored;
	struct dm_buf b;
	int i, rc = -1, got;

	if (r->failed && r->failed_errno == 0)
		return dm_error_set(err, DM_E_NOMEM, "cannot add up the daily "
		    "rollup: out of memory");
	if (r->failed)
		return store_tmp_fail(r->tmpdir, r->failed_errno, "cannot add "
		    "up the daily rollup", err);
	dm_buf_init(&b, ROLLUP_COPY + 4 * (size_t)DM_MAX_TEXT + 1024);
	if (store_copy_start(s, "COPY dmarcd.rollup_daily (domain, day, "
	    "source_ip, header_from, dkim_aligned, spf_aligned, disposition, "
	    "auth, dkim_domain, spf_domain, override, messages) FROM STDIN",
	    err) != 0)
		goto out;
	if (r->spilled && spill(r) != 0)
		goto io;
	for (i = 0; r->spilled && i < SPILL_PARTS; i++) {
		if (r->spill[i] == NULL)
			continue;
		if ((got = reload(s, r, r->spill[i], domain, &b, err)) == 1)
			goto io;
		if (got != 0)
			goto abort;
	}
	if (put_entries(s, r, domain, &b, 1, err) != 0)
		goto abort;
	if (store_copy_end(s, NULL, err) != 0 ||
	    mark_days(s, r, domain, err) != 0)
		goto out;
	rc = 0;
	goto out;
io:
	if (r->failed_errno != 0)
		store_tmp_fail(r->tmpdir, r->failed_errno, "cannot write the "
		    "daily rollup to a temporary file", err);
	else
		dm_error_set(err, DM_E_IO, "cannot read the daily rollup back "
		    "from a temporary file in %s", r->tmpdir);
abort:
	dm_error_clear(&ignored);
	store_copy_end(s, err->msg, &ignored);
out:
	dm_buf_free(&b);
	clear(r);
	spill_close(r);
	return rc;
}

/*
 * store_compact - compact the rollup rows appended to (domain, day) pairs
 * first marked age_s seconds ago or more (dmarcd.rollup_compact(), a
 * transaction per PAIRS pairs), until none is left; with deadline_ms > 0,
 * stop after about that long (what is left waits for the next call). Call
 * it outside a batch, after the last commit. The counts go to *t when t is
 * not NULL.
 */
#define COMPACT_PAIRS	"200"

int
store_compact(struct store *s, unsigned age_s, unsigned deadline_ms,
    struct store_compact_tally *t, struct dm_error *err)
{
	struct timespec t0, now;
	PGresult *res;
	char age[16];

	if (t != NULL)
		memset(t, 0, sizeof(*t));
	if (s->in_txn)
		return dm_error_set(err, DM_E_INTERNAL, "store_compact: a batch "
		    "is open");
	snprintf(age, sizeof(age), "%u", age_s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long long pairs, del, ins;

		res = store_pq_params(s->conn, "SELECT pairs, deleted, "
		    "inserted FROM dmarcd.rollup_compact($1::integer, "
		    "make_interval(secs => $2::integer))", 2,
		    (const char *[]){ COMPACT_PAIRS, age }, err);
		if (res == NULL)
			return -1;
		pairs = atoll(store_pq.PQgetvalue(res, 0, 0));
		del = atoll(store_pq.PQgetvalue(res, 0, 1));
		ins = atoll(store_pq.PQgetvalue(res, 0, 2));
		store_pq.PQclear(res);
		if (t != NULL) {
			t->pairs += (uint64_t)pairs;
			t->deleted += (uint64_t)del;
			t->inserted += (uint64_t)ins;
		}
		if (pairs == 0)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (deadline_ms > 0 && (now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_nsec - t0.tv_nsec) / 1000000 >= (long)deadline_ms) {
			if (t != NULL)
				t->more = 1;
			return 0;
		}
	}
}
