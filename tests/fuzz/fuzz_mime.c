/*
 * fuzz_mime.c - libFuzzer target for the mail path: MIME walking with
 * libetpan, transfer decoding, message/rfc822 recursion, ARF failure
 * reports and plain-text notices. A fixed first header makes every input
 * a mail, whatever the fuzzer does to the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/unpack.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char head[] = "From: fuzz@example.com\r\n";
	static int initialised;
	struct unpack_options options;
	struct unpack_result result;
	struct dm_error err;
	char *mail;

	if (!initialised) {
		unpack_init();
		initialised = 1;
	}
	mail = malloc(sizeof(head) - 1 + size);
	if (mail == NULL)
		return 0;
	memcpy(mail, head, sizeof(head) - 1);
	memcpy(mail + sizeof(head) - 1, data, size);
	unpack_options_init(&options);
	options.limits.max_input_bytes = 8 << 20;
	options.limits.max_message_bytes = 4 << 20;
	options.keep_bodies = 1;
	unpack_memory(mail, sizeof(head) - 1 + size, "fuzz", &options,
	    &fuzz_handler, &result, &err);
	free(mail);
	return 0;
}
