/*
 * The one issuance path (DESIGN.md rule 1) and sign-intermediate: check the
 * request against the role, compute the validity, build from a profile,
 * lint, sign behind the signer, and store in one durable write.
 */
#include "ca/internal.h"
#include "ca/parse.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#define CA_SERIAL_ATTEMPTS 3

void ca_request_init(struct ca_request *r)
{
	memset(r, 0, sizeof(*r));
}

void ca_request_clear(struct ca_request *r)
{
	if (r == NULL)
		return;
	sg_strlist_clear(&r->alt_names);
	sg_strlist_clear(&r->ip_sans);
	sg_strlist_clear(&r->uri_sans);
	sg_strlist_clear(&r->other_sans);
	sg_strlist_clear(&r->user_ids);
	sg_strlist_clear(&r->key_usage);
	sg_strlist_clear(&r->ext_key_usage);
}

void ca_result_clear(struct ca_result *r)
{
	if (r == NULL)
		return;
	X509_free(r->cert);
	free(r->serial);
	free(r->der);
	sk_X509_pop_free(r->chain, X509_free);
	EVP_PKEY_free(r->key);
	sg_strlist_clear(&r->warnings);
	memset(r, 0, sizeof(*r));
}

/* ---------------- Validity ---------------- */

int ca_validity_compute(const struct ca_validity_in *in, const struct ca_issuer *iss, int64_t *nb, int64_t *na,
                        struct sg_strlist *warnings, struct sg_err *err)
{
	int64_t now = sg_now(), ttl, nbd;
	bool clamped = false;
	char a[40], b[40];

	if (in->ttl < 0)
		return sg_err_set(err, SG_TTL_INVALID, "ttl must not be negative");
	if (in->ttl > 0 && in->not_after != NULL && in->not_after[0] != '\0')
		return sg_err_set(err, SG_BAD_REQUEST,
		                  "Either ttl or not_after should be provided. Both should not be provided in the same "
		                  "request.");
	nbd = in->not_before_duration < 0 ? 30 : in->not_before_duration;
	if (in->not_after != NULL && in->not_after[0] != '\0') {
		if (sg_time_parse_rfc3339(in->not_after, na) < 0)
			return sg_err_set(err, SG_BAD_REQUEST, "not_after must be an RFC 3339 time: '%.40s'", in->not_after);
		if (*na <= now)
			return sg_err_set(err, SG_TTL_INVALID, "not_after %.40s is not in the future", in->not_after);
	} else {
		ttl = role_ttl(in->role, in->ttl, in->mount_default, in->mount_max, &clamped);
		if (clamped && warnings != NULL) {
			/* Vault clamps with a warning rather than failing (compat doc 1.2 max_ttl). */
			const struct role *r = in->role;
			int64_t asked = in->ttl > 0 ? in->ttl : r != NULL && r->ttl > 0 ? r->ttl : in->mount_default;
			char *w;

			ca_go_duration(asked, a, sizeof(a));
			ca_go_duration(ttl, b, sizeof(b));
			w = sg_xasprintf("TTL \"%s\" is longer than permitted maxTTL \"%s\", so maxTTL is being used", a, b);
			sg_strlist_add(warnings, w);
			free(w);
		}
		if (ttl <= 0)
			return sg_err_set(err, SG_TTL_INVALID, "no validity period: set a ttl");
		*na = now + ttl;
	}
	*nb = now - nbd;
	if (iss == NULL)
		return 0;
	if (iss->not_after <= now) {
		sg_time_format_rfc3339(iss->not_after, a, sizeof(a));
		return sg_err_set(err, SG_TTL_INVALID, "the issuer's certificate expired at %s", a);
	}
	if (*na > iss->not_after) {
		enum ca_not_after_behavior beh = iss->behavior;

		if (beh == CA_NA_ERR && in->force_truncate)
			beh = CA_NA_TRUNCATE;
		if (beh == CA_NA_ERR) {
			sg_time_format_rfc3339(*na, a, sizeof(a));
			sg_time_format_rfc3339(iss->not_after, b, sizeof(b));
			return sg_err_set(err, SG_TTL_INVALID,
			                  "cannot satisfy request, as TTL would result in notAfter of %s that is beyond the "
			                  "expiration of the CA certificate at %s",
			                  a, b);
		}
		if (beh == CA_NA_TRUNCATE)
			*na = iss->not_after;
	}
	/* Backdating never reaches before the issuer existed: the leaf stays inside its issuer's validity. */
	if (*nb < iss->not_before)
		*nb = iss->not_before;
	return 0;
}

