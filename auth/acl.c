/*
 * ACL policies: the policy language (HCL and JSON forms) and evaluation
 * with Vault's precedence (compat/vault-api.md 4). Pure functions; the
 * store and its cache are in acl_store.c.
 *
 * Both forms are first read into one small document tree (struct pnode),
 * then one interpreter turns the tree into rules, so HCL and JSON accept
 * exactly the same policies.
 */
#include "auth/acl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Document tree                                                        */
/* ------------------------------------------------------------------ */

enum pkind {
	PN_STRING,
	PN_NUMBER,
	PN_BOOL,
	PN_LIST,
	PN_OBJECT,
};

/*
 * An OBJECT is an ordered list of items that may repeat a key, as HCL
 * allows (two `path "a" {}` blocks). HCL's `path "a" { ... }` becomes the
 * item "path" whose value is an OBJECT with the item "a".
 */
struct pnode {
	enum pkind kind;
	char *str;              /* STRING value, NUMBER text */
	bool b;
	size_t n, cap;
	struct pnode **v;       /* LIST elements, OBJECT item values */
	char **keys;            /* OBJECT item keys */
	int line;               /* where the node (or the item's key) starts; 0 for JSON */
};

static struct pnode *pnode_new(enum pkind kind, int line)
{
	struct pnode *p = sg_xcalloc(1, sizeof(*p));

	p->kind = kind;
	p->line = line;
	return p;
}

static void pnode_free(struct pnode *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		pnode_free(p->v[i]);
		if (p->keys != NULL)
			free(p->keys[i]);
	}
	free(p->v);
	free(p->keys);
	free(p->str);
	free(p);
}

/* Appends an element (key NULL) or an item; takes child and key. */
static void pnode_add(struct pnode *p, char *key, struct pnode *child)
{
	if (p->n == p->cap) {
		/* Doubling: a document of many small items stays linear. */
		p->cap = p->cap == 0 ? 4 : 2 * p->cap;
		p->v = sg_xrealloc(p->v, p->cap * sizeof(*p->v));
		if (p->kind == PN_OBJECT)
			p->keys = sg_xrealloc(p->keys, p->cap * sizeof(*p->keys));
	}
	if (p->kind == PN_OBJECT)
		p->keys[p->n] = key;
	p->v[p->n++] = child;
}

/* ------------------------------------------------------------------ */
/* HCL (version 1, the subset policies use)                             */
/* ------------------------------------------------------------------ */

enum tok {
	T_EOF,
	T_LBRACE,
	T_RBRACE,
	T_LBRACK,
	T_RBRACK,
	T_EQUAL,
	T_COMMA,
	T_STRING,
	T_IDENT,
	T_NUMBER,
};

struct lexer {
	const char *s;
	size_t len, pos;
	int line, col;
	/* the current token */
	enum tok t;
	char *text;             /* STRING (unescaped), IDENT, NUMBER */
	int tline, tcol;
};

static const char *tok_name(enum tok t)
{
	switch (t) {
	case T_EOF: return "end of input";
	case T_LBRACE: return "'{'";
	case T_RBRACE: return "'}'";
	case T_LBRACK: return "'['";
	case T_RBRACK: return "']'";
	case T_EQUAL: return "'='";
	case T_COMMA: return "','";
	case T_STRING: return "a string";
	case T_IDENT: return "an identifier";
	case T_NUMBER: return "a number";
	}
	return "?";
}

static int lex_fail(struct lexer *lx, int line, int col, const char *what, struct sg_err *err)
{
	(void)lx;
	return sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: line %d, column %d: %s", line, col, what);
}

static int peekc(const struct lexer *lx, size_t ahead)
{
	return lx->pos + ahead < lx->len ? (unsigned char)lx->s[lx->pos + ahead] : -1;
}

static void advance(struct lexer *lx)
{
	if (lx->s[lx->pos] == '\n') {
		lx->line++;
		lx->col = 1;
	} else {
		lx->col++;
	}
	lx->pos++;
}

/* Spaces and the three comment forms: '#' and '//' to the end of the line, slash-star blocks. */
static int skip_blank(struct lexer *lx, struct sg_err *err)
{
	for (;;) {
		int c = peekc(lx, 0);

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			advance(lx);
		} else if (c == '#' || (c == '/' && peekc(lx, 1) == '/')) {
			while (peekc(lx, 0) != -1 && peekc(lx, 0) != '\n')
				advance(lx);
		} else if (c == '/' && peekc(lx, 1) == '*') {
			int line = lx->line, col = lx->col;

			advance(lx);
			advance(lx);
			while (!(peekc(lx, 0) == '*' && peekc(lx, 1) == '/')) {
				if (peekc(lx, 0) == -1)
					return lex_fail(lx, line, col, "comment not terminated", err);
				advance(lx);
			}
			advance(lx);
			advance(lx);
		} else {
			return 0;
		}
	}
}

static void put_utf8(char *out, size_t *n, unsigned long cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xc0 | (cp >> 6));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*n)++] = (char)(0xe0 | (cp >> 12));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*n)++] = (char)(0xf0 | (cp >> 18));
		out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* A double-quoted string with HCL's escapes; the text ends on one line. */
static int lex_string(struct lexer *lx, struct sg_err *err)
{
	/* Unescaping never lengthens the text; a \u escape of 6 bytes gives at most 4. */
	char *out = sg_xmalloc(lx->len - lx->pos + 1);
	size_t n = 0;

	advance(lx);
	for (;;) {
		int c = peekc(lx, 0);

		if (c == -1 || c == '\n') {
			free(out);
			return lex_fail(lx, lx->tline, lx->tcol, "string not terminated", err);
		}
		if (c == '"') {
			advance(lx);
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			free(out);
			return lex_fail(lx, lx->line, lx->col, "control character in a string", err);
		}
		if (c != '\\') {
			out[n++] = (char)c;
			advance(lx);
			continue;
		}
		advance(lx);
		c = peekc(lx, 0);
		switch (c) {
		case '"': case '\\': case '/': out[n++] = (char)c; break;
		case 'n': out[n++] = '\n'; break;
		case 't': out[n++] = '\t'; break;
		case 'r': out[n++] = '\r'; break;
		case 'u': {
			unsigned long cp = 0;

			for (int i = 1; i <= 4; i++) {
				int h = peekc(lx, (size_t)i);

				if (h == -1 || !isxdigit(h)) {
					free(out);
					return lex_fail(lx, lx->line, lx->col, "bad \\u escape", err);
				}
				cp = cp * 16 + (unsigned long)(isdigit(h) ? h - '0' : (tolower(h) - 'a' + 10));
			}
			/* Surrogates are not characters (RFC 3629 3). */
			if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
				free(out);
				return lex_fail(lx, lx->line, lx->col, "bad \\u escape", err);
			}
			for (int i = 0; i < 4; i++)
				advance(lx);
			put_utf8(out, &n, cp);
			break;
		}
		default:
			free(out);
			return lex_fail(lx, lx->line, lx->col, "unknown escape in a string", err);
		}
		advance(lx);
	}
	out[n] = '\0';
	/* Shrink: the buffer was sized for the rest of the input, and the tree keeps every string. */
	lx->text = sg_xrealloc(out, n + 1);
	lx->t = T_STRING;
	return 0;
}

