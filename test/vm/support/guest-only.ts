// Global setup of the real-kernel suite: refuse to run anywhere but the hack/vm-e2e guest, since
// the tests create VFs, rebind PCI drivers and load modules on the kernel they run on.
export default function guestOnly(): void {
  if (process.env.NETPLUMB_VM_GUEST !== '1') {
    throw new Error(
      'test/vm/ runs inside the hack/vm-e2e guest, not on this machine: run `npm run test:vm` (or hack/vm-e2e)',
    );
  }
}
