/* creds.c - an app's credentials refused by its provider: fail fast, check with backoff. */
#include "creds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/metrics.h"

int pp_creds_init(struct pp_creds *c, uv_loop_t *loop, const char *service, const char *app,
                  struct cm_metrics *m)
{
	bool fcm = !strcmp(service, "fcm");
	const struct cm_metric_def defs[] = {
	    CM_METRIC_GAUGE_DEF(struct pp_creds, m_ok, "platypus_app_credentials_ok",
	                        "1 while the provider accepts the app's credentials, 0 while "
	                        "notifications fail at once because it refuses them",
	                        "service", service, "app", app),
	};
	char err[CM_ERR_MAX];
	int r;

	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->app = app;
	c->module = fcm ? "fcm" : "apns";
	c->provider = fcm ? "FCM" : "APNs";
	c->hint = fcm ? "check the service account (a deleted key, a disabled account, the FCM API "
	                "not enabled for the project), then reload (SIGHUP)"
	              : "check the .p8 key, key_id and team_id (a revoked key, one of another "
	                "team, a clock far off), then reload (SIGHUP)";
	if (!m)
		return 0;
	r = cm_metrics_register(m, c, defs, 1, err, sizeof(err));
	if (r) {
		CM_LOGE(c->module, "%s: %s", app, err);
		return r;
	}
	cm_metrics_set(c->m_ok, 1);
	return 0;
}

uint64_t pp_creds_backoff_ms(unsigned failed, uint32_t rnd)
{
	uint64_t d = PP_CREDS_CHECK_MIN_MS;

	for (unsigned i = 1; i < failed && d < PP_CREDS_CHECK_MAX_MS; i++)
		d *= 2;
	if (d > PP_CREDS_CHECK_MAX_MS)
		d = PP_CREDS_CHECK_MAX_MS;
	/* Jitter: instances that share the credentials do not check in step. */
	return d / 2 + rnd % (d / 2 + 1);
}

static void schedule_check(struct pp_creds *c)
{
	uint32_t rnd = 0;

	cm_crypto_random(&rnd, sizeof(rnd));
	c->check_at = uv_now(c->loop) + pp_creds_backoff_ms(c->failed, rnd);
}

void pp_creds_refused(struct pp_creds *c, const char *reason, bool check)
{
	if (c->refused && !(check && c->checking))
		return; /* answers to requests made before: nothing new */
	snprintf(c->reason, sizeof(c->reason), "%s", reason && *reason ? reason : "refused");
	c->failed++;
	c->checking = false;
	schedule_check(c);
	if (c->refused) {
		CM_LOGD(c->module, "%s: credentials still refused (%s); next check in %llu ms",
		        c->app, c->reason, (unsigned long long)(c->check_at - uv_now(c->loop)));
		return;
	}
	c->refused = true;
	cm_metrics_set(c->m_ok, 0);
	/* The one line an operator needs: later refusals are counted, not logged. */
	CM_LOGE(c->module,
	        "%s: %s refuses our credentials (%s): its notifications "
	        "now fail at once without a request (REST 503, XMPP wait); one is let through to "
	        "check them after %llu ms, then less often, up to every %d s; %s",
	        c->app, c->provider, c->reason, (unsigned long long)(c->check_at - uv_now(c->loop)),
	        PP_CREDS_CHECK_MAX_MS / 1000, c->hint);
}

void pp_creds_accepted(struct pp_creds *c)
{
	if (c->refused)
		CM_LOGI(c->module, "%s: %s accepts our credentials again (after %u refusals)",
		        c->app, c->provider, c->failed);
	c->refused = false;
	c->checking = false;
	c->failed = 0;
	cm_metrics_set(c->m_ok, 1);
}

bool pp_creds_check_due(struct pp_creds *c)
{
	if (!c->refused || c->checking || uv_now(c->loop) < c->check_at)
		return false;
	c->checking = true;
	return true;
}

void pp_creds_check_ended(struct pp_creds *c)
{
	if (!c->checking)
		return;
	c->checking = false;
	schedule_check(c);
}

void pp_creds_reset(struct pp_creds *c)
{
	if (c->refused)
		CM_LOGI(c->module, "%s: new credentials loaded: trying them", c->app);
	c->refused = false;
	c->checking = false;
	c->failed = 0;
	cm_metrics_set(c->m_ok, 1);
}

void pp_creds_fail_result(const struct pp_creds *c, struct pp_result *r)
{
	char why[PP_REASON_MAX];
	uint64_t now = uv_now(c->loop);

	snprintf(why, sizeof(why),
	         "%.*s%s: %s refuses our credentials; not sent (next check in %llu s)",
	         PP_QUOTE(c->reason), c->provider,
	         (unsigned long long)((c->check_at > now ? c->check_at - now : 0) + 999) / 1000);
	memset(r, 0, sizeof(*r));
	pp_result_set(r, PP_OUT_REJECTED, PP_CAUSE_AUTH, 0, why);
}
