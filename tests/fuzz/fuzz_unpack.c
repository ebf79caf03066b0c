/*
 * fuzz_unpack.c - libFuzzer target for the parser's front door: any bytes
 * through magic-byte detection, gzip/zlib/zip, mail and XML. Limits are
 * small so that the fuzzer explores the caps rather than waiting on them.
 */
#include <stddef.h>
#include <stdint.h>

#include "parser/unpack.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct unpack_options options;
	struct unpack_result result;
	struct dm_error err;

	if (!initialised) {
		unpack_init();
		initialised = 1;
	}
	unpack_options_init(&options);
	options.limits.max_input_bytes = 8 << 20;
	options.limits.max_message_bytes = 4 << 20;
	options.keep_bodies = size & 1;
	unpack_memory(data, size, "fuzz", &options, &fuzz_handler, &result,
	    &err);
	return 0;
}