static bool ident_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool ident_char(int c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* Reads the next token into lx. */
static int lex_next(struct lexer *lx, struct sg_err *err)
{
	int c;
	size_t start;

	free(lx->text);
	lx->text = NULL;
	if (skip_blank(lx, err) != 0)
		return -1;
	lx->tline = lx->line;
	lx->tcol = lx->col;
	c = peekc(lx, 0);
	switch (c) {
	case -1: lx->t = T_EOF; return 0;
	case '{': lx->t = T_LBRACE; advance(lx); return 0;
	case '}': lx->t = T_RBRACE; advance(lx); return 0;
	case '[': lx->t = T_LBRACK; advance(lx); return 0;
	case ']': lx->t = T_RBRACK; advance(lx); return 0;
	case '=': lx->t = T_EQUAL; advance(lx); return 0;
	case ',': lx->t = T_COMMA; advance(lx); return 0;
	case '"': return lex_string(lx, err);
	default: break;
	}
	start = lx->pos;
	if (ident_start(c)) {
		while (ident_char(peekc(lx, 0)))
			advance(lx);
		lx->t = T_IDENT;
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		if (c == '-')
			advance(lx);
		if (!(peekc(lx, 0) >= '0' && peekc(lx, 0) <= '9'))
			return lex_fail(lx, lx->tline, lx->tcol, "bad number", err);
		while (peekc(lx, 0) >= '0' && peekc(lx, 0) <= '9')
			advance(lx);
		if (peekc(lx, 0) == '.') {
			advance(lx);
			if (!(peekc(lx, 0) >= '0' && peekc(lx, 0) <= '9'))
				return lex_fail(lx, lx->tline, lx->tcol, "bad number", err);
			while (peekc(lx, 0) >= '0' && peekc(lx, 0) <= '9')
				advance(lx);
		}
		if (ident_char(peekc(lx, 0)))
			return lex_fail(lx, lx->tline, lx->tcol, "bad number", err);
		lx->t = T_NUMBER;
	} else if (c == '<' && peekc(lx, 1) == '<') {
		return lex_fail(lx, lx->tline, lx->tcol, "heredoc strings are not supported in policies", err);
	} else {
		char what[48];

		if (c >= 0x21 && c < 0x7f)
			snprintf(what, sizeof(what), "illegal character '%c'", c);
		else
			snprintf(what, sizeof(what), "illegal byte 0x%02x", (unsigned)c);
		return lex_fail(lx, lx->tline, lx->tcol, what, err);
	}
	lx->text = sg_xstrndup(lx->s + start, lx->pos - start);
	return 0;
}

static int expect_fail(struct lexer *lx, const char *want, struct sg_err *err)
{
	char what[128];

	snprintf(what, sizeof(what), "expected %s, got %s", want, tok_name(lx->t));
	return lex_fail(lx, lx->tline, lx->tcol, what, err);
}

static struct pnode *hcl_object(struct lexer *lx, int depth, bool top, struct sg_err *err);

static struct pnode *hcl_value(struct lexer *lx, int depth, struct sg_err *err)
{
	struct pnode *p = NULL;

	if (depth > AUTH_ACL_MAX_DEPTH) {
		lex_fail(lx, lx->tline, lx->tcol, "nested too deeply", err);
		return NULL;
	}
	switch (lx->t) {
	case T_STRING:
	case T_NUMBER:
		p = pnode_new(lx->t == T_STRING ? PN_STRING : PN_NUMBER, lx->tline);
		p->str = lx->text;
		lx->text = NULL;
		break;
	case T_IDENT:
		if (strcmp(lx->text, "true") != 0 && strcmp(lx->text, "false") != 0) {
			expect_fail(lx, "a value", err);
			return NULL;
		}
		p = pnode_new(PN_BOOL, lx->tline);
		p->b = lx->text[0] == 't';
		break;
	case T_LBRACE:
		if (lex_next(lx, err) != 0)
			return NULL;
		return hcl_object(lx, depth + 1, false, err); /* consumes the '}' */
	case T_LBRACK:
		p = pnode_new(PN_LIST, lx->tline);
		if (lex_next(lx, err) != 0)
			goto fail;
		while (lx->t != T_RBRACK) {
			struct pnode *e;

			if (p->n == AUTH_ACL_MAX_LIST) {
				lex_fail(lx, lx->tline, lx->tcol, "list too long", err);
				goto fail;
			}
			if ((e = hcl_value(lx, depth + 1, err)) == NULL)
				goto fail;
			pnode_add(p, NULL, e);
			if (lx->t == T_COMMA) {
				if (lex_next(lx, err) != 0)
					goto fail;
			} else if (lx->t != T_RBRACK) {
				expect_fail(lx, "',' or ']'", err);
				goto fail;
			}
		}
		break;
	default:
		expect_fail(lx, "a value", err);
		return NULL;
	}
	if (lex_next(lx, err) != 0)
		goto fail;
	return p;
fail:
	pnode_free(p);
	return NULL;
}

/*
 * Items up to '}' (or the end of input at the top): `key = value`,
 * `key { ... }`, `key "label" ... { ... }`, separated by newlines or commas.
 */
static struct pnode *hcl_object(struct lexer *lx, int depth, bool top, struct sg_err *err)
{
	struct pnode *obj = pnode_new(PN_OBJECT, lx->tline);
	char *keys[8] = {0};
	size_t nkeys = 0;

	if (depth > AUTH_ACL_MAX_DEPTH) {
		lex_fail(lx, lx->tline, lx->tcol, "nested too deeply", err);
		goto fail;
	}
	for (;;) {
		struct pnode *val = NULL;
		int line;

		if (lx->t == (top ? T_EOF : T_RBRACE))
			break;
		if (lx->t != T_IDENT && lx->t != T_STRING) {
			expect_fail(lx, top ? "a key" : "a key or '}'", err);
			goto fail;
		}
		line = lx->tline;
		while (lx->t == T_IDENT || lx->t == T_STRING) {
			if (nkeys == sizeof(keys) / sizeof(keys[0])) {
				lex_fail(lx, lx->tline, lx->tcol, "too many labels", err);
				goto fail;
			}
			keys[nkeys++] = lx->text;
			lx->text = NULL;
			if (lex_next(lx, err) != 0)
				goto fail;
		}
		if (lx->t == T_EQUAL && nkeys == 1) {
			if (lex_next(lx, err) != 0)
				goto fail;
			val = hcl_value(lx, depth + 1, err);
		} else if (lx->t == T_LBRACE) {
			val = hcl_value(lx, depth + 1, err);
		} else {
			expect_fail(lx, nkeys == 1 ? "'=' or '{'" : "'{'", err);
			goto fail;
		}
		if (val == NULL)
			goto fail;
		/* `a "b" "c" { v }` is `a = { "b" = { "c" = v } }`; every level reports the key's line. */
		while (nkeys > 1) {
			struct pnode *wrap = pnode_new(PN_OBJECT, line);

			val->line = line;
			pnode_add(wrap, keys[--nkeys], val);
			keys[nkeys] = NULL;
			val = wrap;
		}
		if (obj->n == AUTH_ACL_MAX_RULES * 4) {
			pnode_free(val);
			lex_fail(lx, line, 1, "too many items", err);
			goto fail;
		}
		val->line = line;
		pnode_add(obj, keys[0], val);
		keys[0] = NULL;
		nkeys = 0;
		if (lx->t == T_COMMA && lex_next(lx, err) != 0)
			goto fail;
	}
	if (!top && lex_next(lx, err) != 0) /* past the '}' */
		goto fail;
	return obj;
fail:
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	pnode_free(obj);
	return NULL;
}

static struct pnode *hcl_parse(const char *s, size_t len, struct sg_err *err)
{
	struct lexer lx = {.s = s, .len = len, .line = 1, .col = 1};
	struct pnode *p = NULL;

	if (lex_next(&lx, err) == 0)
		p = hcl_object(&lx, 0, true, err);
	free(lx.text);
	return p;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */
/* ------------------------------------------------------------------ */

static struct pnode *json_to_pnode(const json_t *j, int depth, struct sg_err *err)
{
	struct pnode *p = NULL;

	if (depth > AUTH_ACL_MAX_DEPTH) {
		sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: nested too deeply");
		return NULL;
	}
	switch (json_typeof(j)) {
	case JSON_STRING:
		p = pnode_new(PN_STRING, 0);
		p->str = sg_xstrndup(json_string_value(j), json_string_length(j));
		if (strlen(p->str) != json_string_length(j)) {
			pnode_free(p);
			sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: NUL byte in a string");
			return NULL;
		}
		return p;
	case JSON_INTEGER:
		p = pnode_new(PN_NUMBER, 0);
		p->str = sg_xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return p;
	case JSON_REAL:
		p = pnode_new(PN_NUMBER, 0);
		p->str = sg_xasprintf("%.17g", json_real_value(j));
		return p;
	case JSON_TRUE:
	case JSON_FALSE:
		p = pnode_new(PN_BOOL, 0);
		p->b = json_is_true(j);
		return p;
	case JSON_ARRAY: {
		size_t i;
		json_t *e;

		if (json_array_size(j) > AUTH_ACL_MAX_LIST) {
			sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: list too long");
			return NULL;
		}
		p = pnode_new(PN_LIST, 0);
		json_array_foreach(j, i, e) {
			struct pnode *c = json_to_pnode(e, depth + 1, err);

			if (c == NULL) {
				pnode_free(p);
				return NULL;
			}
			pnode_add(p, NULL, c);
		}
		return p;
	}
	case JSON_OBJECT: {
		const char *k;
		json_t *v;

		if (json_object_size(j) > AUTH_ACL_MAX_RULES * 4) {
			sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: too many items");
			return NULL;
		}
		p = pnode_new(PN_OBJECT, 0);
		json_object_foreach((json_t *)j, k, v) {
			struct pnode *c = json_to_pnode(v, depth + 1, err);

			if (c == NULL) {
				pnode_free(p);
				return NULL;
			}
			pnode_add(p, sg_xstrdup(k), c);
		}
		return p;
	}
	case JSON_NULL:
		break;
	}
	sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: null is not a value here");
	return NULL;
}

static struct pnode *json_parse(const char *s, size_t len, struct sg_err *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
	struct pnode *p;

	if (j == NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: line %d, column %d: %s", jerr.line, jerr.column,
		           jerr.text);
		return NULL;
	}
	p = json_to_pnode(j, 0, err);
	json_decref(j);
	return p;
}

/* ------------------------------------------------------------------ */
/* Interpretation: document tree -> rules                               */
/* ------------------------------------------------------------------ */

static const struct {
	const char *name;
	unsigned bit;
} cap_names[] = {
	{"create", AUTH_ACL_CREATE}, {"delete", AUTH_ACL_DELETE}, {"deny", AUTH_ACL_DENY},
	{"list", AUTH_ACL_LIST},     {"patch", AUTH_ACL_PATCH},   {"read", AUTH_ACL_READ},
	{"sudo", AUTH_ACL_SUDO},     {"update", AUTH_ACL_UPDATE},
};

/* " on line N" for HCL input, "" for JSON (jansson gives items no line). */
static void line_suffix(const struct pnode *p, char *buf, size_t cap)
{
	if (p->line > 0)
		snprintf(buf, cap, " on line %d", p->line);
	else
		buf[0] = '\0';
}

static int rule_fail(const char *pattern, struct sg_err *err, const char *fmt, const char *arg, const struct pnode *at)
{
	char where[32];

	line_suffix(at, where, sizeof(where));
	return sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: path \"%.*s\": %s%s%s", 200, pattern, fmt,
	                  arg != NULL ? arg : "", where);
}

