/* Identity templates in allowed_domains and allowed_uri_sans (roles/role_template.h). */
#include "roles/role_template.h"

#include <stdlib.h>
#include <string.h>

#define TPL_PREFIX "identity.entity."
#define TPL_PATH_MAX 512

bool role_template_has(const char *s)
{
	return s != NULL && strstr(s, "{{") != NULL;
}

static bool value_ok(const char *v, char kind)
{
	size_t n = strlen(v);

	if (n == 0 || n > ROLE_MAX_NAME_BYTES)
		return false;
	if (kind == 'u' && (strcmp(v, ".") == 0 || strcmp(v, "..") == 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (alnum || c == '-' || c == '_')
			continue;
		if (kind == 'u' && (c == '.' || c == '~'))
			continue;
		return false;
	}
	return true;
}

/* The value of one template path ("identity.entity.aliases.acc.metadata.k"), borrowed, or NULL. */
static const char *resolve(const char *path, const struct role_identity *id)
{
	const char *rest, *acc_end, *want_acc;
	const json_t *alias;
	size_t acc_len;

	if (id == NULL || strncmp(path, TPL_PREFIX, strlen(TPL_PREFIX)) != 0)
		return NULL;
	rest = path + strlen(TPL_PREFIX);
	if (strcmp(rest, "id") == 0)
		return id->entity_id;
	if (strncmp(rest, "aliases.", 8) != 0)
		return NULL;
	rest += 8;
	alias = id->alias;
	if (!json_is_object(alias))
		return NULL;
	/* Mount accessors ("auth_kubernetes_1a2b3c4d") hold no dots. */
	acc_end = strchr(rest, '.');
	if (acc_end == NULL)
		return NULL;
	acc_len = (size_t)(acc_end - rest);
	want_acc = json_string_value(json_object_get(alias, "mount_accessor"));
	if (want_acc == NULL || strlen(want_acc) != acc_len || strncmp(want_acc, rest, acc_len) != 0)
		return NULL;
	rest = acc_end + 1;
	if (strcmp(rest, "name") == 0 || strcmp(rest, "id") == 0)
		return json_string_value(json_object_get(alias, rest));
	if (strncmp(rest, "metadata.", 9) == 0)
		return json_string_value(json_object_get(json_object_get(alias, "metadata"), rest + 9));
	if (strncmp(rest, "custom_metadata.", 16) == 0)
		return json_string_value(json_object_get(json_object_get(alias, "custom_metadata"), rest + 16));
	return NULL;
}

char *role_template_expand(const char *entry, char kind, const struct role_identity *id)
{
	size_t cap = ROLE_MAX_NAME_BYTES + 1, o = 0;
	char *out = sg_xmalloc(cap);
	const char *p = entry;
	int count = 0;

	while (*p != '\0') {
		const char *open = strstr(p, "{{"), *close, *a, *b;
		const char *val;
		char path[TPL_PATH_MAX];
		size_t lit, n;

		if (open == NULL)
			open = p + strlen(p);
		lit = (size_t)(open - p);
		if (memchr(p, '}', lit) != NULL || o + lit >= cap)
			goto fail; /* a stray "}}" or an overlong result */
		memcpy(out + o, p, lit);
		o += lit;
		if (*open == '\0')
			break;
		close = strstr(open + 2, "}}");
		if (close == NULL || ++count > ROLE_TEMPLATE_MAX_PER_ENTRY)
			goto fail;
		/* "{{ path }}": spaces around the path are allowed, as in Vault's templates. */
		a = open + 2;
		b = close;
		while (a < b && *a == ' ')
			a++;
		while (b > a && b[-1] == ' ')
			b--;
		n = (size_t)(b - a);
		if (n == 0 || n >= sizeof(path) || memchr(a, '{', n) != NULL)
			goto fail;
		memcpy(path, a, n);
		path[n] = '\0';
		val = resolve(path, id);
		if (val == NULL || !value_ok(val, kind) || o + strlen(val) >= cap)
			goto fail;
		memcpy(out + o, val, strlen(val));
		o += strlen(val);
		p = close + 2;
	}
	out[o] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

static void expand_list(struct sg_strlist *l, char kind, const struct role_identity *id)
{
	struct sg_strlist res = {0};

	for (size_t i = 0; i < l->n; i++) {
		char *e;

		if (!role_template_has(l->v[i])) {
			sg_strlist_add(&res, l->v[i]);
			continue;
		}
		e = role_template_expand(l->v[i], kind, id);
		if (e != NULL && !sg_strlist_has(&res, e))
			sg_strlist_add(&res, e);
		free(e);
	}
	sg_strlist_clear(l);
	*l = res;
}

void role_template_apply(struct role *r, const struct role_identity *id)
{
	if (r->allowed_domains_template)
		expand_list(&r->allowed_domains, 'd', id);
	if (r->allowed_uri_sans_template)
		expand_list(&r->allowed_uri_sans, 'u', id);
}
