#ifndef CLI_CLIENT_H
#define CLI_CLIENT_H

/*
 * The small HTTP client shared by the operator CLI and the agent. Both talk
 * to a Sigil (or Vault) server only through its public API: JSON bodies,
 * X-Vault-Token, Vault's {"errors":[...]} envelope.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/util.h"

#define CLI_DEFAULT_ADDR "https://127.0.0.1:8200"
#define CLI_MAX_RESPONSE_BYTES (16u * 1024 * 1024) /* cap on a response body kept in memory */
#define CLI_MAX_PATH 4096                           /* cap on an API path */
#define CLI_DEFAULT_TIMEOUT_MS 30000L
#define CLI_DEFAULT_CONNECT_TIMEOUT_MS 5000L

/* One client per thread: the curl handle inside is reused and not locked. */
struct cli_client {
	char *addr;        /* base URL without a trailing slash, e.g. https://sigil:8200 */
	char *token;       /* sent as X-Vault-Token when non-NULL; wiped on free */
	char *cacert;      /* PEM bundle to verify the server with, NULL: system store */
	char *client_cert; /* PEM certificate for TLS client auth (auth/cert login), or NULL */
	char *client_key;  /* PEM key for client_cert, or NULL */
	bool skip_verify;  /* SIGIL_SKIP_VERIFY / VAULT_SKIP_VERIFY: no TLS peer check */
	long timeout_ms;
	long connect_timeout_ms;
	void *curl; /* CURL easy handle, reused across requests (keep-alive) */
};

/* One answer from the server. Transport failures never produce one. */
struct cli_response {
	long status;               /* HTTP status */
	char *raw;                 /* body bytes, NUL-terminated (raw_len excludes the NUL) */
	size_t raw_len;
	char *content_type;        /* Content-Type header or NULL */
	json_t *json;              /* body parsed as JSON, NULL when it is not JSON */
	struct sg_strlist errors;  /* Vault "errors" strings (non-2xx) */
	struct sg_strlist warnings;
};

/* Defaults only: CLI_DEFAULT_ADDR, no token, default timeouts. */
struct cli_client *cli_client_new(void);
void cli_client_free(struct cli_client *c);

/*
 * Fills addr/token/cacert/skip_verify from SIGIL_ADDR, SIGIL_TOKEN,
 * SIGIL_CACERT, SIGIL_CLIENT_CERT, SIGIL_CLIENT_KEY, SIGIL_SKIP_VERIFY, each
 * falling back to its VAULT_* twin. Values already unset keep their defaults.
 */
void cli_client_from_env(struct cli_client *c);

/* Setters copy their argument (NULL clears). */
void cli_client_set_addr(struct cli_client *c, const char *addr);
void cli_client_set_token(struct cli_client *c, const char *token);
void cli_client_set_cacert(struct cli_client *c, const char *path);
void cli_client_set_client_cert(struct cli_client *c, const char *cert_path, const char *key_path);

/*
 * Sends METHOD to addr + "/v1/" + path (a leading "/v1/" or "/" in path is
 * accepted too; "LIST" is sent as GET with ?list=true). body may be NULL.
 * Returns 0 when any HTTP answer arrived (check resp->status: non-2xx is not
 * a transport error), -1 with err set (SG_UNAVAILABLE, naming the address
 * and curl's reason) when the server could not be reached or the TLS
 * handshake failed. resp is cleared first.
 */
int cli_client_request(struct cli_client *c, const char *method, const char *path, const json_t *body,
                       struct cli_response *resp, struct sg_err *err) SG_WUR;

/*
 * As cli_client_request, and turns a non-2xx answer into an error too:
 * err gets "<status>: <Vault errors joined by '; '>" (SG_PERMISSION_DENIED
 * for 403, SG_NOT_FOUND for 404, SG_BAD_REQUEST for other 4xx,
 * SG_UNAVAILABLE for 5xx). resp still holds the answer either way.
 */
int cli_client_call(struct cli_client *c, const char *method, const char *path, const json_t *body,
                    struct cli_response *resp, struct sg_err *err) SG_WUR;

/*
 * Logs in with POST auth/<mount>/login (mount "cert" uses the client
 * certificate, mount "token" only checks the token with lookup-self) and on
 * success stores auth.client_token into c->token. The response (with
 * auth.lease_duration, auth.renewable, auth.accessor) is left in resp.
 */
int cli_client_login(struct cli_client *c, const char *mount, const json_t *body, struct cli_response *resp,
                     struct sg_err *err) SG_WUR;

/* Borrowed: resp->json["data"] when it is an object, else NULL. */
json_t *cli_response_data(const struct cli_response *resp);
/* Borrowed: resp->json["auth"] when it is an object, else NULL. */
json_t *cli_response_auth(const struct cli_response *resp);
/* Errors joined by "; " into a new string (never NULL: "HTTP <status>" when the server gave none). */
char *cli_response_errmsg(const struct cli_response *resp);
/* Frees everything and leaves an empty response (NULL-safe). */
void cli_response_clear(struct cli_response *resp);

#endif
