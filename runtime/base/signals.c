// signals.c: flag-setting handlers for the stop signals (signals.h).
#include "runtime/base/signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) {
    if (sig == SIGINT && g_signal == SIGINT) _exit(130);  // second Ctrl-C: stop now
    g_signal = sig;
}

void kd_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int kd_signals_pending(void) { return g_signal; }
