/* Running generated Python (HumanEval) with limits. The program is written
 * to a fresh temporary directory, which is also its working directory, and
 * run in its own process group under `python -I` (isolated: no user site,
 * no PYTHON* variables) with stdin/stdout/stderr on /dev/null and
 * RLIMIT_CPU, RLIMIT_AS (2 GiB), RLIMIT_FSIZE (16 MiB) and RLIMIT_NOFILE set;
 * the parent kills the whole group at the wall-clock timeout. This guards
 * against loops, memory bombs and stray files, not against a hostile
 * program: it is not a security sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eval/eval_tasks.h"
#include "util/error.h"
#include "util/timer.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child_exec(const char *dir, const char *python, int timeout_s) {
    setpgid(0, 0);
    if (chdir(dir) != 0) _exit(126);
    int null = open("/dev/null", O_RDWR);
    if (null < 0) _exit(126);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    struct rlimit cpu = {(rlim_t)timeout_s, (rlim_t)timeout_s + 1};
    struct rlimit as = {(rlim_t)2 << 30, (rlim_t)2 << 30};
    struct rlimit fsize = {(rlim_t)16 << 20, (rlim_t)16 << 20};
    struct rlimit nofile = {64, 64};
    setrlimit(RLIMIT_CPU, &cpu);
    setrlimit(RLIMIT_AS, &as);
    setrlimit(RLIMIT_FSIZE, &fsize);
    setrlimit(RLIMIT_NOFILE, &nofile);
    char *const argv[] = {(char *)python, "-I", "program.py", NULL};
    char *const envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", NULL};
    execve(python, argv, envp);
    _exit(127);
}

int zc_eval_run_python(const char *python, const char *program, size_t len, int timeout_s, bool *passed,
                       char *why, size_t why_cap) {
    *passed = false;
    snprintf(why, why_cap, "?");
    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/zipcache-humaneval-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return zc_error(ZC_ERR_IO, "%s: cannot create a temporary directory: %s", dir, strerror(errno));
    char file[1100];
    snprintf(file, sizeof file, "%s/program.py", dir);
    int rc = ZC_OK;
    FILE *f = fopen(file, "wb");
    if (!f || fwrite(program, 1, len, f) != len || fclose(f)) {
        if (f) fclose(f);
        rc = zc_error(ZC_ERR_IO, "%s: cannot write", file);
        goto cleanup;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = zc_error(ZC_ERR_IO, "fork: %s", strerror(errno));
        goto cleanup;
    }
    if (pid == 0) child_exec(dir, python, timeout_s);
    setpgid(pid, pid); /* also here, so the group exists before any kill */
    double t0 = zc_now();
    int status = 0;
    bool timed_out = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) {
            rc = zc_error(ZC_ERR_IO, "waitpid: %s", strerror(errno));
            break;
        }
        if (zc_now() - t0 > timeout_s) {
            timed_out = true;
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 2000000}; /* 2 ms */
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL); /* anything the program left running in its group */
    if (rc != ZC_OK) goto cleanup;
    if (timed_out)
        snprintf(why, why_cap, "timeout after %d s", timeout_s);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        rc = zc_error(ZC_ERR_IO, "%s: cannot execute", python);
    else if (WIFEXITED(status)) {
        *passed = WEXITSTATUS(status) == 0;
        snprintf(why, why_cap, "exit %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU) /* a busy loop meets RLIMIT_CPU first */
        snprintf(why, why_cap, "timeout: %d s of CPU time", timeout_s);
    else if (WIFSIGNALED(status))
        snprintf(why, why_cap, "signal %d", WTERMSIG(status));
cleanup:
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
