/*
 * fuzz_config.c - libFuzzer target for common/config.c: the input is a
 * configuration file, read by dm_config_load_file() as dmarcd reads
 * /etc/dmarcd/dmarcd.conf (libinih, every section and key, the account
 * checks), then copied, redacted and freed.
 *
 * The file is one regular file in a private directory made once (under
 * $TMPDIR, else /tmp), written again for each input, so the path never
 * changes (messages name it); not a memfd, whose /proc/self/fd path is a
 * link, which dmarcd refuses as root. The first byte's low bit loads the
 * file a second time into the same struct, which merges accounts; its
 * high bit makes the file mode 0644 instead of 0600, where a secret
 * written in the file is refused (and that message must not quote it
 * either). *_file keys name files that are not there (or not private):
 * their errors are paths like any other.
 *
 * config.h promises that messages never quote a conninfo, a password, a
 * client secret, a token or a webhook URL. So the value of each such key
 * in the input (12 bytes or more, found once in the whole input, so that
 * no other key can have put it there) must not appear in an error
 * message, unless the message still holds it once the value is
 * overwritten (a fixed text that happens to hold it): it aborts if it
 * does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT	(64 * 1024)

static size_t fuzz_sink;

static const char *const secret_keys[] = {
	"conninfo", "api_conninfo", "database", "password",
	"oauth2_client_secret", "oauth2_refresh_token", "webhook", NULL
};

#define SECRET_MIN	12

static size_t
occurrences(const uint8_t *data, size_t size, const char *text, size_t len)
{
	const uint8_t *at = data, *end = data + size;
	size_t n = 0;

	while (at < end && (at = memmem(at, (size_t)(end - at), text,
	    len)) != NULL) {
		n++;
		at++;
	}
	return n;
}

static mode_t file_mode = 0600;	/* of the next file_of() */
static char file_dir[4096];

static void
remove_file(void)
{
	char path[sizeof(file_dir) + 16];

	snprintf(path, sizeof(path), "%s/dmarcd.conf", file_dir);
	unlink(path);
	rmdir(file_dir);
}

