/*
 * alerts.h - webhooks when something changes that a domain owner should
 * know of (docs/alerts.md): a new unauthorised sender, a drop of the
 * aligned share, a new reporter.
 *
 *	struct alerts_result r;
 *	if (alerts_run(store, cfg, &r, &err) != 0) ... log err.msg
 *
 * alerts_run() first raises what dmarcd.alert_scan() finds (each
 * (domain, kind, key) once: sql/0011_alerts.sql), then, holding the
 * delivery lock (one process at a time; another one that holds it is
 * left to deliver), posts the alerts due, oldest first, one request per
 * alert, to [alerts] webhook: at most max_per_hour alerts sent in any
 * hour (those sent in the last hour count; the others wait for a later
 * run). A request that gets HTTP 408, 429 or 5xx, or 3xx/4xx, is tried
 * again in the same run, up to ALERTS_TRIES requests with a growing wait
 * (1 s, 2 s; Retry-After up to ALERTS_MAX_WAIT_S); a timeout or a
 * connection failure is not. A failed alert is held back (next_attempt_at
 * grows from 1 minute to 1 hour) and the run stops there: the webhook is
 * in trouble, the others wait too. An alert is given up (given_up_at)
 * after ALERTS_GIVE_UP_REFUSED requests refused with 3xx or a 4xx other
 * than 408 and 429, or after ALERTS_GIVE_UP_ANY requests in all. Delivery
 * is at least once: a crash between the answer and the update sends the
 * alert again (X-Dmarcd-Alert-Id lets the receiver tell).
 *
 * The body is JSON (format = json)
 *	{"alerts": [{"domain", "kind", "key", "detail", "raised_at"}],
 *	 "source": "dmarcd"}
 * or Slack's (format = slack): {"text": "one sentence"}. With a
 * secret_file, the header X-Dmarcd-Signature: sha256=HEX carries the
 * HMAC-SHA256 of the body under that key. TLS is verified; only the
 * webhook URL's protocol is allowed; no redirect is followed (httpc.h).
 * The webhook URL is never put whole in a message: scheme://host[:port]
 * only, and its path is blotted from what curl or the server says.
 *
 * DIAGNOSTICS: -1 with err:
 *	DM_E_USAGE	no webhook, or a URL curl refuses
 *	DM_E_TEMP	PostgreSQL unreachable; the webhook unreachable, too
 *			slow, or answering an error: alerts are left to a
 *			later run (result->waiting)
 *	DM_E_UNAVAILABLE libcurl cannot be loaded
 *	DM_E_NOMEM, DM_E_INTERNAL (a database error)
 */
#ifndef COLLECTOR_ALERTS_H
#define COLLECTOR_ALERTS_H

#include <stddef.h>

#include "common/config.h"
#include "common/error.h"
#include "store/store.h"

#define ALERTS_TRIES		3	/* requests per alert per run */
#define ALERTS_MAX_WAIT_S	10	/* longest wait between them */
#define ALERTS_GIVE_UP_REFUSED	3	/* refused requests */
#define ALERTS_GIVE_UP_ANY	30	/* requests of any failure */
#define ALERTS_RETRY_MIN_S	60	/* held back after a failure... */
#define ALERTS_RETRY_MAX_S	3600	/* ...growing up to this */
#define ALERTS_MAX_ANSWER	512	/* bytes of an answer kept */
#define ALERTS_SIGNATURE_SIZE	(sizeof("sha256=") + 64)

struct alerts_result {
	unsigned raised;	/* new alerts this run */
	unsigned sent;
	unsigned failed;	/* alerts whose requests failed this run */
	unsigned given_up;	/* of those, given up */
	unsigned waiting;	/* not delivered at the end (not given up) */
	unsigned held;		/* of those, by the rate limit */
	int other_process;	/* another process held the delivery lock */
};

/* alerts_enabled - whether a webhook is configured. */
int alerts_enabled(const struct dm_config *cfg);

/* alerts_scan_params - the configuration's thresholds for the scan. */
void alerts_scan_params(const struct dm_config *cfg,
    struct store_alert_scan *scan);

/* alerts_run - raise, then deliver (see above). */
int alerts_run(struct store *store, const struct dm_config *cfg,
    struct alerts_result *result, struct dm_error *err);

/*
 * alerts_body - the request body for one alert in the format (enum
 * dm_alerts_format); malloc'd, NULL with err (DM_E_NOMEM, or
 * DM_E_INTERNAL when detail is not a JSON object).
 */
char *alerts_body(const struct store_alert *a, int format,
    struct dm_error *err);

/* alerts_sentence - the human sentence for an alert (Slack's text). */
void alerts_sentence(const struct store_alert *a, char *out, size_t size);

/* alerts_signature - "sha256=" and the hex HMAC-SHA256 of body. */
void alerts_signature(const char *secret, const char *body, size_t len,
    char out[ALERTS_SIGNATURE_SIZE]);

#endif