/* ---------------- Shared finish: sign and store ---------------- */

struct finish {
	struct ca *ca;
	const struct ca_mount *m;
	const struct ca_mstate *s;
	const struct ca_issuer *iss;
	struct ca_profile *prof;
	const struct ca_sig_params *sig;
	struct ca_lint_opts lint;
	bool store;
	const char *role_name, *owner;
	struct store_batch *extra;
	ca_commit_hook hook;
	void *hook_arg;
};

static bool serial_taken(struct ca *ca, const char *mount_id, const struct ca_serial *s)
{
	char key[CA_MAX_STORE_KEY];
	struct sg_err tmp;

	sg_err_init(&tmp);
	ca_skey(key, sizeof(key), mount_id, s->hyphen);
	return store_get(ca->st, STORE_CERTS, key, strlen(key), NULL, NULL, &tmp) == 1;
}

/* Builds, lints, signs and stores; a serial collision (put_new conflict) retries with a fresh serial. */
static int finish_issue(struct finish *f, struct ca_result *res, struct sg_err *err)
{
	struct ca_serial serial;
	struct ca_cert_record cr = {0};
	struct store_batch *b = NULL;
	X509 *x = NULL;
	int rc = -1;

	f->prof->serial = &serial;
	for (int attempt = 0; attempt < CA_SERIAL_ATTEMPTS; attempt++) {
		struct sg_err tmp;
		bool commit;

		ca_serial_random(&serial);
		if (f->extra != NULL && f->store && serial_taken(f->ca, f->m->id, &serial))
			continue; /* extra cannot be rebuilt after a conflict: check first */
		X509_free(x);
		if ((x = ca_profile_build(f->prof, err)) == NULL)
			goto out;
		if (ca_lint_check_opts(x, f->iss->cert, &f->lint, err) < 0 ||
		    ca_signer_sign_x509(f->iss->signer, x, f->sig, err) < 0)
			goto out;
		X509_free(res->cert);
		free(res->serial);
		X509_up_ref(x);
		res->cert = x;
		res->serial = sg_xstrdup(serial.colon);
		res->expiration = f->prof->not_after;
		memcpy(res->issuer_id, f->iss->id, sizeof(res->issuer_id));

		if (b != f->extra)
			store_batch_free(b);
		b = f->extra != NULL ? f->extra : store_batch_new();
		if (f->store) {
			ca_cert_record_clear(&cr);
			ca_cert_rec_fill(&cr, x, &serial, f->iss->id, f->role_name, f->owner);
			ca_cert_rec_stage(b, f->m->id, &serial, &cr);
		}
		if (f->hook != NULL && f->hook(f->hook_arg, res, b, err) < 0) {
			if (b == f->extra)
				b = NULL;
			goto out;
		}
		commit = f->store || f->extra != NULL || f->hook != NULL;
		sg_err_init(&tmp);
		if (!commit || store_commit(f->ca->st, b, &tmp) == 0) {
			rc = 0;
			break;
		}
		if (b == f->extra)
			b = NULL;
		/* Only a collision on our own serial is worth another try; other conflicts are the caller's. */
		if (tmp.code != SG_CONFLICT || f->extra != NULL || !f->store || !serial_taken(f->ca, f->m->id, &serial)) {
			*err = tmp;
			goto out;
		}
	}
	if (rc < 0)
		sg_err_set(err, SG_INTERNAL, "no free serial number after %d attempts", CA_SERIAL_ATTEMPTS);
out:
	if (b != f->extra)
		store_batch_free(b);
	f->prof->serial = NULL;
	if (rc == 0 && cr.der != NULL) {
		res->der = cr.der;
		res->der_len = cr.der_len;
		cr.der = NULL;
	}
	ca_cert_record_clear(&cr);
	X509_free(x);
	if (rc == 0) {
		res->chain = X509_chain_up_ref(f->iss->chain);
		if (res->chain == NULL)
			sg_die("out of memory");
	}
	return rc;
}

