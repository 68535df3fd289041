/*
 * Stored certificates and revocation (DESIGN.md rule 3): one function marks
 * a certificate revoked durably, then runs the hook (OCSP view, CRL
 * rebuild scheduling). Reason codes are RFC 5280 5.3.1 CRLReason.
 */
#include "ca/internal.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------- Reasons ---------------- */

static const struct {
	enum ca_reason r;
	const char *name;
} reasons[] = {
	{CA_REASON_UNSPECIFIED, "unspecified"},
	{CA_REASON_KEY_COMPROMISE, "keyCompromise"},
	{CA_REASON_CA_COMPROMISE, "cACompromise"},
	{CA_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
	{CA_REASON_SUPERSEDED, "superseded"},
	{CA_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
	{CA_REASON_CERTIFICATE_HOLD, "certificateHold"},
	{CA_REASON_REMOVE_FROM_CRL, "removeFromCRL"},
	{CA_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"},
	{CA_REASON_AA_COMPROMISE, "aACompromise"},
};

/* Case-insensitive, '_' and '-' ignored: "key_compromise" == "keyCompromise". */
static bool name_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == '_' || *a == '-')
			a++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		if (*a == '\0')
			return true;
		a++;
		b++;
	}
}

int ca_reason_parse(const char *s, enum ca_reason *out, struct sg_err *err)
{
	char *end;
	long v;

	if (s == NULL || s[0] == '\0') {
		*out = CA_REASON_UNSPECIFIED;
		return 0;
	}
	if (isdigit((unsigned char)s[0])) {
		v = strtol(s, &end, 10);
		if (*end == '\0') {
			for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
				if ((long)reasons[i].r == v) {
					*out = reasons[i].r;
					return 0;
				}
			}
		}
	} else {
		for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
			if (name_eq(s, reasons[i].name)) {
				*out = reasons[i].r;
				return 0;
			}
		}
	}
	return sg_err_set(err, SG_BAD_REQUEST, "unknown revocation reason '%.32s'", s);
}

const char *ca_reason_name(enum ca_reason r)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].r == r)
			return reasons[i].name;
	return "unspecified";
}

static bool reason_valid(enum ca_reason r)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].r == r)
			return true;
	return false;
}

/* ---------------- Records ---------------- */

void ca_cert_record_clear(struct ca_cert_record *r)
{
	if (r == NULL)
		return;
	free(r->serial);
	free(r->der);
	free(r->role);
	free(r->owner);
	memset(r, 0, sizeof(*r));
}

void ca_revoke_result_clear(struct ca_revoke_result *r)
{
	if (r == NULL)
		return;
	free(r->serial);
	sg_strlist_clear(&r->warnings);
	memset(r, 0, sizeof(*r));
}

void ca_revoked_rec_clear(struct ca_revoked_rec *r)
{
	if (r == NULL)
		return;
	free(r->der);
	memset(r, 0, sizeof(*r));
}

static json_t *b64_json(const unsigned char *b, size_t n)
{
	char *s = sg_base64(b, n);
	json_t *j = json_string(s);

	free(s);
	return j;
}

static char *dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s == NULL)
		sg_die("out of memory");
	json_decref(o);
	return s;
}

/*
 * The certificate's base64 is most of a record, and json_dumps walks a
 * string character by character (about a tenth of an issuance's CPU outside
 * the signature). It is spliced in between the dumps of the fields around
 * it instead: the same bytes as one json_dumps of the whole record, since
 * base64 needs no escaping.
 */
char *ca_cert_rec_encode(const struct ca_cert_record *r)
{
	json_t *head = json_object(), *o = json_object();
	char *h, *t, *b64, *res;
	size_t hn, tn, bn;

	json_object_set_new(head, "serial", json_string(r->serial));
	h = dump(head);
	json_object_set_new(o, "issuer_id", json_string(r->issuer_id));
	json_object_set_new(o, "role", json_string(r->role != NULL ? r->role : ""));
	json_object_set_new(o, "owner", json_string(r->owner != NULL ? r->owner : ""));
	json_object_set_new(o, "not_before", json_integer(r->not_before));
	json_object_set_new(o, "not_after", json_integer(r->not_after));
	json_object_set_new(o, "revoked", json_boolean(r->revoked));
	json_object_set_new(o, "revocation_time", json_integer(r->revocation_time));
	json_object_set_new(o, "reason", json_integer(r->reason));
	json_object_set_new(o, "invalidity_date", json_integer(r->invalidity_date));
	t = dump(o);
	b64 = sg_base64(r->der, r->der_len);
	hn = strlen(h);
	tn = strlen(t);
	bn = strlen(b64);
	/* {"serial":"..."} + {"issuer_id":...} -> {"serial":"...","certificate":"<b64>","issuer_id":...} */
	res = sg_xmalloc(hn + bn + tn + sizeof(",\"certificate\":\"\","));
	memcpy(res, h, hn - 1);
	memcpy(res + hn - 1, ",\"certificate\":\"", 16);
	memcpy(res + hn + 15, b64, bn);
	memcpy(res + hn + 15 + bn, "\",", 2);
	memcpy(res + hn + 17 + bn, t + 1, tn); /* with its NUL */
	free(h);
	free(t);
	free(b64);
	return res;
}

