/*
 * dl.c - shared libraries loaded on first use (see dl.h).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "common/dl.h"

static int
fail(struct dm_dl_lib *lib, struct dm_error *err)
{
	return dm_error_set(err, DM_E_UNAVAILABLE, "cannot load %s, needed "
	    "%s: %s", lib->soname, lib->purpose, lib->why);
}

static void
load(struct dm_dl_lib *lib)
{
	const char *why;
	size_t i;

	dlerror();
	lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (lib->handle == NULL) {
		why = dlerror();
		snprintf(lib->why, sizeof(lib->why), "%s",
		    why != NULL ? why : "dlopen failed");
		lib->state = -1;
		return;
	}
	for (i = 0; i < lib->nsyms; i++) {
		void *sym;

		dlerror();
		sym = dlsym(lib->handle, lib->syms[i].name);
		if (sym == NULL) {
			snprintf(lib->why, sizeof(lib->why), "no symbol %s "
			    "(a different version of the library?)",
			    lib->syms[i].name);
			dlclose(lib->handle);
			lib->handle = NULL;
			lib->state = -1;
			return;
		}
		/* POSIX: a function pointer fits in and converts from
		 * void *; copy it to keep ISO C quiet. */
		memcpy((char *)lib->table + lib->syms[i].offset, &sym,
		    sizeof(sym));
	}
	__atomic_store_n(&lib->state, 1, __ATOMIC_RELEASE);
}

int
dm_dl_need(struct dm_dl_lib *lib, struct dm_error *err)
{
	int state;

	if (__atomic_load_n(&lib->state, __ATOMIC_ACQUIRE) == 1)
		return 0;
	pthread_mutex_lock(&lib->lock);
	if (lib->state == 0)
		load(lib);
	state = lib->state;
	pthread_mutex_unlock(&lib->lock);
	return state == 1 ? 0 : fail(lib, err);
}

int
dm_dl_loaded(struct dm_dl_lib *lib)
{
	return __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE) == 1;
}
