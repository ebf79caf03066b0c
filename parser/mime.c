/*
 * mime.c - libetpan MIME helpers for the parser (see mime.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libetpan/libetpan.h>

#include "common/dl.h"
#include "common/limits.h"
#include "parser/mime.h"

/*
 * libetpan is loaded when the first mail is parsed (common/dl.h): with it
 * come GnuTLS, SASL and Berkeley DB, which reading XML does not need.
 * Every libetpan function this file calls is in this list; clist_begin()
 * and friends are macros.
 */
#define ETPAN_SYMS(X, a)						\
	X(a, mailmime_parse) X(a, mailmime_free)			\
	X(a, mailmime_single_fields_init) X(a, mailmime_part_parse)	\
	X(a, mmap_string_unref) X(a, mailimf_optional_fields_parse)	\
	X(a, mailimf_fields_free) X(a, mailimf_date_time_parse)		\
	X(a, mailimf_date_time_free) X(a, libetpan_get_version_major)	\
	X(a, libetpan_get_version_minor)

static struct etpan_api {
	DM_DL_FIELDS(ETPAN_SYMS)
} etp;

static const struct dm_dl_sym etpan_syms[] = {
	DM_DL_SYMS(struct etpan_api, ETPAN_SYMS)
};

static struct dm_dl_lib etpan_lib = DM_DL_LIB(LIBETPAN_SONAME,
    "to read mail", etpan_syms, &etp);

int
mime_load(struct dm_error *err)
{
	return dm_dl_need(&etpan_lib, err);
}

const char *
mime_library_version(void)
{
	static char version[32];

	if (dm_dl_need(&etpan_lib, NULL) != 0)
		return NULL;
	snprintf(version, sizeof(version), "%d.%d",
	    etp.libetpan_get_version_major(),
	    etp.libetpan_get_version_minor());
	return version;
}

size_t
mime_skip_mbox_from(const char *data, size_t len)
{
	const char *nl;

	if (len < 5 || memcmp(data, "From ", 5) != 0)
		return 0;
	nl = memchr(data, '\n', len);
	return nl == NULL ? 0 : (size_t)(nl - data) + 1;
}

void
mime_scan_init(struct mime_scan *scan)
{
	memset(scan, 0, sizeof(*scan));
	scan->in_header = 1;
}

/* One complete line: its length and first bytes. */
static int
scan_line(struct mime_scan *scan, size_t len, const char *head,
    struct dm_error *err)
{
	/* A CR ending a short line (only those can be empty or "--"). */
	if (len > 0 && len <= sizeof(scan->head) && head[len - 1] == '\r')
		len--;
	if (scan->in_header) {
		if (len == 0)
			scan->in_header = 0;
		else if (++scan->header_lines > DM_MAX_MIME_HEADER_LINES)
			return dm_error_set(err, DM_E_LIMIT, "too many header "
			    "lines: more than %d (header limit)",
			    DM_MAX_MIME_HEADER_LINES);
		else if (len >= 13 && strncasecmp(head, "content-type:", 13) ==
		    0 && ++scan->type_fields > DM_MAX_MIME_TYPE_FIELDS)
			return dm_error_set(err, DM_E_LIMIT, "too many MIME "
			    "parts: more than %d Content-Type fields (part "
			    "limit)", DM_MAX_MIME_TYPE_FIELDS);
	} else if (len >= 2 && head[0] == '-' && head[1] == '-') {
		/* A boundary: the part's header block follows. */
		if (++scan->dash_lines > DM_MAX_MIME_DASH_LINES)
			return dm_error_set(err, DM_E_LIMIT, "too many MIME "
			    "parts: more than %d boundary lines (part limit)",
			    DM_MAX_MIME_DASH_LINES);
		scan->in_header = 1;
	}
	return 0;
}

int
mime_scan_feed(struct mime_scan *scan, const char *data, size_t len,
    struct dm_error *err)
{
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		size_t room = sizeof(scan->head) - scan->head_len;

		memcpy(scan->head + scan->head_len, p, n < room ? n : room);
		scan->head_len += n < room ? n : room;
		scan->line_len += n;
		if (nl == NULL)
			break;
		if (scan_line(scan, scan->line_len, scan->head, err) != 0)
			return -1;
		scan->head_len = scan->line_len = 0;
		p = nl + 1;
	}
	return 0;
}

int
mime_prescan(const char *data, size_t len, struct dm_error *err)
{
	struct mime_scan scan;

	mime_scan_init(&scan);
	return mime_scan_feed(&scan, data, len, err);
}

int
mime_parse(const char *data, size_t len, struct mailmime **mime_r,
    struct dm_error *err)
{
	size_t idx = 0;
	int rc;

	*mime_r = NULL;
	if (mime_load(err) != 0)
		return -1;
	rc = etp.mailmime_parse(data, len, &idx, mime_r);
	if (rc == MAILIMF_ERROR_MEMORY)
		return dm_error_set(err, DM_E_NOMEM, "out of memory parsing "
		    "the message");
	if (rc != MAILIMF_NO_ERROR || *mime_r == NULL)
		return dm_error_set(err, DM_E_DATA, "not a parseable MIME "
		    "message (libetpan error %d)", rc);
	return 0;
}

