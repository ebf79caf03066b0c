/*
 * replay.c - run one fuzz target's LLVMFuzzerTestOneInput over files,
 * without libFuzzer: the regression runner of every build (gcc or
 * clang, with or without sanitizers). Linked once per target
 * (tests/fuzz/local.mk: replay_TARGET).
 *
 *	replay_TARGET FILE|DIR...
 *
 * A directory stands for its regular files, in name order, except
 * README* and dot files. Each input is read whole (up to REPLAY_MAX
 * bytes) and given to the target once, as libFuzzer would. A crash ends
 * the process with the signal (or the sanitizer's exit code), which is
 * how replay.sh sees it; the name of the input being run is printed
 * first, so the log says which one it was.
 *
 * DIAGNOSTICS
 *	Exit 0: every input ran. 66 (EX_NOINPUT): a file or directory
 *	cannot be read. 65 (EX_DATAERR): a file larger than REPLAY_MAX.
 *	64 (EX_USAGE): no argument.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX	(16 << 20)

static unsigned long replayed;

static int
replay_file(const char *path)
{
	uint8_t *data;
	FILE *fp;
	struct stat st;
	size_t size;

	fp = fopen(path, "rb");
	if (fp == NULL || fstat(fileno(fp), &st) != 0) {
		fprintf(stderr, "replay: cannot read %s: %s\n", path,
		    strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return EX_NOINPUT;
	}
	if (st.st_size > REPLAY_MAX) {
		fprintf(stderr, "replay: %s: larger than %d bytes\n", path,
		    REPLAY_MAX);
		fclose(fp);
		return EX_DATAERR;
	}
	/* The exact size (malloc(0) avoided), so that ASan sees a read
	 * past the end. */
	data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (data == NULL) {
		fclose(fp);
		return EX_OSERR;
	}
	size = fread(data, 1, (size_t)st.st_size, fp);
	if (ferror(fp)) {
		fprintf(stderr, "replay: cannot read %s: %s\n", path,
		    strerror(errno));
		free(data);
		fclose(fp);
		return EX_NOINPUT;
	}
	fclose(fp);
	printf("replay %s (%zu bytes)\n", path, size);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	replayed++;
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
replay_dir(const char *dir)
{
	struct dirent *e;
	char **names = NULL, path[4096];
	size_t count = 0, alloc = 0, i;
	struct stat st;
	DIR *d;
	int rc = 0, one;

	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "replay: cannot open %s: %s\n", dir,
		    strerror(errno));
		return EX_NOINPUT;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0)
			continue;
		if (count == alloc) {
			char **more;

			alloc = alloc ? alloc * 2 : 64;
			more = realloc(names, alloc * sizeof(*names));
			if (more == NULL) {
				rc = EX_OSERR;
				break;
			}
			names = more;
		}
		if ((names[count] = strdup(e->d_name)) == NULL) {
			rc = EX_OSERR;
			break;
		}
		count++;
	}
	closedir(d);
	if (count > 0)
		qsort(names, count, sizeof(*names), by_name);
	for (i = 0; i < count; i++) {
		if (rc == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
			    (one = replay_file(path)) != 0)
				rc = one;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	struct stat st;
	int i, rc = 0, one;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return EX_USAGE;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			one = replay_dir(argv[i]);
		else
			one = replay_file(argv[i]);
		if (one != 0 && rc == 0)
			rc = one;
	}
	printf("replayed %lu inputs\n", replayed);
	return rc;
}
