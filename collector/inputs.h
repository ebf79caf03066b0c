/*
 * inputs.h - turn the PATH... of "dmarcd ingest" into single inputs.
 *
 * An input is one mail message or one report file, handed to the caller
 * as a byte range of an open, seekable file:
 *
 *	-		standard input, spooled to an unlinked file in the
 *			temporary directory, then read like a regular file.
 *	a regular file	one input; an mbox (see below) is one input per
 *			message, named "path#N" (1-based).
 *	a FIFO		(e.g. bash's <(zcat ...)) spooled like standard
 *			input.
 *	a maildir	(has cur/ and new/) the files in new/, then in cur/,
 *			each sorted by name; never tmp/. One input per file,
 *			never split: a maildir file is one message.
 *	a directory	its regular files sorted by name; subdirectories
 *			only with recursive (depth first, sorted; a maildir
 *			inside is walked as a maildir), otherwise each is
 *			noted as skipped. Names starting with "." are
 *			skipped. Symbolic links to files are followed, to
 *			directories only when named on the command line.
 *
 * An mbox is a file whose first line is a From_ line ("From ") and that
 * has at least one more From_ line, that is a line starting with "From "
 * right after an empty line ("\n\nFrom ", or "\r\n\r\nFrom "). Each
 * message runs from its From_ line, included, to the next one; the empty
 * line before a From_ line stays with the message before it. A file
 * starting with "From " and holding one message is one whole-file input.
 * The scan reads INPUTS_BLOCK bytes at a time, so memory stays constant
 * whatever the size of the mbox, and items are handed on as they are
 * found.
 *
 * Memory: one INPUTS_BLOCK buffer, and the sorted listing of each
 * directory on the way down from the named one (at most
 * INPUTS_MAX_DIR_ENTRIES names each, at most INPUTS_MAX_DEPTH levels).
 *
 * DIAGNOSTICS: a path that does not exist or cannot be read, a directory
 * too big or too deep, a failed spool and a read error during the mbox
 * scan go to error() with a sentence that names the path and the reason
 * (DM_E_NOINPUT for a missing path, DM_E_LIMIT for the caps, DM_E_IO
 * otherwise), are counted in *errors_r, and the walk goes on with the
 * next path. Things skipped on purpose (a subdirectory without
 * recursive, a symbolic link to a directory, a device, a file that
 * vanished from a directory between its listing and its opening, "-"
 * given twice) go to note(). inputs_walk returns -1 only when item()
 * asked it to stop.
 */
#ifndef COLLECTOR_INPUTS_H
#define COLLECTOR_INPUTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

#define INPUTS_BLOCK		(64 * 1024)	/* one read of spool and scan */
#define INPUTS_MAX_DEPTH	64		/* levels below a named dir */
#define INPUTS_MAX_DIR_ENTRIES	(1U << 21)	/* names in one directory */

struct inputs_item {
	const char *name;	/* "path", "path#3" for the 3rd mbox message
				 * (1-based), "-" or "-#2" for stdin */
	const char *path;	/* the file it is in ("-" for stdin) */
	int fd;			/* open, readable, seekable regular file (the
				 * spool for stdin) */
	uint64_t offset;	/* where this input starts in fd */
	uint64_t length;	/* its length in bytes */
	int whole_file;		/* 1 when offset 0 and length = file size */
	unsigned mbox_index;	/* 0 if not from an mbox, else 1-based */
};

/*
 * The item and everything it points to are valid only during the item()
 * call: the walker closes the fd afterwards (the spool of standard input
 * when the walk ends). item() must not change the file offset of fd
 * expecting it to stay; the walker reads with pread() only. error and
 * note may be NULL.
 */
struct inputs_callbacks {
	void *ctx;
	/* return 0 to go on, -1 to stop the walk (inputs_walk returns -1) */
	int (*item)(void *ctx, const struct inputs_item *item);
	void (*error)(void *ctx, const char *path, const struct dm_error *err);
	/* text is a sentence about path: "a directory, skipped (use
	 * --recursive)"; print it as "path: text". */
	void (*note)(void *ctx, const char *path, const char *text);
};

struct inputs_options {
	int recursive;
	const char *tmpdir;	/* for the spool; NULL: $TMPDIR, then /tmp */
	/*
	 * With shares > 1, one of several processes walking the same paths:
	 * only the files whose path hashes to share (inputs_share) are
	 * read, and only such paths' errors and notes reported. 0 or 1:
	 * every file.
	 */
	unsigned share, shares;
};

/* inputs_share - which of shares a path belongs to (FNV-1a of it). */
unsigned inputs_share(const char *path, unsigned shares);

/*
 * inputs_walk - every input under paths[0..n), in order. Returns 0, or -1
 * when item() stopped it; per-path errors go to error() and are counted
 * in *errors_r (which may be NULL).
 */
int inputs_walk(char *const *paths, size_t n,
    const struct inputs_options *opt, const struct inputs_callbacks *cb,
    unsigned *errors_r);

/*
 * inputs_read - read up to len bytes at pos, counted from the start of
 * the item, within the item's range (pread, EINTR-safe). Returns the
 * bytes read (fewer than len only at the end of the item), 0 at the end
 * of the item, -1 with err (DM_E_IO) on a read error or when the file
 * ends before the item does.
 */
ssize_t inputs_read(const struct inputs_item *item, uint64_t pos, void *buf,
    size_t len, struct dm_error *err);

#endif
