#include "pg_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

// initdb refuses password authentication without a superuser password; nobody logs in
// with it, the fixture itself uses the trusted Unix socket.
constexpr std::string_view kSuperuserPassword = "sluice-test-superuser-pw";

// Runs only if this process dies holding the other end of its socket: it then shuts the
// last postmaster it was told about down and removes the cluster directory. The orphaned
// postmaster may stay a zombie for a while (not every init reaps promptly), so "gone"
// means no /proc entry or state Z.
constexpr const char* kWatchdogScript = R"(trap '' INT TERM HUP
alive() { s=; { read -r _ _ s _ < "/proc/$1/stat"; } 2>/dev/null; [ -n "$s" ] && [ "$s" != Z ]; }
pid=
while read -r line; do pid=$line; done
if [ -n "$pid" ]; then
  kill -QUIT "$pid" 2>/dev/null
  i=0
  while alive "$pid" && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null
fi
i=0
until rm -rf -- "$1" 2>/dev/null || [ "$i" -ge 50 ]; do sleep 0.1; i=$((i + 1)); done)";

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

int wait_for(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string read_all(int fd) {
  std::string content;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n > 0) {
      content.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return content;
    }
  }
}

// Empty if the file cannot be read: callers use it for diagnostics and optional output.
std::string read_file(const std::filesystem::path& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string content = read_all(fd);
  close(fd);
  return content;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// A bind to port 0 makes the kernel pick a port nobody holds right now; someone may take
// it before the postmaster binds, which start_server() answers with another attempt.
std::uint16_t pick_free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    throw_errno("binding a probe socket on 127.0.0.1");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// psqlODBC 13 reads a value up to the next ';'. Only the password may be wrapped in braces
// (with '}' doubled); braces around any other value are kept as part of it.
std::string odbc_password(std::string_view value) {
  if (value.find_first_of(";{}") == std::string_view::npos) return std::string(value);
  std::string quoted = "{";
  for (char c : value) {
    quoted += c;
    if (c == '}') quoted += '}';
  }
  return quoted + "}";
}

std::string odbc_plain(std::string_view key, std::string_view value) {
  if (value.find(';') != std::string_view::npos) {
    throw std::invalid_argument("PgCluster: psqlODBC cannot take a ';' in " + std::string(key));
  }
  return std::string(value);
}

}  // namespace

PgCluster::PgCluster(std::chrono::seconds startup_timeout) : owner_(getpid()) {
  const char* bindir = std::getenv("SLUICE_PG_BINDIR");
  // Absolute, because the children run with the cluster directory as working directory.
  bindir_ = std::filesystem::absolute(bindir && *bindir ? bindir : "/usr/lib/postgresql/15/bin");
  if (geteuid() == 0) {
    // Looked up here because getpwnam is not allowed between fork() and exec().
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> buffer(16384);
    if (getpwnam_r("postgres", &entry, buffer.data(), buffer.size(), &found) != 0 || !found) {
      throw std::runtime_error(
          "running as root, but there is no `postgres` OS user to run "
          "PostgreSQL as (initdb and postgres refuse root)");
    }
    run_as_ = {true, found->pw_uid, found->pw_gid};
  }

  const char* tmpdir = std::getenv("TMPDIR");
  std::filesystem::path base = tmpdir && *tmpdir ? tmpdir : "/tmp";
  // The Unix socket lives in this directory and socket paths are limited to 107 bytes.
  if (base.native().size() > 64) base = "/tmp";
  std::string dir = (base / "sluice-pg-XXXXXX").native();
  if (!mkdtemp(dir.data())) throw_errno("mkdtemp " + dir);
  dir_ = dir;
  try {
    if (run_as_.switch_user && chown(dir.c_str(), run_as_.uid, run_as_.gid) != 0) {
      throw_errno("chown " + dir);
    }
    start_watchdog();
    init_db();
    start_server(startup_timeout);
    run_psql("postgres",
             "CREATE ROLE sluice LOGIN SUPERUSER PASSWORD 'sluice-test-pw';\n"
             "CREATE DATABASE sluice_test OWNER sluice;\n");
  } catch (...) {
    stop();
    throw;
  }
}

PgCluster::~PgCluster() {
  stop();
}

PgCluster& PgCluster::shared() {
  // A function-local static is initialised once even under concurrent first calls and is
  // destroyed at normal exit, whether or not tests failed. A failed start is kept so later
  // tests fail at once instead of each waiting for another start to time out.
  struct Instance {
    std::unique_ptr<PgCluster> cluster;
    std::exception_ptr failure;
  };
  static Instance instance = [] {
    Instance result;
    try {
      result.cluster = std::make_unique<PgCluster>();
    } catch (...) {
      result.failure = std::current_exception();
    }
    return result;
  }();
  if (instance.failure) std::rethrow_exception(instance.failure);
  return *instance.cluster;
}

