/* Unit tests for agent/: config parsing and refusals, renewal and backoff timing, atomic writes, secret files, certificate dates. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "agent/agent.h"
#include "agent/health.h"
#include "tests/unit/t.h"

static struct agent_config *parse(const char *text, struct sg_err *err)
{
	sg_err_init(err);
	return agent_config_parse(text, strlen(text), err);
}

static void expect_refused(const char *text, const char *want)
{
	struct sg_err err;
	struct agent_config *cfg = parse(text, &err);

	T_CHECK(cfg == NULL, "accepted: %s", text);
	T_CHECK(strstr(err.detail, want) != NULL, "error '%s' lacks '%s'", err.detail, want);
	agent_config_free(cfg);
}

static void test_config_full(void)
{
	struct sg_err err;
	struct agent_config *cfg = parse(
		"{\"address\":\"https://sigil:8200\",\"ca_cert\":\"/ca.pem\",\"exit_after_auth\":true,"
		"\"auto_auth\":{\"method\":\"approle\",\"role_id_file\":\"/r\",\"secret_id_file\":\"/s\","
		"\"remove_secret_id_file_after_reading\":true,\"sink\":{\"path\":\"/tok\",\"mode\":\"0640\"}},"
		"\"certificates\":[{\"role\":\"web\",\"common_name\":\"a.example.com\",\"alt_names\":\"b.example.com,c.example.com\","
		"\"ip_sans\":[\"10.0.0.1\"],\"uri_sans\":[\"spiffe://x/y\"],\"ttl\":\"15m\",\"key_type\":\"ec\",\"key_bits\":384,"
		"\"cert_file\":\"/c\",\"key_file\":\"/k\",\"mode\":\"0644\",\"key_mode\":\"0400\",\"owner\":\"0\",\"group\":\"0\","
		"\"renew_fraction\":0.5,\"jitter\":0,\"reload_signal\":\"SIGUSR1\",\"pid_file\":\"/p\",\"revoke_on_shutdown\":true}],"
		"\"health\":{\"listen_address\":\"127.0.0.1:9000\",\"status_file\":\"/st\"},"
		"\"retry\":{\"min_backoff\":\"2s\",\"max_backoff\":\"1m\",\"oneshot_attempts\":3}}",
		&err);

	T_CHECK(cfg != NULL, "%s", err.detail);
	if (cfg == NULL)
		return;
	T_STREQ(cfg->address, "https://sigil:8200");
	T_OK(cfg->method == AGENT_AUTH_APPROLE);
	T_STREQ(cfg->mount, "approle");
	T_OK(cfg->remove_secret_id);
	T_OK(cfg->sink_mode == 0640);
	T_OK(cfg->exit_after_auth);
	T_OK(cfg->ncerts == 1);
	T_STREQ(cfg->certs[0].name, "a.example.com");
	T_STREQ(cfg->certs[0].mount, "pki");
	T_OK(cfg->certs[0].alt_names.n == 2);
	T_STREQ(cfg->certs[0].alt_names.v[1], "c.example.com");
	T_OK(cfg->certs[0].ip_sans.n == 1);
	T_OK(cfg->certs[0].key_bits == 384);
	T_OK(cfg->certs[0].mode == 0644 && cfg->certs[0].key_mode == 0400);
	T_OK(cfg->certs[0].uid == 0 && cfg->certs[0].gid == 0);
	T_OK(cfg->certs[0].renew_fraction == 0.5 && cfg->certs[0].jitter == 0);
	T_OK(cfg->certs[0].reload_signal == SIGUSR1);
	T_OK(cfg->certs[0].revoke_on_shutdown);
	T_STREQ(cfg->health_listen, "127.0.0.1:9000");
	T_OK(cfg->backoff_min == 2 && cfg->backoff_max == 60 && cfg->oneshot_attempts == 3);
	agent_config_free(cfg);
}

static void test_config_defaults(void)
{
	struct sg_err err;
	struct agent_config *cfg = parse(
		"{\"auto_auth\":{\"method\":\"kubernetes\",\"role\":\"app\"},"
		"\"certificates\":[{\"role\":\"web\",\"common_name\":\"a.example.com\",\"bundle_file\":\"/b\"}]}",
		&err);

	T_CHECK(cfg != NULL, "%s", err.detail);
	if (cfg == NULL)
		return;
	T_OK(cfg->method == AGENT_AUTH_KUBERNETES);
	T_STREQ(cfg->mount, "kubernetes");
	T_STREQ(cfg->jwt_file, "/var/run/secrets/kubernetes.io/serviceaccount/token");
	T_OK(cfg->address == NULL && cfg->sink_path == NULL && !cfg->exit_after_auth);
	T_OK(cfg->certs[0].mode == 0644 && cfg->certs[0].key_mode == 0600);
	T_OK(cfg->certs[0].uid == (uid_t)-1 && cfg->certs[0].gid == (gid_t)-1);
	T_OK(cfg->certs[0].renew_fraction > 0.66 && cfg->certs[0].renew_fraction < 0.67);
	T_OK(cfg->certs[0].reload_signal == SIGHUP);
	T_OK(cfg->backoff_min == AGENT_DEFAULT_BACKOFF_MIN && cfg->backoff_max == AGENT_DEFAULT_BACKOFF_MAX);
	agent_config_free(cfg);

	cfg = parse("{\"auto_auth\":{\"method\":\"token_file\",\"token_file\":\"/t\"}}", &err);
	T_CHECK(cfg != NULL, "%s", err.detail);
	T_STREQ(cfg ? cfg->mount : NULL, "token");
	agent_config_free(cfg);
	cfg = parse("{\"auto_auth\":{\"method\":\"cert\",\"client_cert\":\"/c\",\"client_key\":\"/k\",\"mount_path\":\"tls\"}}",
	            &err);
	T_CHECK(cfg != NULL && cfg->method == AGENT_AUTH_CERT, "%s", err.detail);
	T_STREQ(cfg ? cfg->mount : NULL, "tls");
	agent_config_free(cfg);
}

#define AUTH_OK "\"auto_auth\":{\"method\":\"token_file\",\"token_file\":\"/t\"}"
#define CERT_OK "\"role\":\"web\",\"common_name\":\"a.example.com\",\"cert_file\":\"/c\",\"key_file\":\"/k\""

static void test_config_refusals(void)
{
	char big[AGENT_MAX_CONFIG_BYTES + 2];
	struct sg_err err;
	char *many;
	size_t i;

	expect_refused("[]", "not a JSON object");
	expect_refused("{\"auto_auth\":{}", "not a JSON object");
	expect_refused("{}", "\"auto_auth\" is required");
	expect_refused("{" AUTH_OK ",\"adress\":\"x\"}", "unknown key \"adress\"");
	expect_refused("{" AUTH_OK "," AUTH_OK "}", "not a JSON object"); /* duplicate keys */
	expect_refused("{\"auto_auth\":{\"method\":\"ldap\"}}", "unknown method");
	expect_refused("{\"auto_auth\":{\"method\":\"token_file\"}}", "token_file");
	expect_refused("{\"auto_auth\":{\"method\":\"approle\"}}", "role_id_file");
	expect_refused("{\"auto_auth\":{\"method\":\"kubernetes\"}}", "needs \"role\"");
	expect_refused("{\"auto_auth\":{\"method\":\"cert\",\"client_cert\":\"/c\"}}", "client_key");
	expect_refused("{\"auto_auth\":{\"method\":\"approle\",\"role_id_file\":\"/r\",\"secret\":\"x\"}}",
	               "auto_auth: unknown key");
	expect_refused("{\"auto_auth\":{\"method\":\"token_file\",\"token_file\":\"/t\",\"sink\":{\"mode\":\"0600\"}}}",
	               "\"path\" is required");
	expect_refused("{" AUTH_OK ",\"certificates\":{}}", "must be a list");
	expect_refused("{" AUTH_OK ",\"certificates\":[1]}", "certificates[0] must be an object");
	expect_refused("{" AUTH_OK ",\"certificates\":[{\"common_name\":\"a\",\"cert_file\":\"/c\",\"key_file\":\"/k\"}]}",
	               "\"role\" is required");
	expect_refused("{" AUTH_OK ",\"certificates\":[{\"role\":\"w\",\"cert_file\":\"/c\",\"key_file\":\"/k\"}]}",
	               "\"common_name\" is required");
	expect_refused("{" AUTH_OK ",\"certificates\":[{\"role\":\"w\",\"common_name\":\"a\"}]}",
	               "\"cert_file\" or \"bundle_file\"");
	expect_refused("{" AUTH_OK ",\"certificates\":[{\"role\":\"w\",\"common_name\":\"a\",\"cert_file\":\"/c\"}]}",
	               "\"key_file\" is required");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"mode\":\"0999\"}]}", "octal mode");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"mode\":\"010000\"}]}", "out of range");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"mode\":true}]}", "octal mode");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"renew_fraction\":0.99}]}", "renew_fraction");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"renew_fraction\":\"0.5\"}]}", "must be a number");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"jitter\":0.9}]}", "jitter");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"ttl\":\"soon\"}]}", "not a duration");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"key_bits\":-1}]}", "key_bits");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"reload_signal\":\"KILLALL\"}]}",
	               "unknown reload_signal");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"owner\":\"no-such-user-xyz\"}]}", "no such user");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"group\":\"no-such-group-xyz\"}]}",
	               "no such group");
	expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"cn\":\"x\"}]}", "certificates[0]: unknown key");
	expect_refused("{" AUTH_OK ",\"retry\":{\"min_backoff\":\"10s\",\"max_backoff\":\"1s\"}}", "min_backoff");
	expect_refused("{" AUTH_OK ",\"retry\":{\"oneshot_attempts\":0}}", "oneshot_attempts");
	expect_refused("{" AUTH_OK ",\"health\":[]}", "must be an object");

	/* Caps: certificate count, names per certificate, file size. */
	many = sg_xstrdup("{" AUTH_OK ",\"certificates\":[");
	for (i = 0; i <= AGENT_MAX_CERTS; i++) {
		char *n = sg_xasprintf("%s%s{" CERT_OK "}", many, i ? "," : "");

		free(many);
		many = n;
	}
	{
		char *n = sg_xasprintf("%s]}", many);

		free(many);
		many = n;
	}
	expect_refused(many, "more than 32 certificates");
	free(many);
	many = sg_xstrdup("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"alt_names\":\"a");
	for (i = 0; i <= AGENT_MAX_NAMES; i++) {
		char *n = sg_xasprintf("%s,x%zu.example.com", many, i);

		free(many);
		many = n;
	}
	{
		char *n = sg_xasprintf("%s\"}]}", many);

		free(many);
		many = n;
	}
	expect_refused(many, "more than 100 entries");
	free(many);
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '}';
	sg_err_init(&err);
	T_OK(agent_config_parse(big, sizeof(big), &err) == NULL);
	T_OK(err.code == SG_TOO_LARGE);
}

