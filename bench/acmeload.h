#ifndef SG_BENCH_ACMELOAD_H
#define SG_BENCH_ACMELOAD_H

/*
 * sigil-bench -mode acme: complete ACME orders (RFC 8555) per second; see
 * bench/acmeload.c. argv is sigil-bench's whole command line.
 */
int acmeload_main(int argc, char **argv);

#endif
