/*
 * test_inputs.c - unit tests for collector/inputs.c: the PATH... of
 * "dmarcd ingest" as single inputs.
 *
 * Proves: a file is one whole-file input; an mbox is one input per
 * message, each range starting at its From_ line and ending where the
 * next begins, named "path#N"; a "From " line not after an empty line
 * splits nothing; a separator is found wherever the 64 KiB read blocks
 * cut it (LF and CRLF), and a lone "\nFrom " across the cut is still no
 * separator; a file starting with "From " and holding one message is one
 * whole-file input; a maildir gives new/ then cur/, each sorted, never
 * tmp/, and its files are never split; a plain directory gives its files
 * sorted, notes each subdirectory once without recursive and walks it
 * depth first with it (a maildir inside as a maildir, a symbolic link to
 * a file followed, to a directory noted and not followed); dotfiles and
 * dot directories are skipped; a missing path is an error naming the
 * path and strerror, and the walk goes on; standard input and a named
 * pipe are spooled to an unlinked file in the temporary directory and
 * split like a file; "-" twice is read once; item() returning -1 stops
 * the walk; inputs_read stays inside the item's range; every item's fd is
 * a seekable regular file that is closed once the walk is over.
 *
 * Every file is built here, in a fresh directory from mkdtemp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "collector/inputs.h"

#define MAX_ITEMS	64
#define MAX_EVENTS	16

struct rec_item {
	char *name;
	char *path;
	int fd;
	uint64_t offset;
	uint64_t length;
	int whole_file;
	unsigned mbox_index;
	char *data;		/* the item's bytes, read with inputs_read */
	nlink_t nlink;		/* of the file behind fd */
};

struct recorder {
	struct rec_item items[MAX_ITEMS];
	size_t count;
	char *error_paths[MAX_EVENTS];
	char *error_msgs[MAX_EVENTS];
	enum dm_error_code error_codes[MAX_EVENTS];
	size_t error_count;
	char *note_paths[MAX_EVENTS];
	char *note_texts[MAX_EVENTS];
	size_t note_count;
	size_t stop_at;		/* item() returns -1 on this item (1-based) */
};

struct fixture {
	char dir[PATH_MAX];
	struct recorder rec;
	unsigned errors;
};

/* Recorder */

