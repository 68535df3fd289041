/* The `sigil` binary: one subcommand per role (server now; agent and operator commands later). */
#include <stdio.h>
#include <string.h>

#include "server/audit.h"
#include "server/authz.h"
#include "server/server.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: sigil <command> [args]\n\n"
	           "commands:\n"
	           "  server    run the Sigil server (sigil server -dev, or -config FILE)\n"
	           "  routes    print every API route (pattern, methods, auth, sudo) as JSON\n"
	           "  audit     sigil audit verify FILE: check an audit log's hash chain\n"
	           "  version   print the version\n");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (cmd == NULL) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "server") == 0)
		return server_main(argc - 1, argv + 1);
	if (strcmp(cmd, "routes") == 0)
		return authz_routes_print(stdout);
	if (strcmp(cmd, "audit") == 0)
		return audit_cli_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "-version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("Sigil v%s\n", SIGIL_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "sigil: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