static int issuer_usable(const struct ca_issuer *iss, struct sg_err *err)
{
	if (iss->signer == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "issuer %s has no private key in this mount", iss->id);
	if (iss->revoked)
		return sg_err_set(err, SG_BAD_REQUEST, "issuer %s is revoked and cannot issue certificates", iss->id);
	if (!sg_strlist_has(&iss->usage, "issuing-certificates"))
		return sg_err_set(err, SG_BAD_REQUEST, "issuer %s is not allowed to issue certificates (usage)", iss->id);
	return 0;
}

/* ---------------- ca_issue ---------------- */

static void warn(struct sg_strlist *w, const char *msg)
{
	if (!sg_strlist_has(w, msg))
		sg_strlist_add(w, msg);
}

static bool lists_equal_set(const struct sg_strlist *a, const struct sg_strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!sg_strlist_has(b, a->v[i]))
			return false;
	return true;
}

/* The names of an issue/sign request: Vault's CSR/JSON merge (compat doc 1.3). */
static int request_names(const struct role *r, const struct ca_request *req, struct role_names *n,
                         struct sg_strlist *warnings, struct sg_err *err)
{
	struct role_names csrn;
	struct ca_sans alt = {0};
	int rc = -1;

	role_names_init(&csrn);
	if (req->kind == CA_REQ_SIGN && ca_csr_names(req->csr, &csrn, err) < 0)
		goto out;
	if (req->kind == CA_REQ_SIGN && r->use_csr_common_name) {
		const char *c = csrn.common_name != NULL ? csrn.common_name : "";

		n->common_name = sg_xstrdup(c);
		if (req->common_name != NULL && req->common_name[0] != '\0' && strcmp(req->common_name, c) != 0)
			warn(warnings, "the common_name field was ignored: the role uses the CSR's common name "
			               "(use_csr_common_name)");
	} else {
		n->common_name = sg_xstrdup(req->common_name != NULL ? req->common_name : "");
	}
	ca_sans_add_alt(&alt, &req->alt_names);
	if (req->kind == CA_REQ_SIGN && r->use_csr_sans) {
		sg_strlist_copy(&n->dns, &csrn.dns);
		sg_strlist_copy(&n->emails, &csrn.emails);
		sg_strlist_copy(&n->ips, &csrn.ips);
		sg_strlist_copy(&n->uris, &csrn.uris);
		sg_strlist_copy(&n->other_sans, &csrn.other_sans);
		if ((req->alt_names.n > 0 && !(lists_equal_set(&alt.dns, &csrn.dns) && lists_equal_set(&alt.emails, &csrn.emails))) ||
		    (req->ip_sans.n > 0 && !lists_equal_set(&req->ip_sans, &csrn.ips)) ||
		    (req->uri_sans.n > 0 && !lists_equal_set(&req->uri_sans, &csrn.uris)) ||
		    (req->other_sans.n > 0 && !lists_equal_set(&req->other_sans, &csrn.other_sans)))
			warn(warnings, "the alt_names, ip_sans, uri_sans and other_sans fields were ignored: the role "
			               "uses the CSR's SANs (use_csr_sans)");
	} else {
		sg_strlist_copy(&n->dns, &alt.dns);
		sg_strlist_copy(&n->emails, &alt.emails);
		sg_strlist_copy(&n->ips, &req->ip_sans);
		sg_strlist_copy(&n->uris, &req->uri_sans);
		sg_strlist_copy(&n->other_sans, &req->other_sans);
	}
	sg_strlist_copy(&n->user_ids, &req->user_ids);
	if (req->serial_number != NULL && req->serial_number[0] != '\0')
		n->subject_serial = sg_xstrdup(req->serial_number);
	else if (csrn.subject_serial != NULL && csrn.subject_serial[0] != '\0')
		n->subject_serial = sg_xstrdup(csrn.subject_serial);
	if (n->dns.n + n->emails.n + n->ips.n + n->uris.n + n->other_sans.n + n->user_ids.n > ROLE_MAX_SANS) {
		sg_err_set(err, SG_BAD_REQUEST, "more than %d names in one request", ROLE_MAX_SANS);
		goto out;
	}
	rc = 0;
out:
	ca_sans_clear(&alt);
	role_names_clear(&csrn);
	return rc;
}

