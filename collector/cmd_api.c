/*
 * cmd_api.c - dmarcd serve (the HTTP API alone) and dmarcd token (the
 * API's bearer tokens, through [database] admin_conninfo: only
 * dmarcd_admin may write them, sql/0018_admin_role.sql).
 *
 *	dmarcd serve [--config FILE] [--db CONNINFO] [--listen ADDR:PORT]
 *	dmarcd token add NAME [--domain D]... [--expires 90d]
 *	dmarcd token list
 *	dmarcd token revoke NAME
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "api/api.h"
#include "collector/commands.h"
#include "common/config.h"
#include "store/store.h"

#define TOKEN_NAME_MAX		64
#define TOKEN_DOMAINS_MAX	100

const char cmd_serve_usage[] =
    "usage: dmarcd serve [--config FILE] [--db CONNINFO] "
    "[--listen ADDR:PORT[,ADDR:PORT...]]\n"
    "\n"
    "Serves the HTTP API (docs/api.md) on [api] listen, or --listen\n"
    "(127.0.0.1:8025, [::1]:8025; port 0: any free port), until SIGTERM\n"
    "or SIGINT. It reads PostgreSQL as [api] database, which must log in\n"
    "as a role granted dmarcd_reader (default: [database] conninfo or\n"
    "--db). Prints 'listening on ADDR:PORT...' on stderr once it serves.\n";

const char cmd_token_usage[] =
    "usage: dmarcd token add NAME [--domain DOMAIN]... [--expires N(h|d|w)]\n"
    "       dmarcd token list\n"
    "       dmarcd token revoke NAME\n"
    "       (each also takes --db CONNINFO and --config FILE)\n"
    "\n"
    "add prints a new API bearer token once: only its SHA-256 is kept.\n"
    "Without --domain it sees every domain (and /metrics, /v1/rejected).\n"
    "--expires 90d: it stops working after that long (default: never).\n"
    "It connects as --db (alone: no configuration file is read), else\n"
    "[database] admin_conninfo (default: conninfo): a role granted\n"
    "dmarcd_admin, or the one that ran dmarcd migrate.\n"
    "\n"
    "Exit status: 0 done, 64 bad usage, 65 that name exists, 66 no such\n"
    "token, 75 PostgreSQL unreachable, 77 the role may not write the\n"
    "tokens (the message says how to fix it).\n";

static void DM_PRINTF(1, 2)
say(const char *fmt, ...)
{
	va_list ap;

	char ts[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "ts=%s dmarcd serve: ", ts);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/*
 * cmd_api_role_writes - how many of dmarcd's tables the API's database
 * role ([api] database, else [database] conninfo) may change: it should
 * have dmarcd_reader only (docs/security.md). 0 as well when the database
 * cannot be asked now: the API starts anyway, and /readyz says why.
 */
long
cmd_api_role_writes(const struct dm_config *cfg)
{
	struct store *s = NULL;
	struct dm_error err;
	long n = 0;

	dm_error_clear(&err);
	if (store_connect(&s, dm_config_api_conninfo(cfg), &err) == 0 &&
	    store_role_writes(s, &n, &err) != 0)
		n = 0;
	store_free(s);
	return n;
}

int
cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	const char *listen = NULL;
	struct dm_config cfg;
	struct dm_error err;
	struct api *api = NULL;
	char why[256], where[DM_CONFIG_MAX_LISTEN * 80];
	sigset_t set;
	int c, sig;
	long n;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'l')
			listen = optarg;
		else if (c == 'h') {
			fputs(cmd_serve_usage, stdout);
			return 0;
		} else if (cmd_db_option(c, optarg, &o) != 0) {
			fputs(cmd_serve_usage, stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		fputs(cmd_serve_usage, stderr);
		return EX_USAGE;
	}
	dm_error_clear(&err);
	dm_config_init(&cfg);
	if (dm_config_load(&cfg, o.config, &err) != 0 ||
	    (o.db != NULL && dm_config_set_db(&cfg, o.db, &err) != 0)) {
		fprintf(stderr, "dmarcd serve: %s\n", err.msg);
		dm_config_free(&cfg);
		return cmd_exit_for(&err);
	}
	if (listen != NULL && dm_config_parse_listen(&cfg, listen, why,
	    sizeof(why)) != 0) {
		fprintf(stderr, "dmarcd serve: --listen: %s\n", why);
		dm_config_free(&cfg);
		return EX_USAGE;
	}
	if (cfg.api_nlisten == 0) {
		fprintf(stderr, "dmarcd serve: no address: set [api] listen "
		    "or give --listen\n");
		dm_config_free(&cfg);
		return EX_USAGE;
	}
	/* Taken by sigwait() below; the server's threads block all. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (api_start(&cfg, &api, &err) != 0) {
		fprintf(stderr, "dmarcd serve: %s\n", err.msg);
		dm_config_free(&cfg);
		return cmd_exit_for(&err);
	}
	api_addresses(api, where, sizeof(where));
	if ((n = cmd_api_role_writes(&cfg)) > 0)
		say("warning: the API's database role may write to %ld of "
		    "dmarcd's tables: give [api] database a role granted "
		    "dmarcd_reader only (docs/security.md)", n);
	say("listening on %s", where);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* Nothing is reopened: no log file, no cache to drop
			 * beyond the token cache's own expiry. */
			say("SIGHUP: nothing to reload");
			continue;
		}
		break;
	}
	say("stopping");
	api_stop(&api);
	dm_config_free(&cfg);
	return EX_OK;
}

