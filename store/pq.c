/*
 * pq.c - libpq, loaded on first use: it pulls in about twenty shared
 * objects (Kerberos, LDAP, GnuTLS...) that `dmarcd parse` never needs.
 */
#include <string.h>

#include "store/pq.h"

#ifndef LIBPQ_SONAME
#define LIBPQ_SONAME "libpq.so.5"
#endif

struct store_pq_api store_pq;
static const struct dm_dl_sym pq_syms[] = {
	DM_DL_SYMS(struct store_pq_api, STORE_PQ_SYMS)
};
static struct dm_dl_lib pq_lib = DM_DL_LIB(LIBPQ_SONAME,
    "to talk to PostgreSQL", pq_syms, &store_pq);

int
store_pq_load(struct dm_error *err)
{
	return dm_dl_need(&pq_lib, err);
}

const char *
store_pq_sqlstate(const PGresult *res)
{
	const char *state;

	if (res == NULL)
		return "";
	state = store_pq.PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return state != NULL ? state : "";
}

/* One line: libpq's messages end in a newline and may hold several. */
static void
one_line(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\t')
			*s = ' ';
}

int
store_pq_fail(PGconn *conn, PGresult *res, const char *what,
    struct dm_error *err)
{
	const char *state = store_pq_sqlstate(res);
	const char *msg;
	enum dm_error_code code = DM_E_INTERNAL;

	msg = res != NULL ? store_pq.PQresultErrorMessage(res) : "";
	if (msg == NULL || msg[0] == '\0')
		msg = store_pq.PQerrorMessage(conn);
	/*
	 * Class 08 (connection exception), 57P01-03 (admin shutdown, crash
	 * shutdown, cannot connect now), 53 (insufficient resources), 40
	 * (serialization failure, deadlock): try again later.
	 */
	if (store_pq.PQstatus(conn) != CONNECTION_OK ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "53", 2) == 0 || strncmp(state, "40", 2) == 0 ||
	    (res == NULL && state[0] == '\0'))
		code = DM_E_TEMP;
	dm_error_set(err, code, "PostgreSQL: %s: %s%s%s", what, msg,
	    state[0] != '\0' ? " SQLSTATE " : "", state);
	one_line(err->msg);
	if (res != NULL)
		store_pq.PQclear(res);
	return -1;
}

int
store_pq_exec(PGconn *conn, const char *sql, struct dm_error *err)
{
	PGresult *res = store_pq.PQexec(conn, sql);
	ExecStatusType st = res != NULL ? store_pq.PQresultStatus(res) :
	    PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return store_pq_fail(conn, res, sql, err);
	store_pq.PQclear(res);
	return 0;
}

PGresult *
store_pq_params(PGconn *conn, const char *sql, int n,
    const char *const *values, struct dm_error *err)
{
	PGresult *res = store_pq.PQexecParams(conn, sql, n, NULL, values,
	    NULL, NULL, 0);
	ExecStatusType st = res != NULL ? store_pq.PQresultStatus(res) :
	    PGRES_FATAL_ERROR;
	char what[96];

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	/* The statement's start names it well enough. */
	snprintf(what, sizeof(what), "%.*s", 80, sql);
	for (char *p = what; *p != '\0'; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	store_pq_fail(conn, res, what, err);
	return NULL;
}
