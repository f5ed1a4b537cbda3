#ifndef KIEZBOX_CI2C_SHIM_H
#define KIEZBOX_CI2C_SHIM_H

// Linux i2c-dev for Swift: the kernel UAPI (linux-libc-dev) and libi2c (libi2c-dev, i2c-tools >= 4).
// libi2c-dev has no pkg-config file; the module map links "i2c".
#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/i2c-dev.h>  // I2C_SLAVE, I2C_FUNCS, I2C_RDWR, struct i2c_rdwr_ioctl_data
#include <linux/i2c.h>      // struct i2c_msg, I2C_M_RD, I2C_FUNC_*
#include <i2c/smbus.h>      // i2c_smbus_*: they return the result or -errno

// ioctl(2) is variadic, which Swift cannot call portably, so each request the bus needs gets a typed wrapper.
// Like libi2c's functions, every wrapper returns 0 (or a count) on success and -errno on failure, so Swift
// maps one convention only.

/// Selects the 7-bit address the following SMBus calls and read()/write() on `fd` talk to.
static inline int kz_i2c_select_address(int fd, uint16_t address) {
    return ioctl(fd, I2C_SLAVE, (unsigned long)address) < 0 ? -errno : 0;
}

/// Stores the adapter's I2C_FUNC_* bit mask in `*functionality`.
static inline int kz_i2c_functionality(int fd, unsigned long *functionality) {
    return ioctl(fd, I2C_FUNCS, functionality) < 0 ? -errno : 0;
}

/// Runs `count` messages as one combined transfer (repeated starts between them, one STOP at the end).
/// Returns the number of messages transferred.
static inline int kz_i2c_transfer(int fd, struct i2c_msg *messages, uint32_t count) {
    struct i2c_rdwr_ioctl_data transfer = { .msgs = messages, .nmsgs = count };
    int transferred = ioctl(fd, I2C_RDWR, &transfer);
    return transferred < 0 ? -errno : transferred;
}

#endif