/* The key of an issue request, from the role or (role "any") the request. */
static EVP_PKEY *issue_key(const struct role *r, const struct ca_request *req, struct sg_strlist *warnings,
                           struct sg_err *err)
{
	struct ca_keyspec spec;

	if (strcmp(r->key_type, "any") == 0) {
		if (req->key_type == NULL || req->key_type[0] == '\0') {
			sg_err_set(err, SG_BAD_REQUEST,
			           "role key type \"any\" not allowed for issuing certificates, only signing (or send key_type)");
			return NULL;
		}
		if (ca_keyspec_parse(req->key_type, req->key_bits, &spec, err) < 0)
			return NULL;
	} else {
		if ((req->key_type != NULL && req->key_type[0] != '\0') || req->key_bits != 0)
			warn(warnings, "parameters key_type and key_bits ignored as role had specific values");
		if (ca_keyspec_parse(r->key_type, r->key_bits, &spec, err) < 0)
			return NULL;
	}
	return ca_key_generate(&spec, err);
}

static int check_key(const struct role *r, EVP_PKEY *k, bool verbatim, struct sg_err *err)
{
	const char *type;
	int bits;

	if (ca_key_describe(k, &type, &bits, err) < 0)
		return -1;
	if (verbatim) {
		/* Vault's sign-verbatim role is key_type "any": RSA >= 2048, EC >= 224. */
		if (strcmp(type, "rsa") == 0 && bits < 2048)
			return sg_err_set(err, SG_KEY_DENIED, "RSA keys must be at least 2048 bits, got %d", bits);
		return 0;
	}
	return role_check_key(r, type, bits, err);
}

static void eku_oids_from_bits(unsigned bits, struct sg_strlist *out)
{
	for (unsigned i = 0; i < ROLE_EKU_COUNT; i++)
		if ((bits & (1u << i)) && role_eku_oid(i) != NULL)
			sg_strlist_add(out, role_eku_oid(i));
}

static int issue_core(struct ca *ca, const struct ca_mount *m, const struct role *role, const struct ca_request *req,
                      struct store_batch *extra, ca_commit_hook hook, void *hook_arg, struct ca_result *res,
                      struct sg_err *err)
{
	struct role *tmp_role = NULL;
	const struct role *r = role;
	struct ca_mstate *s = NULL;
	const struct ca_issuer *iss;
	struct role_names names;
	struct ca_sans sans = {0};
	struct sg_strlist eku = {0}, ku_default = {0};
	struct ca_urls urls = {0};
	struct ca_validity_in vin = {0};
	struct ca_profile prof = {0};
	struct ca_sig_params sig = {0, false};
	struct finish f = {0};
	STACK_OF(X509_EXTENSION) *csr_exts = NULL;
	X509_NAME *subject = NULL;
	EVP_PKEY *genkey = NULL, *pub;
	const char *ref;
	bool verbatim = req->kind == CA_REQ_SIGN_VERBATIM;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	role_names_init(&names);
	if (ca_mount_check(m, err) < 0)
		return -1;
	if (req->kind != CA_REQ_ISSUE && req->kind != CA_REQ_SIGN && !verbatim)
		return sg_err_set(err, SG_INTERNAL, "unknown request kind");
	if (role == NULL && !verbatim)
		return sg_err_set(err, SG_INTERNAL, "a role is required");
	if (req->kind != CA_REQ_ISSUE && req->csr == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "the csr field is required");
	if (r == NULL)
		r = tmp_role = role_new("sign-verbatim");

