/*
 * netplumb-shim: the CNI executable the container runtime calls when netplumb runs as a daemon.
 *
 * It exists only to make a CNI call cheap: starting Node.js costs ~100 ms per call, this costs
 * about a millisecond. All the logic (config, annotations, delegates, results, errors) lives in
 * the TypeScript daemon; this program only moves bytes:
 *
 *   1. read the network config from stdin;
 *   2. if it names "daemonSocket", send every CNI_* variable plus stdin to the daemon as
 *      `POST /cni` over that unix socket, print the response body on stdout and exit with the
 *      code in the `X-Cni-Exit-Code` header;
 *   3. otherwise (thin mode), exec `netplumb-cni` from the same directory with the same
 *      environment and stdin.
 *
 * While the daemon restarts its socket is missing or refuses connections: the shim retries
 * every 100 ms for up to NETPLUMB_SHIM_WAIT_MS (default 60 s, within the runtime's CNI timeout).
 * If the daemon never comes back, a DEL falls back to `netplumb-cni` (thin mode), which deletes
 * from the on-disk cache without the daemon; other commands fail with CNI error 11 (try again).
 *
 * Wire format (see cni/daemon/wire.ts): body = env block (X-Env-Length bytes of NUL-terminated
 * KEY=VALUE entries) followed by the stdin bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define THIN_NAME "netplumb-cni"
#define DEFAULT_WAIT_MS 60000L
#define RETRY_MS 100L

struct buf {
  char *data;
  size_t len;
  size_t cap;
};

static void buf_put(struct buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
      fputs("netplumb-shim: out of memory\n", stderr);
      exit(1);
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static int read_all(int fd, struct buf *b) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf_put(b, chunk, (size_t)n);
  }
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/*
 * The string value of the first `"key": "value"` in a JSON text, copied into out. Only used to
 * find the socket path and the cniVersion for the shim's own error; the daemon parses properly.
 * Values with escapes are refused (returns 0), so a path is never misread.
 */
static int json_string(const char *json, const char *key, char *out, size_t outsz) {
  char needle[64];
  snprintf(needle, sizeof needle, "\"%s\"", key);
  const char *p = strstr(json, needle);
  if (!p) return 0;
  p += strlen(needle);
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  if (*p++ != ':') return 0;
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  if (*p++ != '"') return 0;
  size_t i = 0;
  while (*p && *p != '"') {
    if (*p == '\\' || i + 1 >= outsz) return 0;
    out[i++] = *p++;
  }
  if (*p != '"') return 0;
  out[i] = '\0';
  return 1;
}

