/*
 * The libmosquitto baseline for the MQTTUplink benchmark: publishes N messages of one reading each with
 * QoS 1 and waits until the broker has acknowledged all of them.
 *
 *   cc -O2 -o mosquitto-reference Benchmarks/MosquittoReference/main.c -lmosquitto
 *   ./mosquitto-reference HOST PORT [N]
 *
 * Every payload is a one-observation ReadingsMessage, as MQTTUplink would send it with readingsPerMessage 1,
 * so the comparison is per reading. libmosquitto queues all N publishes and keeps 20 of them in flight
 * (its default send maximum, like MQTTUplink's maximumInFlight).
 */
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int connected = 0;
static long acknowledged = 0;

static void on_connect(struct mosquitto *mosq, void *userdata, int rc, int flags, const mosquitto_property *props) {
    (void)mosq; (void)userdata; (void)flags; (void)props;
    pthread_mutex_lock(&lock);
    connected = rc == 0 ? 1 : -rc;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid, int reason, const mosquitto_property *props) {
    (void)mosq; (void)userdata; (void)mid; (void)reason; (void)props;
    pthread_mutex_lock(&lock);
    acknowledged++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HOST PORT [N]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    long count = argc > 3 ? atol(argv[3]) : 100000;

    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "kiezbox-bench-c-%d", (int)getpid());
    struct mosquitto *mosq = mosquitto_new(id, true, NULL);
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set(mosq, on_connect);
    mosquitto_publish_v5_callback_set(mosq, on_publish);
    if (mosquitto_connect(mosq, host, port, 30) != MOSQ_ERR_SUCCESS || mosquitto_loop_start(mosq) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "cannot connect to %s:%d\n", host, port);
        return 1;
    }
    pthread_mutex_lock(&lock);
    while (connected == 0) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    if (connected < 0) {
        fprintf(stderr, "connection refused: %d\n", -connected);
        return 1;
    }

    const char *topic = "kiezbox/v1/bench/box-c/readings";
    char payload[512];
    double start = now();
    for (long i = 1; i <= count; i++) {
        int length = snprintf(payload, sizeof payload,
            "{\"box\":\"box-c\",\"district\":\"bench\",\"observations\":[{\"id\":\"bench-store:%ld\","
            "\"phenomenonTime\":\"2026-09-21T12:26:40.000Z\",\"quality\":\"good\",\"quantity\":\"temperature\","
            "\"result\":%.1f,\"sensor\":\"climate\",\"unitOfMeasurement\":{\"definition\":\"https://ucum.org/ucum#Cel\","
            "\"name\":\"temperature\",\"symbol\":\"°C\"}}],\"version\":1}",
            i, 20.0 + (double)(i % 100) / 10.0);
        int rc = mosquitto_publish(mosq, NULL, topic, length, payload, 1, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "publish %ld failed: %s\n", i, mosquitto_strerror(rc));
            return 1;
        }
    }
    pthread_mutex_lock(&lock);
    while (acknowledged < count) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    double seconds = now() - start;

    printf("libmosquitto C: %ld readings in %ld messages of 1 (20 in flight) in %.3f s: %.0f readings/s, %.0f messages/s\n",
        count, count, seconds, (double)count / seconds, (double)count / seconds);
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    return 0;
}