	if (ca_state_get(ca, m->id, &s, err) < 0)
		goto out;
	ref = req->issuer_ref != NULL && req->issuer_ref[0] != '\0' ? req->issuer_ref
	      : role != NULL && role->issuer_ref != NULL             ? role->issuer_ref
	                                                              : "default";
	if ((iss = ca_state_find(s, ref, err)) == NULL || issuer_usable(iss, err) < 0)
		goto out;

	if (verbatim) {
		pub = X509_REQ_get0_pubkey(req->csr);
		if (pub == NULL) {
			sg_err_ossl(err, SG_BAD_CSR, "the CSR has no usable public key");
			goto out;
		}
		if (check_key(r, pub, true, err) < 0)
			goto out;
		subject = X509_NAME_dup(X509_REQ_get_subject_name(req->csr));
		if (subject == NULL)
			sg_die("out of memory");
		if (ca_csr_exts_filtered(req->csr, true, &csr_exts, err) < 0)
			goto out;
		if (req->key_usage.n == 0) {
			sg_strlist_add(&ku_default, "DigitalSignature");
			sg_strlist_add(&ku_default, "KeyAgreement");
			sg_strlist_add(&ku_default, "KeyEncipherment");
		}
		prof.key_usage = role_key_usage_bits(req->key_usage.n > 0 ? &req->key_usage : &ku_default);
		eku_oids_from_bits(role_eku_bits_names(&req->ext_key_usage), &eku);
		prof.copy_exts = csr_exts;
		prof.leaf_basic_constraints = role != NULL && role->basic_constraints_valid_for_non_ca;
		if (role != NULL) {
			sig.signature_bits = role->signature_bits;
			sig.use_pss = role->use_pss;
		}
	} else {
		struct ca_subject sub;

		if (request_names(r, req, &names, &res->warnings, err) < 0 || role_check_names(r, &names, err) < 0)
			goto out;
		if (req->kind == CA_REQ_ISSUE) {
			if ((genkey = issue_key(r, req, &res->warnings, err)) == NULL)
				goto out;
			pub = genkey;
		} else {
			pub = X509_REQ_get0_pubkey(req->csr);
			if (pub == NULL) {
				sg_err_ossl(err, SG_BAD_CSR, "the CSR has no usable public key");
				goto out;
			}
		}
		if (check_key(r, pub, false, err) < 0)
			goto out;
		sub = (struct ca_subject){
			.cn = names.common_name,
			.serial_number = names.subject_serial,
			.country = &r->country,
			.province = &r->province,
			.locality = &r->locality,
			.street = &r->street_address,
			.postal = &r->postal_code,
			.org = &r->organization,
			.ou = &r->ou,
			.uids = &names.user_ids,
		};
		if ((subject = ca_subject_build(&sub, err)) == NULL)
			goto out;
		sg_strlist_copy(&sans.dns, &names.dns);
		sg_strlist_copy(&sans.emails, &names.emails);
		sg_strlist_copy(&sans.ips, &names.ips);
		sg_strlist_copy(&sans.uris, &names.uris);
		sg_strlist_copy(&sans.other, &names.other_sans);
		if (!req->exclude_cn_from_sans)
			ca_sans_add_cn(&sans, names.common_name);
		ca_sans_normalize(&sans);
		prof.sans = &sans;
		prof.key_usage = role_key_usage_bits(&r->key_usage);
		eku_oids_from_bits(role_eku_bits(r), &eku);
		for (size_t i = 0; i < r->ext_key_usage_oids.n; i++)
			sg_strlist_add(&eku, r->ext_key_usage_oids.v[i]);
		prof.policies = &r->policy_identifiers;
		prof.leaf_basic_constraints = r->basic_constraints_valid_for_non_ca;
		sig.signature_bits = r->signature_bits;
		sig.use_pss = r->use_pss;
	}

