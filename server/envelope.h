#ifndef SG_SERVER_ENVELOPE_H
#define SG_SERVER_ENVELOPE_H

/*
 * Vault's response envelope (compat/vault-api.md section 0): pure
 * rendering of struct resp and struct sg_err into bytes and a status.
 */

#include <stddef.h>

#include "common/err.h"
#include "server/http.h"

#define RESP_MAX_WARNING 1024

/*
 * The success envelope {"request_id","lease_id","renewable",
 * "lease_duration","data","wrap_info":null,"warnings","auth"[,"mount_type"]}.
 * *status is rs->status when set, else 204 (and *body NULL) when data,
 * auth, warnings and lease are all absent, else 200. An empty data object
 * is not absent: it is a 200. mount_type may be NULL (omitted). Not for
 * raw responses (rs->content_type set).
 */
void envelope_render(const struct resp *rs, const char *request_id, const char *mount_type, int *status,
                     char **body, size_t *len);

/*
 * {"errors":["<detail>"]} with the status of the error table. SG_NOT_FOUND
 * with an empty detail renders {"errors":[]} (Vault's empty LIST); another
 * code with an empty detail uses the table's Vault text.
 */
void envelope_error(const struct sg_err *err, int *status, char **body, size_t *len);

/* Vault's 404 text for a path no route matches. */
void envelope_no_route(struct sg_err *err, const char *path);

#endif