static bool is_ascii_lower_copy(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in);

	if (n >= cap)
		return false;
	for (size_t i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	return true;
}

/* allowed_parameters / denied_parameters: { name = [values] }. */
static int params_map(const char *pattern, const char *what, const struct pnode *v, json_t **out, struct sg_err *err)
{
	json_t *m = json_object();
	char key[AUTH_ACL_MAX_PATTERN_BYTES];

	if (v->kind != PN_OBJECT) {
		json_decref(m);
		return rule_fail(pattern, err, what, ": expected an object of lists", v);
	}
	if (v->n > AUTH_ACL_MAX_LIST) {
		json_decref(m);
		return rule_fail(pattern, err, what, ": too many parameters", v);
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct pnode *vals = v->v[i];
		json_t *arr;

		/* Vault accepts "*" and JSON-pointer names ending in a star only; pointers are not supported here. */
		if (!is_ascii_lower_copy(v->keys[i], key, sizeof(key)) || key[0] == '\0' ||
		    (strchr(key, '*') != NULL && strcmp(key, "*") != 0) || key[0] == '/') {
			char msg[96];

			snprintf(msg, sizeof(msg), ": unsupported parameter name \"%.48s\"", v->keys[i]);
			json_decref(m);
			return rule_fail(pattern, err, what, msg, vals);
		}
		if (vals->kind != PN_LIST) {
			json_decref(m);
			return rule_fail(pattern, err, what, ": each parameter takes a list of values", vals);
		}
		arr = json_object_get(m, key);
		if (arr == NULL) {
			arr = json_array();
			json_object_set_new(m, key, arr);
		}
		for (size_t j = 0; j < vals->n; j++) {
			const struct pnode *e = vals->v[j];
			json_t *jv = NULL;

			if (e->kind == PN_STRING) {
				jv = json_string(e->str);
			} else if (e->kind == PN_BOOL) {
				jv = json_boolean(e->b);
			} else if (e->kind == PN_NUMBER) {
				if (strpbrk(e->str, ".eE") == NULL)
					jv = json_integer(strtoll(e->str, NULL, 10));
				else
					jv = json_real(strtod(e->str, NULL));
			}
			if (jv == NULL) {
				json_decref(m);
				return rule_fail(pattern, err, what, ": values must be strings, numbers or booleans", e);
			}
			json_array_append_new(arr, jv);
		}
	}
	*out = m;
	return 0;
}

