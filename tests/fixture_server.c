#include "fixture_server.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int fixture_server_start(struct fixture_server *s, char *const extra_args[])
{
    const char *py = getenv("PYTHON") ? getenv("PYTHON") : "python3";
    const char *script = getenv("AREQ_FIXTURE_SERVER");
    if (script == NULL)
        script = "tests/fixture/server.py";
    char *argv[16] = {(char *)py, (char *)script};
    size_t n = 2;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL && n < 15; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;

    int in[2], out[2];
    if (pipe(in) != 0)
        return -1;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    int rc = posix_spawnp(&s->pid, py, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    s->stdin_fd = in[1];
    s->port = 0;
    FILE *f = fdopen(out[0], "r");
    char line[128];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "PORT %d", &s->port) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    return s->port > 0 ? 0 : -1;
}

void fixture_server_stop(struct fixture_server *s)
{
    close(s->stdin_fd); /* the server ends when its stdin does */
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}
