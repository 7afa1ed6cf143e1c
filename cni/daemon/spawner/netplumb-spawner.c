/*
 * netplumb-spawner: runs CNI delegate plugins for the CNI daemon without forking the daemon.
 *
 * Why: Node.js's child_process forks the whole daemon (libuv fork()), copying its page tables and
 * blocking the event loop until the child execs: milliseconds per delegate. This small process
 * is started once by the daemon and runs each delegate with vfork + execve (no copy of anything;
 * glibc's posix_spawn does the same clone but also mmaps and munmaps a child stack per spawn, and
 * the munmap of a range another CPU just used is a TLB shootdown: ~30% of the helper's CPU per
 * spawn), so spawning costs what it costs from a tiny process and runs off the daemon's event loop.
 *
 * Protocol (native byte order, one machine): requests on stdin, replies on stdout; stderr is for
 * the helper's own complaints only. Before anything else the helper announces its protocol:
 *   hello    = u32 len (9), u32 id 0, u8 type 5, u32 PROTOCOL_VERSION
 * and the client refuses a helper whose first frame is not this hello with its own version (a
 * stale build would misread every request). Bump PROTOCOL_VERSION with any change below. The
 * client also sends an empty request with id 0 at once (answered with type 4 EINVAL, after the
 * hello): a build from before the hello answers it too, so a stale helper is told at once.
 *   request  = u32 len, then len bytes:
 *              u32 id, u32 timeout_ms, u32 file_len, u32 env_len, u32 stdin_len, u32 args_len,
 *              file (file_len bytes), env block (env_len bytes of NUL-terminated KEY=VALUE),
 *              stdin (stdin_len bytes), args (args_len bytes of NUL-terminated arguments;
 *              argv = file, then these)
 *   reply    = u32 len, then len bytes: u32 id, u8 type, payload
 *              type 1 = stdout chunk, 2 = stderr chunk (payload = the bytes),
 *              type 3 = done: u8 how (0 exited, 1 killed by a signal), i32 code or signal,
 *                       u8 timed_out (1: killed with SIGKILL at the deadline)
 *              type 4 = could not spawn: i32 errno
 *              type 5 = hello (id 0, first frame only): u32 protocol version
 * A child's output frames are held (up to CHUNK bytes) and written with its done frame in one
 * writev: the daemon wakes once per delegate, not once per frame.
 * A child is "done" once it has been reaped and its stdout and stderr are closed (like Node's
 * 'close'), or at its deadline: it is then SIGKILLed (if still running) and reported timed out.
 * On EOF on stdin the helper stops reading requests, lets running children finish (their
 * deadlines still apply) and exits.
 * Every wake walks the live children only (a dense list), never all MAX_CHILDREN slots.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 1024
#define MAX_REQUEST (64u << 20)
#define CHUNK 65536
/* The request/reply format below; the client (client.ts PROTOCOL_VERSION) must say the same.
 * (-DPROTOCOL_VERSION=n only to build a stand-in for a stale helper in tests.) */
#ifndef PROTOCOL_VERSION
#define PROTOCOL_VERSION 2u
#endif

enum { T_STDOUT = 1, T_STDERR = 2, T_DONE = 3, T_SPAWN_ERROR = 4, T_HELLO = 5 };

struct child {
  int used;
  uint32_t id;
  pid_t pid; /* 0 once reaped */
  int in_fd, out_fd, err_fd; /* -1 once closed */
  char *in_data;
  size_t in_len, in_off;
  int64_t deadline_ms;
  int status;
  int timed_out;
  char *held; /* reply frames not written yet (output, then done), at most CHUNK + a frame */
  size_t held_len;
};

static struct child children[MAX_CHILDREN];
/* The used slots, densely packed: every loop below walks these, not MAX_CHILDREN. */
static struct child *live[MAX_CHILDREN];
static int nchildren;
static int stdout_broken;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0 && !stdout_broken) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      stdout_broken = 1; /* the daemon is gone: keep running the children, drop their output */
      return;
    }
    c += w;
    n -= (size_t)w;
  }
}

/* The 9 bytes before a reply's payload: u32 len (5 + n), u32 id, u8 type. */
static void frame_header(char *h, uint32_t id, uint8_t type, uint32_t n) {
  uint32_t len = 5 + n;
  memcpy(h, &len, 4);
  memcpy(h + 4, &id, 4);
  h[8] = (char)type;
}

/* One frame in one writev: each write to the daemon's pipe can wake it, and wake-ups are the
 * helper's main cost per delegate (a paravirtualized 2-vCPU node: an IPI each). */
