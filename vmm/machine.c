#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "cvmm/arch.h"
#include "cvmm/confine.h"
#include "cvmm/log.h"
#include "machine.h"
#include "machine_virtio.h"
#include "cvmm/serial.h"
#include "cvmm/vm.h"

#define MACHINE_EXIT_BAD_INPUT 2

struct machine_file {
	const uint8_t *data;
	size_t size;
};

struct machine {
	struct vm vm;
	struct arch_machine *arch;  /* boot plan and the arch's devices (UART, ...) */
	struct console con;       /* --serial: the UART's host side */
	struct console vcon;      /* --console: the virtio-console's host side */
	struct machine_virtio virtio;
	char *cmdline;       /* --cmdline plus what the virtio devices need */
	bool have_virtio;
};

/* Reads a whole file into memory of cvmm's own: a mapping would follow the
 * file, and a file changed under a running guest (a new kernel copied over
 * it, or --serial file= naming it) would fault cvmm or boot a mixed-up
 * kernel at the next restart. Opened without blocking, so a FIFO is refused
 * rather than waited on. Logs what is wrong and returns -errno. */
static int machine_read_file(const char *path, const char *what, struct machine_file *f)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), err = 0;

	if (fd < 0) {
		err = -errno;
		log_err("cannot open %s '%s': %s%s", what, path, strerror(-err),
			err == -ENOENT ? ": check the path" : err == -EACCES ? ": check its permissions" : "");
		return err;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		log_err("%s '%s' is %s: give the path of a regular file", what, path,
			S_ISREG(st.st_mode) ? "empty" : "not a regular file");
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf)
		err = -ENOMEM;
	while (!err && done < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			err = n < 0 ? -errno : -EIO;  /* shrunk while read */
		else
			done += (size_t)n;
	}
	close(fd);
	if (err) {
		free(buf);
		log_err("cannot read %s '%s': %s", what, path, strerror(-err));
		return err;
	}
	f->data = buf;
	f->size = done;
	return 0;
}

static void machine_free_file(struct machine_file *f)
{
	free((void *)f->data);
	f->data = NULL;
}

/* The UART as a console's device. */
static size_t machine_serial_input(void *dev, const uint8_t *buf, size_t len)
{
	return serial_input(dev, buf, len);
}

static size_t machine_serial_room(void *dev)
{
	return serial_rx_room(dev);
}

static void machine_serial_output(void *dev, int fd)
{
	serial_set_output(dev, fd);
}

/* The virtio-console as a console's device. */
static size_t machine_vcon_input(void *dev, const uint8_t *buf, size_t len)
{
	return vcon_dev_input(dev, buf, len);
}

static size_t machine_vcon_room(void *dev)
{
	return vcon_dev_room(dev);
}

static void machine_vcon_output(void *dev, int fd)
{
	vcon_dev_set_output(dev, fd);
}

/* Waits for the VM to stop, feeding console input and turning SIGINT and
 * SIGTERM into a clean stop. */
static void machine_loop(struct machine *m, int sig_fd)
{
	struct pollfd p[2 + 2 * CONSOLE_MAX_POLLFDS];

	while (vm_exit_reason(&m->vm) == VM_RUNNING) {
		unsigned n = 2, ncon;

		p[0] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = m->vm.stop_fd, .events = POLLIN };
		n += console_pollfds(&m->con, p + n);
		ncon = n;
		n += console_pollfds(&m->vcon, p + n);
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			vm_request_exit(&m->vm, VM_EXIT_ERROR, "poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) == sizeof(si))
				vm_request_exit_signal(&m->vm, (int)si.ssi_signo);
		}
		console_handle(&m->con, p + 2, ncon - 2);
		console_handle(&m->vcon, p + ncon, n - ncon);
	}
}

static void machine_report(struct machine *m)
{
	enum vm_exit why = vm_exit_reason(&m->vm);

	if (why == VM_EXIT_RESET || why == VM_EXIT_POWEROFF || why == VM_EXIT_SIGNAL)
		log_info("VM stopped: %s", m->vm.exit_detail);
	else
		log_err("VM stopped: %s", m->vm.exit_detail);
}

/* --on-reboot restart: the guest reset; with the vCPUs parked, every
 * device and the machine go back to power-on state, the kernel is loaded
 * again and the vCPUs run it. Host sides (sockets, taps, images, vhost-user
 * connections, consoles) stay. 0, or -errno with the VM stopped. */
static int machine_restart(struct machine *m, const struct machine_file *initrd, const struct cli_config *cfg,
			   const struct arch_virtio_info *vi)
{
	int err;

	log_info("%s: restarting the guest (--on-reboot restart)", m->vm.exit_detail);
	vm_wait_parked(&m->vm);
	machine_virtio_reset(&m->virtio);
	err = arch_machine_reset(m->arch, &m->vm, cfg, initrd->data, m->cmdline, vi);
	if (err) {
		log_err("cannot restart the guest: %s", strerror(-err));
		return err;
	}
	vm_resume(&m->vm);
	return 0;
}

