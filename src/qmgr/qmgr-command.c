/* qmgr-command.c - delivery to "|command" alias destinations (Postfix
 * local(8) "EXTERNAL COMMAND DELIVERY").
 *
 * The command runs under /bin/sh -c with the given uid/gid (a fork from
 * the worker thread; the child makes only async-signal-safe calls until
 * execve: raw setgroups/setresgid/setresuid system calls, because glibc's
 * wrappers synchronise with threads the child no longer has).  stdin is
 * a socket pair carrying the prepended headers and the content (a send
 * timeout keeps a command that never reads from blocking the worker);
 * stdout and stderr go to a memfd read back afterwards for the first
 * output line.  cwd "/", its own process group (killed as a whole on
 * timeout), environment as local(8) sets it.
 *
 * Exit status (sysexits, as Postfix): 0 sent; EX_TEMPFAIL, death by a
 * signal and the time limit deferred; anything else bounced with the
 * command's first output line.
 */
#include "qmgr.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "mailbox.h"

#define COMMAND_OUTPUT_MAX 1024   /* bytes of output kept for the status text */
#define COMMAND_OUTPUT_CAP (64 * 1024)   /* output a command may write at all */

DeliveryKind
qmgr_command_status(int wait_status, gboolean timed_out, const char *command,
                    const char *output, const char **dsn, char **text)
{
  g_autofree char *line = NULL;
  const char *nl;
  int code;

  if (output != NULL) {
    while (*output == '\n' || *output == '\r')
      output++;
    nl = strpbrk(output, "\r\n");
    line = g_strndup(output, nl ? (gsize) (nl - output) : strlen(output));
  }
  if (timed_out) {
    *dsn = "4.3.0";
    *text = g_strdup_printf("Command time limit exceeded: \"%s\"", command);
    return DELIVERY_DEFER;
  }
  if (WIFSIGNALED(wait_status)) {
    *dsn = "4.3.0";
    *text = g_strdup_printf("Command killed by signal %d: \"%s\"", WTERMSIG(wait_status), command);
    return DELIVERY_DEFER;
  }
  code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : EX_SOFTWARE;
  if (code == 0) {
    *dsn = "2.0.0";
    *text = g_strdup_printf("delivered to command: %s", command);
    return DELIVERY_SENT;
  }
  *text = g_strdup_printf("Command died with status %d: \"%s\"%s%s", code, command,
                          line && *line ? ". Command output: " : "", line && *line ? line : "");
  if (code == EX_TEMPFAIL) {
    *dsn = "4.3.0";
    return DELIVERY_DEFER;
  }
  *dsn = code == EX_NOUSER ? "5.1.1" : code == EX_NOHOST ? "5.1.2" : "5.3.0";
  return DELIVERY_BOUNCE;
}

/* The child: identity, fds, signals, then /bin/sh.  Async-signal-safe only. */
static G_GNUC_NORETURN void
command_child(int in_fd, int out_fd, uid_t uid, gid_t gid, char *const argv[], char *const envp[])
{
  gid_t groups[1] = { gid };
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  sigset_t none;

  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
    _exit(EX_TEMPFAIL);
  syscall(SYS_close_range, 3U, ~0U, 0U);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  sigaction(SIGPIPE, &dfl, NULL);
  setsid();
  if (chdir("/") < 0)
    _exit(EX_TEMPFAIL);
  if (geteuid() == 0
      && (syscall(SYS_setgroups, 1L, groups) < 0
          || syscall(SYS_setresgid, (long) gid, (long) gid, (long) gid) < 0
          || syscall(SYS_setresuid, (long) uid, (long) uid, (long) uid) < 0))
    _exit(EX_TEMPFAIL);
  if (uid != 0 && (getuid() == 0 || geteuid() == 0))
    _exit(EX_TEMPFAIL);
  execve("/bin/sh", argv, envp);
  _exit(EX_TEMPFAIL);
}

/* Waits for pid until deadline (monotonic us); kills its group after. */
static int
command_wait(pid_t pid, gint64 deadline_us, gboolean *timed_out)
{
  guint ms = 1;
  int status = 0;

  *timed_out = FALSE;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);

    if (r == pid)
      return status;
    if (r < 0 && errno != EINTR)
      return W_EXITCODE(EX_TEMPFAIL, 0);
    if (!*timed_out && g_get_monotonic_time() >= deadline_us) {
      *timed_out = TRUE;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      ms = 1;
    }
    g_usleep(ms * 1000);
    ms = MIN(ms * 2, 50u);
  }
}

DeliveryKind
qmgr_command_deliver(const QmgrCommand *cmd, const MailboxMessage *msg, const char **dsn,
                     char **text)
{
  g_autoptr(GString) out = g_string_sized_new(1024);
  g_autoptr(GError) error = NULL;
  g_autofree char *output = NULL;
  const char *argv[] = { "sh", "-c", cmd->command, NULL };
  gint64 deadline = g_get_monotonic_time() + cmd->time_limit * G_USEC_PER_SEC;
  struct timeval tv = { .tv_sec = MAX(cmd->time_limit, 1) };
  gboolean timed_out;
  int sv[2], out_fd, status;
  ssize_t n;
  pid_t pid;

  /* The command's output goes to a sealed memory file of fixed size: a
   * runaway command gets write errors past COMMAND_OUTPUT_CAP instead of
   * filling memory. */
  out_fd = memfd_create("postern-command-output", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (out_fd >= 0 && (ftruncate(out_fd, COMMAND_OUTPUT_CAP) < 0
                      || fcntl(out_fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) < 0)) {
    close(out_fd);
    out_fd = -1;
  }
  if (out_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    *dsn = "4.3.0";
    *text = g_strdup_printf("cannot run command \"%s\": %s", cmd->command, g_strerror(errno));
    if (out_fd >= 0)
      close(out_fd);
    return DELIVERY_DEFER;
  }
  pid = fork();
  if (pid == 0)
    command_child(sv[1], out_fd, cmd->uid, cmd->gid, (char *const *) argv,
                  (char *const *) cmd->envp);
  close(sv[1]);
  if (pid < 0) {
    *dsn = "4.3.0";
    *text = g_strdup_printf("cannot run command \"%s\": fork: %s", cmd->command,
                            g_strerror(errno));
    close(sv[0]);
    close(out_fd);
    return DELIVERY_DEFER;
  }
  shutdown(sv[0], SHUT_RD);
  setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  mailbox_append_headers(out, msg);
  /* The command may take its time (up to command_time_limit): other
   * deliveries do not wait for it. */
  workpool_blocking_begin();
  /* A command that exits without reading all of its input (EPIPE) is
   * judged by its exit status alone, as Postfix does. */
  (void) mailbox_copy(sv[0], out, msg, FALSE, -1, NULL, &error);
  close(sv[0]);
  status = command_wait(pid, deadline, &timed_out);
  workpool_blocking_end();

  output = g_malloc0(COMMAND_OUTPUT_MAX + 1);
  n = pread(out_fd, output, COMMAND_OUTPUT_MAX, 0);
  output[MAX(n, 0)] = '\0';
  close(out_fd);
  return qmgr_command_status(status, timed_out, cmd->command, output, dsn, text);
}