static int
file_of(const uint8_t *data, size_t size, char *path, size_t path_size)
{
	static int fd = -1;
	const char *tmp;
	size_t off = 0;
	ssize_t n;

	if (fd < 0) {
		tmp = getenv("TMPDIR");
		if (tmp == NULL || tmp[0] == '\0')
			tmp = "/tmp";
		if ((size_t)snprintf(file_dir, sizeof(file_dir),
		    "%s/fuzz_config.XXXXXX", tmp) >= sizeof(file_dir) ||
		    mkdtemp(file_dir) == NULL) {
			perror("fuzz_config: mkdtemp");
			abort();
		}
		atexit(remove_file);
	}
	if ((size_t)snprintf(path, path_size, "%s/dmarcd.conf", file_dir) >=
	    path_size)
		abort();
	if (fd < 0) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			perror("fuzz_config: open");
			abort();
		}
	}
	if (ftruncate(fd, 0) != 0 || fchmod(fd, file_mode) != 0)
		abort();
	while (off < size) {
		n = pwrite(fd, data + off, size - off, (off_t)off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	return 0;
}

/*
 * quoted_from - whether a message that holds secret got it from the value
 * at data[off..off+len): the same file with that value overwritten gives
 * a message without it. (A fixed text such as "127.0.0.1:8025, [::1]:8025"
 * in [api] listen's message can hold what a fuzzed value is.) The file
 * holds data again when this returns.
 */
static int
quoted_from(const uint8_t *data, size_t size, size_t off, size_t len,
    const char *secret)
{
	struct dm_config config;
	struct dm_error err;
	char path[sizeof(file_dir) + 16];
	uint8_t *other;
	size_t i;
	int quoted = 1;

	other = malloc(size);
	if (other == NULL)
		abort();
	memcpy(other, data, size);
	for (i = off; i < off + len; i++)
		other[i] = other[i] == 'q' ? 'z' : 'q';
	file_of(other, size, path, sizeof(path));
	dm_config_init(&config);
	if (dm_config_load_file(&config, path, &err) != 0 &&
	    strstr(err.msg, secret) != NULL)
		quoted = 0;		/* not from the value */
	dm_config_free(&config);
	free(other);
	file_of(data, size, path, sizeof(path));
	return quoted;
}

/* Abort when msg quotes the value of a secret key of the input. */
static void
check_secrets(const uint8_t *data, size_t size, const char *msg)
{
	const char *line = (const char *)data, *end = line + size, *eol;
	const char *key, *key_end, *value, *value_end, *p;
	char secret[256];
	size_t i, len;

	for (; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		for (key = line; key < eol && (*key == ' ' || *key == '\t');
		    key++)
			;
		for (key_end = key; key_end < eol && *key_end != '=' &&
		    *key_end != ':'; key_end++)
			;
		if (key_end == eol)
			continue;
		value = key_end + 1;
		while (key_end > key && (key_end[-1] == ' ' ||
		    key_end[-1] == '\t'))
			key_end--;
		for (i = 0; secret_keys[i] != NULL; i++)
			if (strlen(secret_keys[i]) == (size_t)(key_end - key) &&
			    memcmp(secret_keys[i], key, (size_t)(key_end - key))
			    == 0)
				break;
		if (secret_keys[i] == NULL)
			continue;
		while (value < eol && (*value == ' ' || *value == '\t'))
			value++;
		/* An inline comment: ';' after white space (libinih). */
		for (value_end = value, p = value; p < eol; p++)
			if (*p == ';' && p > value && (p[-1] == ' ' ||
			    p[-1] == '\t'))
				break;
		value_end = p;
		while (value_end > value && (value_end[-1] == ' ' ||
		    value_end[-1] == '\t' || value_end[-1] == '\r'))
			value_end--;
		len = (size_t)(value_end - value);
		if (len < SECRET_MIN || len >= sizeof(secret) ||
		    memchr(value, '\0', len) != NULL ||
		    occurrences(data, size, value, len) != 1)
			continue;
		memcpy(secret, value, len);
		secret[len] = '\0';
		if (strstr(msg, secret) != NULL &&
		    quoted_from(data, size, (size_t)(value - (const char *)data),
		    len, secret)) {
			fprintf(stderr, "fuzz_config: the message quotes the "
			    "value of %s: %s\n", secret_keys[i], msg);
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dm_config config, copy;
	struct dm_error err;
	char path[sizeof(file_dir) + 16], redacted[DM_CONFIG_CONNINFO_MAX];
	size_t i;
	unsigned mode;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	mode = data[0];
	file_mode = (mode & 0x80) != 0 ? 0644 : 0600;
	file_of(data + 1, size - 1, path, sizeof(path));

	dm_config_init(&config);
	if (dm_config_load_file(&config, path, &err) != 0)
		check_secrets(data + 1, size - 1, err.msg);
	if ((mode & 1) && dm_config_load_file(&config, path, &err) != 0)
		check_secrets(data + 1, size - 1, err.msg);

	if (dm_config_copy(&copy, &config, &err) == 0) {
		for (i = 0; i < copy.naccounts; i++) {
			const struct dm_account *a = &copy.accounts[i];

			if (dm_config_account(&config, a->name) == NULL) {
				fprintf(stderr, "fuzz_config: account %s lost "
				    "by dm_config_copy\n", a->name);
				abort();
			}
			fuzz_sink += a->nmailboxes;
		}
		dm_config_free(&copy);
	}
	fuzz_sink += dm_config_redact(config.conninfo, redacted,
	    sizeof(redacted));
	fuzz_sink += dm_config_redact(dm_config_api_conninfo(&config),
	    redacted, (mode >> 1) % 32);
	fuzz_sink += strlen(dm_config_log_level_name(config.log_level));
	dm_config_free(&config);
	return 0;
}
