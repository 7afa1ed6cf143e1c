// A TCP port for a child process that must be told its port up front (`--metrics-address
// 127.0.0.1:<port>` does not report the one it bound for :0). The kernel picks one that is free
// now; a random pick in 20000-39999 could hit a port in use (32768 and up is also the ephemeral
// range every outgoing connection of the parallel test files takes its local port from).
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => {
        resolve(port);
      });
    });
  });
}