static void test_timing(void)
{
	unsigned i;
	int64_t prev = 0;

	/* 2/3 of a 90 s lifetime, no jitter: 60 s after the start. */
	T_OK(agent_renew_time(1000, 1090, 2.0 / 3.0, 0, 0.5) == 1060);
	/* Jitter only moves it earlier, by at most jitter * lifetime. */
	T_OK(agent_renew_time(1000, 1100, 0.5, 0.1, 0.0) == 1050);
	T_OK(agent_renew_time(1000, 1100, 0.5, 0.1, 0.999) >= 1040);
	T_OK(agent_renew_time(1000, 1100, 0.5, 0.1, 0.999) < 1041);
	T_OK(agent_renew_time(1000, 1100, 0.05, 0.5, 0.99) == 1000); /* never before the start */
	T_OK(agent_renew_time(1000, 900, 0.5, 0, 0) == 1000);        /* a broken certificate: renew now */
	T_OK(agent_renew_time(1000, 1100, 0.5, 0.1, 7.0) >= 1040);   /* u clamped */

	/* Backoff doubles from min, stops at max, and u scales it into [half, full]. */
	T_OK(agent_backoff(0, 1, 60, 1.0) == 1);
	T_OK(agent_backoff(1, 1, 60, 1.0) == 2);
	T_OK(agent_backoff(3, 1, 60, 1.0) == 8);
	T_OK(agent_backoff(6, 1, 60, 1.0) == 60);
	T_OK(agent_backoff(1000, 1, 60, 1.0) == 60);
	T_OK(agent_backoff(3, 2, 60, 0.0) == 8);
	T_OK(agent_backoff(0, 1, 60, 0.0) == 1); /* never below a second */
	T_OK(agent_backoff(0, 0, 60, 0.0) == 1);
	for (i = 0; i < 10; i++) {
		int64_t b = agent_backoff(i, 1, 300, 1.0);

		T_CHECK(b >= prev, "backoff %u decreased", i);
		prev = b;
	}

	T_OK(agent_signal_parse("HUP") == SIGHUP);
	T_OK(agent_signal_parse("SIGTERM") == SIGTERM);
	T_OK(agent_signal_parse("10") == 10);
	T_OK(agent_signal_parse("0") == -1);
	T_OK(agent_signal_parse("SIG") == -1);
	T_OK(agent_signal_parse("hup") == -1);
	T_OK(agent_signal_parse(NULL) == -1);
}