static int64_t int_field(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *str_field(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

static void id_field(const json_t *o, const char *key, char out[37])
{
	const char *s = str_field(o, key);

	out[0] = '\0';
	if (strlen(s) == 36)
		memcpy(out, s, 37);
}

int ca_cert_rec_decode(const void *val, size_t len, struct ca_cert_record *out, struct sg_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(val, len, 0, &je);
	const char *der;
	int64_t reason;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (o == NULL || !json_is_object(o))
		goto out;
	der = str_field(o, "certificate");
	if (sg_base64_decode(der, strlen(der), &out->der, &out->der_len) < 0 || out->der_len == 0)
		goto out;
	out->serial = sg_xstrdup(str_field(o, "serial"));
	id_field(o, "issuer_id", out->issuer_id);
	out->role = sg_xstrdup(str_field(o, "role"));
	out->owner = sg_xstrdup(str_field(o, "owner"));
	out->not_before = int_field(o, "not_before");
	out->not_after = int_field(o, "not_after");
	out->revoked = json_is_true(json_object_get(o, "revoked"));
	out->revocation_time = int_field(o, "revocation_time");
	reason = int_field(o, "reason");
	out->reason = reason_valid((enum ca_reason)reason) ? (enum ca_reason)reason : CA_REASON_UNSPECIFIED;
	out->invalidity_date = int_field(o, "invalidity_date");
	rc = 0;
out:
	json_decref(o);
	if (rc < 0) {
		ca_cert_record_clear(out);
		sg_err_set(err, SG_STORAGE, "malformed certificate record");
	}
	return rc;
}

char *ca_revoked_rec_encode(const struct ca_revoked_rec *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "serial", json_string(r->serial.colon));
	json_object_set_new(o, "revocation_time", json_integer(r->time));
	json_object_set_new(o, "reason", json_integer(r->reason));
	json_object_set_new(o, "invalidity_date", json_integer(r->invalidity_date));
	json_object_set_new(o, "issuer_id", json_string(r->issuer_id));
	json_object_set_new(o, "not_after", json_integer(r->not_after));
	if (r->der != NULL)
		json_object_set_new(o, "certificate", b64_json(r->der, r->der_len));
	return dump(o);
}

int ca_revoked_rec_decode(const void *val, size_t len, struct ca_revoked_rec *r, struct sg_err *err)
{
	json_error_t je;
	json_t *o = json_loadb(val, len, 0, &je);
	const char *der;
	int64_t reason;
	struct sg_err tmp;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	sg_err_init(&tmp);
	if (o == NULL || !json_is_object(o) || ca_serial_parse(str_field(o, "serial"), &r->serial, &tmp) < 0)
		goto out;
	r->time = int_field(o, "revocation_time");
	reason = int_field(o, "reason");
	r->reason = reason_valid((enum ca_reason)reason) ? (enum ca_reason)reason : CA_REASON_UNSPECIFIED;
	r->invalidity_date = int_field(o, "invalidity_date");
	id_field(o, "issuer_id", r->issuer_id);
	r->not_after = int_field(o, "not_after");
	der = str_field(o, "certificate");
	if (der[0] != '\0' && sg_base64_decode(der, strlen(der), &r->der, &r->der_len) < 0)
		goto out;
	rc = 0;
out:
	json_decref(o);
	if (rc < 0) {
		ca_revoked_rec_clear(r);
		sg_err_set(err, SG_STORAGE, "malformed revocation record");
	}
	return rc;
}

static int rec_read(struct ca *ca, enum store_table t, const char *mount_id, const struct ca_serial *s,
                    unsigned char **v, size_t *len, struct sg_err *err)
{
	char key[CA_MAX_STORE_KEY];

	ca_skey(key, sizeof(key), mount_id, s->hyphen);
	return store_get(ca->st, t, key, strlen(key), v, len, err);
}

int ca_revoked_rec_get(struct ca *ca, const char *mount_id, const struct ca_serial *s, struct ca_revoked_rec *out,
                       struct sg_err *err)
{
	unsigned char *v = NULL;
	size_t len = 0;
	struct ca_revoked_rec tmp;
	int rc = rec_read(ca, STORE_REVOKED, mount_id, s, &v, &len, err);

	if (rc <= 0)
		return rc;
	rc = ca_revoked_rec_decode(v, len, &tmp, err);
	free(v);
	if (rc < 0)
		return -1;
	ca_revoked_rec_clear(out);
	*out = tmp;
	return 1;
}

int ca_cert_rec_get(struct ca *ca, const char *mount_id, const struct ca_serial *s, struct ca_cert_record *out,
                    struct sg_err *err)
{
	unsigned char *v = NULL;
	size_t len = 0;
	struct ca_cert_record tmp;
	int rc = rec_read(ca, STORE_CERTS, mount_id, s, &v, &len, err);

	if (rc <= 0)
		return rc;
	rc = ca_cert_rec_decode(v, len, &tmp, err);
	free(v);
	if (rc < 0)
		return -1;
	ca_cert_record_clear(out);
	*out = tmp;
	return 1;
}

void ca_cert_rec_fill(struct ca_cert_record *r, X509 *x, const struct ca_serial *s, const char *issuer_id,
                      const char *role, const char *owner)
{
	struct sg_err err;

	memset(r, 0, sizeof(*r));
	sg_err_init(&err);
	r->serial = sg_xstrdup(s->colon);
	if (ca_x509_der(x, &r->der, &r->der_len, &err) < 0)
		sg_die("unable to encode a signed certificate");
	snprintf(r->issuer_id, sizeof(r->issuer_id), "%s", issuer_id);
	r->role = sg_xstrdup(role != NULL ? role : "");
	r->owner = sg_xstrdup(owner != NULL ? owner : "");
	r->not_before = ca_asn1_time_unix(X509_get0_notBefore(x));
	r->not_after = ca_asn1_time_unix(X509_get0_notAfter(x));
}

static void rec_put(struct store_batch *b, enum store_table t, const char *mount_id, const struct ca_serial *s,
                    char *v, bool is_new)
{
	char key[CA_MAX_STORE_KEY];

	ca_skey(key, sizeof(key), mount_id, s->hyphen);
	if (is_new)
		store_batch_put_new(b, t, key, strlen(key), v, strlen(v));
	else
		store_batch_put(b, t, key, strlen(key), v, strlen(v));
	free(v);
}

void ca_cert_rec_stage(struct store_batch *b, const char *mount_id, const struct ca_serial *s,
                       const struct ca_cert_record *r)
{
	/* put_new: a serial is issued once per mount (RFC 5280 4.1.2.2 uniqueness). */
	rec_put(b, STORE_CERTS, mount_id, s, ca_cert_rec_encode(r), true);
}

void ca_cert_rec_put(struct store_batch *b, const char *mount_id, const struct ca_serial *s,
                     const struct ca_cert_record *r)
{
	rec_put(b, STORE_CERTS, mount_id, s, ca_cert_rec_encode(r), false);
}

void ca_revoked_rec_put(struct store_batch *b, const char *mount_id, const struct ca_revoked_rec *r, bool is_new)
{
	rec_put(b, STORE_REVOKED, mount_id, &r->serial, ca_revoked_rec_encode(r), is_new);
}

void ca_run_revoke_hook(struct ca *ca, const char *mount_id, const char *serial_colon, const char *issuer_id)
{
	ca_revoke_hook hook;
	void *arg;

	pthread_mutex_lock(&ca->lock);
	hook = ca->hook;
	arg = ca->hook_arg;
	pthread_mutex_unlock(&ca->lock);
	if (hook != NULL)
		hook(arg, mount_id, serial_colon, issuer_id);
}

/* ---------------- Reads ---------------- */

int ca_cert_get(struct ca *ca, const struct ca_mount *m, const char *serial, struct ca_cert_record *out,
                struct sg_err *err)
{
	struct ca_serial s;
	struct ca_revoked_rec rv = {0};
	X509 *x = NULL;
	const unsigned char *p;
	int rc;

	memset(out, 0, sizeof(*out));
	if (ca_mount_check(m, err) < 0 || ca_serial_parse(serial, &s, err) < 0)
		return -1;
	if ((rc = ca_cert_rec_get(ca, m->id, &s, out, err)) < 0)
		return -1;
	if (rc == 1) {
		/* Batch revocation (revoke.c) writes only the revocation record: it is the source of truth. */
		if (!out->revoked && (rc = ca_revoked_rec_get(ca, m->id, &s, &rv, err)) != 0) {
			if (rc < 0) {
				ca_cert_record_clear(out);
				return -1;
			}
			out->revoked = true;
			out->revocation_time = rv.time;
			out->reason = rv.reason;
			out->invalidity_date = rv.invalidity_date;
			ca_revoked_rec_clear(&rv);
		}
		return 0;
	}
	/* A certificate revoked by PEM (BYOC, e.g. no_store) is known only by its revocation record. */
	if ((rc = ca_revoked_rec_get(ca, m->id, &s, &rv, err)) < 0)
		return -1;
	if (rc == 0 || rv.der == NULL) {
		ca_revoked_rec_clear(&rv);
		return sg_err_set(err, SG_NOT_FOUND, "certificate with serial %s not found", s.colon);
	}
	p = rv.der;
	x = d2i_X509(NULL, &p, (long)rv.der_len);
	if (x == NULL) {
		ERR_clear_error();
		ca_revoked_rec_clear(&rv);
		return sg_err_set(err, SG_STORAGE, "malformed revocation record");
	}
	ca_cert_rec_fill(out, x, &s, rv.issuer_id, "", "");
	out->revoked = true;
	out->revocation_time = rv.time;
	out->reason = rv.reason;
	out->invalidity_date = rv.invalidity_date;
	X509_free(x);
	ca_revoked_rec_clear(&rv);
	return 0;
}

struct list_ctx {
	size_t skip; /* length of "<mount>/" */
	struct sg_strlist *out;
};

static int list_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct list_ctx *c = arg;
	char buf[CA_SERIAL_HEX_MAX + 8];
	size_t n;

	(void)val;
	(void)vlen;
	if (klen <= c->skip || klen - c->skip >= sizeof(buf))
		return 0;
	n = klen - c->skip;
	memcpy(buf, key + c->skip, n);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '-')
			buf[i] = ':';
	sg_strlist_add(c->out, buf);
	return 0;
}