/* From a set-up machine to its exit status. */
static int machine_boot_and_run(struct machine *m, const struct machine_file *initrd, const struct cli_config *cfg,
				int sig_fd)
{
	unsigned ndevs = m->virtio.ndevs + !!m->virtio.console;
	struct arch_virtio_info vi = {
		.nmmio = m->virtio.kind == VIRTIO_TRANSPORT_MMIO ? ndevs : 0,
		.npci = m->virtio.kind == VIRTIO_TRANSPORT_PCI ? ndevs : 0,
	};
	struct serial *uart;
	int restart_err = 0;

	if (arch_machine_load(m->arch, &m->vm, cfg, initrd->data, initrd->size, m->cmdline, &vi, m->con.out_fd) ||
	    machine_virtio_attach(&m->virtio, &m->vm))
		return 1;
	/* --dump-dtb: the device tree is written, the guest does not run. */
	if (cfg->dump_dtb)
		return 0;
	uart = arch_machine_uart(m->arch);
	if (uart) {
		struct console_sink sink = {
			.dev = uart, .input = machine_serial_input, .room = machine_serial_room,
			.set_output = machine_serial_output, .room_fd = uart->room_fd,
		};

		console_attach(&m->con, &sink, &m->vm);
	}
	if (m->virtio.console) {
		struct console_sink sink = {
			.dev = m->virtio.console, .input = machine_vcon_input, .room = machine_vcon_room,
			.set_output = machine_vcon_output, .room_fd = m->virtio.console->room_fd,
		};

		if (m->vcon.out_fd >= 0)
			vcon_dev_set_output(m->virtio.console, m->vcon.out_fd);
		console_attach(&m->vcon, &sink, &m->vm);
	}
	if (vm_start(&m->vm))
		return 1;
	/* Setup is over: the vCPUs and workers confined themselves as they
	 * started, now this thread. */
	if (confine_thread(cfg->reboot_restart ? CONFINE_ROLE_VMM_RESTART : CONFINE_ROLE_VMM)) {
		vm_stop(&m->vm, VM_EXIT_ERROR);
		return 1;
	}
	for (;;) {
		machine_loop(m, sig_fd);
		if (!cfg->reboot_restart || vm_exit_reason(&m->vm) != VM_EXIT_RESET)
			break;
		restart_err = machine_restart(m, initrd, cfg, &vi);
		if (restart_err)
			break;
	}
	vm_stop(&m->vm, VM_EXIT_ERROR);
	if (restart_err)
		return 1;
	machine_report(m);
	return vm_exit_status(&m->vm);
}

int machine_run(const struct cli_config *cfg, const struct timespec *start)
{
	struct vm_config vc = { .ncpus = cfg->cpus, .ram_size = cfg->mem_size, .shared = cfg->mem_shared,
				.hugepages = cfg->mem_hugepages, .prefault = cfg->mem_prefault,
				.reset_restarts = cfg->reboot_restart, .start = *start };
	struct machine_file kf = { 0 }, initrd = { 0 };
	struct machine *m;
	sigset_t sigs;
	int sig_fd = -1, status = MACHINE_EXIT_BAD_INPUT, err;

	m = calloc(1, sizeof(*m));
	if (!m)
		return 1;
	m->con.in_fd = m->con.out_fd = m->con.listen_fd = -1;
	m->vcon.in_fd = m->vcon.out_fd = m->vcon.listen_fd = -1;
	if (machine_read_file(cfg->kernel, "kernel", &kf) ||
	    (cfg->initramfs && machine_read_file(cfg->initramfs, "initramfs", &initrd)))
		goto out_files;
	if (machine_virtio_open(&m->virtio, cfg))
		goto out_files;
	m->have_virtio = true;
	/* A vhost-user back-end maps guest RAM from its memfd: private
	 * (copy-on-write) RAM would hide the guest's writes from it. */
	if (machine_virtio_shares_memory(&m->virtio) && !vc.shared) {
		vc.shared = true;
		log_info("guest memory is shared with the vhost-user back-ends (as with --memory shared=on)");
	}
	if (asprintf(&m->cmdline, "%s%s%s", cfg->cmdline, m->virtio.cmdline[0] ? " " : "", m->virtio.cmdline) < 0) {
		m->cmdline = NULL;
		goto out_files;
	}
	err = arch_machine_prepare(&m->arch, cfg, kf.data, kf.size, initrd.size, strlen(m->cmdline));
	if (err) {
		if (err != -EINVAL)
			status = 1;
		goto out_files;
	}
	/* Signals become events of the main loop; vCPU threads inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
	status = 1;
	if (sig_fd < 0) {
		log_err("signalfd: %s", strerror(errno));
		goto out_files;
	}
	/* The console comes after the VM, so that a host without KVM leaves
	 * no serial file behind. */
	if (vm_init(&m->vm, &vc))
		goto out_files;
	/* A console that cannot open is a path or socket the user named. */
	if (console_open(&m->con, cfg->serial, cfg->serial_path, "--serial") ||
	    console_open(&m->vcon, cfg->console, cfg->console_path, "--console"))
		status = MACHINE_EXIT_BAD_INPUT;
	else
		status = machine_boot_and_run(m, &initrd, cfg, sig_fd);
	vm_stop(&m->vm, VM_EXIT_ERROR);
	arch_machine_destroy(m->arch);
	m->arch = NULL;
	machine_virtio_destroy(&m->virtio);
	m->have_virtio = false;
	vm_destroy(&m->vm);
	console_close(&m->con);
	console_close(&m->vcon);
out_files:
	arch_machine_destroy(m->arch);
	if (m->have_virtio)
		machine_virtio_destroy(&m->virtio);
	free(m->cmdline);
	if (sig_fd >= 0)
		close(sig_fd);
	machine_free_file(&initrd);
	machine_free_file(&kf);
	free(m);
	return status;
}