static int wrap_ttl(const char *pattern, const char *what, const struct pnode *v, int64_t *out, struct sg_err *err)
{
	if ((v->kind != PN_STRING && v->kind != PN_NUMBER) || sg_duration_parse(v->str, out) != 0 || *out < 0)
		return rule_fail(pattern, err, what, ": expected a duration", v);
	return 0;
}

static int string_list(const char *pattern, const char *what, const struct pnode *v, struct sg_strlist *out,
                       struct sg_err *err)
{
	if (v->kind != PN_LIST)
		return rule_fail(pattern, err, what, ": expected a list of strings", v);
	for (size_t i = 0; i < v->n; i++) {
		if (v->v[i]->kind != PN_STRING)
			return rule_fail(pattern, err, what, ": expected a list of strings", v->v[i]);
		sg_strlist_add(out, v->v[i]->str);
	}
	return 0;
}

static void rule_clear(struct auth_acl_rule *r)
{
	free(r->path);
	json_decref(r->allowed);
	json_decref(r->denied);
	sg_strlist_clear(&r->required);
	memset(r, 0, sizeof(*r));
}

/* One `path "<pattern>" { body }` block. */
static int rule_build(const char *pattern, const struct pnode *body, struct auth_acl_rule *r, struct sg_err *err)
{
	const char *p = pattern;
	size_t len;
	bool denied = false;
	struct sg_strlist caps = {0};
	const char *old = NULL;
	const struct pnode *caps_at = body, *old_at = body;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (body->kind != PN_OBJECT) {
		rule_fail(pattern, err, "expected a block", NULL, body);
		goto out;
	}
	/* Paths in Vault start after the '/' of the API path. */
	if (*p == '/')
		p++;
	len = strlen(p);
	if (len > AUTH_ACL_MAX_PATTERN_BYTES) {
		rule_fail("...", err, "path too long", NULL, body);
		goto out;
	}
	if (strstr(p, "+*") != NULL) {
		rule_fail(pattern, err, "invalid use of wildcards ('+*' is forbidden)", NULL, body);
		goto out;
	}
	if (strstr(p, "{{") != NULL) {
		rule_fail(pattern, err, "templated policy paths are not supported", NULL, body);
		goto out;
	}
	r->segwild = strcmp(p, "+") == 0 || strstr(p, "/+") != NULL || strncmp(p, "+/", 2) == 0;
	if (len > 0 && p[len - 1] == '*') {
		r->prefix = true;
		len--;
	}
	r->path = sg_xstrndup(p, len);
	for (size_t i = 0; i < body->n; i++) {
		const char *k = body->keys[i];
		const struct pnode *v = body->v[i];

		if (strcmp(k, "capabilities") == 0) {
			if (string_list(pattern, "capabilities", v, &caps, err) != 0)
				goto out;
			caps_at = v;
		} else if (strcmp(k, "policy") == 0) {
			if (v->kind != PN_STRING) {
				rule_fail(pattern, err, "policy: expected a string", NULL, v);
				goto out;
			}
			old = v->str;
			old_at = v;
		} else if (strcmp(k, "comment") == 0) {
			continue;
		} else if (strcmp(k, "allowed_parameters") == 0) {
			json_decref(r->allowed);
			r->allowed = NULL;
			if (params_map(pattern, "allowed_parameters", v, &r->allowed, err) != 0)
				goto out;
		} else if (strcmp(k, "denied_parameters") == 0) {
			json_decref(r->denied);
			r->denied = NULL;
			if (params_map(pattern, "denied_parameters", v, &r->denied, err) != 0)
				goto out;
		} else if (strcmp(k, "required_parameters") == 0) {
			if (string_list(pattern, "required_parameters", v, &r->required, err) != 0)
				goto out;
		} else if (strcmp(k, "min_wrapping_ttl") == 0) {
			if (wrap_ttl(pattern, "min_wrapping_ttl", v, &r->min_wrap, err) != 0)
				goto out;
		} else if (strcmp(k, "max_wrapping_ttl") == 0) {
			if (wrap_ttl(pattern, "max_wrapping_ttl", v, &r->max_wrap, err) != 0)
				goto out;
		} else if (strcmp(k, "mfa_methods") == 0 || strcmp(k, "control_group") == 0) {
			/* Enterprise features: accepting them silently would promise a check that never runs. */
			rule_fail(pattern, err, k, " is not supported by this server", v);
			goto out;
		} else {
			char key[80];

			snprintf(key, sizeof(key), "\"%.64s\"", k);
			rule_fail(pattern, err, "invalid key ", key, v);
			goto out;
		}
	}
	if (old != NULL) {
		/* The pre-0.5 "policy" word maps onto capabilities (Vault policy.go). */
		static const char *const read_caps[] = {"read", "list"};
		static const char *const write_caps[] = {"create", "read", "update", "delete", "list"};

		if (strcmp(old, "deny") == 0) {
			sg_strlist_add(&caps, "deny");
		} else if (strcmp(old, "read") == 0) {
			for (size_t i = 0; i < 2; i++)
				sg_strlist_add(&caps, read_caps[i]);
		} else if (strcmp(old, "write") == 0 || strcmp(old, "sudo") == 0) {
			for (size_t i = 0; i < 5; i++)
				sg_strlist_add(&caps, write_caps[i]);
			if (old[0] == 's')
				sg_strlist_add(&caps, "sudo");
		} else {
			char q[80];

			snprintf(q, sizeof(q), "\"%.64s\"", old);
			rule_fail(pattern, err, "invalid policy ", q, old_at);
			goto out;
		}
	}
	if (caps.n > AUTH_ACL_MAX_LIST) {
		rule_fail(pattern, err, "too many capabilities", NULL, caps_at);
		goto out;
	}
	for (size_t i = 0; i < caps.n; i++) {
		unsigned bit = 0;

		for (size_t j = 0; j < sizeof(cap_names) / sizeof(cap_names[0]); j++)
			if (strcmp(caps.v[i], cap_names[j].name) == 0)
				bit = cap_names[j].bit;
		if (bit == 0) {
			char q[80];

			snprintf(q, sizeof(q), "\"%.64s\"", caps.v[i]);
			rule_fail(pattern, err, "invalid capability ", q, caps_at);
			goto out;
		}
		if (bit == AUTH_ACL_DENY)
			denied = true;
		r->caps |= bit;
	}
	if (r->min_wrap != 0 && r->max_wrap != 0 && r->max_wrap < r->min_wrap) {
		rule_fail(pattern, err, "max_wrapping_ttl cannot be less than min_wrapping_ttl", NULL, body);
		goto out;
	}
	if (denied) {
		/* Deny takes nothing else along (Vault drops the rest of the block). */
		r->caps = AUTH_ACL_DENY;
		json_decref(r->allowed);
		json_decref(r->denied);
		r->allowed = r->denied = NULL;
		sg_strlist_clear(&r->required);
		r->min_wrap = r->max_wrap = 0;
	}
	rc = 0;
out:
	sg_strlist_clear(&caps);
	if (rc != 0)
		rule_clear(r);
	return rc;
}

