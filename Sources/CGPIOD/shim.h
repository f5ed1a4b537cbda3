#ifndef KIEZBOX_CGPIOD_SHIM_H
#define KIEZBOX_CGPIOD_SHIM_H

// libgpiod 1.6 (Debian and Raspberry Pi OS bookworm). libgpiod 2.x is a different, incompatible API: a move to
// trixie needs a second backend behind the GPIOChip protocol.
#include <gpiod.h>

#endif
