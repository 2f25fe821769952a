/*
 * sdnotify.h - systemd service readiness (Type=notify) without libsystemd.
 *
 * systemd passes NOTIFY_SOCKET (a unix datagram socket path, or "@name" for
 * the abstract namespace) to a Type=notify service; the service sends
 * newline-separated assignments such as "READY=1" or "STOPPING=1" as one
 * datagram. The protocol is declared stable by systemd (sd_notify(3)), so
 * this re-implements it in a few lines instead of linking libsystemd.
 *
 * `nokv serve` and `nokv coordinator` send READY=1 once recovery is done
 * and the listeners are bound, STATUS=... with what they serve, and
 * STOPPING=1 when a graceful shutdown begins.
 */
#ifndef NK_NET_SDNOTIFY_H
#define NK_NET_SDNOTIFY_H

/* Send `state` to $NOTIFY_SOCKET. Returns 1 when sent, 0 when the variable is
 * unset (not under systemd: nothing to do), -1 on an error (bad address,
 * send failed); errors are for the caller to log, never fatal. */
int nk_sd_notify(const char *state);

#endif /* NK_NET_SDNOTIFY_H */
