#ifndef SG_SERVER_TOKEN_H
#define SG_SERVER_TOKEN_H

/*
 * Token storage and lookup. A token is never stored or logged: STORE_AUTH
 * holds "token/<hex HMAC-SHA256(token)>" -> entry JSON
 * {"policies":[...],"display_name":...,"accessor":...,"creation_time":...,
 * "expire_time":0} and "accessor/<accessor>" -> the hex HMAC. The HMAC key
 * comes from the KEK through HKDF, so a copy of the store alone does not
 * let anyone test guesses. The auth issue adds token kinds on top of these.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ca/ca.h"
#include "common/err.h"
#include "store/store.h"

#define TOKEN_KEY_BYTES 32
#define TOKEN_MAX_BYTES 256      /* a longer presented token is refused unread */
#define TOKEN_HASH_HEX_LEN 64
#define TOKEN_ACCESSOR_LEN 24
#define TOKEN_RANDOM_LEN 24      /* base62 characters after "hvs." */
#define TOKEN_MAX_ENTRY_BYTES (64u << 10)

/* HKDF-SHA256 of the KEK with info "sigil token hmac". */
int token_key_derive(const unsigned char kek[CA_KEK_BYTES], unsigned char key[TOKEN_KEY_BYTES],
                     struct sg_err *err) SG_WUR;

/* Lower-case hex HMAC-SHA256(key, token) into out (TOKEN_HASH_HEX_LEN + 1 bytes). */
int token_hash(const unsigned char key[TOKEN_KEY_BYTES], const char *token, char *out, struct sg_err *err) SG_WUR;

/* "hvs." followed by TOKEN_RANDOM_LEN random base62 characters; out holds at least 64 bytes. */
void token_generate(char *out, size_t cap);

/*
 * The token a request presents: X-Vault-Token, else "Authorization:
 * Bearer <token>" (scheme case-insensitive). NULL when neither is set or
 * the value is empty or longer than TOKEN_MAX_BYTES. Borrowed from the
 * arguments.
 */
const char *token_from_headers(const char *x_vault_token, const char *authorization);

/*
 * Looks up a presented token. 1 with *entry (a new reference) when it is
 * known and not expired, 0 when not, -1 on a storage error.
 */
int token_lookup(struct store *st, const unsigned char key[TOKEN_KEY_BYTES], const char *token, json_t **entry,
                 struct sg_err *err) SG_WUR;

/*
 * Adds to b a root token entry (policies ["root"], display name "root", no
 * expiry) and its accessor index. accessor receives the new accessor
 * (TOKEN_ACCESSOR_LEN + 1 bytes) when non-NULL.
 */
int token_root_put(struct store_batch *b, const unsigned char key[TOKEN_KEY_BYTES], const char *token,
                   char *accessor, struct sg_err *err) SG_WUR;

/* Adds to b the deletion of the token whose hex HMAC is hash (entry and accessor index). */
int token_delete_by_hash(struct store *st, struct store_batch *b, const char *hash, struct sg_err *err) SG_WUR;

#endif
