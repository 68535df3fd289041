/* The `sigil` binary: one subcommand per role (server, agent, and the operator commands of cli/cmd.c). */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/server.h"

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* No command, help and the operator commands: cli/cmd.c's table. */
	if (cmd == NULL)
		return cli_main(argc, argv);
	if (strcmp(cmd, "server") == 0)
		return server_main(argc - 1, argv + 1);
	if (strcmp(cmd, "agent") == 0)
		return agent_main(argc - 1, argv + 1);
	if (strcmp(cmd, "routes") == 0)
		return authz_routes_print(stdout);
	if (strcmp(cmd, "audit") == 0)
		return audit_cli_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "-version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("Sigil v%s\n", SIGIL_VERSION);
		return 0;
	}
	return cli_main(argc, argv);
}