static void reply(uint32_t id, uint8_t type, const void *payload, uint32_t n) {
  char head[9];
  frame_header(head, id, type, n);
  struct iovec iov[2] = {{.iov_base = head, .iov_len = 9}, {.iov_base = (void *)payload, .iov_len = n}};
  if (stdout_broken) return;
  ssize_t w;
  do {
    w = writev(1, iov, n > 0 ? 2 : 1);
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    stdout_broken = 1; /* the daemon is gone: keep running the children, drop their output */
    return;
  }
  /* A short write (pipe nearly full): the rest, in order. */
  size_t done = (size_t)w;
  if (done < 9) {
    write_all(1, head + done, 9 - done);
    done = 9;
  }
  if (done - 9 < n) write_all(1, (const char *)payload + (done - 9), n - (done - 9));
}

/* Writes the child's held frames (one write, so one wake-up of the daemon). */
static void flush_held(struct child *c) {
  if (c->held_len > 0 && !stdout_broken) write_all(1, c->held, c->held_len);
  c->held_len = 0;
}

/* Appends one frame to the child's held frames; flushes first when they would pass CHUNK. */
static void hold(struct child *c, uint8_t type, const void *payload, uint32_t n) {
  if (c->held_len > 0 && c->held_len + 9 + n > CHUNK + 64) flush_held(c);
  if (c->held == NULL) c->held = malloc(CHUNK + 64);
  if (c->held == NULL || 9 + (size_t)n > CHUNK + 64) {
    flush_held(c);
    reply(c->id, type, payload, n); /* no memory, or a frame larger than the buffer: at once */
    return;
  }
  char *h = c->held + c->held_len;
  frame_header(h, c->id, type, n);
  if (n > 0) memcpy(h + 9, payload, n);
  c->held_len += 9 + (size_t)n;
}

static void reply_done(struct child *c) {
  char p[6];
  uint8_t how = WIFSIGNALED(c->status) ? 1 : 0;
  int32_t v = WIFSIGNALED(c->status) ? WTERMSIG(c->status) : WEXITSTATUS(c->status);
  p[0] = (char)how;
  memcpy(p + 1, &v, 4);
  p[5] = (char)(c->timed_out ? 1 : 0);
  hold(c, T_DONE, p, 6);
  flush_held(c);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void finish(struct child *c) {
  reply_done(c);
  close_fd(&c->in_fd);
  close_fd(&c->out_fd);
  close_fd(&c->err_fd);
  free(c->in_data);
  free(c->held);
  memset(c, 0, sizeof *c);
  for (int i = 0; i < nchildren; i++) {
    if (live[i] != c) continue;
    live[i] = live[--nchildren];
    break;
  }
}

static void maybe_finish(struct child *c) {
  if (c->used && c->pid == 0 && c->out_fd < 0 && c->err_fd < 0) finish(c);
}

/* Splits a block of NUL-terminated strings into a NULL-terminated vector after `first` leading
 * entries (left for the caller to fill: argv[0]). */
static char **str_vector(char *block, uint32_t len, size_t first) {
  size_t n = 0;
  for (uint32_t i = 0; i < len; i++)
    if (block[i] == '\0') n++;
  char **v = calloc(n + first + 1, sizeof *v);
  if (!v) return NULL;
  size_t k = first;
  char *start = block;
  for (uint32_t i = 0; i < len; i++) {
    if (block[i] == '\0') {
      v[k++] = start;
      start = block + i + 1;
    }
  }
  v[k] = NULL;
  return v;
}

static int pipes(int p[3][2]) {
  for (int i = 0; i < 3; i++) {
    if (pipe2(p[i], O_CLOEXEC) != 0) {
      for (int j = 0; j < i; j++) {
        close(p[j][0]);
        close(p[j][1]);
      }
      return errno;
    }
  }
  return 0;
}

/* Signals ignored when the helper started, and SIGPIPE (ignored by the helper): ignored
 * dispositions survive execve, so the child resets these; handled ones are reset by execve itself.
 * Every delegate starts with all signals at their defaults and none blocked. */
static sigset_t reset_in_child;

/* vfork + execve: the child borrows this process's memory and stack until it execs (nothing is
 * copied or mapped), and tells an exec failure through `err`, which it shares with us. */
static int spawn_child(char *file, char **argv, char **envp, pid_t *pid, int p[3][2]) {
  volatile int err = 0;
  argv[0] = file;
  pid_t c = vfork();
  if (c < 0) return errno;
  if (c == 0) {
    if (dup2(p[0][0], 0) < 0 || dup2(p[1][1], 1) < 0 || dup2(p[2][1], 2) < 0) {
      err = errno;
      _exit(127);
    }
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
      if (sigismember(&reset_in_child, s) == 1) sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(file, argv, envp);
    err = errno;
    _exit(127);
  }
  if (err != 0) {
    int st;
    while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
    }
    return err;
  }
  *pid = c;
  return 0;
}