static int
rec_item(void *ctx, const struct inputs_item *item)
{
	struct recorder *r = ctx;
	struct rec_item *ri;
	struct dm_error err;
	struct stat st;
	char probe[16];
	uint64_t pos = 0;
	ssize_t n;

	assert_true(r->count < MAX_ITEMS);
	ri = &r->items[r->count++];
	ri->name = strdup(item->name);
	ri->path = strdup(item->path);
	ri->fd = item->fd;
	ri->offset = item->offset;
	ri->length = item->length;
	ri->whole_file = item->whole_file;
	ri->mbox_index = item->mbox_index;

	assert_int_equal(fstat(item->fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true(lseek(item->fd, 0, SEEK_CUR) >= 0);
	ri->nlink = st.st_nlink;
	assert_true(item->offset + item->length <= (uint64_t)st.st_size);
	if (item->whole_file) {
		assert_int_equal(item->offset, 0);
		assert_int_equal(item->length, (uint64_t)st.st_size);
	}

	/* Odd-sized reads, so that the range end falls inside one. */
	ri->data = malloc(item->length + 1);
	assert_non_null(ri->data);
	while ((n = inputs_read(item, pos, ri->data + pos, 1000, &err)) > 0)
		pos += (uint64_t)n;
	assert_int_equal(n, 0);
	assert_int_equal(pos, item->length);
	ri->data[pos] = '\0';
	/* Nothing past the end, however much is asked for. */
	assert_int_equal(inputs_read(item, item->length, probe, sizeof(probe),
	    &err), 0);
	if (item->length > 0)
		assert_int_equal(inputs_read(item, item->length - 1, probe,
		    sizeof(probe), &err), 1);
	if (r->stop_at != 0 && r->count == r->stop_at)
		return -1;
	return 0;
}

static void
rec_error(void *ctx, const char *path, const struct dm_error *err)
{
	struct recorder *r = ctx;

	assert_true(r->error_count < MAX_EVENTS);
	r->error_paths[r->error_count] = strdup(path);
	r->error_msgs[r->error_count] = strdup(err->msg);
	r->error_codes[r->error_count] = err->code;
	r->error_count++;
}

static void
rec_note(void *ctx, const char *path, const char *text)
{
	struct recorder *r = ctx;

	assert_true(r->note_count < MAX_EVENTS);
	r->note_paths[r->note_count] = strdup(path);
	r->note_texts[r->note_count] = strdup(text);
	r->note_count++;
}

static void
recorder_free(struct recorder *r)
{
	size_t i;

	for (i = 0; i < r->count; i++) {
		free(r->items[i].name);
		free(r->items[i].path);
		free(r->items[i].data);
	}
	for (i = 0; i < r->error_count; i++) {
		free(r->error_paths[i]);
		free(r->error_msgs[i]);
	}
	for (i = 0; i < r->note_count; i++) {
		free(r->note_paths[i]);
		free(r->note_texts[i]);
	}
	memset(r, 0, sizeof(*r));
}

static int
walk(struct fixture *fx, char **paths, size_t n, int recursive)
{
	struct inputs_options opt;
	struct inputs_callbacks cb;

	memset(&opt, 0, sizeof(opt));
	opt.recursive = recursive;
	opt.tmpdir = fx->dir;
	memset(&cb, 0, sizeof(cb));
	cb.ctx = &fx->rec;
	cb.item = rec_item;
	cb.error = rec_error;
	cb.note = rec_note;
	fx->errors = 12345;
	return inputs_walk(paths, n, &opt, &cb, &fx->errors);
}

static void
assert_fd_closed(int fd)
{
	errno = 0;
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
}

/* Files */

static void
fx_path(const struct fixture *fx, const char *rel, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s", fx->dir, rel);

	assert_true(n > 0 && (size_t)n < size);
}

static void
put(const struct fixture *fx, const char *rel, const void *data, size_t len)
{
	char path[PATH_MAX];
	int fd;

	fx_path(fx, rel, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static void
put_str(const struct fixture *fx, const char *rel, const char *text)
{
	put(fx, rel, text, strlen(text));
}

static void
mkdir_in(const struct fixture *fx, const char *rel)
{
	char path[PATH_MAX];

	fx_path(fx, rel, path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	if (fx == NULL)
		return -1;
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	snprintf(fx->dir, sizeof(fx->dir), "%s/test_inputs.XXXXXX", tmp);
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	int r;

	recorder_free(&fx->rec);
	r = nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return r;
}

/* Checks on what was recorded */

static void
assert_item(const struct fixture *fx, size_t i, const char *rel,
    unsigned mbox_index, const char *data)
{
	const struct rec_item *ri = &fx->rec.items[i];
	char path[PATH_MAX], name[PATH_MAX + 16];

	assert_true(i < fx->rec.count);
	fx_path(fx, rel, path, sizeof(path));
	if (mbox_index > 0)
		snprintf(name, sizeof(name), "%s#%u", path, mbox_index);
	else
		snprintf(name, sizeof(name), "%s", path);
	assert_string_equal(ri->path, path);
	assert_string_equal(ri->name, name);
	assert_int_equal(ri->mbox_index, mbox_index);
	assert_int_equal(ri->whole_file, mbox_index == 0);
	if (data != NULL) {
		assert_int_equal(ri->length, strlen(data));
		assert_memory_equal(ri->data, data, strlen(data));
	}
}

/* Mbox checks: contiguous ranges from 0 to the end, each a From_ line. */
static void
assert_mbox_ranges(const struct fixture *fx, uint64_t file_size)
{
	const struct recorder *r = &fx->rec;
	size_t i;

	assert_true(r->count >= 2);
	assert_int_equal(r->items[0].offset, 0);
	for (i = 0; i < r->count; i++) {
		assert_int_equal(r->items[i].mbox_index, i + 1);
		assert_int_equal(r->items[i].whole_file, 0);
		assert_true(r->items[i].length >= 5);
		assert_memory_equal(r->items[i].data, "From ", 5);
		if (i + 1 < r->count)
			assert_int_equal(r->items[i].offset +
			    r->items[i].length, r->items[i + 1].offset);
	}
	assert_int_equal(r->items[r->count - 1].offset +
	    r->items[r->count - 1].length, file_size);
}

/* Tests */

static void
test_single_file(void **state)
{
	struct fixture *fx = *state;
	static const char xml[] = "<?xml version=\"1.0\"?>\n<feedback/>\n";
	char path[PATH_MAX];
	char *paths[1] = { path };

	put_str(fx, "report.xml", xml);
	fx_path(fx, "report.xml", path, sizeof(path));
	assert_int_equal(walk(fx, paths, 1, 0), 0);
	assert_int_equal(fx->errors, 0);
	assert_int_equal(fx->rec.count, 1);
	assert_item(fx, 0, "report.xml", 0, xml);
	assert_int_equal(fx->rec.items[0].offset, 0);
	assert_int_equal(fx->rec.note_count, 0);
	assert_fd_closed(fx->rec.items[0].fd);
}

static const char msg1[] =
    "From alice@example.com Mon Jan  1 00:00:00 2024\n"
    "Subject: one\n\nbody one\n\n";
static const char msg2[] =
    "From bob@example.com Tue Jan  2 00:00:00 2024\n"
    "Subject: two\n\nbody two\n\n\n";
static const char msg3[] =
    "From carol@example.com Wed Jan  3 00:00:00 2024\n"
    "Subject: three\n\nbody three\n";

static void
test_mbox_three_messages(void **state)
{
	struct fixture *fx = *state;
	char mbox[sizeof(msg1) + sizeof(msg2) + sizeof(msg3)];
	char path[PATH_MAX];
	char *paths[1] = { path };

	snprintf(mbox, sizeof(mbox), "%s%s%s", msg1, msg2, msg3);
	put_str(fx, "inbox", mbox);
	fx_path(fx, "inbox", path, sizeof(path));
	assert_int_equal(walk(fx, paths, 1, 0), 0);
	assert_int_equal(fx->errors, 0);
	assert_int_equal(fx->rec.count, 3);
	assert_item(fx, 0, "inbox", 1, msg1);
	assert_item(fx, 1, "inbox", 2, msg2);
	assert_item(fx, 2, "inbox", 3, msg3);
	assert_int_equal(fx->rec.items[1].offset, strlen(msg1));
	assert_int_equal(fx->rec.items[2].offset, strlen(msg1) + strlen(msg2));
	assert_mbox_ranges(fx, strlen(mbox));
}

static void
test_mbox_from_in_body_is_no_separator(void **state)
{
	struct fixture *fx = *state;
	static const char one[] =
	    "From alice@example.com Mon Jan  1 00:00:00 2024\n"
	    "Subject: one\n\n"
	    "some text\n"
	    "From here on, a body line after a text line.\n"
	    "\n"
	    ">From an escaped line after an empty one.\n"
	    "\n"
	    "From: a header-like line is not a From_ line\n"
	    " From a line that starts with a space\n\n";
	static const char two[] =
	    "From bob@example.com Tue Jan  2 00:00:00 2024\n\nbody\n";
	char mbox[sizeof(one) + sizeof(two)];
	char path[PATH_MAX];
	char *paths[1] = { path };

	snprintf(mbox, sizeof(mbox), "%s%s", one, two);
	put_str(fx, "inbox", mbox);
	fx_path(fx, "inbox", path, sizeof(path));
	assert_int_equal(walk(fx, paths, 1, 0), 0);
	assert_int_equal(fx->rec.count, 2);
	assert_item(fx, 0, "inbox", 1, one);
	assert_item(fx, 1, "inbox", 2, two);
	assert_mbox_ranges(fx, strlen(mbox));
}

/*
 * build_split - a file whose separator sep starts at byte at: a From_
 * line, one long line of filler, sep, a second From_ line and a body.
 */
static size_t
build_split(char *buf, size_t size, size_t at, const char *sep,
    const char *eol)
{
	size_t o;

	o = (size_t)snprintf(buf, size, "From a@example.com Mon Jan  1 "
	    "00:00:00 2024%s", eol);
	assert_true(o < at);
	memset(buf + o, 'x', at - o);
	o = at;
	o += (size_t)snprintf(buf + o, size - o, "%sb@example.com Tue Jan  2 "
	    "00:00:00 2024%sSubject: two%s%sbody%s", sep, eol, eol, eol, eol);
	assert_true(o < size);
	return o;
}

struct split_case {
	const char *sep;	/* up to and including "From " */
	const char *eol;
	size_t from;		/* where in sep "From " starts */
	int splits;
};

/* check_split - the separator of sc at byte at: split there, or not. */
static void
check_split(struct fixture *fx, const struct split_case *sc, size_t at,
    char *buf, size_t size)
{
	char path[PATH_MAX];
	char *paths[1] = { path };
	size_t len, from;

	fx_path(fx, "big", path, sizeof(path));
	len = build_split(buf, size, at, sc->sep, sc->eol);
	put(fx, "big", buf, len);
	recorder_free(&fx->rec);
	assert_int_equal(walk(fx, paths, 1, 0), 0);
	assert_int_equal(fx->errors, 0);
	if (!sc->splits) {
		assert_int_equal(fx->rec.count, 1);
		assert_item(fx, 0, "big", 0, NULL);
		assert_int_equal(fx->rec.items[0].length, len);
		assert_memory_equal(fx->rec.items[0].data, buf, len);
		return;
	}
	from = at + sc->from;
	assert_int_equal(fx->rec.count, 2);
	assert_item(fx, 0, "big", 1, NULL);
	assert_item(fx, 1, "big", 2, NULL);
	assert_int_equal(fx->rec.items[0].length, from);
	assert_int_equal(fx->rec.items[1].offset, from);
	assert_memory_equal(fx->rec.items[0].data, buf, from);
	assert_memory_equal(fx->rec.items[1].data, buf + from, len - from);
	assert_mbox_ranges(fx, len);
}

static void
test_separator_across_block_boundary(void **state)
{
	static const struct split_case cases[] = {
		{ "\n\nFrom ", "\n", 2, 1 },
		{ "\r\n\r\nFrom ", "\r\n", 4, 1 },
		{ "x\nFrom ", "\n", 2, 0 },	/* no empty line before */
	};
	/* The second boundary comes after a line longer than a block. */
	static const size_t boundaries[] = { 65536, 2 * 65536 };
	struct fixture *fx = *state;
	size_t size = 3 * 65536, c, b, k;
	char *buf;

	buf = malloc(size);
	assert_non_null(buf);
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (b = 0; b < 2; b++) {
			/* Start the separator k bytes before the boundary:
			 * every cut through it, and none. */
			for (k = 0; k <= strlen(cases[c].sep) + 1; k++)
				check_split(fx, &cases[c], boundaries[b] - k,
				    buf, size);
		}
	}
	free(buf);
}

static void
test_from_line_one_message(void **state)
{
	struct fixture *fx = *state;
	static const char mail[] =
	    "From alice@example.com Mon Jan  1 00:00:00 2024\n"
	    "Subject: only\n\nbody\nFrom here, not a separator\n";
	char path[PATH_MAX];
	char *paths[1] = { path };

	put_str(fx, "one.eml", mail);
	fx_path(fx, "one.eml", path, sizeof(path));
	assert_int_equal(walk(fx, paths, 1, 0), 0);
	assert_int_equal(fx->rec.count, 1);
	assert_item(fx, 0, "one.eml", 0, mail);
	assert_int_equal(fx->rec.items[0].offset, 0);
}

static void
test_maildir(void **state)
{
	struct fixture *fx = *state;
	static const char mboxish[] = "From x@example.com\n\n\nFrom y\n";
	char path[PATH_MAX];
	char *paths[1] = { path };

	mkdir_in(fx, "md");
	mkdir_in(fx, "md/cur");
	mkdir_in(fx, "md/new");
	mkdir_in(fx, "md/tmp");
	put_str(fx, "md/new/2.host", "new two\n");
	put_str(fx, "md/new/1.host", "new one\n");
	put_str(fx, "md/new/.hidden", "hidden\n");
	put_str(fx, "md/cur/4.host:2,S", "cur four\n");
	put_str(fx, "md/cur/3.host:2,", mboxish);
	put_str(fx, "md/tmp/0.host", "being delivered\n");
	put_str(fx, "md/dovecot-uidlist", "3 V1 N5\n");
	fx_path(fx, "md", path, sizeof(path));
	assert_int_equal(walk(fx, paths, 1, 0), 0);
	assert_int_equal(fx->errors, 0);
	assert_int_equal(fx->rec.count, 4);
	assert_item(fx, 0, "md/new/1.host", 0, "new one\n");
	assert_item(fx, 1, "md/new/2.host", 0, "new two\n");
	/* A maildir file is one message, even when it looks like an mbox. */
	assert_item(fx, 2, "md/cur/3.host:2,", 0, mboxish);
	assert_item(fx, 3, "md/cur/4.host:2,S", 0, "cur four\n");
	assert_int_equal(fx->rec.note_count, 0);
}

static void
make_tree(const struct fixture *fx)
{
	char target[PATH_MAX], link[PATH_MAX];

	mkdir_in(fx, "d");
	put_str(fx, "d/b.xml", "b\n");
	put_str(fx, "d/a.xml", "a\n");
	put_str(fx, "d/z.xml", "z\n");
	mkdir_in(fx, "d/m");
	put_str(fx, "d/m/y", "m/y\n");
	put_str(fx, "d/m/x", "m/x\n");
	mkdir_in(fx, "d/m/deeper");
	put_str(fx, "d/m/deeper/w", "m/deeper/w\n");
	mkdir_in(fx, "d/n");
	mkdir_in(fx, "d/n/cur");
	mkdir_in(fx, "d/n/new");
	mkdir_in(fx, "d/n/tmp");
	put_str(fx, "d/n/cur/1", "n/cur/1\n");
	put_str(fx, "d/n/new/2", "n/new/2\n");
	put_str(fx, "d/n/tmp/3", "n/tmp/3\n");
	/* Links: to a file (followed), to a directory (never followed). */
	fx_path(fx, "d/a.xml", target, sizeof(target));
	fx_path(fx, "d/l.xml", link, sizeof(link));
	assert_int_equal(symlink(target, link), 0);
	fx_path(fx, "d", target, sizeof(target));
	fx_path(fx, "d/s", link, sizeof(link));
	assert_int_equal(symlink(target, link), 0);
}

static void
test_directory_not_recursive(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX], sub[PATH_MAX];
	char *paths[1] = { path };
	const char *subs[] = { "d/m", "d/n", "d/s" };
	size_t i;

	make_tree(fx);
	fx_path(fx, "d", path, sizeof(path));
	assert_int_equal(walk(fx, paths, 1, 0), 0);
	assert_int_equal(fx->errors, 0);
	assert_int_equal(fx->rec.count, 4);
	assert_item(fx, 0, "d/a.xml", 0, "a\n");
	assert_item(fx, 1, "d/b.xml", 0, "b\n");
	assert_item(fx, 2, "d/l.xml", 0, "a\n");
	assert_item(fx, 3, "d/z.xml", 0, "z\n");
	/* Each subdirectory noted once, in order, and not entered. */
	assert_int_equal(fx->rec.note_count, 3);
	for (i = 0; i < 3; i++) {
		fx_path(fx, subs[i], sub, sizeof(sub));
		assert_string_equal(fx->rec.note_paths[i], sub);
		assert_string_equal(fx->rec.note_texts[i],
		    "a directory, skipped (use --recursive)");
	}
}

static void
test_directory_recursive(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX], link[PATH_MAX];
	char *paths[1] = { path };

	make_tree(fx);
	fx_path(fx, "d", path, sizeof(path));
	assert_int_equal(walk(fx, paths, 1, 1), 0);
	assert_int_equal(fx->errors, 0);
	assert_int_equal(fx->rec.count, 9);
	assert_item(fx, 0, "d/a.xml", 0, "a\n");
	assert_item(fx, 1, "d/b.xml", 0, "b\n");
	assert_item(fx, 2, "d/l.xml", 0, "a\n");
	/* Depth first, sorted: m/deeper/ comes before m/x. */
	assert_item(fx, 3, "d/m/deeper/w", 0, "m/deeper/w\n");
	assert_item(fx, 4, "d/m/x", 0, "m/x\n");
	assert_item(fx, 5, "d/m/y", 0, "m/y\n");
	/* The maildir inside: new/ before cur/, no tmp/. */
	assert_item(fx, 6, "d/n/new/2", 0, "n/new/2\n");
	assert_item(fx, 7, "d/n/cur/1", 0, "n/cur/1\n");
	assert_item(fx, 8, "d/z.xml", 0, "z\n");
	/* The link back to d is noted, not followed (else: a loop). */
	assert_int_equal(fx->rec.note_count, 1);
	fx_path(fx, "d/s", link, sizeof(link));
	assert_string_equal(fx->rec.note_paths[0], link);
	assert_string_equal(fx->rec.note_texts[0],
	    "a symbolic link to a directory, not followed");
}

static void
test_dotfiles_skipped(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX];
	char *paths[1] = { path };
	int recursive;

	mkdir_in(fx, "d");
	put_str(fx, "d/.hidden", "hidden\n");
	put_str(fx, "d/visible", "visible\n");
	mkdir_in(fx, "d/.git");
	put_str(fx, "d/.git/config", "config\n");
	fx_path(fx, "d", path, sizeof(path));
	for (recursive = 0; recursive <= 1; recursive++) {
		recorder_free(&fx->rec);
		assert_int_equal(walk(fx, paths, 1, recursive), 0);
		assert_int_equal(fx->errors, 0);
		assert_int_equal(fx->rec.count, 1);
		assert_item(fx, 0, "d/visible", 0, "visible\n");
		assert_int_equal(fx->rec.note_count, 0);
	}
}

static void
test_missing_path_goes_on(void **state)
{
	struct fixture *fx = *state;
	char missing[PATH_MAX], there[PATH_MAX];
	char *paths[3] = { missing, there, missing };

	put_str(fx, "there", "there\n");
	fx_path(fx, "no-such-file", missing, sizeof(missing));
	fx_path(fx, "there", there, sizeof(there));
	assert_int_equal(walk(fx, paths, 3, 0), 0);
	assert_int_equal(fx->errors, 2);
	assert_int_equal(fx->rec.error_count, 2);
	assert_string_equal(fx->rec.error_paths[0], missing);
	assert_non_null(strstr(fx->rec.error_msgs[0], missing));
	assert_non_null(strstr(fx->rec.error_msgs[0], strerror(ENOENT)));
	assert_int_equal(fx->rec.error_codes[0], DM_E_NOINPUT);
	assert_int_equal(fx->rec.count, 1);
	assert_item(fx, 0, "there", 0, "there\n");
}

/* walk_with_stdin - run a walk of paths with fd 0 reading from fd. */
static int
walk_with_stdin(struct fixture *fx, int fd, char **paths, size_t n)
{
	int saved, r;

	saved = dup(STDIN_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
	r = walk(fx, paths, n, 0);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	return r;
}

static void
test_stdin_spooled_and_split(void **state)
{
	struct fixture *fx = *state;
	char mbox[sizeof(msg1) + sizeof(msg2)];
	char dash[] = "-";
	char *paths[2] = { dash, dash };
	int p[2];

	snprintf(mbox, sizeof(mbox), "%s%s", msg1, msg2);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], mbox, strlen(mbox)),
	    (ssize_t)strlen(mbox));
	close(p[1]);
	/* "-" twice: read once, noted. */
	assert_int_equal(walk_with_stdin(fx, p[0], paths, 2), 0);
	assert_int_equal(fx->errors, 0);
	assert_int_equal(fx->rec.count, 2);
	assert_string_equal(fx->rec.items[0].name, "-#1");
	assert_string_equal(fx->rec.items[1].name, "-#2");
	assert_string_equal(fx->rec.items[0].path, "-");
	assert_int_equal(fx->rec.items[0].length, strlen(msg1));
	assert_memory_equal(fx->rec.items[0].data, msg1, strlen(msg1));
	assert_int_equal(fx->rec.items[1].offset, strlen(msg1));
	assert_memory_equal(fx->rec.items[1].data, msg2, strlen(msg2));
	assert_mbox_ranges(fx, strlen(mbox));
	/* One spool, not fd 0, unlinked, and closed when the walk ends. */
	assert_int_equal(fx->rec.items[0].fd, fx->rec.items[1].fd);
	assert_int_not_equal(fx->rec.items[0].fd, STDIN_FILENO);
	assert_int_equal(fx->rec.items[0].nlink, 0);
	assert_fd_closed(fx->rec.items[0].fd);
	assert_int_equal(fx->rec.note_count, 1);
	assert_string_equal(fx->rec.note_paths[0], "-");
	assert_string_equal(fx->rec.note_texts[0],
	    "standard input given more than once, read once");
}