std::string PgCluster::odbc_connection_string(std::string_view database, std::string_view user,
                                              std::string_view password) const {
  return "Driver={PostgreSQL Unicode};Server=" + host() + ";Port=" + std::to_string(port_) +
         ";Database=" + odbc_plain("Database", database) + ";Uid=" + odbc_plain("Uid", user) +
         ";Pwd=" + odbc_password(password) + ";";
}

std::string PgCluster::url(std::string_view database, std::string_view user,
                           std::string_view password) const {
  return "postgresql://" + std::string(user) + ":" + std::string(password) + "@" + host() + ":" +
         std::to_string(port_) + "/" + std::string(database) + "?sslmode=disable";
}

std::string PgCluster::psql(std::string_view sql) const {
  return run_psql("sluice_test", sql);
}

void PgCluster::stop() noexcept {
  // A forked child (a gtest death test, say) that exits normally runs our destructor as
  // well; only the process that started the cluster may take it down.
  if (getpid() != owner_) return;
  if (postmaster_ > 0) {
    kill(postmaster_, SIGQUIT);  // immediate shutdown: backends go too, no checkpoint
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 200 && done == 0; ++i) {
      done = waitpid(postmaster_, &status, WNOHANG);
      if (done == 0) std::this_thread::sleep_for(50ms);
    }
    if (done == 0) {
      kill(postmaster_, SIGKILL);
      wait_for(postmaster_);
    }
    postmaster_ = -1;
  }
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
  }
  // Only now: the watchdog acts when its socket closes, which killing it does not cause.
  if (watchdog_ > 0) {
    kill(watchdog_, SIGKILL);
    wait_for(watchdog_);
    watchdog_ = -1;
  }
  if (watchdog_fd_ >= 0) {
    close(watchdog_fd_);
    watchdog_fd_ = -1;
  }
}

std::string PgCluster::bin(std::string_view program) const {
  return (bindir_ / program).native();
}

pid_t PgCluster::spawn(const std::vector<std::string>& args, int stdin_fd, int out_fd,
                       bool short_lived) const {
  // Everything the child touches is prepared before fork(): in a multithreaded process the
  // child may only make async-signal-safe calls until exec.
  std::vector<char*> argv;
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  // PG* variables of the test environment (PGOPTIONS, PGSERVICE, ...) would leak into
  // psql and the server.
  std::vector<char*> envp;
  for (char** var = environ; *var; ++var) {
    if (std::string_view(*var).substr(0, 2) != "PG") envp.push_back(*var);
  }
  envp.push_back(nullptr);
  const std::string cwd = dir_.native();
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) throw_errno("open /dev/null");
  const int in = stdin_fd >= 0 ? stdin_fd : devnull;
  const RunAs as = run_as_;
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    if (dup2(in, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) _exit(126);
    // Sockets and pipes the test process opened without O_CLOEXEC must not be held open
    // by a postmaster that outlives them.
    close_range(3, ~0U, 0);
    if (as.switch_user &&
        (setgroups(1, &as.gid) != 0 || setgid(as.gid) != 0 || setuid(as.uid) != 0)) {
      constexpr std::string_view msg = "sluice PgCluster: cannot switch to the postgres user\n";
      (void)!write(2, msg.data(), msg.size());
      _exit(126);
    }
    // After setuid(), which clears the parent-death signal. Only for children that the
    // forking thread waits for: the signal fires when that thread, not the process, ends.
    // An orphaned initdb would otherwise keep writing into the directory being removed.
    if (short_lived && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)) _exit(126);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    constexpr std::string_view msg = "sluice PgCluster: execve failed for ";
    (void)!write(2, msg.data(), msg.size());
    (void)!write(2, argv[0], std::string_view(argv[0]).size());
    (void)!write(2, "\n", 1);
    _exit(127);
  }
  int saved = errno;
  close(devnull);
  errno = saved;
  if (pid < 0) throw_errno("fork");
  return pid;
}

std::pair<int, std::string> PgCluster::run(const std::vector<std::string>& args) const {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  pid_t pid;
  try {
    pid = spawn(args, -1, fds[1], true);
  } catch (...) {
    close(fds[0]);
    close(fds[1]);
    throw;
  }
  close(fds[1]);
  std::string output = read_all(fds[0]);
  close(fds[0]);
  return {wait_for(pid), std::move(output)};
}

