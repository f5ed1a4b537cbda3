# shellcheck shell=bash
# Building gpio-sim out of tree (sourced, not run), shared by the kernel VM (Debian 12's kernel, built on the
# host) and the appliance VM (Debian 13's kernel, built inside its root filesystem).
#
# Debian builds neither CONFIG_GPIO_SIM nor the CONFIG_IRQ_SIM helper it needs, so both become one module,
# compiled from three files of the matching linux-source package.

# Extracts gpio-sim.c, gpiolib.h and irq_sim.c from a linux-source-X.Y .deb into TREE (drivers/…, kernel/…).
# Returns non-zero when one of them is missing.
gpio_sim_extract_sources() {
	local source_deb=$1 source_package=$2 tree=$3
	mkdir -p "$tree"
	# --occurrence stops tar once the three files are out, instead of decompressing the whole tree; the
	# writers upstream then see a closed pipe, so the pipeline's status says nothing: the files do.
	dpkg-deb --fsys-tarfile "$source_deb" 2>/dev/null | tar -xO "./usr/src/$source_package.tar.xz" 2>/dev/null |
		tar -xJ --occurrence=1 --strip-components=1 -C "$tree" \
			"$source_package/drivers/gpio/gpio-sim.c" \
			"$source_package/drivers/gpio/gpiolib.h" \
			"$source_package/kernel/irq/irq_sim.c" 2>/dev/null || true
	[[ -f $tree/drivers/gpio/gpio-sim.c && -f $tree/drivers/gpio/gpiolib.h && -f $tree/kernel/irq/irq_sim.c ]]
}

# The irq_sim fix: irq_sim.c is built-in code that calls irq_to_desc(), which modules may not use.
# generic_handle_domain_irq() (exported) looks the interrupt up in the domain and runs its flow handler,
# which is what the two replaced lines did. Its exports are dropped: the copy is private to gpio-sim.ko.
gpio_sim_patch_irq_sim() {
	local file=$1
	sed -i \
		-e '/^static void irq_sim_handle_irq(/,/^}/{' \
		-e '  /^[[:space:]]*int irqnum;$/d' \
		-e '  /irqnum = irq_find_mapping(work_ctx->domain, offset);/d' \
		-e '  s/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_domain_irq(work_ctx->domain, offset);/' \
		-e '}' \
		-e '/^EXPORT_SYMBOL_GPL(.*);$/d' \
		"$file"
	grep -q 'generic_handle_domain_irq(work_ctx->domain, offset);' "$file" && ! grep -q 'irq_to_desc' "$file"
}

# Lays out the module's sources and Kbuild in MODULE_DIR from an extracted TREE; `make -C <kernel build dir>
# M=MODULE_DIR modules` then builds gpio-sim.ko. Returns non-zero when irq_sim.c no longer matches the fix.
gpio_sim_assemble_module() {
	local tree=$1 module=$2
	mkdir -p "$module"
	# One module of two objects; the module is named gpio-sim, so the driver's object needs another name.
	cp "$tree/drivers/gpio/gpio-sim.c" "$module/gpio-sim-driver.c"
	cp "$tree/drivers/gpio/gpiolib.h" "$tree/kernel/irq/irq_sim.c" "$module/"
	gpio_sim_patch_irq_sim "$module/irq_sim.c" || return 1
	printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-driver.o irq_sim.o\n' >"$module/Kbuild"
}