/* A slot that is not in use; the live list is full exactly when every slot is used. */
static struct child *free_slot(void) {
  if (nchildren >= MAX_CHILDREN) return NULL;
  static int hint;
  for (int k = 0; k < MAX_CHILDREN; k++) {
    int i = (hint + k) % MAX_CHILDREN;
    if (children[i].used) continue;
    hint = (i + 1) % MAX_CHILDREN;
    return &children[i];
  }
  return NULL;
}

static uint32_t get_u32(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static void spawn_error(uint32_t id, int err) {
  int32_t e = err;
  reply(id, T_SPAWN_ERROR, &e, 4);
}

static void pump_input(struct child *c) {
  while (c->in_off < c->in_len) {
    ssize_t w = write(c->in_fd, c->in_data + c->in_off, c->in_len - c->in_off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) return;
    if (w < 0) break; /* EPIPE: the plugin did not read its stdin; its exit code tells */
    c->in_off += (size_t)w;
  }
  close_fd(&c->in_fd);
}

/* Handles one complete request of `len` bytes at `req`. */
static void handle_request(char *req, uint32_t len) {
  if (len < 24) return;
  uint32_t id = get_u32(req), timeout = get_u32(req + 4), flen = get_u32(req + 8);
  uint32_t elen = get_u32(req + 12), slen = get_u32(req + 16), alen = get_u32(req + 20);
  if ((uint64_t)24 + flen + elen + slen + alen != len || flen == 0) {
    spawn_error(id, EINVAL);
    return;
  }
  struct child *c = free_slot();
  if (!c) {
    spawn_error(id, EAGAIN);
    return;
  }
  const char *at = req + 24;
  char *file = strndup(at, flen);
  /* env and args stay in one copy of the request's tail; the vectors point into it. */
  char *strs = malloc(elen + alen + 1);
  char *in = malloc(slen + 1);
  char **envp = NULL, **argv = NULL;
  int p[3][2];
  int rc = (file && strs && in) ? 0 : ENOMEM;
  if (rc == 0) {
    memcpy(strs, at + flen, elen);
    memcpy(in, at + flen + elen, slen);
    memcpy(strs + elen, at + flen + elen + slen, alen);
    envp = str_vector(strs, elen, 0);
    argv = str_vector(strs + elen, alen, 1);
    rc = envp && argv ? pipes(p) : ENOMEM;
  }
  pid_t pid = 0;
  if (rc == 0) {
    rc = spawn_child(file, argv, envp, &pid, p);
    close(p[0][0]);
    close(p[1][1]);
    close(p[2][1]);
    if (rc != 0) {
      close(p[0][1]);
      close(p[1][0]);
      close(p[2][0]);
    }
  }
  free(file);
  free(strs);
  free(envp);
  free(argv);
  if (rc != 0) {
    free(in);
    spawn_error(id, rc);
    return;
  }
  for (int i = 0; i < 3; i++) fcntl(p[i][i == 0 ? 1 : 0], F_SETFL, O_NONBLOCK);
  *c = (struct child){.used = 1, .id = id, .pid = pid, .in_fd = p[0][1], .out_fd = p[1][0],
                      .err_fd = p[2][0], .in_data = in, .in_len = slen,
                      .deadline_ms = now_ms() + (int64_t)timeout};
  live[nchildren++] = c;
  if (slen == 0) close_fd(&c->in_fd);
  else pump_input(c); /* the pipe is empty: most configs fit at once, no wake-up to wait for */
}

/* Request reader state: accumulates stdin bytes into whole requests. */
static char *rbuf;
static size_t rlen, rcap;

static int read_requests(void) {
  if (rcap - rlen < CHUNK) {
    size_t cap = rcap ? rcap * 2 : 4 * CHUNK;
    char *n = realloc(rbuf, cap);
    if (!n) return -1;
    rbuf = n;
    rcap = cap;
  }
  ssize_t r = read(0, rbuf + rlen, rcap - rlen);
  if (r < 0) return errno == EINTR || errno == EAGAIN ? 0 : -1;
  if (r == 0) return -1;
  rlen += (size_t)r;
  size_t off = 0;
  while (rlen - off >= 4) {
    uint32_t len = get_u32(rbuf + off);
    if (len > MAX_REQUEST) {
      fprintf(stderr, "netplumb-spawner: request of %u bytes is too large\n", len);
      return -1;
    }
    if (rlen - off - 4 < len) break;
    handle_request(rbuf + off + 4, len);
    off += 4 + (size_t)len;
  }
  memmove(rbuf, rbuf + off, rlen - off);
  rlen -= off;
  return 0;
}

static void pump_output(struct child *c, int *fd, uint8_t type) {
  char b[CHUNK];
  for (;;) {
    ssize_t r = read(*fd, b, sizeof b);
    if (r > 0) {
      hold(c, type, b, (uint32_t)r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    close_fd(fd);
    return;
  }
}

static struct child *by_pid(pid_t pid) {
  for (int i = 0; i < nchildren; i++)
    if (live[i]->pid == pid) return live[i];
  return NULL;
}

/* finish() swaps the last live child into the freed place: walk backwards so none is skipped. */
static void finish_done(void) {
  for (int i = nchildren - 1; i >= 0; i--) maybe_finish(live[i]);
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    struct child *c = by_pid(pid);
    if (!c) continue;
    c->pid = 0;
    c->status = status;
  }
}

static void enforce_deadlines(void) {
  int64_t t = now_ms();
  for (int i = nchildren - 1; i >= 0; i--) {
    struct child *c = live[i];
    if (c->deadline_ms > t) continue;
    c->timed_out = 1;
    if (c->pid > 0) {
      kill(c->pid, SIGKILL);
      int status = 0;
      while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
      }
      c->status = status;
      c->pid = 0;
    }
    finish(c);
  }
}

static int poll_timeout(void) {
  int64_t t = now_ms(), next = -1;
  for (int i = 0; i < nchildren; i++) {
    int64_t left = live[i]->deadline_ms - t;
    if (left < 0) left = 0;
    if (next < 0 || left < next) next = left;
  }
  return next > 60000 || next < 0 ? 60000 : (int)next;
}

struct slot {
  struct child *c;
  int kind; /* 0 stdin, 1 stdout, 2 stderr */
};

static struct pollfd pfds[2 + 3 * MAX_CHILDREN];
static struct slot slots[2 + 3 * MAX_CHILDREN];

static void add_fd(int *n, int fd, short ev, struct child *c, int kind) {
  pfds[*n] = (struct pollfd){.fd = fd, .events = ev};
  slots[*n] = (struct slot){.c = c, .kind = kind};
  (*n)++;
}

static int build_pollset(int sfd, int reading) {
  int n = 0;
  add_fd(&n, sfd, POLLIN, NULL, -1);
  if (reading) add_fd(&n, 0, POLLIN, NULL, -2);
  for (int i = 0; i < nchildren; i++) {
    struct child *c = live[i];
    if (c->in_fd >= 0) add_fd(&n, c->in_fd, POLLOUT, c, 0);
    if (c->out_fd >= 0) add_fd(&n, c->out_fd, POLLIN, c, 1);
    if (c->err_fd >= 0) add_fd(&n, c->err_fd, POLLIN, c, 2);
  }
  return n;
}

static void serve_ready(int n, int sfd, int *reading) {
  for (int i = 0; i < n; i++) {
    if (pfds[i].revents == 0) continue;
    struct slot s = slots[i];
    if (s.kind == -1) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
      }
      reap();
    } else if (s.kind == -2) {
      if (read_requests() != 0) *reading = 0;
    } else if (s.c->used) {
      if (s.kind == 0) pump_input(s.c);
      else pump_output(s.c, s.kind == 1 ? &s.c->out_fd : &s.c->err_fd, s.kind == 1 ? T_STDOUT : T_STDERR);
    }
  }
}

int main(void) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  sigemptyset(&reset_in_child);
  for (int s = 1; s < NSIG; s++) {
    struct sigaction old;
    if (sigaction(s, NULL, &old) == 0 && old.sa_handler == SIG_IGN) sigaddset(&reset_in_child, s);
  }
  sigaddset(&reset_in_child, SIGPIPE);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    perror("netplumb-spawner: signalfd");
    return 1;
  }
  uint32_t version = PROTOCOL_VERSION;
  reply(0, T_HELLO, &version, 4);
  int reading = 1;
  while (reading || nchildren > 0) {
    int n = build_pollset(sfd, reading);
    int r = poll(pfds, (nfds_t)n, poll_timeout());
    if (r < 0 && errno != EINTR) {
      perror("netplumb-spawner: poll");
      return 1;
    }
    /* Children are reaped when SIGCHLD says so (serve_ready), not with a waitpid per wake. */
    if (r > 0) serve_ready(n, sfd, &reading);
    finish_done();
    enforce_deadlines();
  }
  return 0;
}