/* Prints a CNI error object on stdout (the spec's error format) and exits 1. */
static void cni_fail(const char *version, int code, const char *msg, const char *detail) {
  struct buf b = {0};
  buf_puts(&b, "{\"cniVersion\":\"");
  buf_puts(&b, version);
  buf_puts(&b, "\",\"code\":");
  char num[16];
  snprintf(num, sizeof num, "%d", code);
  buf_puts(&b, num);
  buf_puts(&b, ",\"msg\":\"");
  for (const char *s = msg; *s; s++) {
    if (*s == '"' || *s == '\\') buf_put(&b, "\\", 1);
    if ((unsigned char)*s < 0x20) continue;
    buf_put(&b, s, 1);
  }
  if (detail && *detail) {
    buf_puts(&b, ": ");
    for (const char *s = detail; *s; s++) {
      if (*s == '"' || *s == '\\') buf_put(&b, "\\", 1);
      if ((unsigned char)*s < 0x20) continue;
      buf_put(&b, s, 1);
    }
  }
  buf_puts(&b, "\"}\n");
  write_all(1, b.data, b.len);
  exit(1);
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Connects to the daemon, retrying while it is absent or restarting. Returns the fd or -1. */
static int connect_daemon(const char *path, long wait_ms, int *last_errno) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) {
    *last_errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  long deadline = now_ms() + wait_ms;
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *last_errno = errno;
      return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) return fd;
    *last_errno = errno;
    close(fd);
    if (errno != ENOENT && errno != ECONNREFUSED && errno != EAGAIN) return -1;
    if (now_ms() >= deadline) return -1;
    struct timespec ts = {0, RETRY_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* The path of `netplumb-cni` in this executable's directory, or 0 when it cannot be built. */
static int thin_path(char *out, size_t outsz) {
  ssize_t n = readlink("/proc/self/exe", out, outsz - 1);
  if (n <= 0) return 0;
  out[n] = '\0';
  char *slash = strrchr(out, '/');
  if (!slash || (size_t)(slash - out) + 1 + sizeof THIN_NAME > outsz) return 0;
  strcpy(slash + 1, THIN_NAME);
  return 1;
}

/* Runs `netplumb-cni` next to this executable, feeding it the stdin already read. */
static void exec_thin(const struct buf *in, const char *version) {
  char self[PATH_MAX];
  if (!thin_path(self, sizeof self)) cni_fail(version, 5, "netplumb-shim: cannot resolve its own path", NULL);
  int mfd = memfd_create("netplumb-stdin", MFD_CLOEXEC);
  if (mfd < 0 || write_all(mfd, in->data, in->len) != 0 || lseek(mfd, 0, SEEK_SET) != 0)
    cni_fail(version, 5, "netplumb-shim: cannot buffer stdin for the thin plugin", strerror(errno));
  if (dup2(mfd, 0) < 0) cni_fail(version, 5, "netplumb-shim: dup2", strerror(errno));
  char *argv[] = {self, NULL};
  execve(self, argv, environ);
  cni_fail(version, 5, "netplumb-shim: cannot run the thin plugin", strerror(errno));
}

int main(void) {
  struct buf in = {0};
  if (read_all(0, &in) != 0) cni_fail("1.0.0", 5, "netplumb-shim: cannot read stdin", strerror(errno));
  if (!in.data) buf_put(&in, "", 0);

  char version[32];
  if (!json_string(in.data, "cniVersion", version, sizeof version)) strcpy(version, "1.0.0");
  const char *command = getenv("CNI_COMMAND");
  int is_del = command && strcmp(command, "DEL") == 0;

  char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  if (!json_string(in.data, "daemonSocket", socket_path, sizeof socket_path)) exec_thin(&in, version);

  long wait_ms = DEFAULT_WAIT_MS;
  const char *w = getenv("NETPLUMB_SHIM_WAIT_MS");
  if (w && *w) wait_ms = strtol(w, NULL, 10);

  int err = 0;
  int fd = connect_daemon(socket_path, wait_ms, &err);
  if (fd < 0) {
    char thin[PATH_MAX];
    if (is_del && thin_path(thin, sizeof thin) && access(thin, X_OK) == 0) exec_thin(&in, version);
    char msg[200];
    snprintf(msg, sizeof msg, "netplumb daemon not reachable at %s", socket_path);
    cni_fail(version, 11, msg, strerror(err));
  }

  struct buf env = {0};
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) == 0) buf_put(&env, *e, strlen(*e) + 1);
  }
  char head[256];
  int hl = snprintf(head, sizeof head,
                    "POST /cni HTTP/1.1\r\nHost: netplumb\r\nConnection: close\r\n"
                    "Content-Type: application/x-netplumb-cni\r\nX-Env-Length: %zu\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    env.len, env.len + in.len);
  if (write_all(fd, head, (size_t)hl) != 0 || (env.len && write_all(fd, env.data, env.len) != 0) ||
      write_all(fd, in.data, in.len) != 0)
    cni_fail(version, 11, "netplumb-shim: sending the request to the daemon failed", strerror(errno));

  struct buf out = {0};
  if (read_all(fd, &out) != 0)
    cni_fail(version, 11, "netplumb-shim: reading the daemon's response failed", strerror(errno));
  /* EOF before any byte: errno is stale here, so say what happened instead of strerror. */
  if (!out.data)
    cni_fail(version, 11, "netplumb-shim: the daemon closed the connection without a response",
             "it stopped or restarted during the call; the runtime retries");
  close(fd);

  char *body = strstr(out.data, "\r\n\r\n");
  if (strncmp(out.data, "HTTP/1.", 7) != 0 || !body)
    cni_fail(version, 11, "netplumb-shim: malformed response from the daemon", NULL);
  *body = '\0';
  body += 4;
  int status = atoi(out.data + 9);
  int exit_code = status == 200 ? 0 : 1;
  size_t body_len = out.len - (size_t)(body - out.data);
  for (char *line = strstr(out.data, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "X-Cni-Exit-Code:", 16) == 0) exit_code = atoi(line + 18);
    if (strncasecmp(line + 2, "Content-Length:", 15) == 0) {
      size_t cl = strtoul(line + 17, NULL, 10);
      if (cl < body_len) body_len = cl;
    }
  }
  if (body_len > 0 && write_all(1, body, body_len) != 0) return 1;
  return exit_code;
}
