#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvmm/arch.h"
#include "cvmm/log.h"
#include "vcpu.h"
#include "cvmm/vm.h"

#define VM_MIB (1024 * 1024ULL)

static int vm_open_kvm(struct vm *vm)
{
	const struct arch_kvm_cap *caps;
	size_t ncaps;
	int ver;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = -errno;

		if (err == -ENOENT || err == -ENXIO || err == -ENODEV)
			log_err("/dev/kvm not found: %s", ARCH_KVM_MISSING_HINT);
		else if (err == -EACCES || err == -EPERM)
			log_err("no permission to open /dev/kvm: run as root or add your user to group kvm");
		else
			log_err("cannot open /dev/kvm: %s", strerror(-err));
		return err;
	}
	ver = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		log_err("/dev/kvm speaks KVM API %d, cvmm needs %d: use a newer kernel", ver, KVM_API_VERSION);
		return -ENOTSUP;
	}
	caps = arch_kvm_caps(&ncaps);
	for (size_t i = 0; i < ncaps; i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0) {
			log_err("this KVM lacks %s (capability %d), which cvmm needs: use a newer kernel",
				caps[i].name, caps[i].cap);
			return -ENOTSUP;
		}
	}
	return 0;
}

#define VM_HUGE_PAGE (2 * VM_MIB)

/* Maps guest RAM at a 2 MiB-aligned address: KVM maps a guest range with
 * large pages only where its host address has the same 2 MiB alignment as
 * its guest-physical one, and transparent huge pages need that alignment
 * too. Over-reserves by 2 MiB, then trims. fd < 0: anonymous memory. */
