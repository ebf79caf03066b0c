/*
 * inputs.c - the PATH... of "dmarcd ingest" as single inputs: files,
 * mbox messages, maildir and directory entries, standard input.
 *
 * inputs.h says what each kind of path gives. Files are read with
 * pread() only, into one INPUTS_BLOCK buffer for the whole walk, so that
 * item() may read the same fd while the mbox scan is under way without
 * either moving the other's position. Items are handed on as soon as
 * their end is known: a message when the next From_ line is found, the
 * last one at the end of the file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/inputs.h"

/* What the walk does next: go on, or stop because item() said so. */
#define WALK_ON		0
#define WALK_STOP	(-1)

#define FROM_LINE	"From "
#define FROM_LEN	5

struct walk {
	const struct inputs_options *opt;
	const struct inputs_callbacks *cb;
	unsigned errors;
	int stdin_seen;
	int stdin_fd;		/* the spool of "-"; -1 until it is read */
	unsigned char *block;	/* INPUTS_BLOCK bytes */
};

/* The names in one directory, sorted. */
struct listing {
	char **names;
	size_t count;
	size_t size;
};

static int walk_dir(struct walk *w, const char *path, unsigned depth);

/* Errors and notes */

static int
errno_error(struct dm_error *err, const char *doing, const char *path,
    int errnum)
{
	enum dm_error_code code = DM_E_IO;

	if (errnum == ENOENT || errnum == ENOTDIR)
		code = DM_E_NOINPUT;
	else if (errnum == ENOMEM)
		code = DM_E_NOMEM;
	return dm_error_set(err, code, "cannot %s %s: %s", doing, path,
	    strerror(errnum));
}

unsigned
inputs_share(const char *path, unsigned shares)
{
	uint32_t h = 2166136261U;

	for (; *path != '\0'; path++)
		h = (h ^ (unsigned char)*path) * 16777619U;
	return shares > 1 ? h % shares : 0;
}

/* Whether this walk reads (and speaks of) path. */
static int
owns(const struct walk *w, const char *path)
{
	return w->opt->shares <= 1 ||
	    inputs_share(path, w->opt->shares) == w->opt->share;
}

static void
walk_error(struct walk *w, const char *path, const struct dm_error *err)
{
	if (!owns(w, path))
		return;
	w->errors++;
	if (w->cb->error != NULL)
		w->cb->error(w->cb->ctx, path, err);
}

static void
walk_errno(struct walk *w, const char *path, const char *doing, int errnum)
{
	struct dm_error err;

	errno_error(&err, doing, path, errnum);
	walk_error(w, path, &err);
}

static void
walk_note(struct walk *w, const char *path, const char *text)
{
	if (owns(w, path) && w->cb->note != NULL)
		w->cb->note(w->cb->ctx, path, text);
}

/* Reading */

