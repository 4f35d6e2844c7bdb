// Throwaway certificates for the https tests, made at test time with the `openssl` CLI
// (scripts/deps.sh installs it) into a temp dir: a private CA and server certificates it
// signs. Nothing here is committed; every key lives for one test run (and 2 days at most).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function openssl(args, cwd) {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')}: ${e.stderr?.toString().trim() || e.message}`);
  }
}

// Makes a CA named `name` in `dir`; returns its certificate path and a `sign` function
// that issues a server certificate for the given subjectAltName entries
// (["DNS:localhost", "IP:127.0.0.1"]) and returns {key, cert} as PEM strings.
export function makeCa(dir, name) {
  const caKey = path.join(dir, `${name}.key`);
  const caCert = path.join(dir, `${name}.pem`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', caKey, '-out', caCert, '-days', '2',
           '-subj', `/CN=Pocket test CA ${name}`], dir);
  let serial = 1;
  return {
    caFile: caCert,
    sign(leaf, altNames) {
      const key = path.join(dir, `${leaf}.key`);
      const csr = path.join(dir, `${leaf}.csr`);
      const cert = path.join(dir, `${leaf}.pem`);
      const ext = path.join(dir, `${leaf}.ext`);
      fs.writeFileSync(ext, `subjectAltName=${altNames.join(',')}\nbasicConstraints=CA:FALSE\n` +
                            'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
      openssl(['req', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${leaf}`], dir);
      openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey,
               '-set_serial', String(++serial), '-days', '2', '-extfile', ext, '-out', cert], dir);
      return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
    },
  };
}
