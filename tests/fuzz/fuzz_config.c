/*
 * fuzz_config.c - libFuzzer target for common/config.c: the input is a
 * configuration file, read by dm_config_load_file() as dmarcd reads
 * /etc/dmarcd/dmarcd.conf (libinih, every section and key, the account
 * checks), then copied, redacted and freed.
 *
 * The file is a memfd, written again for each input and opened through
 * /proc/self/fd, so nothing touches the disk and the path never changes
 * (messages name it). The first byte's low bit loads the file a second
 * time into the same struct, which merges accounts. *_file keys name
 * files that are not there (or not private): their errors are paths
 * like any other.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT	(64 * 1024)

static size_t fuzz_sink;

static int
file_of(const uint8_t *data, size_t size, char *path, size_t path_size)
{
	static int fd = -1;
	size_t off = 0;
	ssize_t n;

	if (fd < 0) {
		fd = memfd_create("fuzz_config", MFD_CLOEXEC);
		if (fd < 0) {
			perror("fuzz_config: memfd_create");
			abort();
		}
	}
	if (ftruncate(fd, 0) != 0)
		abort();
	while (off < size) {
		n = pwrite(fd, data + off, size - off, (off_t)off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	snprintf(path, path_size, "/proc/self/fd/%d", fd);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dm_config config, copy;
	struct dm_error err;
	char path[64], redacted[DM_CONFIG_CONNINFO_MAX];
	size_t i;
	unsigned mode;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	mode = data[0];
	file_of(data + 1, size - 1, path, sizeof(path));

	dm_config_init(&config);
	if (dm_config_load_file(&config, path, &err) != 0)
		fuzz_sink += strlen(err.msg);
	if ((mode & 1) && dm_config_load_file(&config, path, &err) != 0)
		fuzz_sink += strlen(err.msg);

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
