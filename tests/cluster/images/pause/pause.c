/* Minimal Kubernetes sandbox ("pause") process: sleeps forever, reaps zombies, exits on
 * SIGINT/SIGTERM. Built static with gcc so the image can be FROM scratch. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void sigdown(int signo) { (void)signo; _exit(0); }

static void sigreap(int signo) {
    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction down = {.sa_handler = sigdown};
    struct sigaction reap = {.sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGINT, &down, NULL);
    sigaction(SIGTERM, &down, NULL);
    sigaction(SIGCHLD, &reap, NULL);
    for (;;) {
        pause();
    }
    return 1;
}
