import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeTempDir, runChecked } from './proc.js';

export interface TestCertificates {
  /** PEM of the throwaway CA: pass it as NODE_EXTRA_CA_CERTS. */
  caCert: string;
  /** PEM of the server certificate for localhost / 127.0.0.1 / ::1, signed by the CA. */
  cert: string;
  /** PEM of the server key. */
  key: string;
  dir: string;
  dispose(): void;
}

/** Makes a test CA and a server certificate (SAN localhost, 127.0.0.1, ::1) with openssl. */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = makeTempDir('onair-tls-');
  const p = (name: string): string => join(dir, name);
  const openssl = (args: string[]): Promise<Buffer> => runChecked('openssl', args, { cwd: dir, timeoutMs: 30_000 });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-keyout', p('ca.key'), '-out', p('ca.pem'), '-subj', '/CN=onair test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-sha256',
    '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(p('server.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    '',
  ].join('\n'));
  await openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-days', '2', '-sha256', '-extfile', p('server.ext'), '-out', p('server.pem')]);
  return {
    caCert: p('ca.pem'),
    cert: p('server.pem'),
    key: p('server.key'),
    dir,
    dispose: () => removeTempDir(dir),
  };
}
