/* signals.c — SIGINT/SIGTERM for the whole program, on one thread.
 *
 * The signals are blocked before any other thread exists, so every thread
 * the libraries start later (OpenMP, oneDNN, Open MPI) inherits the block
 * and no computation is ever interrupted by a handler: a handler running
 * on a thread in the middle of a BLAS/JIT kernel corrupted the heap in
 * about one killed run in ten. One watcher thread takes the signals with
 * sigwait(). While a command has asked for a graceful stop (train), the
 * first signal sets its flag and a second one ends the process; otherwise
 * the signal gets its default action, as if nothing had been blocked.
 * Includes: cli.h. */
#define _POSIX_C_SOURCE 200809L /* sigset_t, sigwait, pthread_sigmask without -pthread (NO_OMP=1) */
#include "cli/cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

/* The program's one stop flag and whether a command polls it. */
static atomic_int stop_flag;
static atomic_int graceful;

static void die_by(int sig)
{
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig); /* not reached */
}

static void *watch(void *arg)
{
    sigset_t *set = arg;
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0) continue;
        if (atomic_load(&graceful) && atomic_load(&stop_flag) == 0) {
            atomic_store(&stop_flag, sig);
            static const char msg[] = "\ndeepercluster: stopping after this step (signal again to stop at once)\n";
            ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
            (void)w;
        } else {
            die_by(sig);
        }
    }
    return NULL;
}

void dc_cli_signals_start(void)
{
    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return;
    pthread_t t;
    if (pthread_create(&t, NULL, watch, &set) != 0) {
        pthread_sigmask(SIG_UNBLOCK, &set, NULL); /* no watcher: default actions */
        return;
    }
    pthread_detach(t);
}

atomic_int *dc_cli_stop_flag(void)
{
    atomic_store(&graceful, 1);
    return &stop_flag;
}