/* pread_full - up to len bytes at off; fewer only at the end of the file. */
static ssize_t
pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done,
		    (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* fill - the block from off; *eof_r when the file ends inside it. */
static int
fill(struct walk *w, int fd, uint64_t off, size_t *len_r, int *eof_r)
{
	ssize_t n;

	n = pread_full(fd, w->block, INPUTS_BLOCK, off);
	if (n < 0)
		return -1;
	*len_r = (size_t)n;
	*eof_r = (size_t)n < INPUTS_BLOCK;
	return 0;
}

static int
write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, (const char *)buf + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* read_some - read(2) that waits when the descriptor is non-blocking. */
static ssize_t
read_some(int fd, void *buf, size_t len)
{
	struct pollfd pfd;
	ssize_t n;

	for (;;) {
		n = read(fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
}

/* Items */

static int
emit(struct walk *w, const char *path, int fd, uint64_t offset,
    uint64_t length, int whole_file, unsigned mbox_index)
{
	struct inputs_item item;
	struct dm_error err;
	char *name = NULL;
	size_t size;
	int stop;

	memset(&item, 0, sizeof(item));
	item.name = path;
	item.path = path;
	item.fd = fd;
	item.offset = offset;
	item.length = length;
	item.whole_file = whole_file;
	item.mbox_index = mbox_index;
	if (mbox_index > 0) {
		size = strlen(path) + sizeof("#4294967295");
		name = malloc(size);
		if (name == NULL) {
			dm_error_set(&err, DM_E_NOMEM, "%s: message %u: out "
			    "of memory", path, mbox_index);
			walk_error(w, path, &err);
			return WALK_ON;
		}
		snprintf(name, size, "%s#%u", path, mbox_index);
		item.name = name;
	}
	stop = w->cb->item(w->cb->ctx, &item) != 0;
	free(name);
	return stop ? WALK_STOP : WALK_ON;
}

/*
 * walk_fd - the inputs in one open regular file: the whole file, or each
 * message of an mbox. The scan goes from line start to line start; a
 * line start seen with fewer than FROM_LEN bytes left in the block is
 * looked at again from the start of the next block, so a separator is
 * found wherever the block boundaries fall.
 */
static int
walk_fd(struct walk *w, int fd, const char *path, int may_split)
{
	const unsigned char *buf = w->block, *nl;
	uint64_t base = 0, start = 0;
	unsigned index = 1;
	int eof, in_line = 0, prev_empty = 0;
	size_t len, i = 0;
	struct stat st;

	if (!may_split) {
		if (fstat(fd, &st) != 0) {
			walk_errno(w, path, "read", errno);
			return WALK_ON;
		}
		return emit(w, path, fd, 0, (uint64_t)st.st_size, 1, 0);
	}
	if (fill(w, fd, 0, &len, &eof) != 0)
		goto read_error;
	if (len < FROM_LEN || memcmp(buf, FROM_LINE, FROM_LEN) != 0) {
		if (eof)
			return emit(w, path, fd, 0, len, 1, 0);
		if (fstat(fd, &st) != 0)
			goto read_error;
		return emit(w, path, fd, 0, (uint64_t)st.st_size, 1, 0);
	}
	for (;;) {
		if (in_line) {
			nl = memchr(buf + i, '\n', len - i);
			if (nl == NULL) {
				if (eof)
					break;
				base += len;
				i = 0;
				if (fill(w, fd, base, &len, &eof) != 0)
					goto read_error;
				continue;
			}
			i = (size_t)(nl - buf) + 1;
			in_line = 0;
		}
		/* At a line start: see its first bytes whole, or the end. */
		if (len - i < FROM_LEN && !eof) {
			base += i;
			i = 0;
			if (fill(w, fd, base, &len, &eof) != 0)
				goto read_error;
			continue;
		}
		if (i == len)
			break;
		if (prev_empty && len - i >= FROM_LEN &&
		    memcmp(buf + i, FROM_LINE, FROM_LEN) == 0) {
			if (emit(w, path, fd, start, base + i - start, 0,
			    index) != WALK_ON)
				return WALK_STOP;
			start = base + i;
			index++;
		}
		prev_empty = buf[i] == '\n' ||
		    (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n');
		in_line = 1;
	}
	if (index == 1)
		return emit(w, path, fd, 0, base + len, 1, 0);
	return emit(w, path, fd, start, base + len - start, 0, index);

read_error:
	walk_errno(w, path, "read", errno);
	return WALK_ON;
}

/* walk_file - open a regular file by name and walk it. */
static int
walk_file(struct walk *w, const char *path, int may_split, int listed)
{
	struct stat st;
	int fd, r;

	if (!owns(w, path))
		return WALK_ON;
	/* O_NONBLOCK: should a FIFO take the file's place, do not hang. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (listed && errno == ENOENT)
			walk_note(w, path, "vanished before it could be read, "
			    "skipped");
		else
			walk_errno(w, path, "open", errno);
		return WALK_ON;
	}
	if (fstat(fd, &st) != 0) {
		walk_errno(w, path, "read", errno);
		close(fd);
		return WALK_ON;
	}
	if (!S_ISREG(st.st_mode)) {
		walk_note(w, path, "not a regular file, skipped");
		close(fd);
		return WALK_ON;
	}
	r = walk_fd(w, fd, path, may_split);
	close(fd);
	return r;
}

/* Spooling */

static const char *
spool_dir(const struct inputs_options *opt)
{
	const char *dir = opt->tmpdir;

	if (dir == NULL || dir[0] == '\0')
		dir = getenv("TMPDIR");
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	return dir;
}

/*
 * spool_fail - a spool file that cannot be made or written: a full
 * directory (ENOSPC, EDQUOT) is temporary (exit 75: the same input goes
 * through once there is space), anything else an I/O error.
 */
static int
spool_fail(struct dm_error *err, const char *label, const char *dir,
    int errnum)
{
	char what[512];

	snprintf(what, sizeof(what), "cannot spool %s", label);
	return dm_error_tmpdir(err, what, dir, errnum,
	    "run again once there is space");
}

/*
 * spool - copy src to an unlinked file in the temporary directory, so
 * that it can be read again and at any offset; *fd_r is that file.
 */
static int
spool(struct walk *w, int src, const char *label, int *fd_r,
    struct dm_error *err)
{
	const char *dir = spool_dir(w->opt);
	size_t size;
	ssize_t n;
	char *tmpl;
	int fd, e;

	size = strlen(dir) + sizeof("/dmarcd-spool.XXXXXX");
	tmpl = malloc(size);
	if (tmpl == NULL)
		return dm_error_set(err, DM_E_NOMEM, "cannot spool %s: out "
		    "of memory", label);
	snprintf(tmpl, size, "%s/dmarcd-spool.XXXXXX", dir);
	fd = mkstemp(tmpl);
	if (fd < 0) {
		e = errno;
		free(tmpl);
		return spool_fail(err, label, dir, e);
	}
	(void)unlink(tmpl);
	free(tmpl);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	for (;;) {
		n = read_some(src, w->block, INPUTS_BLOCK);
		if (n < 0) {
			e = errno;
			close(fd);
			return dm_error_set(err, DM_E_IO, "cannot read %s: %s",
			    label, strerror(e));
		}
		if (n == 0)
			break;
		if (write_full(fd, w->block, (size_t)n) != 0) {
			e = errno;
			close(fd);
			return spool_fail(err, label, dir, e);
		}
	}
	*fd_r = fd;
	return 0;
}

/* walk_stdin - "-"; the spool stays open until the walk ends. */
static int
walk_stdin(struct walk *w)
{
	struct dm_error err;

	if (w->stdin_seen) {
		walk_note(w, "-", "standard input given more than once, "
		    "read once");
		return WALK_ON;
	}
	w->stdin_seen = 1;
	if (spool(w, STDIN_FILENO, "standard input", &w->stdin_fd,
	    &err) != 0) {
		walk_error(w, "-", &err);
		return WALK_ON;
	}
	return walk_fd(w, w->stdin_fd, "-", 1);
}

/* walk_fifo - a named pipe such as bash's <(...): spooled like "-". */
static int
walk_fifo(struct walk *w, const char *path)
{
	struct dm_error err;
	int src, fd, r;

	src = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (src < 0) {
		walk_errno(w, path, "open", errno);
		return WALK_ON;
	}
	r = spool(w, src, path, &fd, &err);
	close(src);
	if (r != 0) {
		walk_error(w, path, &err);
		return WALK_ON;
	}
	r = walk_fd(w, fd, path, 1);
	close(fd);
	return r;
}

/* Directories */

static char *
path_join(const char *dir, const char *name)
{
	size_t dlen = strlen(dir), nlen = strlen(name);
	char *path;

	path = malloc(dlen + nlen + 2);
	if (path == NULL)
		return NULL;
	memcpy(path, dir, dlen);
	if (dlen == 0 || dir[dlen - 1] != '/')
		path[dlen++] = '/';
	memcpy(path + dlen, name, nlen + 1);
	return path;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
listing_free(struct listing *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

static int
listing_add(struct listing *l, const char *name)
{
	char **names;
	size_t size;

	if (l->count == l->size) {
		size = l->size == 0 ? 64 : l->size * 2;
		names = realloc(l->names, size * sizeof(*names));
		if (names == NULL)
			return -1;
		l->names = names;
		l->size = size;
	}
	l->names[l->count] = strdup(name);
	if (l->names[l->count] == NULL)
		return -1;
	l->count++;
	return 0;
}

/* list_dir - the names in path that do not start with ".", sorted. */
static int
list_dir(const char *path, struct listing *l, struct dm_error *err)
{
	struct dirent *de;
	DIR *dir;
	int e;

	memset(l, 0, sizeof(*l));
	dir = opendir(path);
	if (dir == NULL)
		return errno_error(err, "read directory", path, errno);
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (de == NULL) {
			if (errno == 0)
				break;
			e = errno;
			closedir(dir);
			listing_free(l);
			return errno_error(err, "read directory", path, e);
		}
		if (de->d_name[0] == '.')
			continue;
		if (l->count >= INPUTS_MAX_DIR_ENTRIES) {
			closedir(dir);
			listing_free(l);
			return dm_error_set(err, DM_E_LIMIT, "cannot read "
			    "directory %s: more than %u entries", path,
			    INPUTS_MAX_DIR_ENTRIES);
		}
		if (listing_add(l, de->d_name) != 0) {
			closedir(dir);
			listing_free(l);
			return errno_error(err, "read directory", path,
			    ENOMEM);
		}
	}
	closedir(dir);
	if (l->count > 1)
		qsort(l->names, l->count, sizeof(*l->names), cmp_names);
	return 0;
}

static int
is_subdir(const char *path, const char *name)
{
	struct stat st;
	char *sub;
	int r;

	sub = path_join(path, name);
	if (sub == NULL)
		return 0;
	r = stat(sub, &st) == 0 && S_ISDIR(st.st_mode);
	free(sub);
	return r;
}

/*
 * stat_entry - stat a listed name, following links. 0 when it is there;
 * -1 when not, after a note (vanished since the listing) or an error (a
 * dangling symbolic link, anything else).
 */
static int
stat_entry(struct walk *w, const char *path, struct stat *st)
{
	struct stat lst;
	int e;

	if (stat(path, st) == 0)
		return 0;
	e = errno;
	if (e == ENOENT && lstat(path, &lst) != 0)
		walk_note(w, path, "vanished before it could be read, skipped");
	else
		walk_errno(w, path, "read", e);
	return -1;
}

/* walk_maildir_sub - the files in new/ or cur/, each one message. */
static int
walk_maildir_sub(struct walk *w, const char *maildir, const char *name)
{
	struct listing l;
	struct dm_error err;
	struct stat st;
	char *dir, *path;
	int r = WALK_ON;
	size_t i;

	dir = path_join(maildir, name);
	if (dir == NULL) {
		walk_errno(w, maildir, "read maildir", ENOMEM);
		return WALK_ON;
	}
	if (list_dir(dir, &l, &err) != 0) {
		walk_error(w, dir, &err);
		free(dir);
		return WALK_ON;
	}
	for (i = 0; i < l.count && r == WALK_ON; i++) {
		path = path_join(dir, l.names[i]);
		if (path == NULL) {
			walk_errno(w, dir, "read directory", ENOMEM);
			break;
		}
		if (stat_entry(w, path, &st) == 0) {
			if (S_ISREG(st.st_mode))
				r = walk_file(w, path, 0, 1);
			else
				walk_note(w, path, "not a regular file, "
				    "skipped");
		}
		free(path);
	}
	listing_free(&l);
	free(dir);
	return r;
}

/* walk_entry - one name listed in a plain directory. */
static int
walk_entry(struct walk *w, const char *path, unsigned depth)
{
	struct stat st, lst;

	if (stat_entry(w, path, &st) != 0)
		return WALK_ON;
	if (S_ISREG(st.st_mode))
		return walk_file(w, path, 1, 1);
	if (!S_ISDIR(st.st_mode)) {
		walk_note(w, path, "not a regular file, skipped");
		return WALK_ON;
	}
	if (!w->opt->recursive) {
		walk_note(w, path, "a directory, skipped (use --recursive)");
		return WALK_ON;
	}
	/* A link may point up the tree: follow only real directories. */
	if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
		walk_note(w, path, "a symbolic link to a directory, not "
		    "followed");
		return WALK_ON;
	}
	return walk_dir(w, path, depth + 1);
}

/* walk_dir - a maildir, or the sorted entries of a plain directory. */
static int
walk_dir(struct walk *w, const char *path, unsigned depth)
{
	struct listing l;
	struct dm_error err;
	char *entry;
	int r = WALK_ON;
	size_t i;

	if (depth > INPUTS_MAX_DEPTH) {
		dm_error_set(&err, DM_E_LIMIT, "cannot read directory %s: "
		    "more than %d levels deep, not entered", path,
		    INPUTS_MAX_DEPTH);
		walk_error(w, path, &err);
		return WALK_ON;
	}
	if (is_subdir(path, "cur") && is_subdir(path, "new")) {
		r = walk_maildir_sub(w, path, "new");
		if (r == WALK_ON)
			r = walk_maildir_sub(w, path, "cur");
		return r;
	}
	if (list_dir(path, &l, &err) != 0) {
		walk_error(w, path, &err);
		return WALK_ON;
	}
	for (i = 0; i < l.count && r == WALK_ON; i++) {
		entry = path_join(path, l.names[i]);
		if (entry == NULL) {
			walk_errno(w, path, "read directory", ENOMEM);
			break;
		}
		r = walk_entry(w, entry, depth);
		free(entry);
	}
	listing_free(&l);
	return r;
}

/* walk_path - one PATH of the command line. */
static int
walk_path(struct walk *w, const char *path)
{
	struct dm_error err;
	struct stat st;

	if (strcmp(path, "-") == 0)
		return walk_stdin(w);
	if (stat(path, &st) != 0) {
		walk_errno(w, path, "read", errno);
		return WALK_ON;
	}
	if (S_ISDIR(st.st_mode))
		return walk_dir(w, path, 0);
	if (S_ISREG(st.st_mode))
		return walk_file(w, path, 1, 0);
	if (S_ISFIFO(st.st_mode))
		return owns(w, path) ? walk_fifo(w, path) : WALK_ON;
	dm_error_set(&err, DM_E_NOINPUT, "cannot read %s: not a regular "
	    "file, a directory or a pipe", path);
	walk_error(w, path, &err);
	return WALK_ON;
}

int
inputs_walk(char *const *paths, size_t n, const struct inputs_options *opt,
    const struct inputs_callbacks *cb, unsigned *errors_r)
{
	static const struct inputs_options defaults;
	struct walk w;
	int r = WALK_ON;
	size_t i;

	memset(&w, 0, sizeof(w));
	w.opt = opt != NULL ? opt : &defaults;
	w.cb = cb;
	w.stdin_fd = -1;
	w.block = malloc(INPUTS_BLOCK);
	for (i = 0; i < n && r == WALK_ON; i++) {
		if (w.block == NULL)
			walk_errno(&w, paths[i], "read", ENOMEM);
		else
			r = walk_path(&w, paths[i]);
	}
	if (w.stdin_fd >= 0)
		close(w.stdin_fd);
	free(w.block);
	if (errors_r != NULL)
		*errors_r = w.errors;
	return r == WALK_STOP ? -1 : 0;
}

ssize_t
inputs_read(const struct inputs_item *item, uint64_t pos, void *buf,
    size_t len, struct dm_error *err)
{
	ssize_t n;

	if (pos >= item->length || len == 0)
		return 0;
	if (len > item->length - pos)
		len = (size_t)(item->length - pos);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	n = pread_full(item->fd, buf, len, item->offset + pos);
	if (n < 0)
		return dm_error_set(err, DM_E_IO, "cannot read %s: %s",
		    item->name, strerror(errno));
	if (n == 0)
		return dm_error_set(err, DM_E_IO, "cannot read %s: the file "
		    "ends %" PRIu64 " bytes before the input does",
		    item->name, item->length - pos);
	return n;
}