	vin.ttl = req->ttl;
	vin.not_after = r->not_after != NULL && r->not_after[0] != '\0' ? r->not_after : req->not_after;
	vin.role = r;
	vin.mount_default = m->default_ttl;
	vin.mount_max = m->max_ttl;
	vin.not_before_duration = r->not_before_duration;
	vin.force_truncate = req->force_truncate;
	if (ca_validity_compute(&vin, iss, &prof.not_before, &prof.not_after, &res->warnings, err) < 0)
		goto out;
	if (ca_state_urls_for(s, iss, &urls, err) < 0)
		goto out;

	prof.subject = subject;
	prof.pubkey = pub;
	prof.spki = req->kind != CA_REQ_ISSUE ? X509_REQ_get_X509_PUBKEY(req->csr) : NULL;
	prof.issuer = iss->cert;
	prof.ku_filter_by_key = true;
	prof.eku_oids = &eku;
	prof.urls = &urls;
	prof.max_path_length = -1;

	f.ca = ca;
	f.m = m;
	f.s = s;
	f.iss = iss;
	f.prof = &prof;
	f.sig = &sig;
	f.store = !r->no_store;
	/* Vault legitimately issues these; the lint knows them as exceptions. */
	f.lint.cn_outside_sans_ok = verbatim || req->exclude_cn_from_sans;
	f.lint.not_after_beyond_issuer_ok = iss->behavior == CA_NA_PERMIT;
	f.role_name = role != NULL ? role->name : "";
	f.owner = req->owner;
	f.extra = extra;
	f.hook = hook;
	f.hook_arg = hook_arg;
	if (finish_issue(&f, res, err) < 0)
		goto out;
	if (genkey != NULL) {
		res->key = genkey;
		genkey = NULL;
	}
	rc = 0;
out:
	if (rc < 0)
		ca_result_clear(res);
	ca_state_release(s);
	role_free(tmp_role);
	role_names_clear(&names);
	ca_sans_clear(&sans);
	sg_strlist_clear(&eku);
	sg_strlist_clear(&ku_default);
	ca_urls_clear(&urls);
	sk_X509_EXTENSION_pop_free(csr_exts, X509_EXTENSION_free);
	X509_NAME_free(subject);
	EVP_PKEY_free(genkey);
	return rc;
}

int ca_issue(struct ca *ca, const struct ca_mount *m, const struct role *role, const struct ca_request *req,
             struct store_batch *extra, struct ca_result *res, struct sg_err *err)
{
	return issue_core(ca, m, role, req, extra, NULL, NULL, res, err);
}

int ca_issue_ex(struct ca *ca, const struct ca_mount *m, const struct role *role, const struct ca_request *req,
                ca_commit_hook hook, void *hook_arg, struct ca_result *res, struct sg_err *err)
{
	return issue_core(ca, m, role, req, NULL, hook, hook_arg, res, err);
}

/* ---------------- sign-intermediate ---------------- */

