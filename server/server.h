#ifndef SG_SERVER_SERVER_H
#define SG_SERVER_SERVER_H

#define SIGIL_VERSION "0.1.0"

/* `sigil server [-config FILE | -dev ...]`: runs the daemon until SIGINT/SIGTERM. Returns the exit status. */
int server_main(int argc, char **argv);

#endif
