/*
 * fuzz_aggregate.c - libFuzzer target for the SAX aggregate parser alone,
 * fed in chunks whose size comes from the first byte, so that chunk
 * boundaries fall inside multi-byte characters, tags and entities.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "parser/aggregate.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct dm_warnings *warnings;
	struct agg_options options;
	struct agg_parser *p;
	struct dm_error err;
	size_t chunk, off;

	if (!initialised) {
		agg_init();
		initialised = 1;
	}
	if (size == 0)
		return 0;
	chunk = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	warnings = calloc(1, sizeof(*warnings));
	if (warnings == NULL)
		return 0;
	options.input = "fuzz";
	options.where = "";
	options.warnings = warnings;
	p = agg_new(&options, &fuzz_handler, &err);
	if (p == NULL) {
		free(warnings);
		return 0;
	}
	for (off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (agg_feed(p, data + off, n, &err) != 0)
			break;
	}
	agg_finish(p, &err);
	agg_free(&p);
	free(warnings);
	return 0;
}