int ca_sign_intermediate(struct ca *ca, const struct ca_mount *m, const char *issuer_ref, X509_REQ *csr,
                         const struct ca_ca_params *p, struct ca_result *res, struct sg_err *err)
{
	struct ca_mstate *s = NULL;
	const struct ca_issuer *iss;
	struct ca_sans sans = {0};
	struct ca_urls urls = {0};
	struct ca_validity_in vin = {0};
	struct ca_profile prof = {0};
	struct ca_sig_params sig = {p->signature_bits, p->use_pss};
	struct finish f = {0};
	STACK_OF(X509_EXTENSION) *csr_exts = NULL;
	X509_NAME *subject = NULL;
	EVP_PKEY *pub;
	int pathlen = p->max_path_length, rc = -1;

	memset(res, 0, sizeof(*res));
	if (ca_mount_check(m, err) < 0)
		return -1;
	if (csr == NULL)
		return sg_err_set(err, SG_BAD_REQUEST, "the csr field is required");
	pub = X509_REQ_get0_pubkey(csr);
	if (pub == NULL || X509_REQ_verify(csr, pub) != 1)
		return sg_err_ossl(err, SG_BAD_SIGNATURE, "the CSR's signature does not verify");
	if (check_key(NULL, pub, true, err) < 0)
		return -1;
	if (ca_state_get(ca, m->id, &s, err) < 0)
		return -1;
	if ((iss = ca_state_find(s, issuer_ref, err)) == NULL || issuer_usable(iss, err) < 0)
		goto out;
	/* RFC 5280 4.2.1.9: pathLenConstraint 0 means no CA certificate may follow. */
	if (iss->path_len == 0) {
		sg_err_set(err, SG_BAD_REQUEST,
		           "signing certificate has a max path length of zero, and cannot issue further CA certificates");
		goto out;
	}
	if (iss->path_len > 0 && (pathlen < 0 || pathlen > iss->path_len - 1))
		pathlen = iss->path_len - 1;
	if (p->use_csr_values) {
		subject = X509_NAME_dup(X509_REQ_get_subject_name(csr));
		if (subject == NULL)
			sg_die("out of memory");
		if (ca_csr_exts_filtered(csr, false, &csr_exts, err) < 0)
			goto out;
		prof.copy_exts = csr_exts;
	} else {
		struct ca_subject sub = {
			.cn = p->common_name,
			.serial_number = p->serial_number,
			.country = &p->country,
			.province = &p->province,
			.locality = &p->locality,
			.street = &p->street_address,
			.postal = &p->postal_code,
			.org = &p->organization,
			.ou = &p->ou,
			.uids = NULL,
		};

		if (p->common_name == NULL || p->common_name[0] == '\0') {
			sg_err_set(err, SG_BAD_REQUEST, "the common_name field is required unless use_csr_values is set");
			goto out;
		}
		if ((subject = ca_subject_build(&sub, err)) == NULL)
			goto out;
		ca_sans_add_alt(&sans, &p->alt_names);
		sg_strlist_copy(&sans.ips, &p->ip_sans);
		sg_strlist_copy(&sans.uris, &p->uri_sans);
		sg_strlist_copy(&sans.other, &p->other_sans);
		if (!p->exclude_cn_from_sans)
			ca_sans_add_cn(&sans, p->common_name);
		ca_sans_normalize(&sans);
		prof.sans = &sans;
	}
	vin.ttl = p->ttl;
	vin.not_after = p->not_after;
	vin.mount_default = m->default_ttl;
	vin.mount_max = m->max_ttl;
	vin.not_before_duration = p->not_before_duration;
	if (ca_validity_compute(&vin, iss, &prof.not_before, &prof.not_after, &res->warnings, err) < 0)
		goto out;
	if (ca_state_urls_for(s, iss, &urls, err) < 0)
		goto out;
	prof.subject = subject;
	prof.pubkey = pub;
	prof.spki = X509_REQ_get_X509_PUBKEY(csr);
	prof.issuer = iss->cert;
	prof.is_ca = true;
	prof.max_path_length = pathlen;
	prof.key_usage = ROLE_KU_CERT_SIGN | ROLE_KU_CRL_SIGN | ROLE_KU_DIGITAL_SIGNATURE;
	prof.urls = &urls;
	prof.permitted_dns_domains = &p->permitted_dns_domains;

	f.ca = ca;
	f.m = m;
	f.s = s;
	f.iss = iss;
	f.prof = &prof;
	f.sig = &sig;
	f.store = true;
	f.lint.cn_outside_sans_ok = p->use_csr_values || p->exclude_cn_from_sans;
	f.lint.not_after_beyond_issuer_ok = iss->behavior == CA_NA_PERMIT;
	f.role_name = "";
	f.owner = "";
	if (finish_issue(&f, res, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		ca_result_clear(res);
	ca_state_release(s);
	ca_sans_clear(&sans);
	ca_urls_clear(&urls);
	sk_X509_EXTENSION_pop_free(csr_exts, X509_EXTENSION_free);
	X509_NAME_free(subject);
	return rc;
}
