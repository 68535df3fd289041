/*
 * The signer (DESIGN.md rule 8): the only code that uses private keys. The
 * in-process implementation holds an EVP_PKEY; OpenSSL 3 allows one key to
 * be used for signing from many threads at once, each with its own
 * EVP_MD_CTX, so a signer is shared by every request of its mount.
 */
#include "ca/internal.h"

#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>

struct mem_signer {
	struct ca_signer base;
	EVP_PKEY *key;
};

/* The digest for a key: RFC 5758 3.2 pairs ECDSA curves with their hash; RSA defaults to SHA-256 (RFC 4055). */
static int pick_digest(const EVP_PKEY *pub, const struct ca_sig_params *p, const char **md, struct sg_err *err)
{
	int bits = p != NULL ? p->signature_bits : 0;

	*md = NULL;
	if (bits != 0 && bits != 256 && bits != 384 && bits != 512)
		return sg_err_set(err, SG_BAD_REQUEST, "unsupported signature_bits %d (256, 384 or 512)", bits);
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_ED25519:
		/* RFC 8410 6: Ed25519 signs the message itself, no separate digest. */
		return 0;
	case EVP_PKEY_EC: {
		/*
		 * The hash matches the curve whatever signature_bits says, as in
		 * Vault: a longer hash would only be truncated to the curve size.
		 */
		int kb = EVP_PKEY_get_bits(pub);

		bits = kb <= 256 ? 256 : kb <= 384 ? 384 : 512;
		break;
	}
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		if (bits == 0)
			bits = 256;
		break;
	default:
		return sg_err_set(err, SG_CRYPTO, "unsupported signing key type");
	}
	*md = bits == 256 ? "SHA256" : bits == 384 ? "SHA384" : "SHA512";
	return 0;
}