std::string PgCluster::run_psql(std::string_view database, std::string_view sql) const {
  // A script file (-f) runs statement by statement; -c would put them all in one implicit
  // transaction, where CREATE DATABASE and VACUUM are refused. -o keeps result rows apart
  // from notices and errors, which arrive on the captured stderr.
  std::string script = (dir_ / "query-XXXXXX").native();
  int fd = mkstemp(script.data());
  if (fd < 0) throw_errno("mkstemp " + script);
  close(fd);
  const std::string result = script + ".out";
  write_owned_file(script, sql);
  auto [status, messages] = run({bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                                 dir_.native(), "-p", std::to_string(port_), "-U", "postgres", "-d",
                                 std::string(database), "-f", script, "-o", result});
  std::string rows = read_file(result);
  std::error_code ignored;
  std::filesystem::remove(script, ignored);
  std::filesystem::remove(result, ignored);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("psql failed (" + describe(status) + ") running:\n" +
                             std::string(sql) + "\n" + messages);
  }
  return rows;
}

void PgCluster::start_watchdog() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair");
  watchdog_fd_ = fds[1];
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  try {
    if (devnull < 0) throw_errno("open /dev/null");
    watchdog_ = spawn({"/bin/sh", "-c", kWatchdogScript, "sluice-pg-watchdog", dir_.native()},
                      fds[0], devnull, false);
  } catch (...) {
    close(fds[0]);
    if (devnull >= 0) close(devnull);
    throw;
  }
  close(fds[0]);
  close(devnull);
}

void PgCluster::init_db() const {
  const auto pwfile = dir_ / "superuser-password";
  write_owned_file(pwfile, kSuperuserPassword);
  std::string failures;
  // C.UTF-8 sorts like C but classifies non-ASCII characters; not every system has it.
  for (std::string locale : {"C.UTF-8", "C"}) {
    auto [status, output] =
        run({bin("initdb"), "-D", (dir_ / "data").native(), "-U", "postgres", "--auth-local=trust",
             "--auth-host=scram-sha-256", "--pwfile=" + pwfile.native(), "--encoding=UTF8",
             "--locale=" + locale, "--no-sync", "--no-instructions"});
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      std::error_code ignored;
      std::filesystem::remove(pwfile, ignored);
      return;
    }
    failures += "initdb --locale=" + locale + " failed (" + describe(status) + "):\n" + output;
  }
  throw std::runtime_error(failures);
}

void PgCluster::start_server(std::chrono::seconds timeout) {
  const std::string log = (dir_ / "postgres.log").native();
  for (int attempt = 1;; ++attempt) {
    port_ = pick_free_port();
    int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) throw_errno("open " + log);
    try {
      postmaster_ = spawn(
          {bin("postgres"), "-D", (dir_ / "data").native(), "-p", std::to_string(port_), "-k",
           dir_.native(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
           "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"},
          -1, log_fd, false);
    } catch (...) {
      close(log_fd);
      throw;
    }
    close(log_fd);
    const std::string line = std::to_string(postmaster_) + "\n";
    send(watchdog_fd_, line.data(), line.size(), MSG_NOSIGNAL);

    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(postmaster_, &status, WNOHANG) == postmaster_) {
        exited = true;
        postmaster_ = -1;
        break;
      }
      auto [ready, ignored] =
          run({bin("pg_isready"), "-q", "-h", host(), "-p", std::to_string(port_), "-U", "postgres",
               "-d", "postgres", "-t", "1"});
      if (WIFEXITED(ready) && WEXITSTATUS(ready) == 0) return;
      std::this_thread::sleep_for(100ms);
    }
    if (!exited) {
      throw std::runtime_error("PostgreSQL did not accept connections on " + host() + ":" +
                               std::to_string(port_) + " within " +
                               std::to_string(timeout.count()) + " s; server log:\n" + log_tail());
    }
    // Most likely the port was taken in the meantime; anything else fails again quickly.
    if (attempt == 3) {
      throw std::runtime_error("PostgreSQL exited during startup; server log:\n" + log_tail());
    }
  }
}

void PgCluster::write_owned_file(const std::filesystem::path& path,
                                 std::string_view content) const {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("open " + path.native());
  bool ok = !run_as_.switch_user || fchown(fd, run_as_.uid, run_as_.gid) == 0;
  for (std::size_t done = 0; ok && done < content.size();) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno != EINTR) ok = false;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  int saved = errno;
  close(fd);
  errno = saved;
  if (!ok) throw_errno("write " + path.native());
}

std::string PgCluster::log_tail() const {
  std::string log = read_file(dir_ / "postgres.log");
  constexpr std::size_t kTail = 4000;
  return log.size() > kTail ? log.substr(log.size() - kTail) : log;
}

}  // namespace sluice::test
