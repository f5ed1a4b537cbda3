#ifndef KIEZBOX_CLINUXGPIO_SHIM_H
#define KIEZBOX_CLINUXGPIO_SHIM_H

// The Linux GPIO character device, uAPI v2 (Linux >= 5.10), for Swift: only the kernel UAPI header from
// linux-libc-dev, no libgpiod. Header-only, so nothing is linked and one binary runs on bookworm and trixie.
//
// Swift imports the structs, the enums (line flags, attribute and event ids) and the plain #defines of
// <linux/gpio.h>, but not the function-like _IOR/_IOWR macros the ioctl request numbers are built from, so
// each one is exported here. ioctl(2) is variadic, which Swift cannot call portably, so kz_gpio_ioctl is a
// typed wrapper that returns 0 (or the ioctl's result) on success and -errno on failure, like CI2C's.
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/gpio.h>

static inline unsigned long kz_gpio_get_chipinfo_ioctl(void) { return GPIO_GET_CHIPINFO_IOCTL; }
static inline unsigned long kz_gpio_v2_get_lineinfo_ioctl(void) { return GPIO_V2_GET_LINEINFO_IOCTL; }
static inline unsigned long kz_gpio_v2_get_line_ioctl(void) { return GPIO_V2_GET_LINE_IOCTL; }
static inline unsigned long kz_gpio_v2_line_set_config_ioctl(void) { return GPIO_V2_LINE_SET_CONFIG_IOCTL; }
static inline unsigned long kz_gpio_v2_line_get_values_ioctl(void) { return GPIO_V2_LINE_GET_VALUES_IOCTL; }
static inline unsigned long kz_gpio_v2_line_set_values_ioctl(void) { return GPIO_V2_LINE_SET_VALUES_IOCTL; }

/// ioctl(fd, request, argument): the result (>= 0) on success, -errno on failure.
static inline int kz_gpio_ioctl(int fd, unsigned long request, void *argument) {
    int result = ioctl(fd, request, argument);
    return result < 0 ? -errno : result;
}

#endif
