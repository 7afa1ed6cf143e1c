/*
 * netplumb-cni (installed under that name): what a CNI runtime runs for the thin meta-plugin. It
 * starts the delegate helper netplumb-spawner, then becomes the Node single executable
 * netplumb-cni-node beside it (execve: same pid, argv, environment, stdin, stdout, stderr and exit
 * status), handing it the helper's two pipes in
 *   NETPLUMB_SPAWNER_FDS=<requests fd>,<replies fd>,<helper pid>
 * (cni/daemon/spawner/client.ts `inherited`).
 *
 * Why: Node starts a helper through child_process, which forks the whole Node process and blocks
 * its event loop until the child has exec'd, about 6 ms of every thin call. This fork copies a
 * process of a few pages, and the helper's own start overlaps Node's.
 *
 * The helper is started only for a call that runs something (CNI_COMMAND set and not VERSION), and
 * only when netplumb-spawner is beside this file; otherwise Node is exec'd alone and does without
 * (or starts one itself). The helper's stdin and stdout are the pipes and its stderr is /dev/null:
 * the runtime reads the plugin's stdout and stderr to EOF, so a helper holding either would hold
 * the answer back until it exited too. It exits when Node exits (EOF on its requests), once the
 * delegates it runs have finished.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define NODE_NAME "netplumb-cni-node"
#define HELPER_NAME "netplumb-spawner"
#define FDS_VAR "NETPLUMB_SPAWNER_FDS"

/* Appends `text` to out[*n] as JSON string content (quotes, backslashes and controls escaped). */
static void json_text(char *out, size_t size, size_t *n, const char *text) {
  for (const unsigned char *p = (const unsigned char *)text; *p != '\0' && *n + 7 < size; p++) {
    if (*p == '"' || *p == '\\') {
      out[(*n)++] = '\\';
      out[(*n)++] = (char)*p;
    } else if (*p < 0x20) {
      *n += (size_t)snprintf(out + *n, size - *n, "\\u%04x", *p);
    } else {
      out[(*n)++] = (char)*p;
    }
  }
}

/* The CNI error a runtime shows when the Node part cannot be run (stdout, exit 1). */
static void fail(const char *what, const char *file, int err) {
  static const char head[] = "{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"";
  static const char tail[] = "\"}\n";
  char msg[2 * PATH_MAX + 256];
  size_t n = sizeof head - 1;
  memcpy(msg, head, n);
  const char *parts[] = {"netplumb-cni: cannot ", what, " ", file, ": ", strerror(err),
                         " (reinstall with netplumb install)"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) json_text(msg, sizeof msg - sizeof tail, &n, parts[i]);
  memcpy(msg + n, tail, sizeof tail - 1);
  n += sizeof tail - 1;
  ssize_t w = write(1, msg, n);
  (void)w;
  _exit(1);
}

/* The directory of this executable (/proc/self/exe, else argv[0] when it has a slash). */
static int own_dir(const char *argv0, char *dir, size_t size) {
  ssize_t n = readlink("/proc/self/exe", dir, size - 1);
  if (n > 0) {
    dir[n] = '\0';
  } else if (argv0 != NULL && strchr(argv0, '/') != NULL && strlen(argv0) < size) {
    strcpy(dir, argv0);
  } else {
    return -1;
  }
  char *slash = strrchr(dir, '/');
  if (slash == NULL) return -1;
  if (slash == dir) slash[1] = '\0';
  else *slash = '\0';
  return 0;
}

/* Whether this call runs delegates (so wants the helper). */
static int runs_delegates(void) {
  const char *command = getenv("CNI_COMMAND");
  return command != NULL && command[0] != '\0' && strcmp(command, "VERSION") != 0;
}

/* fds 0-2 open (on /dev/null when the runtime closed one), so that no pipe below lands on them. */
static void standard_fds_open(void) {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0 && null != fd) {
      dup2(null, fd);
      close(null);
    }
  }
}

/*
 * Starts the helper on two pipes and exports their Node ends in FDS_VAR. Any failure leaves Node
 * to do without: the call still works, only slower.
 */
static void start_helper(const char *helper) {
  int req[2], rep[2];
  if (pipe2(req, O_CLOEXEC) != 0) return;
  if (pipe2(rep, O_CLOEXEC) != 0) {
    close(req[0]);
    close(req[1]);
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (dup2(req[0], 0) < 0 || dup2(rep[1], 1) < 0 || null < 0 || dup2(null, 2) < 0) _exit(127);
    char *const argv[] = {(char *)HELPER_NAME, NULL};
    execve(helper, argv, environ);
    _exit(127);
  }
  close(req[0]);
  close(rep[1]);
  if (pid < 0) {
    close(req[1]);
    close(rep[0]);
    return;
  }
  /* Node's ends survive its exec; the helper's copies were closed by its own. */
  if (fcntl(req[1], F_SETFD, 0) != 0 || fcntl(rep[0], F_SETFD, 0) != 0) {
    close(req[1]);
    close(rep[0]);
    return; /* the helper sees EOF and exits */
  }
  char value[64];
  snprintf(value, sizeof value, "%d,%d,%d", req[1], rep[0], (int)pid);
  setenv(FDS_VAR, value, 1);
}

int main(int argc, char **argv) {
  (void)argc;
  /* Never inherited from the caller: only this launcher says which fds are the helper's. */
  unsetenv(FDS_VAR);
  char dir[PATH_MAX];
  if (own_dir(argv[0], dir, sizeof dir - 32) != 0) fail("find the directory of", argv[0], ENOENT);
  char node[PATH_MAX], helper[PATH_MAX];
  snprintf(node, sizeof node, "%s/%s", dir, NODE_NAME);
  snprintf(helper, sizeof helper, "%s/%s", dir, HELPER_NAME);
  standard_fds_open();
  if (runs_delegates() && access(helper, X_OK) == 0) start_helper(helper);
  argv[0] = node;
  execve(node, argv, environ);
  fail("run", node, errno);
  return 1;
}