int ca_cert_list(struct ca *ca, const struct ca_mount *m, bool revoked_only, const char *after, size_t limit,
                 struct sg_strlist *out, struct sg_err *err)
{
	char prefix[CA_MAX_STORE_KEY], from[CA_MAX_STORE_KEY];
	struct list_ctx c = {0, out};
	struct ca_serial s;

	if (ca_mount_check(m, err) < 0)
		return -1;
	ca_skey(prefix, sizeof(prefix), m->id, "");
	c.skip = strlen(prefix);
	if (after != NULL && after[0] != '\0') {
		if (ca_serial_parse(after, &s, err) < 0)
			return -1;
		ca_skey(from, sizeof(from), m->id, s.hyphen);
	}
	if (store_scan(ca->st, revoked_only ? STORE_REVOKED : STORE_CERTS, prefix,
	               after != NULL && after[0] != '\0' ? from : NULL, limit, list_cb, &c, err) < 0)
		return -1;
	return 0;
}

struct rscan_ctx {
	ca_revoked_cb cb;
	void *arg;
	struct sg_err *err;
};

static int rscan_cb(void *arg, const char *key, size_t klen, const void *val, size_t vlen)
{
	struct rscan_ctx *c = arg;
	struct ca_revoked_rec r;
	struct ca_revoked_entry e;
	int rc;

	(void)key;
	(void)klen;
	if (ca_revoked_rec_decode(val, vlen, &r, c->err) < 0)
		return -1;
	e.serial = r.serial.b;
	e.serial_len = r.serial.n;
	e.serial_hex = r.serial.colon;
	e.issuer_id = r.issuer_id;
	e.revocation_time = r.time;
	e.reason = r.reason;
	e.invalidity_date = r.invalidity_date;
	e.not_after = r.not_after;
	rc = c->cb(c->arg, &e, c->err);
	ca_revoked_rec_clear(&r);
	return rc;
}