/* ---- dmarcd token ---- */

/*
 * token_open - the configuration, and a connection as --db, else
 * [database] admin_conninfo, else conninfo; 0 or the exit status (the
 * message printed). --db alone reads no configuration file, so that
 * user postgres can make the first token (README).
 */
static int
token_open(const struct cmd_db_opts *o, struct dm_config *cfg,
    struct store **s)
{
	struct cmd_db_opts enough = *o;
	struct dm_error err;
	int rc;

	enough.db_is_enough = 1;
	if ((rc = cmd_load_config("token", &enough, cfg)) != 0)
		return rc;
	dm_error_clear(&err);
	if (store_connect(s, o->db != NULL ? o->db :
	    dm_config_admin_conninfo(cfg), &err) != 0) {
		fprintf(stderr, "dmarcd token: %s\n", err.msg);
		dm_config_free(cfg);
		return cmd_exit_for(&err);
	}
	return 0;
}

static int
one_value(void *ctx, int ncols, char **v)
{
	if (ncols > 0 && v[0] != NULL)
		snprintf(ctx, 64, "%s", v[0]);
	return 0;
}

/*
 * token_denied - err was PostgreSQL's "permission denied" (SQLSTATE
 * 42501): say which role lacks what and how to fix it; EX_NOPERM. Else
 * 0: an ordinary failure.
 */
static int
token_denied(struct store *s, const char *sub, const struct dm_error *err)
{
	struct dm_error ignored;
	char role[64];

	if (strstr(err->msg, "SQLSTATE 42501") == NULL)
		return 0;
	snprintf(role, sizeof(role), "%s", "this role");
	dm_error_clear(&ignored);
	(void)store_query_lines(s, "SELECT current_user", 0, NULL, one_value,
	    role, &ignored);
	fprintf(stderr, "dmarcd token: PostgreSQL role %s may not %s the API's "
	    "tokens: only dmarcd_admin may write them (docs/security.md). "
	    "GRANT dmarcd_admin TO %s, or set [database] admin_conninfo (or "
	    "--db) to a role that has it, such as the one that ran dmarcd "
	    "migrate (%s)\n", role, strcmp(sub, "list") == 0 ? "read" :
	    "write", role, err->msg);
	return EX_NOPERM;
}

static int
name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > TOKEN_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
		    name[i] == '_' || name[i] == '-'))
			return 0;
	return 1;
}

static int
print_token_row(void *ctx, int ncols, char **v)
{
	(void)ctx;
	(void)ncols;
	printf("%-24s %-8s %-20s %-20s %s\n", v[0], v[4], v[2], v[3], v[1]);
	return 0;
}

static int
count_row(void *ctx, int ncols, char **v)
{
	(void)ncols;
	(void)v;
	(*(int *)ctx)++;
	return 0;
}

static int
token_add(struct store *s, const char *name, const char *domains,
    long long expires, struct dm_error *err)
{
	char token[API_TOKEN_SIZE], hash[2 + 64 + 1], secs[24];
	unsigned char sha[32];
	const char *p[4];
	int rows = 0, i;

	if (api_token_new(token, err) != 0)
		return -1;
	api_token_hash(token, strlen(token), sha);
	hash[0] = '\\';
	hash[1] = 'x';
	for (i = 0; i < 32; i++)
		snprintf(hash + 2 + 2 * i, 3, "%02x", sha[i]);
	snprintf(secs, sizeof(secs), "%lld", expires);
	p[0] = name;
	p[1] = hash;
	p[2] = domains;
	p[3] = expires > 0 ? secs : NULL;
	if (store_query_lines(s, "INSERT INTO dmarcd.api_tokens (name, "
	    "sha256, domains, expires_at) VALUES ($1, $2::bytea, "
	    "string_to_array($3, ' '), now() + $4::bigint * "
	    "interval '1 second') RETURNING id", 4, p, count_row, &rows,
	    err) != 0) {
		explicit_bzero(token, sizeof(token));
		if (strstr(err->msg, "23505") != NULL)
			return dm_error_set(err, DM_E_DATA, "a token named %s "
			    "exists already", name);
		return -1;
	}
	/* The one time the token is shown. */
	printf("%s\n", token);
	fflush(stdout);
	explicit_bzero(token, sizeof(token));
	fprintf(stderr, "dmarcd token: %s added for %s%s; it is shown only "
	    "this once\n", name, domains != NULL ? domains : "every domain",
	    expires > 0 ? " (it expires)" : "");
	return 0;
}

