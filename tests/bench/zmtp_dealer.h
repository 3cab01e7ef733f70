/* zmtp_dealer.h - a lean ZeroMQ DEALER peer for load generators: ZMTP 3.0 by hand.
 *
 * bench_scale runs a thousand simulated workers in one thread. As libzmq DEALER sockets
 * they cost the bench more CPU than the coordinator it measures (libzmq's I/O thread,
 * its signalling, a few system calls per message), and on a small machine that CPU is
 * the coordinator's. This speaks the same protocol on a plain stream socket (ipc:// or
 * tcp://): the ZMTP 3.0 greeting with the NULL mechanism, a READY command naming the
 * socket type DEALER, then frames; a message goes out in one writev and a read takes
 * every message that has arrived. No CURVE, no heartbeats (a command from the peer is
 * skipped), no reconnection: a load generator, never a worker of the product.
 */
#ifndef RF_ZMTP_DEALER_H
#define RF_ZMTP_DEALER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct rf_zmtp rf_zmtp;

/* A frame of a received message: points into the connection's buffer, valid until the
 * next rf_zmtp_fill or rf_zmtp_next on that connection. */
typedef struct rf_zmtp_frame {
    const uint8_t *data;
    size_t len;
} rf_zmtp_frame;

/* Connects to endpoint ("ipc://PATH" or "tcp://IPV4:PORT") and completes the handshake
 * (blocking, up to timeout_ms). NULL with why filled on failure. */
rf_zmtp *rf_zmtp_connect(const char *endpoint, int timeout_ms, char *why, size_t why_cap);
/* The socket, for poll/epoll (readable: call rf_zmtp_fill). */
int rf_zmtp_fd(const rf_zmtp *self);
/* Sends one message of n frames in one system call (blocking until written). 0 or -1. */
int rf_zmtp_send(rf_zmtp *self, const struct iovec *frames, size_t n);
/* Reads whatever has arrived without blocking: bytes read, 0 when nothing was waiting,
 * -1 when the peer closed or sent something that is not ZMTP. */
long rf_zmtp_fill(rf_zmtp *self);
/* Takes the next whole message out of what was read: 1 with frames[0..*n) set (at most
 * max frames; further frames of that message are dropped), 0 when no whole message is
 * buffered. */
int rf_zmtp_next(rf_zmtp *self, rf_zmtp_frame *frames, size_t max, size_t *n);
/* Closes the connection and frees; safe on NULL. */
void rf_zmtp_close(rf_zmtp **self);

#endif