static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_files(void)
{
	char dir[] = "/tmp/sigil-agent-test-XXXXXX";
	char *path = NULL, *sec = NULL, *s = NULL;
	unsigned char *back = NULL;
	size_t len = 0;
	struct stat st;
	struct sg_err err;
	mode_t old = umask(077);

	T_OK(mkdtemp(dir) != NULL);
	path = sg_xasprintf("%s/cert.pem", dir);
	sg_err_init(&err);
	/* The mode is exact whatever the umask. */
	T_OK(agent_file_write(path, "one\n", 4, 0644, (uid_t)-1, (gid_t)-1, &err) == 0);
	T_OK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644);
	T_OK(agent_file_write(path, "second\n", 7, 0600, getuid(), getgid(), &err) == 0);
	T_OK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_size == 7);
	T_OK(sg_file_read(path, 100, &back, &len, &err) == 0 && len == 7 && memcmp(back, "second\n", 7) == 0);
	free(back);
	T_OK(dir_entries(dir) == 1); /* no temporary file left */
	/* A missing directory: an error naming the path, nothing created. */
	free(path);
	path = sg_xasprintf("%s/missing/cert.pem", dir);
	sg_err_init(&err);
	T_OK(agent_file_write(path, "x", 1, 0600, (uid_t)-1, (gid_t)-1, &err) == -1);
	T_OK(strstr(err.detail, "next to") != NULL);
	/* A target that is a directory: rename fails, the temporary file is removed. */
	free(path);
	path = sg_xasprintf("%s/adir", dir);
	T_OK(mkdir(path, 0700) == 0);
	sg_err_init(&err);
	T_OK(agent_file_write(path, "x", 1, 0600, (uid_t)-1, (gid_t)-1, &err) == -1);
	T_OK(strstr(err.detail, "cannot write") != NULL);
	T_OK(dir_entries(dir) == 2);
	rmdir(path);

	/* Secret files: trimmed, empty refused, size capped. */
	sec = sg_xasprintf("%s/secret", dir);
	T_OK(agent_file_write(sec, "  s.abc\n\n", 9, 0600, (uid_t)-1, (gid_t)-1, &err) == 0);
	sg_err_init(&err);
	s = agent_secret_read(sec, &err);
	T_STREQ(s, "s.abc");
	free(s);
	T_OK(agent_file_write(sec, " \n", 2, 0600, (uid_t)-1, (gid_t)-1, &err) == 0);
	sg_err_init(&err);
	T_OK(agent_secret_read(sec, &err) == NULL && strstr(err.detail, "empty") != NULL);
	{
		char *big = sg_xmalloc(AGENT_MAX_SECRET_BYTES + 10);

		memset(big, 'a', AGENT_MAX_SECRET_BYTES + 10);
		T_OK(agent_file_write(sec, big, AGENT_MAX_SECRET_BYTES + 10, 0600, (uid_t)-1, (gid_t)-1, &err) == 0);
		sg_err_init(&err);
		T_OK(agent_secret_read(sec, &err) == NULL);
		free(big);
	}
	sg_err_init(&err);
	T_OK(agent_secret_read("/nonexistent/secret", &err) == NULL);
	unlink(sec);
	free(path);
	path = sg_xasprintf("%s/cert.pem", dir);
	unlink(path);
	rmdir(dir);
	free(path);
	free(sec);
	umask(old);
}