static int policy_add_rule(struct auth_acl_policy *pol, const char *pattern, const struct pnode *body,
                           struct sg_err *err)
{
	if (body->kind == PN_LIST) {
		/* JSON may give one pattern several bodies: {"path": {"a": [{...}, {...}]}}. */
		for (size_t i = 0; i < body->n; i++)
			if (policy_add_rule(pol, pattern, body->v[i], err) != 0)
				return -1;
		return 0;
	}
	if (pol->n == AUTH_ACL_MAX_RULES)
		return sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: more than %d path rules",
		                  AUTH_ACL_MAX_RULES);
	pol->rules = sg_xrealloc(pol->rules, (pol->n + 1) * sizeof(*pol->rules));
	if (rule_build(pattern, body, &pol->rules[pol->n], err) != 0)
		return -1;
	pol->n++;
	return 0;
}

/* The value of a top-level "path" item: an object of pattern -> body, or a list of such objects. */
static int policy_paths(struct auth_acl_policy *pol, const struct pnode *v, struct sg_err *err)
{
	char where[32];

	if (v->kind == PN_LIST) {
		for (size_t i = 0; i < v->n; i++)
			if (policy_paths(pol, v->v[i], err) != 0)
				return -1;
		return 0;
	}
	if (v->kind != PN_OBJECT) {
		line_suffix(v, where, sizeof(where));
		return sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: path: expected a pattern and a block%s",
		                  where);
	}
	for (size_t i = 0; i < v->n; i++)
		if (policy_add_rule(pol, v->keys[i], v->v[i], err) != 0)
			return -1;
	return 0;
}

/* Go's base64.StdEncoding: the alphabet with '=' padding, length a multiple of 4 (CR and LF ignored). */
static bool std_base64(const char *s, size_t len)
{
	size_t n = 0, pad = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
		} else if (pad > 0 || !(isalnum(c) || c == '+' || c == '/')) {
			return false;
		}
		n++;
	}
	return n > 0 && n % 4 == 0 && pad <= 2;
}

int auth_acl_policy_parse(const char *name, const char *text, size_t len, struct auth_acl_policy **out,
                          struct sg_err *err)
{
	struct auth_acl_policy *pol = NULL;
	struct pnode *doc = NULL;
	unsigned char *dec = NULL;
	size_t declen = 0, i = 0;
	int rc = -1;