int ca_revoked_scan(struct ca *ca, const struct ca_mount *m, ca_revoked_cb cb, void *arg, struct sg_err *err)
{
	char prefix[CA_MAX_STORE_KEY];
	struct rscan_ctx c = {cb, arg, err};

	if (ca_mount_check(m, err) < 0)
		return -1;
	ca_skey(prefix, sizeof(prefix), m->id, "");
	return store_scan(ca->st, STORE_REVOKED, prefix, NULL, 0, rscan_cb, &c, err) < 0 ? -1 : 0;
}

/* ---------------- Revocation ---------------- */

static X509 *der_to_x509(const unsigned char *der, size_t len, struct sg_err *err)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	if (x == NULL || p != der + len) {
		X509_free(x);
		ERR_clear_error();
		sg_err_set(err, SG_STORAGE, "malformed stored certificate");
		return NULL;
	}
	return x;
}

int ca_revoke(struct ca *ca, const struct ca_mount *m, const char *serial, X509 *cert, enum ca_reason reason,
              int64_t invalidity_date, struct ca_revoke_result *res, struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	struct ca_serial sn, given;
	struct ca_cert_record cr = {0};
	struct ca_revoked_rec rv = {0};
	struct store_batch *b = NULL;
	struct sg_err tmp;
	const struct ca_issuer *signer = NULL;
	X509 *x = NULL;
	int have_cr, have_rv, rc = -1;
	int64_t now = sg_now(), not_after;
	bool fire = false;

	memset(res, 0, sizeof(*res));
	if (ca_mount_check(m, err) < 0)
		return -1;
	if ((serial == NULL || serial[0] == '\0') && cert == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "either serial_number or certificate is required");
	if (!reason_valid(reason))
		return sg_err_set(err, SG_BAD_REQUEST, "unknown revocation reason %d", (int)reason);
	if (invalidity_date < 0)
		return sg_err_set(err, SG_BAD_REQUEST, "invalid invalidity date");
	if (ca_state_get(ca, m->id, &s, err) < 0)
		return -1;
	if (cert != NULL) {
		if (ca_serial_from_cert(cert, &sn, err) < 0)
			goto out;
		if (serial != NULL && serial[0] != '\0') {
			if (ca_serial_parse(serial, &given, err) < 0)
				goto out;
			if (strcmp(given.hyphen, sn.hyphen) != 0) {
				sg_err_set(err, SG_BAD_REQUEST, "serial_number does not match the certificate");
				goto out;
			}
		}
		/* BYOC: only certificates our issuers signed (signature checked, not just the name). */
		if ((signer = ca_state_find_signer_of(s, cert)) == NULL) {
			sg_err_set(err, SG_BAD_REQUEST, "the certificate was not issued by an issuer of this mount");
			goto out;
		}
		X509_up_ref(cert);
		x = cert;
		if ((have_cr = ca_cert_rec_get(ca, m->id, &sn, &cr, err)) < 0)
			goto out;
	} else {
		if (ca_serial_parse(serial, &sn, err) < 0)
			goto out;
		if ((have_cr = ca_cert_rec_get(ca, m->id, &sn, &cr, err)) < 0)
			goto out;
		if (have_cr == 1 && (x = der_to_x509(cr.der, cr.der_len, err)) == NULL)
			goto out;
	}
	for (size_t i = 0; x != NULL && i < s->n; i++) {
		if (X509_cmp(s->issuers[i].cert, x) == 0) {
			sg_err_set(err, SG_BAD_REQUEST, "cannot revoke an issuer's certificate here; use issuer/:ref/revoke");
			goto out;
		}
	}
	/* Revoking twice keeps the first time and reason. */
	if ((have_rv = ca_revoked_rec_get(ca, m->id, &sn, &rv, err)) < 0)
		goto out;
	if (have_rv == 1) {
		res->already = true;
		res->revocation_time = rv.time;
		res->serial = sg_xstrdup(sn.colon);
		rc = 0;
		goto out;
	}
	if (x == NULL) {
		sg_err_set(err, SG_NOT_FOUND, "certificate with serial %s not found", sn.colon);
		goto out;
	}
	not_after = ca_asn1_time_unix(X509_get0_notAfter(x));
	if (not_after < now) {
		sg_err_set(err, SG_BAD_REQUEST, "certificate already expired");
		goto out;
	}
	rv.serial = sn;
	rv.time = now;
	rv.reason = reason;
	rv.invalidity_date = invalidity_date;
	rv.not_after = not_after;
	snprintf(rv.issuer_id, sizeof(rv.issuer_id), "%s", have_cr == 1 && cr.issuer_id[0] ? cr.issuer_id
	                                                   : signer != NULL           ? signer->id
	                                                                              : "");
	if (rv.issuer_id[0] == '\0' && (signer = ca_state_find_signer_of(s, x)) != NULL)
		memcpy(rv.issuer_id, signer->id, sizeof(rv.issuer_id));
	if (ca_x509_der(x, &rv.der, &rv.der_len, err) < 0)
		goto out;
	b = store_batch_new();
	ca_revoked_rec_put(b, m->id, &rv, true);
	if (have_cr == 1) {
		cr.revoked = true;
		cr.revocation_time = rv.time;
		cr.reason = reason;
		cr.invalidity_date = invalidity_date;
		ca_cert_rec_put(b, m->id, &sn, &cr);
	}
	sg_err_init(&tmp);
	if (store_commit(ca->st, b, &tmp) < 0) {
		/* A concurrent revocation of the same serial won: report its time. */
		if (tmp.code == SG_CONFLICT && ca_revoked_rec_get(ca, m->id, &sn, &rv, err) == 1) {
			res->already = true;
			res->revocation_time = rv.time;
			res->serial = sg_xstrdup(sn.colon);
			rc = 0;
			goto out;
		}
		*err = tmp;
		goto out;
	}
	res->revocation_time = rv.time;
	res->serial = sg_xstrdup(sn.colon);
	fire = true;
	rc = 0;
out:
	ca_state_release(s);
	if (fire)
		ca_run_revoke_hook(ca, m->id, sn.colon, rv.issuer_id);
	ca_revoked_rec_clear(&rv);
	ca_cert_record_clear(&cr);
	store_batch_free(b);
	X509_free(x);
	return rc;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int ca_revoke_with_key(struct ca *ca, const struct ca_mount *m, const char *serial, X509 *cert, const char *key_pem,
                       struct ca_revoke_result *res, struct sg_err *err)
{
	struct ca_serial sn;
	struct ca_cert_record cr = {0};
	struct ca_revoked_rec rv = {0};
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;
	size_t klen;
	int rc = -1, got;

	memset(res, 0, sizeof(*res));
	if (ca_mount_check(m, err) < 0)
		return -1;
	if (key_pem == NULL || (klen = strlen(key_pem)) == 0)
		return sg_err_set(err, SG_BAD_REQUEST, "private_key is required");
	if (klen > CA_MAX_KEY_PEM_BYTES)
		return sg_err_set(err, SG_TOO_LARGE, "private_key larger than %u bytes", CA_MAX_KEY_PEM_BYTES);
	bio = BIO_new_mem_buf(key_pem, (int)klen);
	if (bio == NULL)
		sg_die("out of memory");
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (key == NULL) {
		/* Never echo the key or OpenSSL's view of it. */
		ERR_clear_error();
		sg_err_set(err, SG_BAD_REQUEST, "unable to parse the private key");
		goto out;
	}
	if (cert != NULL) {
		X509_up_ref(cert);
		x = cert;
	} else {
		if (serial == NULL || ca_serial_parse(serial, &sn, err) < 0) {
			sg_err_set(err, SG_BAD_REQUEST, "either serial_number or certificate is required");
			goto out;
		}
		if ((got = ca_cert_rec_get(ca, m->id, &sn, &cr, err)) < 0)
			goto out;
		if (got == 1) {
			x = der_to_x509(cr.der, cr.der_len, err);
		} else {
			if ((got = ca_revoked_rec_get(ca, m->id, &sn, &rv, err)) < 0)
				goto out;
			if (got == 0 || rv.der == NULL) {
				sg_err_set(err, SG_NOT_FOUND, "certificate with serial %s not found", sn.colon);
				goto out;
			}
			x = der_to_x509(rv.der, rv.der_len, err);
		}
		if (x == NULL)
			goto out;
	}
	/* Proof of possession: the key must be the certificate's. */
	if (EVP_PKEY_eq(X509_get0_pubkey(x), key) != 1) {
		ERR_clear_error();
		sg_err_set(err, SG_BAD_REQUEST, "the private key does not match the certificate");
		goto out;
	}
	rc = ca_revoke(ca, m, cert != NULL ? serial : sn.colon, cert, CA_REASON_UNSPECIFIED, 0, res, err);
out:
	EVP_PKEY_free(key);
	BIO_free(bio);
	X509_free(x);
	ca_cert_record_clear(&cr);
	ca_revoked_rec_clear(&rv);
	return rc;
}