static void
test_stdin_big(void **state)
{
	struct fixture *fx = *state;
	size_t size = 200000, i;
	char path[PATH_MAX];
	char dash[] = "-";
	char *paths[1] = { dash };
	char *big;
	int fd;

	/* Bigger than a block and than a pipe, not an mbox. */
	big = malloc(size);
	assert_non_null(big);
	for (i = 0; i < size; i++)
		big[i] = (char)('a' + i % 23);
	put(fx, "big", big, size);
	fx_path(fx, "big", path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(walk_with_stdin(fx, fd, paths, 1), 0);
	assert_int_equal(fx->rec.count, 1);
	assert_string_equal(fx->rec.items[0].name, "-");
	assert_int_equal(fx->rec.items[0].whole_file, 1);
	assert_int_equal(fx->rec.items[0].mbox_index, 0);
	assert_int_equal(fx->rec.items[0].length, size);
	assert_memory_equal(fx->rec.items[0].data, big, size);
	assert_int_equal(fx->rec.items[0].nlink, 0);
	free(big);
}

static void
test_spool_in_tmpdir(void **state)
{
	struct fixture *fx = *state;
	struct inputs_options opt;
	struct inputs_callbacks cb;
	char dash[] = "-";
	char *paths[1] = { dash };
	char bad[PATH_MAX];
	unsigned errors = 0;
	int saved, p[2];

	/* A temporary directory that does not exist: the spool fails, and
	 * says where it tried. */
	fx_path(fx, "no-such-dir", bad, sizeof(bad));
	memset(&opt, 0, sizeof(opt));
	opt.tmpdir = bad;
	memset(&cb, 0, sizeof(cb));
	cb.ctx = &fx->rec;
	cb.item = rec_item;
	cb.error = rec_error;
	cb.note = rec_note;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	close(p[1]);
	saved = dup(STDIN_FILENO);
	assert_int_equal(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	close(p[0]);
	assert_int_equal(inputs_walk(paths, 1, &opt, &cb, &errors), 0);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	assert_int_equal(errors, 1);
	assert_int_equal(fx->rec.count, 0);
	assert_int_equal(fx->rec.error_count, 1);
	assert_string_equal(fx->rec.error_paths[0], "-");
	assert_non_null(strstr(fx->rec.error_msgs[0], bad));
	assert_non_null(strstr(fx->rec.error_msgs[0], strerror(ENOENT)));
}

static void
test_named_pipe_spooled(void **state)
{
	struct fixture *fx = *state;
	static const char text[] = "<feedback/>\n";
	char path[64];
	char *paths[1] = { path };
	struct stat st;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], text, strlen(text)),
	    (ssize_t)strlen(text));
	close(p[1]);
	snprintf(path, sizeof(path), "/dev/fd/%d", p[0]);
	if (stat(path, &st) != 0 || !S_ISFIFO(st.st_mode)) {
		close(p[0]);
		skip();
	}
	assert_int_equal(walk(fx, paths, 1, 0), 0);
	close(p[0]);
	assert_int_equal(fx->errors, 0);
	assert_int_equal(fx->rec.count, 1);
	assert_string_equal(fx->rec.items[0].name, path);
	assert_int_equal(fx->rec.items[0].whole_file, 1);
	assert_int_equal(fx->rec.items[0].length, strlen(text));
	assert_memory_equal(fx->rec.items[0].data, text, strlen(text));
	assert_int_equal(fx->rec.items[0].nlink, 0);
}

