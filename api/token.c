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

/*
 * A base64 digit's value, or -1. Standard alphabet (RFC 4648 section 4),
 * as HTTP Basic authentication uses it.
 */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
api_basic_password(const char *credentials, char *out, size_t size,
    size_t *len_r)
{
	char *decoded = out;
	size_t n = 0, i, pad = 0, colon;
	uint32_t acc = 0;
	int bits = 0, v;

	*len_r = 0;
	if (size == 0)
		return -1;
	for (i = 0; credentials[i] != '\0'; i++) {
		unsigned char c = (unsigned char)credentials[i];

		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (v = b64_value(c)) < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= size)
				goto bad;
			decoded[n++] = (char)(acc >> bits & 0xff);
		}
	}
	if (pad > 2 || (i - pad) % 4 == 1 || (pad > 0 && i % 4 != 0))
		goto bad;
	decoded[n] = '\0';
	/* user-id ":" password (RFC 7617); the user is not looked at. */
	for (colon = 0; colon < n && decoded[colon] != ':'; colon++)
		;
	if (colon == n || memchr(decoded, '\0', n) != NULL)
		goto bad;
	memmove(out, decoded + colon + 1, n - colon - 1);
	*len_r = n - colon - 1;
	explicit_bzero(out + *len_r, n + 1 - *len_r);
	return 0;
bad:
	explicit_bzero(out, n < size ? n + 1 : size);
	return -1;
}