static int init_ctx(EVP_PKEY *key, const struct ca_sig_params *p, EVP_MD_CTX **out, struct sg_err *err)
{
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const char *md = NULL;
	int id = EVP_PKEY_get_base_id(key);
	int rc = -1;

	if (pick_digest(key, p, &md, err) < 0)
		goto out;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		sg_die("out of memory");
	if (EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key, NULL) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "unable to initialise the signature");
		goto out;
	}
	if (p != NULL && p->use_pss && (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS)) {
		/* RFC 4055 3.1: PSS with MGF1 over the same hash and a salt as long as the digest. */
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0) {
			sg_err_ossl(err, SG_CRYPTO, "unable to select RSA-PSS");
			goto out;
		}
	}
	*out = ctx;
	ctx = NULL;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int do_sign(EVP_PKEY *key, const struct ca_sig_params *p, X509 *x, X509_REQ *r, X509_CRL *c,
                   struct sg_err *err)
{
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	if (init_ctx(key, p, &ctx, err) < 0)
		goto out;
	if ((x != NULL && X509_sign_ctx(x, ctx) <= 0) || (r != NULL && X509_REQ_sign_ctx(r, ctx) <= 0) ||
	    (c != NULL && X509_CRL_sign_ctx(c, ctx) <= 0)) {
		sg_err_ossl(err, SG_CRYPTO, "signing failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static struct mem_signer *mem(struct ca_signer *s)
{
	return (struct mem_signer *)s;
}

static int mem_sign_x509(struct ca_signer *s, X509 *x, const struct ca_sig_params *p, struct sg_err *err)
{
	return do_sign(mem(s)->key, p, x, NULL, NULL, err);
}

static int mem_sign_req(struct ca_signer *s, X509_REQ *r, const struct ca_sig_params *p, struct sg_err *err)
{
	return do_sign(mem(s)->key, p, NULL, r, NULL, err);
}

static int mem_sign_crl(struct ca_signer *s, X509_CRL *c, const struct ca_sig_params *p, struct sg_err *err)
{
	return do_sign(mem(s)->key, p, NULL, NULL, c, err);
}

static int mem_sign_ocsp(struct ca_signer *s, OCSP_BASICRESP *b, X509 *cert, STACK_OF(X509) *certs,
                         unsigned long flags, struct sg_err *err)
{
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	if (init_ctx(mem(s)->key, NULL, &ctx, err) < 0)
		goto out;
	if (OCSP_basic_sign_ctx(b, cert, ctx, certs, flags) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "OCSP response signing failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/*
 * The AlgorithmIdentifier OpenSSL writes for this key and these parameters
 * (RSA-PSS parameters included), learnt by signing an empty NULL.
 */
static int sig_algor_der(EVP_PKEY *key, const struct ca_sig_params *p, unsigned char **out, size_t *len,
                         struct sg_err *err)
{
	EVP_MD_CTX *ctx = NULL;
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *sig = ASN1_BIT_STRING_new();
	ASN1_NULL *null = ASN1_NULL_new();
	unsigned char *der = NULL;
	int n, rc = -1;

	if (alg == NULL || sig == NULL || null == NULL)
		sg_die("out of memory");
	if (init_ctx(key, p, &ctx, err) < 0)
		goto out;
	if (ASN1_item_sign_ctx(ASN1_ITEM_rptr(ASN1_NULL), alg, NULL, sig, null, ctx) <= 0 ||
	    (n = i2d_X509_ALGOR(alg, &der)) <= 0) {
		sg_err_ossl(err, SG_CRYPTO, "unable to determine the signature algorithm");
		goto out;
	}
	*out = der;
	*len = (size_t)n;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	X509_ALGOR_free(alg);
	ASN1_BIT_STRING_free(sig);
	ASN1_NULL_free(null);
	return rc;
}

static int mem_sign_der(struct ca_signer *s, const unsigned char *tbs, size_t len, const struct ca_sig_params *p,
                        unsigned char **alg, size_t *alg_len, unsigned char **sig, size_t *sig_len,
                        struct sg_err *err)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char *out = NULL;
	size_t n = 0;
	int rc = -1;

	*alg = NULL;
	*alg_len = 0;
	if (sig != NULL) {
		*sig = NULL;
		*sig_len = 0;
	}
	if (sig_algor_der(mem(s)->key, p, alg, alg_len, err) < 0)
		goto out;
	if (tbs == NULL || sig == NULL) {
		rc = 0;
		goto out;
	}
	/* One-shot EVP_DigestSign: Ed25519 (RFC 8410) cannot stream, and the bytes are in memory anyway. */
	if (init_ctx(mem(s)->key, p, &ctx, err) < 0)
		goto out;
	if (EVP_DigestSign(ctx, NULL, &n, tbs, len) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "signing failed");
		goto out;
	}
	out = OPENSSL_malloc(n);
	if (out == NULL)
		sg_die("out of memory");
	if (EVP_DigestSign(ctx, out, &n, tbs, len) != 1) {
		sg_err_ossl(err, SG_CRYPTO, "signing failed");
		goto out;
	}
	*sig = out;
	*sig_len = n;
	out = NULL;
	rc = 0;
out:
	if (rc < 0) {
		OPENSSL_free(*alg);
		*alg = NULL;
		*alg_len = 0;
	}
	OPENSSL_free(out);
	EVP_MD_CTX_free(ctx);
	return rc;
}

static void mem_destroy(struct ca_signer *s)
{
	EVP_PKEY_free(mem(s)->key);
	EVP_PKEY_free(s->pub);
	free(s);
}

static const struct ca_signer_ops mem_ops = {
	.sign_x509 = mem_sign_x509,
	.sign_req = mem_sign_req,
	.sign_crl = mem_sign_crl,
	.sign_ocsp = mem_sign_ocsp,
	.sign_der = mem_sign_der,
	.destroy = mem_destroy,
};

/* A public-only copy, so that nothing outside the signer holds the private half. */
static EVP_PKEY *public_copy(const EVP_PKEY *key, struct sg_err *err)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub = NULL;
	int len = i2d_PUBKEY(key, &der);

	if (len <= 0) {
		sg_err_ossl(err, SG_CRYPTO, "unable to encode a public key");
		return NULL;
	}
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	if (pub == NULL)
		sg_err_ossl(err, SG_CRYPTO, "unable to decode a public key");
	OPENSSL_free(der);
	return pub;
}

struct ca_signer *ca_signer_mem_new(EVP_PKEY *key, struct sg_err *err)
{
	struct mem_signer *s;
	EVP_PKEY *pub = public_copy(key, err);

	if (pub == NULL) {
		EVP_PKEY_free(key);
		return NULL;
	}
	s = sg_xcalloc(1, sizeof(*s));
	s->base.ops = &mem_ops;
	atomic_init(&s->base.refs, 1);
	s->base.pub = pub;
	s->key = key;
	return &s->base;
}

struct ca_signer *ca_signer_up_ref(struct ca_signer *s)
{
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

void ca_signer_release(struct ca_signer *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		s->ops->destroy(s);
}

const EVP_PKEY *ca_signer_get0_pubkey(const struct ca_signer *s)
{
	return s->pub;
}

int ca_signer_sign_x509(struct ca_signer *s, X509 *x, const struct ca_sig_params *p, struct sg_err *err)
{
	return s->ops->sign_x509(s, x, p, err);
}

int ca_signer_sign_req(struct ca_signer *s, X509_REQ *r, const struct ca_sig_params *p, struct sg_err *err)
{
	return s->ops->sign_req(s, r, p, err);
}

int ca_signer_sign_crl(struct ca_signer *s, X509_CRL *c, const struct ca_sig_params *p, struct sg_err *err)
{
	return s->ops->sign_crl(s, c, p, err);
}

int ca_signer_sign_ocsp(struct ca_signer *s, OCSP_BASICRESP *b, X509 *cert, STACK_OF(X509) *certs,
                        unsigned long flags, struct sg_err *err)
{
	return s->ops->sign_ocsp(s, b, cert, certs, flags, err);
}

int ca_signer_sign_der(struct ca_signer *s, const unsigned char *tbs, size_t len, const struct ca_sig_params *p,
                       unsigned char **alg, size_t *alg_len, unsigned char **sig, size_t *sig_len,
                       struct sg_err *err)
{
	return s->ops->sign_der(s, tbs, len, p, alg, alg_len, sig, sig_len, err);
}

int ca_sign_with_key(EVP_PKEY *key, X509 *x, X509_REQ *r, const struct ca_sig_params *p, struct sg_err *err)
{
	return do_sign(key, p, x, r, NULL, err);
}

struct ca_signer *ca_signer_generate_ephemeral(struct sg_err *err)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (key == NULL) {
		sg_err_ossl(err, SG_CRYPTO, "unable to generate a responder key");
		return NULL;
	}
	return ca_signer_mem_new(key, err);
}
