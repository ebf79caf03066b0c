/*
 * token.c - API bearer tokens: made from 32 bytes of getrandom(2),
 * written as "dmarcd_" and base64url, and known to the database only by
 * their SHA-256 (dmarcd.api_tokens.sha256). The token itself is shown once,
 * by dmarcd token add, and never stored nor logged.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <nettle/sha2.h>

#include "api/api.h"

int
api_token_new(char out[API_TOKEN_SIZE], struct dm_error *err)
{
	static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33];	/* 32 random, one zero for the last group */
	size_t got = 0, n = 0, i;
	ssize_t r;
	uint32_t v;

	while (got < 32) {
		r = getrandom(raw + got, 32 - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return dm_error_set(err, DM_E_UNAVAILABLE, "getrandom: "
			    "%s", strerror(errno));
		got += (size_t)r;
	}
	raw[32] = 0;
	memcpy(out, API_TOKEN_PREFIX, sizeof(API_TOKEN_PREFIX) - 1);
	n = sizeof(API_TOKEN_PREFIX) - 1;
	/* 32 bytes: ten groups of 3 (40 characters) and 2 bytes (3). */
	for (i = 0; i < 33; i += 3) {
		v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 |
		    (i + 2 < 33 ? raw[i + 2] : 0);
		out[n++] = b64url[(v >> 18) & 63];
		out[n++] = b64url[(v >> 12) & 63];
		out[n++] = b64url[(v >> 6) & 63];
		if (i + 3 < 33)
			out[n++] = b64url[v & 63];
	}
	out[n] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

void
api_token_hash(const char *token, size_t len, unsigned char out[32])
{
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, len, (const uint8_t *)token);
	sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}
