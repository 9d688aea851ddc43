#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::test {

// A private, throwaway PostgreSQL 15 cluster for integration tests: its own directory
// under $TMPDIR (or /tmp), its own free TCP port on 127.0.0.1, nothing shared with a
// system cluster. It holds a login role `sluice` (SUPERUSER, password `sluice-test-pw`)
// and a database `sluice_test` owned by it; TCP logins need a password (scram-sha-256).
//
// Binaries come from $SLUICE_PG_BINDIR, else /usr/lib/postgresql/15/bin. initdb and
// postgres refuse to run as root, so when we are root they run as the `postgres` OS user.
//
// Cleanup: the destructor (or stop()) shuts the server down immediately and removes the
// directory. A small watchdog process also does both if this process dies without
// running destructors (abort, crash, SIGINT, SIGTERM, SIGKILL).
//
// Thread safety: shared() may be called concurrently. port(), host(),
// odbc_connection_string() and psql() may be called from any thread. stop() must not
// race with any other member.
class PgCluster {
 public:
  // Starts the cluster and blocks until it accepts TCP connections. Throws
  // std::runtime_error (with the server log tail, where there is one) on failure.
  explicit PgCluster(std::chrono::seconds startup_timeout = std::chrono::seconds{30});
  ~PgCluster();

  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // One cluster per process, started on first use and stopped at normal process exit.
  // If the start failed, every call rethrows that first failure without retrying.
  static PgCluster& shared();

  std::uint16_t port() const noexcept { return port_; }
  std::string host() const { return "127.0.0.1"; }

  // A psqlODBC connection string over TCP to 127.0.0.1:port(). The password is
  // brace-quoted when needed; a ';' in the database or user name cannot be expressed and
  // throws std::invalid_argument.
  std::string odbc_connection_string(std::string_view database = "sluice_test",
                                     std::string_view user = "sluice",
                                     std::string_view password = "sluice-test-pw") const;

  // The same login as a postgresql:// URL, for the native client (values used as given:
  // the defaults need no percent-encoding).
  std::string url(std::string_view database = "sluice_test", std::string_view user = "sluice",
                  std::string_view password = "sluice-test-pw") const;

  // Runs `sql` as a script (statement by statement, stopping at the first error) as the
  // superuser against `sluice_test`, over the cluster's Unix socket. Returns the result
  // rows unaligned and without headers: one row per line, columns separated by '|'.
  // Throws std::runtime_error carrying psql's messages on failure.
  std::string psql(std::string_view sql) const;

  // Shuts the server down (immediate mode: no checkpoint) and removes the directory.
  // Idempotent; the destructor calls it. Does nothing in a forked child process.
  void stop() noexcept;

 private:
  struct RunAs {
    bool switch_user = false;
    uid_t uid = 0;
    gid_t gid = 0;
  };

  std::string bin(std::string_view program) const;
  // Starts `args` (absolute program path first) as the cluster's OS user in a session of
  // its own, so a Ctrl-C meant for the test run does not reach it. stdin_fd < 0 means
  // /dev/null; out_fd receives stdout and stderr. A `short_lived` child is killed if the
  // calling thread dies first.
  pid_t spawn(const std::vector<std::string>& args, int stdin_fd, int out_fd,
              bool short_lived) const;
  // Runs `args` to completion and returns its wait status and combined output.
  std::pair<int, std::string> run(const std::vector<std::string>& args) const;
  std::string run_psql(std::string_view database, std::string_view sql) const;
  void start_watchdog();
  void init_db() const;
  void start_server(std::chrono::seconds timeout);
  void write_owned_file(const std::filesystem::path& path, std::string_view content) const;
  std::string log_tail() const;

  pid_t owner_;
  RunAs run_as_;
  std::filesystem::path bindir_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  pid_t postmaster_ = -1;
  pid_t watchdog_ = -1;
  int watchdog_fd_ = -1;
};

}  // namespace sluice::test