/* A self-signed P-256 certificate valid [now - 10, now + 3600] with serial 0x0102ab. */
static char *make_cert_pem(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *b = BIO_new(BIO_s_mem());
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	char *data = NULL, *out;
	long n;

	ASN1_INTEGER_set(serial, 0x0102ab);
	X509_set_serialNumber(x, serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -10);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	out = sg_xstrndup(data, (size_t)n);
	ASN1_INTEGER_free(serial);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(k);
	return out;
}

static void test_cert_info(void)
{
	char *pem = make_cert_pem();
	char *serial = NULL;
	int64_t nb = 0, na = 0, now = (int64_t)time(NULL);
	struct sg_err err;

	sg_err_init(&err);
	T_OK(agent_cert_info(pem, strlen(pem), &nb, &na, &serial, &err) == 0);
	T_OK(nb >= now - 12 && nb <= now - 8);
	T_OK(na - nb == 3610);
	T_STREQ(serial, "01:02:ab");
	free(serial);
	serial = NULL;
	sg_err_init(&err);
	T_OK(agent_cert_info("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 60, &nb, &na, &serial,
	                     &err) == -1);
	T_OK(err.code == SG_BAD_PEM && serial == NULL);
	sg_err_init(&err);
	T_OK(agent_cert_info("", 0, &nb, &na, NULL, &err) == -1);
	free(pem);
}