void
mime_free(struct mailmime **mime)
{
	if (*mime != NULL)
		etp.mailmime_free(*mime);
	*mime = NULL;
}

static void
copy_printable(char *out, size_t size, const char *in)
{
	size_t o = 0;

	for (; in != NULL && *in != '\0' && o + 1 < size; in++)
		out[o++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[o] = '\0';
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

void
mime_part_info(const struct mailmime *part, struct mime_part_info *info)
{
	struct mailmime_content *ct = part->mm_content_type;
	struct mailmime_single_fields single;
	const char *major = "text";
	clistiter *it;

	memset(info, 0, sizeof(*info));
	if (ct != NULL && ct->ct_type != NULL) {
		struct mailmime_type *t = ct->ct_type;

		if (t->tp_type == MAILMIME_TYPE_DISCRETE_TYPE) {
			switch (t->tp_data.tp_discrete_type->dt_type) {
			case MAILMIME_DISCRETE_TYPE_TEXT:
				major = "text";
				break;
			case MAILMIME_DISCRETE_TYPE_IMAGE:
				major = "image";
				break;
			case MAILMIME_DISCRETE_TYPE_AUDIO:
				major = "audio";
				break;
			case MAILMIME_DISCRETE_TYPE_VIDEO:
				major = "video";
				break;
			case MAILMIME_DISCRETE_TYPE_APPLICATION:
				major = "application";
				break;
			default:
				major = t->tp_data.tp_discrete_type->
				    dt_extension ? t->tp_data.
				    tp_discrete_type->dt_extension : "x-unknown";
				break;
			}
		} else if (t->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE) {
			switch (t->tp_data.tp_composite_type->ct_type) {
			case MAILMIME_COMPOSITE_TYPE_MESSAGE:
				major = "message";
				break;
			case MAILMIME_COMPOSITE_TYPE_MULTIPART:
				major = "multipart";
				break;
			default:
				major = t->tp_data.tp_composite_type->ct_token ?
				    t->tp_data.tp_composite_type->ct_token :
				    "x-unknown";
				break;
			}
		}
		snprintf(info->type, sizeof(info->type), "%s/%s", major,
		    ct->ct_subtype ? ct->ct_subtype : "");
		for (it = clist_begin(ct->ct_parameters); it != NULL;
		    it = clist_next(it)) {
			struct mailmime_parameter *param = clist_content(it);

			if (param->pa_name != NULL && param->pa_value != NULL &&
			    strcasecmp(param->pa_name, "report-type") == 0)
				copy_printable(info->report_type,
				    sizeof(info->report_type), param->pa_value);
		}
	} else
		snprintf(info->type, sizeof(info->type), "text/plain");
	lower(info->type);
	lower(info->report_type);
	etp.mailmime_single_fields_init(&single, part->mm_mime_fields,
	    part->mm_content_type);
	if (single.fld_disposition_filename != NULL)
		copy_printable(info->filename, sizeof(info->filename),
		    single.fld_disposition_filename);
	else if (single.fld_content_name != NULL)
		copy_printable(info->filename, sizeof(info->filename),
		    single.fld_content_name);
}

int
mime_raw_content(const struct mailmime *part, const char **data_r,
    size_t *len_r)
{
	const struct mailmime_data *d = part->mm_body;

	if (part->mm_type == MAILMIME_SINGLE && part->mm_data.mm_single)
		d = part->mm_data.mm_single;
	if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT) {
		*data_r = "";
		*len_r = 0;
		return -1;
	}
	*data_r = d->dt_data.dt_text.dt_data;
	*len_r = d->dt_data.dt_text.dt_length;
	return 0;
}

int
mime_decode(const struct mailmime *part, const char **data_r, size_t *len_r,
    char **owned_r, struct dm_error *err)
{
	const struct mailmime_data *d = part->mm_data.mm_single;
	size_t idx = 0, out_len = 0;
	char *out = NULL;
	int rc;

	*owned_r = NULL;
	if (part->mm_type != MAILMIME_SINGLE || d == NULL ||
	    d->dt_type != MAILMIME_DATA_TEXT) {
		*data_r = "";
		*len_r = 0;
		return 0;
	}
	if (!d->dt_encoded || d->dt_encoding == MAILMIME_MECHANISM_7BIT ||
	    d->dt_encoding == MAILMIME_MECHANISM_8BIT ||
	    d->dt_encoding == MAILMIME_MECHANISM_BINARY) {
		*data_r = d->dt_data.dt_text.dt_data;
		*len_r = d->dt_data.dt_text.dt_length;
		return 0;
	}
	rc = etp.mailmime_part_parse(d->dt_data.dt_text.dt_data,
	    d->dt_data.dt_text.dt_length, &idx, d->dt_encoding, &out,
	    &out_len);
	if (rc == MAILIMF_ERROR_MEMORY)
		return dm_error_set(err, DM_E_NOMEM, "out of memory decoding "
		    "a part");
	if (rc != MAILIMF_NO_ERROR || out == NULL)
		return dm_error_set(err, DM_E_DATA, "cannot undo the part's "
		    "transfer encoding (libetpan error %d)", rc);
	*owned_r = out;
	*data_r = out;
	*len_r = out_len;
	return 0;
}

void
mime_decoded_free(char **owned)
{
	if (*owned != NULL)
		etp.mmap_string_unref(*owned);
	*owned = NULL;
}

/* Unfold (CRLF + WSP -> one space) and trim, into a malloc'd string. */
static char *
unfold(const char *value)
{
	size_t len = strlen(value), i, o = 0;
	char *out = malloc(len + 1);

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		char c = value[i];

		if (c == '\r' || c == '\n') {
			if (o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		if ((c == ' ' || c == '\t') && o > 0 && out[o - 1] == ' ')
			continue;
		out[o++] = c == '\t' ? ' ' : c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	{
		char *s = out;

		while (*s == ' ')
			s++;
		if (s != out)
			memmove(out, s, strlen(s) + 1);
	}
	return out;
}

int
mime_header_each(const char *data, size_t len,
    int (*fn)(void *ctx, const char *name, const char *value), void *ctx,
    size_t *body_off_r)
{
	struct mailimf_fields *fields = NULL;
	size_t idx = 0;
	clistiter *it;
	int count = 0;

	*body_off_r = len;
	if (mime_load(NULL) != 0)
		return -1;
	if (etp.mailimf_optional_fields_parse(data, len, &idx, &fields) !=
	    MAILIMF_NO_ERROR || fields == NULL)
		return -1;
	for (it = clist_begin(fields->fld_list); it != NULL;
	    it = clist_next(it)) {
		struct mailimf_field *f = clist_content(it);
		char *value;

		if (f->fld_type != MAILIMF_FIELD_OPTIONAL_FIELD)
			continue;
		value = unfold(f->fld_data.fld_optional_field->fld_value);
		if (value == NULL)
			break;
		count++;
		if (fn(ctx, f->fld_data.fld_optional_field->fld_name,
		    value) != 0) {
			free(value);
			break;
		}
		free(value);
	}
	etp.mailimf_fields_free(fields);
	/* The body follows the empty line after the fields. */
	if (idx < len && data[idx] == '\r')
		idx++;
	if (idx < len && data[idx] == '\n')
		idx++;
	*body_off_r = idx;
	return count;
}

int
mime_parse_date(const char *value, long long *epoch_r)
{
	struct mailimf_date_time *dt = NULL;
	size_t idx = 0;
	struct tm tm;
	time_t t;
	int zone, offset;

	if (mime_load(NULL) != 0)
		return -1;
	if (etp.mailimf_date_time_parse(value, strlen(value), &idx, &dt) !=
	    MAILIMF_NO_ERROR || dt == NULL)
		return -1;
	/* RFC 5322: a four-digit year, a zone of +-HHMM. libetpan takes
	 * any number: 10639436 would overflow the offset below. */
	if (dt->dt_year < 1 || dt->dt_year > 9999 || dt->dt_zone < -9959 ||
	    dt->dt_zone > 9959 || dt->dt_month < 1 || dt->dt_month > 12 ||
	    dt->dt_day < 1 || dt->dt_day > 31 || dt->dt_hour < 0 ||
	    dt->dt_hour > 23 || dt->dt_min < 0 || dt->dt_min > 59 ||
	    dt->dt_sec < 0 || dt->dt_sec > 60) {
		etp.mailimf_date_time_free(dt);
		return -1;
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = dt->dt_year - 1900;
	tm.tm_mon = dt->dt_month - 1;
	tm.tm_mday = dt->dt_day;
	tm.tm_hour = dt->dt_hour;
	tm.tm_min = dt->dt_min;
	tm.tm_sec = dt->dt_sec;
	zone = dt->dt_zone;
	etp.mailimf_date_time_free(dt);
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	offset = (abs(zone) / 100) * 3600 + (abs(zone) % 100) * 60;
	*epoch_r = (long long)t - (zone < 0 ? -offset : offset);
	return 0;
}

const char *
mime_message_subject(const struct mailmime *message)
{
	struct mailimf_fields *fields;
	clistiter *it;

	if (message == NULL || message->mm_type != MAILMIME_MESSAGE)
		return NULL;
	fields = message->mm_data.mm_message.mm_fields;
	if (fields == NULL)
		return NULL;
	for (it = clist_begin(fields->fld_list); it != NULL;
	    it = clist_next(it)) {
		struct mailimf_field *f = clist_content(it);

		if (f->fld_type == MAILIMF_FIELD_SUBJECT &&
		    f->fld_data.fld_subject != NULL)
			return f->fld_data.fld_subject->sbj_value;
	}
	return NULL;
}