static void *vm_map_aligned(uint64_t size, int flags, int fd)
{
	uint64_t slack = VM_HUGE_PAGE;
	uint8_t *res, *start;

	res = mmap(NULL, size + slack, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	start = (uint8_t *)(((uintptr_t)res + slack - 1) & ~(uintptr_t)(slack - 1));
	if (mmap(start, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED | (fd < 0 ? MAP_ANONYMOUS : 0),
		 fd, 0) == MAP_FAILED) {
		int err = errno;

		munmap(res, size + slack);
		errno = err;
		return MAP_FAILED;
	}
	/* The reservation's head (maybe empty) and tail (never empty) go. */
	if (start > res)
		munmap(res, (size_t)(start - res));
	munmap(start + size, (size_t)(slack - (uint64_t)(start - res)));
	return start;
}

/* prefault=on: allocates every page of a RAM range now, writable (so KVM
 * can map it writable, in large pages where the host has huge pages, at the
 * guest's first read), instead of at the guest's first touch. */
static int vm_populate(void *base, uint64_t size)
{
	int err;

	if (madvise(base, size, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno == EINVAL) {
		/* Before Linux 5.14: one write a page, each keeping the byte. */
		for (uint64_t off = 0; off < size; off += 4096) {
			volatile uint8_t *b = (uint8_t *)base + off;

			*b = *b;
		}
		return 0;
	}
	err = -errno;
	log_err("--memory prefault=on: cannot allocate %llu MiB of guest memory: %s",
		(unsigned long long)(size / VM_MIB), strerror(-err));
	return err;
}

/* Guest RAM: private anonymous memory by default; a memfd where it must be
 * shared with vhost-user back-ends (shared=on) or come from hugetlbfs
 * (hugepages=on). Without hugetlb pages, RAM asks for transparent huge
 * pages, as QEMU does: fewer TLB misses, and far fewer nested-paging
 * faults, each of which costs an exit (and, under QEMU/TCG's emulated SVM,
 * risks its event-injection defect: docs/x86-machine.md). */
static int vm_add_ram(struct vm *vm, unsigned slot, uint64_t gpa, uint64_t size)
{
	struct gmem_region r = { .gpa = gpa, .size = size, .fd = -1 };
	struct kvm_userspace_memory_region kr;
	unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | (vm->cfg.hugepages ? MFD_HUGETLB : 0);
	int err;

	if (vm->cfg.shared || vm->cfg.hugepages) {
		r.fd = memfd_create("cvmm-ram", flags);
		if (r.fd < 0) {
			err = -errno;
			log_err("cannot create guest memory: memfd_create: %s%s", strerror(-err),
				vm->cfg.hugepages ? " (hugepages=on needs hugetlbfs support in the kernel)" : "");
			return err;
		}
		if (ftruncate(r.fd, (off_t)size) < 0) {
			err = -errno;
			log_err("cannot size guest memory to %llu MiB: %s", (unsigned long long)(size / VM_MIB),
				strerror(-err));
			goto fail;
		}
		/* vhost-user back-ends get this fd: one that truncated it would
		 * turn every guest access into a fault that ends the VM. */
		if (fcntl(r.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
			err = -errno;
			log_err("cannot seal guest memory against resizing: %s", strerror(-err));
			goto fail;
		}
	}
	r.map_base = vm_map_aligned(size, (vm->cfg.shared ? MAP_SHARED : MAP_PRIVATE) |
				    (vm->cfg.hugepages ? 0 : MAP_NORESERVE), r.fd);
	if (r.map_base == MAP_FAILED) {
		err = -errno;
		if (vm->cfg.hugepages)
			log_err("cannot map %llu MiB of guest memory in 2 MiB hugepages: %s: reserve more "
				"(echo N > /proc/sys/vm/nr_hugepages) or drop hugepages=on",
				(unsigned long long)(size / VM_MIB), strerror(-err));
		else
			log_err("cannot map %llu MiB of guest memory: %s: use a smaller --memory size=",
				(unsigned long long)(size / VM_MIB), strerror(-err));
		r.map_base = NULL;
		goto fail;
	}
	/* Advice only: a kernel without THP (or shmem THP disabled by the
	 * administrator) keeps 4 KiB pages. */
	if (!vm->cfg.hugepages && madvise(r.map_base, size, MADV_HUGEPAGE) < 0)
		log_debug("guest memory: no transparent huge pages: %s", strerror(errno));
	if (vm->cfg.prefault) {
		err = vm_populate(r.map_base, size);
		if (err)
			goto fail;
	}
	r.map_size = size;
	r.hva = r.map_base;
	kr = (struct kvm_userspace_memory_region){
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)r.hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0) {
		err = -errno;
		log_err("KVM_SET_USER_MEMORY_REGION (%llu MiB at %#llx) failed: %s",
			(unsigned long long)(size / VM_MIB), (unsigned long long)gpa, strerror(-err));
		goto fail;
	}
	err = gmem_add(&vm->mem, &r);
	if (!err)
		return 0;
	log_err("guest memory table: %s", strerror(-err));
fail:
	if (r.map_base)
		munmap(r.map_base, size);
	if (r.fd >= 0)
		close(r.fd);
	return err;
}

static int vm_create_machine(struct vm *vm)
{
	struct arch_ram_range r[2];
	unsigned n;
	int err;

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		err = -errno;
		log_err("KVM_CREATE_VM failed: %s", strerror(-err));
		return err;
	}
	err = arch_vm_setup(vm);
	if (err)
		return err;
	n = arch_ram_ranges(vm->cfg.ram_size, r);
	for (unsigned i = 0; i < n && !err; i++)
		err = vm_add_ram(vm, i, r[i].gpa, r[i].size);
	return err;
}

static int vm_create_vcpus(struct vm *vm)
{
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	int err;

	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && vm->cfg.ncpus > (unsigned)max) {
		log_err("--cpus boot=%u is more than this KVM allows (%d)", vm->cfg.ncpus, max);
		return -EINVAL;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0) {
		log_err("KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
		return -EIO;
	}
	vm->vcpus = calloc(vm->cfg.ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->cfg.ncpus; i++)
		vm->vcpus[i] = (struct vcpu){ .vm = vm, .fd = -1 };
	for (unsigned i = 0; i < vm->cfg.ncpus; i++) {
		err = vcpu_init(&vm->vcpus[i], vm, i);
		if (err)
			return err;
	}
	return arch_vm_vcpus_created(vm);
}

int vm_init(struct vm *vm, const struct vm_config *cfg)
{
	int err;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	vm->arch.gic_fd = vm->arch.its_fd = -1;
	vm->cfg = *cfg;
	gmem_init(&vm->mem);
	iobus_init(&vm->pio, "port");
	iobus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->exit_lock, NULL);
	pthread_cond_init(&vm->park_cond, NULL);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0) {
		err = -errno;
		log_err("eventfd: %s", strerror(-err));
		goto fail;
	}
	err = vcpu_signal_setup();
	if (!err)
		err = vm_open_kvm(vm);
	if (!err)
		err = vm_create_machine(vm);
	if (!err)
		err = vm_create_vcpus(vm);
	if (!err)
		return 0;
fail:
	vm_destroy(vm);
	return err;
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->cfg.ncpus; i++)
			vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	arch_vm_destroy(vm);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	gmem_destroy(&vm->mem);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	iobus_destroy(&vm->pio);
	iobus_destroy(&vm->mmio);
	pthread_mutex_destroy(&vm->exit_lock);
	pthread_cond_destroy(&vm->park_cond);
}

int vm_start(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg.ncpus; i++) {
		int err = vcpu_start(&vm->vcpus[i]);

		if (err) {
			vm_stop(vm, VM_EXIT_ERROR);
			return err;
		}
	}
	return 0;
}

void vm_stop(struct vm *vm, enum vm_exit exit_if_running)
{
	if (vm_exit_reason(vm) == VM_RUNNING)
		vm_request_exit(vm, exit_if_running, "stopped by the VMM");
	pthread_mutex_lock(&vm->exit_lock);
	vm->ending = true;
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->exit_lock);
	for (unsigned i = 0; i < vm->cfg.ncpus; i++)
		vcpu_join(&vm->vcpus[i]);
}

