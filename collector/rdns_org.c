/*
 * rdns_org.c - organizational domains for rdns.c, by common/align.h.
 *
 * A file of its own because common/align.h (struct dm_auth, the
 * alignment bits) and common/config.h (enum dm_auth, the IMAP
 * authentication) cannot be included in the same file: C has one
 * namespace for struct and enum tags.
 */
#include <stddef.h>

#include "collector/rdns.h"
#include "common/align.h"

_Static_assert(DM_DOMAIN_MAX <= RDNS_ORG_MAX,
    "RDNS_ORG_MAX must hold what dm_org_domain() writes");

int
rdns_org_domain(const char *name, char *out, size_t size)
{
	return dm_org_domain(name, out, size);
}
