/* agent/health.c: the agent's health listener (agent/health.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "agent/health.h"
#include "common/util.h"

struct agent_health {
	pthread_mutex_t mu;
	char *snapshot;
	bool healthy;
	struct MHD_Daemon *d;
};

struct agent_health *agent_health_new(void)
{
	struct agent_health *h = sg_xcalloc(1, sizeof(*h));

	if (pthread_mutex_init(&h->mu, NULL) != 0)
		sg_die("pthread_mutex_init failed");
	h->snapshot = sg_xstrdup("{\"healthy\":false}");
	return h;
}

void agent_health_set(struct agent_health *h, const char *json, bool healthy)
{
	char *copy;

	if (h == NULL || strlen(json) > AGENT_HEALTH_MAX_SNAPSHOT)
		return;
	copy = sg_xstrdup(json);
	pthread_mutex_lock(&h->mu);
	free(h->snapshot);
	h->snapshot = copy;
	h->healthy = healthy;
	pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	struct agent_health *h = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *body;
	int status;

	(void)url;
	(void)version;
	(void)upload_data;
	/* The first call only announces the request; answer on the second (MHD's protocol). */
	if (*con_cls == NULL) {
		*con_cls = h;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* bodies are ignored */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (r == NULL)
			return MHD_NO;
		MHD_add_response_header(r, "Allow", "GET, HEAD");
		ret = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
		MHD_destroy_response(r);
		return ret;
	}
	pthread_mutex_lock(&h->mu);
	body = sg_xstrdup(h->snapshot);
	status = h->healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
	pthread_mutex_unlock(&h->mu);
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, (unsigned int)status, r);
	MHD_destroy_response(r);
	return ret;
}

int agent_health_listen(struct agent_health *h, const char *addr, struct sg_err *err)
{
	struct sockaddr_in sin;
	const char *colon = strrchr(addr, ':');
	char host[64];
	char *end = NULL;
	long port;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
		return sg_err_set(err, SG_BAD_REQUEST, "health listen_address must be HOST:PORT");
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
		return sg_err_set(err, SG_BAD_REQUEST, "health listen_address: bad port");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (strcmp(host, "localhost") == 0)
		strncpy(host, "127.0.0.1", sizeof(host));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return sg_err_set(err, SG_BAD_REQUEST, "health listen_address: \"%s\" is not an IPv4 address", host);
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
	                        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT, 16u,
	                        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (h->d == NULL)
		return sg_err_set(err, SG_UNAVAILABLE, "cannot listen on %s", addr);
	return 0;
}

void agent_health_free(struct agent_health *h)
{
	if (h == NULL)
		return;
	if (h->d != NULL)
		MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->mu);
	free(h->snapshot);
	free(h);
}
