# Sourced by the guest scripts that measure the network (bench/guest/
# inproc_guest.sh, tests/nested-net-streams.sh), once the net device is up:
# the same interrupt placement under every VMM. Left alone, the guest puts
# the device's receive and transmit interrupts on vCPUs by its own vector
# bookkeeping, which comes out differently under each VMM, and a stream whose
# process shares a vCPU with the receive interrupt runs at half the speed of
# one that does not (docs/performance.md, "Where the guest's process runs").
# Receive interrupts go to vCPU 0, transmit interrupts to the last vCPU (on
# virtio-mmio the device's one interrupt to vCPU 0); sets last to that vCPU.
last=$(($(grep -c ^processor /proc/cpuinfo) - 1))
for irq in $(awk -F: '/virtio[0-9]*-input|virtio[0-9]*$/ { print $1 }' /proc/interrupts); do
    echo 1 >/proc/irq/$((irq))/smp_affinity
done
for irq in $(awk -F: '/virtio[0-9]*-output/ { print $1 }' /proc/interrupts); do
    printf '%x\n' $((1 << last)) >/proc/irq/$((irq))/smp_affinity
done
