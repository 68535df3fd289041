#ifndef CLI_CLI_H
#define CLI_CLI_H

/*
 * The operator CLI: one table of commands (cli/cmd.c) drives parsing,
 * --help, the bash completion script and the man page, so the three never
 * disagree.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/client.h"
#include "common/err.h"
#include "common/util.h"

enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,
	CLI_EXIT_USAGE = 2,
};

#define CLI_MAX_FLAGS 14             /* per command, the global ones not counted */
#define CLI_MAX_ARGS 512             /* cap on command-line words */
#define CLI_MAX_FILE_BYTES (1u << 20) /* cap on files read for k=@file, --csr, --cert */
#define CLI_MAX_CERTS 10000          /* cap on certificates `sigil certs` reads */
#define CLI_TOKEN_FILE ".sigil-token"

struct cli_flag {
	const char *name; /* without dashes */
	const char *arg;  /* value placeholder, NULL for a boolean flag */
	const char *help;
};

struct cli_args;
struct cli_ctx;

struct cli_cmd {
	const char *name;    /* "issue", "role list" */
	const char *synopsis; /* positional part, e.g. "ROLE" */
	const char *summary;
	const char *example;
	int min_pos, max_pos; /* max_pos -1: unbounded */
	struct cli_flag flags[CLI_MAX_FLAGS];
	/* NULL: dispatched by cli/main.c before cli_main (server, routes, audit, agent). */
	int (*run)(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
};

struct cli_args {
	const struct cli_cmd *cmd;
	struct sg_strlist pos;
	struct sg_strlist vals[CLI_MAX_FLAGS];
	bool set[CLI_MAX_FLAGS];
	const char *format;  /* "table" or "json" */
	const char *address; /* -address, overrides SIGIL_ADDR */
	const char *mount;   /* -mount, PKI mount path (default "pki") */
	bool help;
};

struct cli_ctx {
	struct cli_client *client;
	FILE *out;
	bool json;
	bool usage; /* set by a command whose arguments are wrong: exit 2 */
};

/* The command table, terminated by an entry with name NULL. */
extern const struct cli_cmd cli_cmds[];

/* Entry point after cli/main.c's own commands: returns a CLI_EXIT_* code. */
int cli_main(int argc, char **argv);

/* Finds the command named by argv[0] (and argv[1] for two-word commands); *used gets 1 or 2. */
const struct cli_cmd *cli_cmd_find(int argc, char **argv, int *used);
/*
 * Parses flags (-f, --f, -f=v, --f v; "--" ends flags) and positionals.
 * Returns -1 with err set (unknown flag, missing value, positional count).
 */
int cli_args_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a, struct sg_err *err) SG_WUR;
void cli_args_clear(struct cli_args *a);
/* Last value of a flag, or NULL. */
const char *cli_flag(const struct cli_args *a, const char *name);
/* Every value of a repeatable flag (borrowed list, possibly empty). */
const struct sg_strlist *cli_flag_all(const struct cli_args *a, const char *name);
bool cli_flag_set(const struct cli_args *a, const char *name);

/*
 * k=v words (from index `from` of list) into a JSON object: k=@FILE reads the
 * file, k=- reads stdin; a repeated key becomes an array. -1 on a word
 * without '=' or an unreadable file.
 */
int cli_kv_parse(const struct sg_strlist *l, size_t from, json_t **out, struct sg_err *err) SG_WUR;

/* "in 3h12m", "12m ago", "now" for delta seconds (positive: future). */
void cli_reltime(int64_t delta, char *buf, size_t len);

/* Token helper file: $HOME/.sigil-token, mode 0600. Caller frees; NULL when absent. */
char *cli_token_path(void);
int cli_token_store(const char *token, struct sg_err *err) SG_WUR;
char *cli_token_load(void);
int cli_token_erase(struct sg_err *err) SG_WUR;

/* Output. */
void cli_print_value(FILE *f, const json_t *v);
void cli_print_kv_table(FILE *f, const json_t *obj);
/* Prints a Vault response: JSON as is with -format=json, else data as a table (keys for a list). */
void cli_print_response(struct cli_ctx *ctx, const struct cli_response *resp);
void cli_print_warnings(const struct cli_response *resp);

/* Help, man page and completion, all from cli_cmds. */
void cli_usage(FILE *f);
void cli_cmd_help(FILE *f, const struct cli_cmd *cmd);
void cli_man_write(FILE *f);
void cli_completion_bash(FILE *f);

/* Reads a whole file (capped at CLI_MAX_FILE_BYTES), NUL-terminated. */
char *cli_file_read(const char *path, struct sg_err *err);

/* Commands (cli/cmd_*.c). */
int cli_cmd_login(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_logout(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_read(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_write(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_list(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_delete(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_status(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_issue(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_sign(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_revoke(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_certs(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_role_list(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_role_read(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_role_write(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_role_delete(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_issuer_list(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_issuer_read(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_issuer_root(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_issuer_intermediate(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_issuer_sign_intermediate(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_issuer_set_signed(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_crl_rotate(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_tidy(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_man(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);
int cli_cmd_completion(struct cli_ctx *ctx, const struct cli_args *a, struct sg_err *err);

#endif