static void test_health_snapshot(void)
{
	struct agent_health *h = agent_health_new();
	struct sg_err err;

	agent_health_set(h, "{\"healthy\":true}", true);
	sg_err_init(&err);
	T_OK(agent_health_listen(h, "no-port", &err) == -1 && strstr(err.detail, "HOST:PORT") != NULL);
	sg_err_init(&err);
	T_OK(agent_health_listen(h, "127.0.0.1:99999", &err) == -1 && strstr(err.detail, "bad port") != NULL);
	sg_err_init(&err);
	T_OK(agent_health_listen(h, "example.com:80", &err) == -1 && strstr(err.detail, "IPv4") != NULL);
	agent_health_free(h);
	agent_health_free(NULL);
	agent_config_free(NULL);
}


/* ---- OCSP staples: an issuer, a delegated responder and answers built here ---- */

struct pki {
	EVP_PKEY *ca_key, *resp_key, *leaf_key, *other_key;
	X509 *ca, *resp, *leaf, *other;
	char *leaf_pem, *chain_pem;
};

static X509 *mk_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long serial, bool ca,
                     bool ocsp_signing)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (ocsp_signing) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, "OCSPSigning");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256());
	X509_NAME_free(n);
	return x;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *mem = NULL, *out;
	long n;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &mem);
	out = sg_xstrndup(mem, (size_t)n);
	BIO_free(b);
	return out;
}

static void pki_make(struct pki *p)
{
	memset(p, 0, sizeof(*p));
	p->ca_key = EVP_EC_gen("P-256");
	p->resp_key = EVP_EC_gen("P-256");
	p->leaf_key = EVP_EC_gen("P-256");
	p->other_key = EVP_EC_gen("P-256");
	p->ca = mk_cert("Staple CA", p->ca_key, NULL, NULL, 1, true, false);
	p->resp = mk_cert("Staple CA OCSP Responder", p->resp_key, p->ca, p->ca_key, 2, false, true);
	p->leaf = mk_cert("leaf.example.com", p->leaf_key, p->ca, p->ca_key, 3, false, false);
	p->other = mk_cert("other.example.com", p->other_key, p->ca, p->ca_key, 4, false, false);
	p->leaf_pem = pem_of(p->leaf);
	p->chain_pem = pem_of(p->ca);
}

static void pki_free(struct pki *p)
{
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->resp_key);
	EVP_PKEY_free(p->leaf_key);
	EVP_PKEY_free(p->other_key);
	X509_free(p->ca);
	X509_free(p->resp);
	X509_free(p->leaf);
	X509_free(p->other);
	free(p->leaf_pem);
	free(p->chain_pem);
}

