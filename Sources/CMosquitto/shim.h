#ifndef KIEZBOX_CMOSQUITTO_SHIM_H
#define KIEZBOX_CMOSQUITTO_SHIM_H

// libmosquitto 2.0 (Debian bookworm: libmosquitto-dev 2.0.11).
// Everything Swift cannot use directly from <mosquitto.h> / <mqtt_protocol.h> is wrapped here as a
// `static inline` kz_ function: function-like macros, bit-shift macros and C enum constants whose
// imported types are awkward to pass to the `int identifier` parameters of the property API.

#include <stdbool.h>
#include <stdint.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#if defined(__linux__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

// MARK: log levels (MOSQ_LOG_* are `(1<<n)` macros)

static inline int kz_log_level_error(void) { return MOSQ_LOG_ERR; }
static inline int kz_log_level_warning(void) { return MOSQ_LOG_WARNING; }

// MARK: TLS

/// The `cert_reqs` value of mosquitto_tls_opts_set() that makes the client verify the broker's
/// certificate (OpenSSL's SSL_VERIFY_PEER, documented in mosquitto.h as 1).
static inline int kz_tls_verify_peer(void) { return 1; }

// MARK: TCP

/// Asks the kernel to acknowledge received TCP data at once instead of delaying the ACK (Linux TCP_QUICKACK;
/// not sticky, so it is set again after every read). A broker that does not disable Nagle's algorithm (mosquitto's
/// default: `set_tcp_nodelay false`) holds back its next PUBACK until our ACK of the previous one arrives; with
/// delayed ACKs that costs ~40 ms whenever we wait for PUBACKs with nothing more to send. Returns 0 or -1.
static inline int kz_socket_acknowledge_quickly(int fd) {
#if defined(__linux__) && defined(TCP_QUICKACK)
    int on = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
#else
    (void)fd;
    return 0;
#endif
}

// MARK: MQTT 5 properties

/// Adds a Session Expiry Interval (0x11, seconds) to a CONNECT property list.
static inline int kz_property_add_session_expiry(mosquitto_property **properties, uint32_t seconds) {
    return mosquitto_property_add_int32(properties, MQTT_PROP_SESSION_EXPIRY_INTERVAL, seconds);
}

/// Adds a Message Expiry Interval (0x02, seconds) to a PUBLISH property list.
static inline int kz_property_add_message_expiry(mosquitto_property **properties, uint32_t seconds) {
    return mosquitto_property_add_int32(properties, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, seconds);
}

/// Reads the Message Expiry Interval of a received PUBLISH, if it has one.
static inline bool kz_property_read_message_expiry(const mosquitto_property *properties, uint32_t *seconds) {
    return mosquitto_property_read_int32(properties, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, seconds, false) != NULL;
}

#endif