	*out = NULL;
	if (len > AUTH_ACL_MAX_POLICY_BYTES) {
		sg_err_set(err, SG_BAD_REQUEST, "policy too large: the limit is %u bytes", AUTH_ACL_MAX_POLICY_BYTES);
		goto out;
	}
	/* Vault tries base64 first: a text that decodes is the decoded text. */
	if (std_base64(text, len)) {
		char *clean = sg_xmalloc(len + 1);
		size_t n = 0;

		for (size_t k = 0; k < len; k++)
			if (text[k] != '\r' && text[k] != '\n')
				clean[n++] = text[k];
		clean[n] = '\0';
		if (sg_base64_decode(clean, n, &dec, &declen) == 0) {
			text = (const char *)dec;
			len = declen;
		}
		free(clean);
	}
	if (memchr(text, '\0', len) != NULL) {
		sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: NUL byte in the policy");
		goto out;
	}
	while (i < len && isspace((unsigned char)text[i]))
		i++;
	doc = i < len && text[i] == '{' ? json_parse(text, len, err) : hcl_parse(text, len, err);
	if (doc == NULL)
		goto out;
	if (doc->kind != PN_OBJECT) {
		sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: does not contain a root object");
		goto out;
	}
	pol = sg_xcalloc(1, sizeof(*pol));
	pol->name = sg_xstrdup(name != NULL ? name : "");
	pol->raw = sg_xstrndup(text, len);
	for (size_t k = 0; k < doc->n; k++) {
		char where[32];

		if (strcmp(doc->keys[k], "path") == 0) {
			if (policy_paths(pol, doc->v[k], err) != 0)
				goto out;
		} else if (strcmp(doc->keys[k], "name") != 0) {
			line_suffix(doc->v[k], where, sizeof(where));
			sg_err_set(err, SG_BAD_REQUEST, "failed to parse policy: invalid key \"%.64s\"%s", doc->keys[k],
			           where);
			goto out;
		}
	}
	*out = pol;
	pol = NULL;
	rc = 0;
out:
	pnode_free(doc);
	free(dec);
	auth_acl_policy_free(pol);
	return rc;
}

void auth_acl_policy_free(struct auth_acl_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		rule_clear(&p->rules[i]);
	free(p->rules);
	free(p->name);
	free(p->raw);
	free(p);
}

int auth_acl_name_normalize(const char *in, char *out, size_t cap, struct sg_err *err)
{
	size_t start = 0, end = in != NULL ? strlen(in) : 0;

	while (start < end && isspace((unsigned char)in[start]))
		start++;
	while (end > start && isspace((unsigned char)in[end - 1]))
		end--;
	if (end == start)
		return sg_err_set(err, SG_BAD_REQUEST, "policy name must be provided in the URL");
	if (end - start > AUTH_ACL_MAX_NAME_BYTES || end - start >= cap)
		return sg_err_set(err, SG_BAD_REQUEST, "policy name too long: at most %d characters",
		                  AUTH_ACL_MAX_NAME_BYTES);
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)in[i];

		/* Names become store keys and URL segments: printable ASCII without '/'. */
		if (c < 0x20 || c >= 0x7f || c == '/')
			return sg_err_set(err, SG_BAD_REQUEST, "invalid policy name: printable ASCII without '/' only");
		out[i - start] = (char)tolower(c);
	}
	out[end - start] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                           */
/* ------------------------------------------------------------------ */

static bool same_pattern(const struct auth_acl_rule *a, const struct auth_acl_rule *b)
{
	return a->prefix == b->prefix && a->segwild == b->segwild && strcmp(a->path, b->path) == 0;
}

static size_t count_segments(const char *s)
{
	size_t n = 1;

	for (; *s != '\0'; s++)
		if (*s == '/')
			n++;
	return n;
}

/*
 * Vault's segment-wildcard match (acl.go CheckAllowedFromNonExactPaths):
 * same number of segments (or at least as many for a '*' pattern), '+'
 * matches any one segment, and a '*' pattern's last segment is a prefix
 * of the path's segment at that position.
 */
static bool segwild_match(const struct auth_acl_rule *r, const char *path, size_t *wildcards)
{
	size_t np = count_segments(r->path), nv = count_segments(path);
	const char *a = r->path, *v = path;

	*wildcards = 0;
	if (nv < np || (!r->prefix && np != nv))
		return false;
	for (;;) {
		size_t al = strcspn(a, "/"), vl = strcspn(v, "/");
		bool last = a[al] == '\0';

		if (al == 1 && a[0] == '+')
			(*wildcards)++;
		else if (!(al == vl && memcmp(a, v, al) == 0) &&
		         !(r->prefix && last && vl >= al && memcmp(a, v, al) == 0))
			return false;
		if (last)
			return true;
		a += al + 1;
		v += vl + 1;
	}
}

/* A candidate of the non-exact search, ranked as in Vault's acl.go. */
struct cand {
	const struct auth_acl_rule *r;
	size_t first_wc;
	bool prefix;
	size_t wildcards;
	size_t len;
};

/*
 * True when a ranks below b: its first '+' or '*' comes earlier; it is a
 * prefix and b is not; it has more '+' segments; it is shorter; it is
 * lexically smaller.
 */
static bool cand_less(const struct cand *a, const struct cand *b)
{
	if (a->first_wc != b->first_wc)
		return a->first_wc < b->first_wc;
	if (a->prefix != b->prefix)
		return a->prefix;
	if (a->wildcards != b->wildcards)
		return a->wildcards > b->wildcards;
	if (a->len != b->len)
		return a->len < b->len;
	return strcmp(a->r->path, b->r->path) < 0;
}

static const struct auth_acl_rule *find_exact(const struct auth_acl_policy *const *pols, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		if (pols[i] == NULL)
			continue;
		for (size_t j = 0; j < pols[i]->n; j++) {
			const struct auth_acl_rule *r = &pols[i]->rules[j];

			if (!r->prefix && !r->segwild && strcmp(r->path, path) == 0)
				return r;
		}
	}
	return NULL;
}

static const struct auth_acl_rule *find_nonexact(const struct auth_acl_policy *const *pols, size_t n,
                                                 const char *path)
{
	struct cand best = {0};

	for (size_t i = 0; i < n; i++) {
		if (pols[i] == NULL)
			continue;
		for (size_t j = 0; j < pols[i]->n; j++) {
			const struct auth_acl_rule *r = &pols[i]->rules[j];
			struct cand c = {.r = r, .prefix = r->prefix, .len = strlen(r->path)};

			if (!r->segwild) {
				/* Only the longest prefix competes (Vault's radix LongestPrefix). */
				if (!r->prefix || strncmp(path, r->path, c.len) != 0)
					continue;
				c.first_wc = c.len;
			} else {
				if (!segwild_match(r, path, &c.wildcards))
					continue;
				c.first_wc = (size_t)(strchr(r->path, '+') != NULL ? strchr(r->path, '+') - r->path : 0);
			}
			if (best.r == NULL || cand_less(&best, &c))
				best = c;
		}
	}
	return best.r;
}