/* A signed OCSPResponse about `subject` (status, times relative to now), by signer/key; *len its size. */
static unsigned char *mk_answer(struct pki *p, X509 *subject, int status, long this_off, long next_off, X509 *signer,
                                EVP_PKEY *key, size_t *len)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), subject, p->ca);
	ASN1_TIME *tu = X509_gmtime_adj(NULL, this_off), *nu = X509_gmtime_adj(NULL, next_off);
	ASN1_TIME *rt = X509_gmtime_adj(NULL, -60);
	STACK_OF(X509) *certs = sk_X509_new_null();
	OCSP_RESPONSE *r;
	unsigned char *der = NULL, *out;
	int n;

	OCSP_basic_add1_status(bs, id, status, status == V_OCSP_CERTSTATUS_REVOKED ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : 0,
	                       status == V_OCSP_CERTSTATUS_REVOKED ? rt : NULL, tu, nu);
	if (signer != p->ca)
		sk_X509_push(certs, signer);
	OCSP_basic_sign(bs, signer, key, EVP_sha256(), certs, OCSP_RESPID_KEY);
	r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	n = i2d_OCSP_RESPONSE(r, &der);
	out = sg_xmalloc((size_t)n);
	memcpy(out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	OCSP_RESPONSE_free(r);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_TIME_free(rt);
	sk_X509_free(certs);
	return out;
}

static void expect_staple_refused(struct pki *p, const unsigned char *der, size_t len, const char *want,
                                  const char *what)
{
	struct agent_staple st = {0};
	struct sg_err err;

	sg_err_init(&err);
	T_CHECK(agent_staple_check(der, len, p->leaf_pem, p->chain_pem, sg_now(), &st, &err) == -1, "%s accepted", what);
	T_CHECK(err.code == SG_BAD_REQUEST && strstr(err.detail, want) != NULL, "%s: %s", what, err.detail);
	T_OK(st.der == NULL && st.len == 0);
}