static void
test_item_stops_walk(void **state)
{
	struct fixture *fx = *state;
	char mbox[sizeof(msg1) + sizeof(msg2) + sizeof(msg3)];
	char inbox[PATH_MAX], other[PATH_MAX];
	char *paths[2] = { inbox, other };

	snprintf(mbox, sizeof(mbox), "%s%s%s", msg1, msg2, msg3);
	put_str(fx, "inbox", mbox);
	put_str(fx, "other", "other\n");
	fx_path(fx, "inbox", inbox, sizeof(inbox));
	fx_path(fx, "other", other, sizeof(other));
	fx->rec.stop_at = 2;
	assert_int_equal(walk(fx, paths, 2, 0), -1);
	assert_int_equal(fx->rec.count, 2);
	assert_int_equal(fx->errors, 0);
	assert_fd_closed(fx->rec.items[1].fd);
}

static void
test_read_within_range(void **state)
{
	struct fixture *fx = *state;
	char mbox[sizeof(msg1) + sizeof(msg2)];
	struct inputs_item item;
	struct dm_error err;
	char buf[sizeof(mbox)];
	char path[PATH_MAX];
	int fd;

	snprintf(mbox, sizeof(mbox), "%s%s", msg1, msg2);
	put_str(fx, "inbox", mbox);
	fx_path(fx, "inbox", path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	memset(&item, 0, sizeof(item));
	item.name = "inbox#1";
	item.path = path;
	item.fd = fd;
	item.offset = 0;
	item.length = strlen(msg1);
	/* Asking for everything gives the first message only. */
	assert_int_equal(inputs_read(&item, 0, buf, sizeof(buf), &err),
	    (ssize_t)strlen(msg1));
	assert_memory_equal(buf, msg1, strlen(msg1));
	assert_int_equal(inputs_read(&item, 5, buf, 4, &err), 4);
	assert_memory_equal(buf, msg1 + 5, 4);
	assert_int_equal(inputs_read(&item, strlen(msg1), buf, 1, &err), 0);
	/* A range past the end of the file (it shrank): an error. */
	item.offset = strlen(mbox);
	item.length = 10;
	dm_error_clear(&err);
	assert_int_equal(inputs_read(&item, 0, buf, 10, &err), -1);
	assert_int_equal(err.code, DM_E_IO);
	assert_non_null(strstr(err.msg, "inbox#1"));
	close(fd);
}

/*
 * Three walks with shares = 3 over the same maildir, an mbox and a missing
 * path: every file is read by exactly one of them (an mbox's messages all
 * by the same one), each under its path's share, and the missing path's
 * error is reported once.
 */
static void
test_shares(void **state)
{
	struct fixture *fx = *state;
	char mbox[sizeof(msg1) + sizeof(msg2)];
	char md[PATH_MAX], box[PATH_MAX], missing[PATH_MAX];
	char *paths[3] = { md, box, missing };
	struct inputs_options opt;
	struct inputs_callbacks cb;
	unsigned k, seen[3] = { 0, 0, 0 }, items = 0, errors = 0, used = 0;
	size_t i;

	mkdir_in(fx, "md");
	mkdir_in(fx, "md/cur");
	mkdir_in(fx, "md/new");
	mkdir_in(fx, "md/tmp");
	for (i = 0; i < 30; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "md/new/%zu.host", i);
		put_str(fx, rel, "a message\n");
	}
	snprintf(mbox, sizeof(mbox), "%s%s", msg1, msg2);
	put_str(fx, "inbox", mbox);
	fx_path(fx, "md", md, sizeof(md));
	fx_path(fx, "inbox", box, sizeof(box));
	fx_path(fx, "no-such-file", missing, sizeof(missing));
	for (k = 0; k < 3; k++) {
		memset(&opt, 0, sizeof(opt));
		opt.tmpdir = fx->dir;
		opt.share = k;
		opt.shares = 3;
		memset(&cb, 0, sizeof(cb));
		cb.ctx = &fx->rec;
		cb.item = rec_item;
		cb.error = rec_error;
		cb.note = rec_note;
		assert_int_equal(inputs_walk(paths, 3, &opt, &cb, NULL), 0);
		for (i = 0; i < fx->rec.count; i++) {
			const char *path = fx->rec.items[i].path;

			assert_int_equal(inputs_share(path, 3), k);
			if (strcmp(path, box) == 0)
				seen[k] |= 1;
		}
		if (fx->rec.count > 0)
			used++;
		for (i = 0; i < fx->rec.error_count; i++) {
			assert_string_equal(fx->rec.error_paths[i], missing);
			assert_int_equal(inputs_share(missing, 3), k);
		}
		items += (unsigned)fx->rec.count;
		errors += (unsigned)fx->rec.error_count;
		recorder_free(&fx->rec);
	}
	/* 30 maildir files and the mbox's two messages, each once. */
	assert_int_equal(items, 32);
	assert_int_equal(errors, 1);
	assert_int_equal(seen[0] + seen[1] + seen[2], 1);
	/* The hash spreads 30 names over the three shares. */
	assert_int_equal(used, 3);
	assert_int_equal(inputs_share(md, 1), 0);
	assert_int_equal(inputs_share(md, 0), 0);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_single_file),
		T(test_mbox_three_messages),
		T(test_mbox_from_in_body_is_no_separator),
		T(test_separator_across_block_boundary),
		T(test_from_line_one_message),
		T(test_maildir),
		T(test_directory_not_recursive),
		T(test_directory_recursive),
		T(test_dotfiles_skipped),
		T(test_missing_path_goes_on),
		T(test_stdin_spooled_and_split),
		T(test_stdin_big),
		T(test_spool_in_tmpdir),
		T(test_named_pipe_spooled),
		T(test_item_stops_walk),
		T(test_read_within_range),
		T(test_shares),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