bool vm_vcpu_park(struct vm *vm)
{
	bool run_again;

	pthread_mutex_lock(&vm->exit_lock);
	if (!vm->cfg.reset_restarts || vm->exit != VM_EXIT_RESET || vm->ending) {
		pthread_mutex_unlock(&vm->exit_lock);
		return false;
	}
	vm->parked++;
	pthread_cond_broadcast(&vm->park_cond);
	while (vm->exit != VM_RUNNING && !vm->ending)
		pthread_cond_wait(&vm->park_cond, &vm->exit_lock);
	vm->parked--;
	run_again = !vm->ending;
	pthread_mutex_unlock(&vm->exit_lock);
	return run_again;
}

void vm_wait_parked(struct vm *vm)
{
	pthread_mutex_lock(&vm->exit_lock);
	while (vm->parked < vm->cfg.ncpus)
		pthread_cond_wait(&vm->park_cond, &vm->exit_lock);
	pthread_mutex_unlock(&vm->exit_lock);
}

void vm_resume(struct vm *vm)
{
	eventfd_t drained;

	pthread_mutex_lock(&vm->exit_lock);
	(void)eventfd_read(vm->stop_fd, &drained);
	for (unsigned i = 0; i < vm->cfg.ncpus; i++)
		__atomic_store_n(&vm->vcpus[i].run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	vm->exit_detail[0] = 0;
	__atomic_store_n(&vm->exit, VM_RUNNING, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->exit_lock);
}

static void vm_set_exit(struct vm *vm, enum vm_exit reason, int signo, const char *detail)
{
	bool first;

	pthread_mutex_lock(&vm->exit_lock);
	first = vm->exit == VM_RUNNING;
	if (first) {
		snprintf(vm->exit_detail, sizeof(vm->exit_detail), "%s", detail);
		vm->exit_signal = signo;
		__atomic_store_n(&vm->exit, reason, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&vm->exit_lock);
	if (!first)
		return;
	if (eventfd_write(vm->stop_fd, 1) < 0)
		log_err("cannot signal VM stop: %s", strerror(errno));
	for (unsigned i = 0; vm->vcpus && i < vm->cfg.ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

void vm_request_exit(struct vm *vm, enum vm_exit reason, const char *fmt, ...)
{
	char detail[sizeof(vm->exit_detail)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	vm_set_exit(vm, reason, 0, detail);
}

void vm_request_exit_signal(struct vm *vm, int signo)
{
	char detail[64];

	snprintf(detail, sizeof(detail), "stopped by SIG%s", sigabbrev_np(signo) ? sigabbrev_np(signo) : "?");
	vm_set_exit(vm, VM_EXIT_SIGNAL, signo, detail);
}

enum vm_exit vm_exit_reason(struct vm *vm)
{
	return __atomic_load_n(&vm->exit, __ATOMIC_ACQUIRE);
}

int vm_exit_status(struct vm *vm)
{
	switch (vm_exit_reason(vm)) {
	case VM_EXIT_RESET:
	case VM_EXIT_POWEROFF:
		return 0;
	case VM_EXIT_SIGNAL:
		return 128 + vm->exit_signal;
	case VM_RUNNING:
	case VM_EXIT_TRIPLE_FAULT:
	case VM_EXIT_ERROR:
		break;
	}
	return 1;
}

int vm_pio_register(struct vm *vm, uint16_t port, uint16_t len, iobus_fn fn, void *opaque)
{
	return iobus_register(&vm->pio, port, len, fn, opaque);
}

int vm_mmio_register(struct vm *vm, uint64_t addr, uint64_t len, iobus_fn fn, void *opaque)
{
	return iobus_register(&vm->mmio, addr, len, fn, opaque);
}

int vm_irq_line(struct vm *vm, unsigned gsi, bool level)
{
	struct kvm_irq_level irq = { .irq = arch_irq_line(gsi), .level = level };

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int vm_irqfd(struct vm *vm, int fd, unsigned gsi, int resample_fd)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };

	if (resample_fd >= 0) {
		irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irqfd.resamplefd = (uint32_t)resample_fd;
	}
	return ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int vm_irqfd_remove(struct vm *vm, int fd, unsigned gsi)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN };

	return ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			       .data = data };

	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, bool pio, int fd, bool add)
{
	struct kvm_ioeventfd io = { .addr = addr, .len = len, .fd = fd };

	if (pio)
		io.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (!add)
		io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int vm_map_readonly(struct vm *vm, unsigned slot, uint64_t gpa, void *hva, uint64_t size)
{
	struct kvm_userspace_memory_region kr = {
		.slot = slot, .flags = KVM_MEM_READONLY, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	long page = sysconf(_SC_PAGESIZE);

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0 || page <= 0 ||
	    (uint64_t)page > size)
		return -EOPNOTSUPP;
	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0 ? -errno : 0;
}

double vm_ms_since_start(const struct vm *vm)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - vm->cfg.start.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - vm->cfg.start.tv_nsec) / 1e6;
}
