/*
 * pq.h - libpq loaded on first use, and the connection helpers the
 * store's files share; api/ uses the same table (api -> store).
 */
#ifndef STORE_PQ_H
#define STORE_PQ_H

#include <libpq-fe.h>

#include "common/dl.h"
#include "common/error.h"
#include "store/store.h"

#define STORE_PQ_SYMS(X, a)						\
	X(a, PQconnectdb) X(a, PQstatus) X(a, PQerrorMessage)		\
	X(a, PQfinish) X(a, PQexec) X(a, PQexecParams)			\
	X(a, PQresultStatus) X(a, PQresultErrorField) X(a, PQclear)	\
	X(a, PQgetvalue) X(a, PQgetisnull) X(a, PQgetlength)		\
	X(a, PQntuples) X(a, PQnfields) X(a, PQputCopyData)		\
	X(a, PQputCopyEnd) X(a, PQgetResult) X(a, PQsetNoticeProcessor)	\
	X(a, PQserverVersion) X(a, PQlibVersion) X(a, PQcmdTuples)	\
	X(a, PQtransactionStatus) X(a, PQresultErrorMessage)		\
	X(a, PQconnectionNeedsPassword) X(a, PQgetCopyData)		\
	X(a, PQfreemem) X(a, PQconnectionUsedPassword)		\
	X(a, PQprepare) X(a, PQexecPrepared) X(a, PQconnectdbParams)	\
	X(a, PQnotifies) X(a, PQconsumeInput) X(a, PQsocket)

struct store_pq_api {
	DM_DL_FIELDS(STORE_PQ_SYMS)
};
extern struct store_pq_api store_pq;

int store_pq_load(struct dm_error *err);

/*
 * store_pq_fail - turn a failed result (or a broken connection) into err:
 * DM_E_TEMP when the connection is gone or the server is shutting down,
 * else DM_E_INTERNAL with the server's message. what says what was tried.
 * Clears res.
 */
int store_pq_fail(PGconn *conn, PGresult *res, const char *what,
    struct dm_error *err);
/* store_pq_exec - a command without result rows; -1 with err. */
int store_pq_exec(PGconn *conn, const char *sql, struct dm_error *err);
/*
 * store_pq_params - text parameters (NULL for SQL NULL); returns the
 * result when its status is ok (TUPLES_OK or COMMAND_OK), else NULL with
 * err.
 */
PGresult *store_pq_params(PGconn *conn, const char *sql, int n,
    const char *const *values, struct dm_error *err);
/* store_pq_sqlstate - the result's SQLSTATE or "". */
const char *store_pq_sqlstate(const PGresult *res);

#endif
