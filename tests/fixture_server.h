/* fixture_server.h: starts the loopback fixture server (tests/fixture/server.py) for a C
 * test, and stops it.
 *
 * Ownership: the caller owns the struct; the server process lives from start to stop, and
 * ends by itself if the test dies (it exits when its standard input closes). */
#ifndef AREQ_TEST_FIXTURE_SERVER_H
#define AREQ_TEST_FIXTURE_SERVER_H

#include <sys/types.h>

struct fixture_server {
    pid_t pid;
    int stdin_fd;
    int port;
};

/* Runs $PYTHON (default python3) on $AREQ_FIXTURE_SERVER (default
 * tests/fixture/server.py) with `extra_args` (NULL-terminated, may be NULL) and waits for
 * the port it prints. 0, or -1 when it could not be started. */
int fixture_server_start(struct fixture_server *s, char *const extra_args[]);
void fixture_server_stop(struct fixture_server *s);

#endif
