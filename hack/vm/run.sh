#!/usr/bin/env bash
# usage: hack/vm/run.sh [-C CWD] -- CMD [ARGS...]
# Boots the hack/vm-e2e guest once (QEMU TCG), runs CMD in CWD (default $PWD) as root on the
# host's userland (host / read-only + tmpfs overlay), streams its output to stdout and exits with
# its exit code, or 125 when the guest never reported one (panic, timeout, boot failure).
# The job dir ($VM_DIR/jobs/job.*) is shared read-write at its host path: CMD writes results there
# ($NP_JOB in its environment). Needs hack/vm/setup.sh to have run.
#
# Guest hardware, built so the suite sees what a node has:
# - an NVMe PF with PCI SR-IOV (4 VFs), behind a root port on a pxb-pcie host bridge that QEMU
#   puts on NUMA node 1 (the guest reads numa_node from ACPI _PXM);
# - an emulated Intel IOMMU (intel_iommu=on) so VFs get IOMMU groups and can bind to vfio-pci;
# - 2 vCPUs, 2 NUMA nodes of 1 GiB each; no network device (-nic none); SeaBIOS kept off the
#   serial console (etc/sercon-port 0) so the console carries only the guest's output.
# Env: VM_DIR, VM_TIMEOUT (s, default 1800), VM_KARGS (extra kernel args), VM_QEMU_EXTRA.
# no_timer_check: under TCG on a loaded host the guest kernel otherwise may panic with
# "timer doesn't work through Interrupt-remapped IO-APIC".
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
V=${VM_DIR:-$ROOT/.vm}
KV=$(cat "$V/KV")
CWD=$PWD
while [ $# -gt 0 ]; do case $1 in
  -C) CWD=$(realpath "$2"); shift 2 ;;
  --) shift; break ;;
  *) break ;;
esac; done
[ $# -gt 0 ] || { echo "usage: $0 [-C CWD] -- CMD [ARGS...]" >&2; exit 2; }
mkdir -p "$V/jobs"
JOB=$(mktemp -d "$V/jobs/job.XXXXXX")
{ printf 'export NP_JOB=%q\n' "$JOB"; printf '%q ' "$@"; echo; } > "$JOB/cmd.sh"
echo "$CWD" > "$JOB/cwd"
echo "$V/kernel/lib/modules" > "$JOB/modules"
echo "$JOB" > "$V/jobs/last"
rc=0
timeout --foreground -k 5 "${VM_TIMEOUT:-1800}" qemu-system-x86_64 \
  -machine q35,kernel-irqchip=split -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
  -object memory-backend-ram,id=mem0,size=1G -object memory-backend-ram,id=mem1,size=1G \
  -numa node,nodeid=0,cpus=0,memdev=mem0 -numa node,nodeid=1,cpus=1,memdev=mem1 \
  -device intel-iommu,intremap=on \
  -nographic -no-reboot -nic none \
  -fw_cfg name=etc/sercon-port,string=0 \
  -kernel "$V/vmlinux-$KV" -initrd "$V/initramfs.cpio.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 intel_iommu=on no_timer_check ${VM_KARGS:-} np_job=$JOB" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$JOB,mount_tag=job,security_model=none" \
  -device pxb-pcie,id=pxb1,bus_nr=0x80,numa_node=1,bus=pcie.0 \
  -device pcie-root-port,id=rp1,bus=pxb1,chassis=1,slot=1 \
  -device nvme-subsys,id=nvmesubsys0 \
  -device nvme,bus=rp1,serial=np-pf0,subsys=nvmesubsys0,sriov_max_vfs=4,sriov_vq_flexible=8,sriov_vi_flexible=4,max_ioqpairs=12,msix_qsize=9 \
  ${VM_QEMU_EXTRA:-} </dev/null 2> >(grep -v 'fw_cfg item names should be prefixed' >&2) || rc=$?
[ $rc -eq 124 ] && echo "vm-run: guest timed out after ${VM_TIMEOUT:-1800}s" >&2
if [ -f "$JOB/rc" ]; then exit "$(cat "$JOB/rc")"; fi
echo "vm-run: the guest did not report an exit code (qemu rc=$rc)" >&2
exit 125