static void test_staple(void)
{
	struct pki p;
	struct agent_staple st = {0};
	struct sg_err err;
	unsigned char *der, *req = NULL;
	size_t len = 0, rl = 0;
	char *url = NULL;
	int64_t now = sg_now();

	/* Config: ocsp_staple_file and ocsp_url (http(s) only, and only with a staple file). */
	{
		struct agent_config *cfg = parse("{" AUTH_OK ",\"certificates\":[{" CERT_OK
		                                 ",\"ocsp_staple_file\":\"/s.der\",\"ocsp_url\":\"http://r/ocsp\"}]}",
		                                 &err);

		T_CHECK(cfg != NULL, "%s", err.detail);
		T_OK(cfg != NULL && strcmp(cfg->certs[0].ocsp_staple_file, "/s.der") == 0 &&
		     strcmp(cfg->certs[0].ocsp_url, "http://r/ocsp") == 0);
		agent_config_free(cfg);
		expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"ocsp_staple_file\":\"/s\",\"ocsp_url\":\"ftp://r\"}]}",
		               "http:// or https://");
		expect_refused("{" AUTH_OK ",\"certificates\":[{" CERT_OK ",\"ocsp_url\":\"http://r\"}]}",
		               "needs \"ocsp_staple_file\"");
	}
	pki_make(&p);
	sg_err_init(&err);
	/* The request: one SHA-1 CertID for the leaf, no nonce; this leaf has no AIA. */
	T_OK(agent_staple_request(p.leaf_pem, p.chain_pem, &req, &rl, &url, &err) == 0 && rl > 0 && url == NULL);
	{
		const unsigned char *q = req;
		OCSP_REQUEST *r = d2i_OCSP_REQUEST(NULL, &q, (long)rl);

		T_OK(r != NULL && OCSP_request_onereq_count(r) == 1 &&
		     OCSP_REQUEST_get_ext_by_NID(r, NID_id_pkix_OCSP_Nonce, -1) < 0);
		OCSP_REQUEST_free(r);
	}
	free(req);
	sg_err_init(&err);
	T_OK(agent_staple_request(p.leaf_pem, "", &req, &rl, NULL, &err) == -1 && strstr(err.detail, "issuer") != NULL);

	/* Good, from the delegated responder: accepted, times read, refresh halfway. */
	der = mk_answer(&p, p.leaf, V_OCSP_CERTSTATUS_GOOD, -60, 3540, p.resp, p.resp_key, &len);
	sg_err_init(&err);
	T_CHECK(agent_staple_check(der, len, p.leaf_pem, p.chain_pem, now, &st, &err) == 0, "%s", err.detail);
	T_OK(st.status == AGENT_STAPLE_GOOD && st.len == len && memcmp(st.der, der, len) == 0);
	T_OK(st.next_update - st.this_update == 3600);
	T_OK(agent_staple_refresh_time(&st, now) == st.this_update + 1800);
	agent_staple_clear(&st);
	/* The leaf as part of a bundle (leaf, chain, key text) works the same. */
	{
		char *bundle = sg_xasprintf("%s%s", p.leaf_pem, p.chain_pem);

		sg_err_init(&err);
		T_OK(agent_staple_check(der, len, bundle, NULL, now, &st, &err) == 0 && st.status == AGENT_STAPLE_GOOD);
		agent_staple_clear(&st);
		free(bundle);
	}
	/* A bad signature: a signed byte changed (a digit of producedAt, the first GeneralizedTime). */
	for (size_t i = 0; i + 17 < len; i++) {
		if (der[i] == 0x18 && der[i + 1] == 0x0f) {
			der[i + 2 + 13] = der[i + 2 + 13] == '0' ? '1' : '0';
			break;
		}
	}
	expect_staple_refused(&p, der, len, "signature", "tampered signature");
	free(der);

	/* Revoked, signed by the issuer itself: accepted with the reason (the point of ocsp_staple_file). */
	der = mk_answer(&p, p.leaf, V_OCSP_CERTSTATUS_REVOKED, -60, 3540, p.ca, p.ca_key, &len);
	sg_err_init(&err);
	T_CHECK(agent_staple_check(der, len, p.leaf_pem, p.chain_pem, now, &st, &err) == 0, "%s", err.detail);
	T_OK(st.status == AGENT_STAPLE_REVOKED && st.reason == OCSP_REVOKED_STATUS_KEYCOMPROMISE && st.revoked_at > 0);
	agent_staple_clear(&st);
	free(der);

	/* About another certificate of the same issuer: not written. */
	der = mk_answer(&p, p.other, V_OCSP_CERTSTATUS_GOOD, -60, 3540, p.resp, p.resp_key, &len);
	expect_staple_refused(&p, der, len, "not about this certificate", "wrong certificate");
	free(der);
	/* Expired (nextUpdate passed), and not yet valid (thisUpdate an hour ahead). */
	der = mk_answer(&p, p.leaf, V_OCSP_CERTSTATUS_GOOD, -7200, -3600, p.resp, p.resp_key, &len);
	expect_staple_refused(&p, der, len, "validity", "expired");
	free(der);
	der = mk_answer(&p, p.leaf, V_OCSP_CERTSTATUS_GOOD, 3600, 7200, p.resp, p.resp_key, &len);
	expect_staple_refused(&p, der, len, "validity", "not yet valid");
	free(der);
	/* Signed by a key the issuer never delegated (the leaf's own), and unknown status. */
	der = mk_answer(&p, p.leaf, V_OCSP_CERTSTATUS_GOOD, -60, 3540, p.other, p.other_key, &len);
	expect_staple_refused(&p, der, len, "signature", "undelegated signer");
	free(der);
	der = mk_answer(&p, p.leaf, V_OCSP_CERTSTATUS_UNKNOWN, -60, 3540, p.resp, p.resp_key, &len);
	expect_staple_refused(&p, der, len, "unknown", "status unknown");
	free(der);
	/* Error statuses and garbage. */
	expect_staple_refused(&p, (const unsigned char *)"\x30\x03\x0a\x01\x06", 5, "unauthorized", "unauthorized");
	expect_staple_refused(&p, (const unsigned char *)"\x30\x03\x0a\x01", 4, "not DER", "truncated");
	pki_free(&p);
}

int main(void)
{
	test_config_full();
	test_config_defaults();
	test_config_refusals();
	test_timing();
	test_files();
	test_cert_info();
	test_health_snapshot();
	test_staple();
	return t_done();
}