/* Vault's AllowOperation search order; a LIST path arrives with a trailing '/'. */
static const struct auth_acl_rule *find_rule(const struct auth_acl_policy *const *pols, size_t n, const char *path,
                                             bool list)
{
	const struct auth_acl_rule *r = find_exact(pols, n, path);
	size_t len = strlen(path);
	char *trimmed;

	if (r != NULL || !list)
		return r != NULL ? r : find_nonexact(pols, n, path);
	trimmed = sg_xstrndup(path, len > 0 && path[len - 1] == '/' ? len - 1 : len);
	r = find_exact(pols, n, trimmed);
	if (r == NULL && strlen(trimmed) != len)
		r = find_nonexact(pols, n, trimmed);
	free(trimmed);
	return r != NULL ? r : find_nonexact(pols, n, path);
}

/* Merged permissions of every rule with the winning pattern (Vault's NewACL merge). */
struct merged {
	unsigned caps;
	json_t *allowed, *denied;
	struct sg_strlist required;
	int64_t min_wrap, max_wrap;
};

static void merge_params(json_t **into, const json_t *from)
{
	const char *k;
	json_t *v;

	if (from == NULL || json_object_size(from) == 0)
		return;
	if (*into == NULL) {
		*into = json_deep_copy(from);
		return;
	}
	json_object_foreach((json_t *)from, k, v) {
		json_t *have = json_object_get(*into, k);

		/* An empty list (any value) wins over value lists. */
		if (json_array_size(v) == 0 || (have != NULL && json_array_size(have) == 0))
			json_object_set_new(*into, k, json_array());
		else if (have == NULL)
			json_object_set_new(*into, k, json_deep_copy(v));
		else
			json_array_extend(have, v);
	}
}

static int64_t min_set(int64_t a, int64_t b)
{
	return a == 0 ? b : (b == 0 || a < b ? a : b);
}

static void merge_group(const struct auth_acl_policy *const *pols, size_t n, const struct auth_acl_rule *win,
                        struct merged *m)
{
	bool first = true;

	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		if (pols[i] == NULL)
			continue;
		for (size_t j = 0; j < pols[i]->n; j++) {
			const struct auth_acl_rule *r = &pols[i]->rules[j];

			if (!same_pattern(r, win))
				continue;
			if (!first && (m->caps & AUTH_ACL_DENY))
				continue;
			first = false;
			if (r->caps & AUTH_ACL_DENY) {
				m->caps = AUTH_ACL_DENY;
				json_decref(m->allowed);
				json_decref(m->denied);
				m->allowed = m->denied = NULL;
				continue;
			}
			m->caps |= r->caps;
			m->min_wrap = min_set(m->min_wrap, r->min_wrap);
			m->max_wrap = min_set(m->max_wrap, r->max_wrap);
			merge_params(&m->allowed, r->allowed);
			merge_params(&m->denied, r->denied);
			for (size_t k = 0; k < r->required.n; k++)
				if (!sg_strlist_has(&m->required, r->required.v[k]))
					sg_strlist_add(&m->required, r->required.v[k]);
		}
	}
}

static void merged_clear(struct merged *m)
{
	json_decref(m->allowed);
	json_decref(m->denied);
	sg_strlist_clear(&m->required);
}

/* Vault's strutil.GlobbedStringsMatch: a leading and/or trailing '*' in the policy value. */
static bool glob_match(const char *pat, const char *val)
{
	size_t pl = strlen(pat), vl = strlen(val);
	bool pre, suf;

	if (pl < 2)
		return strcmp(pat, val) == 0;
	pre = pat[0] == '*';
	suf = pat[pl - 1] == '*';
	if (pre && suf) {
		char *mid = sg_xstrndup(pat + 1, pl - 2);
		bool ok = strstr(val, mid) != NULL;

		free(mid);
		return ok;
	}
	if (pre)
		return vl >= pl - 1 && strcmp(val + vl - (pl - 1), pat + 1) == 0;
	if (suf)
		return strncmp(val, pat, pl - 1) == 0;
	return strcmp(pat, val) == 0;
}

static bool in_list(const json_t *v, const json_t *list)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e) {
		if (json_is_string(e) && json_is_string(v)) {
			if (glob_match(json_string_value(e), json_string_value(v)))
				return true;
		} else if (json_equal(e, (json_t *)v)) {
			return true;
		}
	}
	return false;
}

/*
 * Each part of Vault's comma-separated string form. Unlike Vault, an empty
 * string is one empty part, not zero parts: Vault lets "" through any
 * allowed list, which is a bypass, not a feature.
 */
static bool comma_parts(const char *s, const json_t *list, bool want_all)
{
	const char *p = s;

	for (;;) {
		size_t n = strcspn(p, ",");
		size_t a = 0, b = n;
		char *part;
		bool hit;
		json_t *jp;

		while (a < b && isspace((unsigned char)p[a]))
			a++;
		while (b > a && isspace((unsigned char)p[b - 1]))
			b--;
		part = sg_xstrndup(p + a, b - a);
		jp = json_string(part);
		hit = jp != NULL && in_list(jp, list);
		json_decref(jp);
		free(part);
		if (want_all && !hit)
			return false;
		if (!want_all && hit)
			return true;
		if (p[n] == '\0')
			return want_all;
		p += n + 1;
	}
}

static bool value_allowed(const json_t *v, const json_t *list)
{
	size_t i;
	json_t *e;

	if (json_array_size(list) == 0 || in_list(v, list))
		return true;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (!in_list(e, list))
				return false;
		return json_array_size(v) > 0;
	}
	if (json_is_string(v) && strchr(json_string_value(v), ',') != NULL)
		return comma_parts(json_string_value(v), list, true);
	return false;
}

static bool value_denied(const json_t *v, const json_t *list)
{
	size_t i;
	json_t *e;

	if (json_array_size(list) == 0 || in_list(v, list))
		return true;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (in_list(e, list))
				return true;
		return false;
	}
	if (json_is_string(v))
		return comma_parts(json_string_value(v), list, false);
	return false;
}

static const json_t *param_list(const json_t *map, const char *key)
{
	char low[AUTH_ACL_MAX_PATTERN_BYTES];

	if (map == NULL || !is_ascii_lower_copy(key, low, sizeof(low)))
		return NULL;
	return json_object_get(map, low);
}

