/*
 * mcfleet-worker — entry point.
 *
 * The fleet logic arrives with the "sharded fleet" issue; until then the
 * binary answers --version (and --help) and exits, so the build, the
 * packaging and the tests that check every binary have something real to
 * run.
 *
 * Threads: only the main thread.
 */
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("mcfleet-worker %s\n", MCF_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--help") == 0) {
			printf("usage: mcfleet-worker [--version]\n"
			       "Not implemented yet beyond --version.\n");
			return 0;
		}
		fprintf(stderr, "mcfleet-worker: unknown flag %s\n", argv[i]);
		return 2;
	}
	printf("mcfleet-worker %s\n", MCF_VERSION);
	return 0;
}
