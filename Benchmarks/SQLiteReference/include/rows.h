// The benchmark's rows, computed the same way in C (reference) and Swift (StoreBench/BenchRows.swift):
// 8 sensors × 3 quantities, a reading every second, values that move like weather.
#ifndef KIEZBOX_BENCH_ROWS_H
#define KIEZBOX_BENCH_ROWS_H
#include <stdint.h>

static const char *const bench_sensors[8] = {"roof", "balcony", "yard", "street", "school", "garden", "corner", "park"};
static const char *const bench_quantities[3] = {"temperature", "relative_humidity", "pressure"};

struct bench_row {
    const char *sensor;
    const char *quantity;
    double value;
    int64_t measured_at;
};

static inline struct bench_row bench_row_at(long index) {
    struct bench_row row;
    row.sensor = bench_sensors[(index / 3) % 8];
    row.quantity = bench_quantities[index % 3];
    row.value = (double)(index % 1000) / 10.0 + 0.25;
    row.measured_at = 1790000000000LL + (int64_t)(index / 24) * 1000;
    return row;
}
#endif