int
cmd_token(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "domain", required_argument, NULL, 'd' },
		{ "expires", required_argument, NULL, 'e' },
		{ "db", required_argument, NULL, 'D' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cmd_db_opts o = { NULL, NULL, 0 };
	struct dm_config cfg;
	struct dm_error err;
	struct store *s;
	char domains[TOKEN_DOMAINS_MAX * 254], one[256];
	size_t dlen = 0, ndomains = 0;
	long long expires = 0;
	const char *sub, *name = NULL, *p[1];
	int c, rc, rows = 0;

	domains[0] = '\0';
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'd') {
			if (api_parse_domain(optarg, one, sizeof(one)) != 0) {
				fprintf(stderr, "dmarcd token: --domain '%s': "
				    "not a domain name\n", optarg);
				return EX_USAGE;
			}
			if (ndomains == TOKEN_DOMAINS_MAX) {
				fprintf(stderr, "dmarcd token: more than %d "
				    "--domain\n", TOKEN_DOMAINS_MAX);
				return EX_USAGE;
			}
			dlen += (size_t)snprintf(domains + dlen,
			    sizeof(domains) - dlen, "%s%s", dlen ? " " : "",
			    one);
			ndomains++;
		} else if (c == 'e') {
			if (cmd_parse_span(optarg, &expires) != 0 || expires <= 0) {
				fprintf(stderr, "dmarcd token: --expires '%s': "
				    "not like 12h, 90d or 4w\n", optarg);
				return EX_USAGE;
			}
		} else if (c == 'h') {
			fputs(cmd_token_usage, stdout);
			return 0;
		} else if (cmd_db_option(c, optarg, &o) != 0) {
			fputs(cmd_token_usage, stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc)
		goto usage;
	sub = argv[optind];
	if (strcmp(sub, "list") == 0) {
		if (optind + 1 != argc || ndomains > 0 || expires > 0)
			goto usage;
	} else if (strcmp(sub, "add") == 0 || strcmp(sub, "revoke") == 0) {
		if (optind + 2 != argc)
			goto usage;
		name = argv[optind + 1];
		if (!name_ok(name)) {
			fprintf(stderr, "dmarcd token: '%s' is not a NAME (1 "
			    "to %d letters, digits, '.', '_' or '-')\n", name,
			    TOKEN_NAME_MAX);
			return EX_USAGE;
		}
		if (strcmp(sub, "revoke") == 0 && (ndomains > 0 ||
		    expires > 0))
			goto usage;
	} else
		goto usage;
	if ((rc = token_open(&o, &cfg, &s)) != 0)
		return rc;
	dm_error_clear(&err);
	if (store_check_schema(s, &err) != 0)
		goto fail;
	if (strcmp(sub, "add") == 0) {
		if (token_add(s, name, ndomains > 0 ? domains : NULL, expires,
		    &err) != 0)
			goto fail;
	} else if (strcmp(sub, "list") == 0) {
		printf("%-24s %-8s %-20s %-20s %s\n", "NAME", "STATE",
		    "CREATED", "EXPIRES", "DOMAINS");
		if (store_query_lines(s, "SELECT name, coalesce("
		    "array_to_string(domains, ','), '*'), to_char(created_at "
		    "AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
		    "coalesce(to_char(expires_at AT TIME ZONE 'UTC', "
		    "'YYYY-MM-DD HH24:MI:SS'), 'never'), CASE WHEN revoked_at "
		    "IS NOT NULL THEN 'revoked' WHEN expires_at <= now() THEN "
		    "'expired' ELSE 'valid' END FROM dmarcd.api_tokens "
		    "ORDER BY name", 0, NULL, print_token_row, NULL,
		    &err) != 0)
			goto fail;
	} else {
		p[0] = name;
		if (store_query_lines(s, "UPDATE dmarcd.api_tokens SET "
		    "revoked_at = coalesce(revoked_at, now()) WHERE name = $1 "
		    "RETURNING id", 1, p, count_row, &rows, &err) != 0)
			goto fail;
		if (rows == 0) {
			dm_error_set(&err, DM_E_NOINPUT, "no token named %s",
			    name);
			goto fail;
		}
		fprintf(stderr, "dmarcd token: %s revoked (API servers "
		    "forget it within their token_cache time)\n", name);
	}
	return cmd_close_store("token", s, &cfg, NULL);
fail:
	if ((rc = token_denied(s, sub, &err)) != 0) {
		cmd_close_store("token", s, &cfg, NULL);
		return rc;
	}
	return cmd_close_store("token", s, &cfg, &err);
usage:
	fputs(cmd_token_usage, stderr);
	return EX_USAGE;
}
