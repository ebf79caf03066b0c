/*
 * dl.h - shared libraries loaded on first use.
 *
 * Most runs of dmarcd read plain or gzipped XML and never touch mail,
 * zip archives, IMAP or PostgreSQL; linking those libraries would still
 * make every run map them and resolve their symbols (libetpan alone pulls
 * in GnuTLS, Cyrus SASL and Berkeley DB: 18 shared objects, about 9 ms
 * before main()). So the code that uses such a library declares a table of
 * function pointers typed from the library's own header, and asks for it
 * with dm_dl_need() before the first call; the library is dlopen()ed once,
 * by the exact soname the build linked against (configure finds it).
 *
 *	#define ZIP_SYMS(X, a) X(a, zip_open) X(a, zip_close)
 *	static struct zip_api { DM_DL_FIELDS(ZIP_SYMS) } zip_api;
 *	static const struct dm_dl_sym zip_syms[] = { DM_DL_SYMS(struct
 *	    zip_api, ZIP_SYMS) };
 *	static struct dm_dl_lib zip_lib = DM_DL_LIB(LIBZIP_SONAME,
 *	    "to read zip archives", zip_syms, &zip_api);
 *	...
 *	if (dm_dl_need(&zip_lib, err) != 0) return -1;
 *	za = zip_api.zip_open(...);
 *
 * dm_dl_need() is thread-safe and cheap once loaded. A library that cannot
 * be loaded, or lacks a symbol, fails with DM_E_UNAVAILABLE and a sentence
 * naming the soname, the purpose and dlerror()'s reason; every later call
 * fails the same way without trying again. Libraries are never unloaded.
 */
#ifndef DM_DL_H
#define DM_DL_H

#include <pthread.h>
#include <stddef.h>

#include "common/error.h"

struct dm_dl_sym {
	const char *name;
	size_t offset;		/* of the pointer in the table */
};

struct dm_dl_lib {
	const char *soname;
	const char *purpose;	/* "to read mail": completes the error */
	const struct dm_dl_sym *syms;
	size_t nsyms;
	void *table;
	/* private */
	pthread_mutex_t lock;
	int state;		/* 0 not tried, 1 loaded, -1 failed */
	void *handle;
	char why[512];
};

/* list(X, a) expands X(a, name) for each function name. */
#define DM_DL_FIELD_(a, f)	__typeof__(f) *f;
#define DM_DL_SYM_(type, f)	{ #f, offsetof(type, f) },
#define DM_DL_FIELDS(list)	list(DM_DL_FIELD_, ~)
#define DM_DL_SYMS(type, list)	list(DM_DL_SYM_, type)
#define DM_DL_LIB(soname, purpose, syms, table)				\
	{ (soname), (purpose), (syms), sizeof(syms) / sizeof((syms)[0]),	\
	  (table), PTHREAD_MUTEX_INITIALIZER, 0, NULL, { 0 } }

/* dm_dl_need - load lib and fill its table, once; 0 or -1 with err. */
int dm_dl_need(struct dm_dl_lib *lib, struct dm_error *err);

/* dm_dl_loaded - whether lib is loaded (without trying to load it). */
int dm_dl_loaded(struct dm_dl_lib *lib);

#endif