/* Vault's parameter checks, on the request's own parameters (never on defaults). */
static bool params_ok(const struct merged *m, const json_t *body)
{
	const char *k;
	json_t *v;
	size_t nbody = json_is_object(body) ? json_object_size(body) : 0;
	bool allow_all;

	for (size_t i = 0; i < m->required.n; i++) {
		char low[AUTH_ACL_MAX_PATTERN_BYTES];

		if (nbody == 0 || !is_ascii_lower_copy(m->required.v[i], low, sizeof(low)) ||
		    json_object_get(body, low) == NULL)
			return false;
	}
	if (nbody == 0)
		return true;
	if (json_object_size(m->denied) > 0) {
		if (json_object_get(m->denied, "*") != NULL)
			return false;
		json_object_foreach((json_t *)body, k, v) {
			const json_t *list = param_list(m->denied, k);

			if (list != NULL && value_denied(v, list))
				return false;
		}
	}
	if (json_object_size(m->allowed) == 0)
		return true;
	allow_all = json_object_get(m->allowed, "*") != NULL;
	if (allow_all && json_object_size(m->allowed) == 1)
		return true;
	json_object_foreach((json_t *)body, k, v) {
		const json_t *list = param_list(m->allowed, k);

		if (list == NULL && !allow_all)
			return false;
		if (list != NULL && !value_allowed(v, list))
			return false;
	}
	return true;
}

unsigned auth_acl_op_cap(enum auth_acl_op op)
{
	switch (op) {
	case AUTH_ACL_OP_READ: return AUTH_ACL_READ;
	case AUTH_ACL_OP_LIST: return AUTH_ACL_LIST;
	case AUTH_ACL_OP_CREATE: return AUTH_ACL_CREATE;
	case AUTH_ACL_OP_UPDATE: return AUTH_ACL_UPDATE;
	case AUTH_ACL_OP_DELETE: return AUTH_ACL_DELETE;
	case AUTH_ACL_OP_PATCH: return AUTH_ACL_PATCH;
	}
	return 0;
}

const char *auth_acl_op_name(enum auth_acl_op op)
{
	switch (op) {
	case AUTH_ACL_OP_READ: return "read";
	case AUTH_ACL_OP_LIST: return "list";
	case AUTH_ACL_OP_CREATE: return "create";
	case AUTH_ACL_OP_UPDATE: return "update";
	case AUTH_ACL_OP_DELETE: return "delete";
	case AUTH_ACL_OP_PATCH: return "patch";
	}
	return "?";
}

void auth_acl_evaluate(const struct auth_acl_policy *const *pols, size_t n, const char *path, enum auth_acl_op op,
                       const json_t *body, struct auth_acl_decision *out)
{
	const struct auth_acl_rule *win;
	struct merged m;

	memset(out, 0, sizeof(*out));
	while (*path == '/')
		path++;
	win = find_rule(pols, n, path, op == AUTH_ACL_OP_LIST);
	if (win == NULL)
		return;
	merge_group(pols, n, win, &m);
	out->matched = true;
	out->caps = m.caps;
	out->sudo = (m.caps & AUTH_ACL_SUDO) != 0;
	if ((m.caps & auth_acl_op_cap(op)) == 0)
		goto out;
	/* No request here is response-wrapped, so a wrapping TTL bound is never met (as Vault without X-Vault-Wrap-TTL). */
	if (m.min_wrap > 0 || m.max_wrap > 0)
		goto out;
	if (op != AUTH_ACL_OP_LIST && op != AUTH_ACL_OP_DELETE && !params_ok(&m, body))
		goto out;
	out->allowed = true;
out:
	merged_clear(&m);
}

unsigned auth_acl_capabilities(const struct auth_acl_policy *const *pols, size_t n, const char *path)
{
	const struct auth_acl_rule *win;
	struct merged m;
	unsigned caps;

	while (*path == '/')
		path++;
	/* Vault asks as a LIST so a "foo" rule also answers for "foo/". */
	win = find_rule(pols, n, path, true);
	if (win == NULL)
		return 0;
	merge_group(pols, n, win, &m);
	caps = m.caps;
	merged_clear(&m);
	return caps;
}

json_t *auth_acl_caps_json(unsigned caps)
{
	json_t *a = json_array();

	if (caps == 0 || (caps & AUTH_ACL_DENY)) {
		json_array_append_new(a, json_string("deny"));
		return a;
	}
	/* cap_names is in byte order, which is Vault's sort.Strings order. */
	for (size_t i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
		if (caps & cap_names[i].bit)
			json_array_append_new(a, json_string(cap_names[i].name));
	return a;
}

/* Vault's default policy (vault/policy_store.go), less the templated identity paths. */
const char auth_acl_default_policy[] =
    "\n"
    "# Allow tokens to look up their own properties\n"
    "path \"auth/token/lookup-self\" {\n"
    "    capabilities = [\"read\"]\n"
    "}\n"
    "\n"
    "# Allow tokens to renew themselves\n"
    "path \"auth/token/renew-self\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow tokens to revoke themselves\n"
    "path \"auth/token/revoke-self\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to look up its own capabilities on a path\n"
    "path \"sys/capabilities-self\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to renew a lease via lease_id in the request body; old path for\n"
    "# old clients, new path for newer\n"
    "path \"sys/renew\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "path \"sys/leases/renew\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow looking up lease properties. This requires knowing the lease ID ahead\n"
    "# of time and does not divulge any sensitive information.\n"
    "path \"sys/leases/lookup\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to manage its own cubbyhole\n"
    "path \"cubbyhole/*\" {\n"
    "    capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n"
    "}\n"
    "\n"
    "# Allow a token to wrap arbitrary values in a response-wrapping token\n"
    "path \"sys/wrapping/wrap\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to look up the creation time and TTL of a given\n"
    "# response-wrapping token\n"
    "path \"sys/wrapping/lookup\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow a token to unwrap a response-wrapping token. This is a convenience to\n"
    "# avoid client token swapping since this is also part of the response wrapping\n"
    "# policy.\n"
    "path \"sys/wrapping/unwrap\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "\n"
    "# Allow general purpose tools\n"
    "path \"sys/tools/hash\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "path \"sys/tools/hash/*\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "path \"sys/tools/random\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n"
    "path \"sys/tools/random/*\" {\n"
    "    capabilities = [\"update\"]\n"
    "}\n";
