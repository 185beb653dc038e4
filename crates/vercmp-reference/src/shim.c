/* The C side of the reference comparisons. Only what Rust cannot call
 * directly lives here: dpkg's error structure and its memory pool. */
#include <stdlib.h>
#include <string.h>
#include <dpkg/dpkg.h>
#include <dpkg/dpkg-db.h>
#include <dpkg/version.h>

static unsigned long parses;

/* parseversion() copies into libdpkg's pool, which dpkg itself never frees in
 * a short-lived process. A benchmark parses millions of times, so hand the
 * pool back now and then; the cost is spread over 65536 parses. */
static void pool_tick(void)
{
	if (++parses % 65536 == 0)
		nffreeall();
}

/* Like dpkg --validate-version: warnings count as invalid. 0 when valid. */
int pw_dpkg_validate(const char *text)
{
	struct dpkg_version v;
	struct dpkg_error err = DPKG_ERROR_INIT;
	int rc = parseversion(&v, text, &err);
	dpkg_error_destroy(&err);
	pool_tick();
	return rc < 0 ? -1 : 0;
}

/* Parse both and compare, as dpkg --compare-versions does.
 * Returns 0 and sets *result (<0, 0, >0), or -1 if either is invalid. */
int pw_dpkg_compare_str(const char *a, const char *b, int *result)
{
	struct dpkg_version va, vb;
	struct dpkg_error err = DPKG_ERROR_INIT;
	int rc = parseversion(&va, a, &err);
	if (rc == 0)
		rc = parseversion(&vb, b, &err);
	dpkg_error_destroy(&err);
	if (rc == 0)
		*result = dpkg_version_compare(&va, &vb);
	pool_tick();
	return rc < 0 ? -1 : 0;
}

/* Parse into memory the caller owns (freed with pw_dpkg_free), so parsed
 * versions survive the pool being handed back. NULL if invalid. */
struct dpkg_version *pw_dpkg_parse(const char *text)
{
	struct dpkg_version v;
	struct dpkg_error err = DPKG_ERROR_INIT;
	int rc = parseversion(&v, text, &err);
	dpkg_error_destroy(&err);
	if (rc < 0)
		return NULL;
	struct dpkg_version *out = malloc(sizeof(*out));
	out->epoch = v.epoch;
	out->version = strdup(v.version);
	out->revision = strdup(v.revision);
	pool_tick();
	return out;
}

void pw_dpkg_free(struct dpkg_version *v)
{
	if (!v)
		return;
	free((char *)v->version);
	free((char *)v->revision);
	free(v);
}
