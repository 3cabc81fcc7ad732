/**
 * The scp baseline of the file benchmark: a private OpenSSH server (Debian's `openssh-server`)
 * on 127.0.0.1, with its own host key, client key and sshd_config in a temporary folder, and
 * `scp` of the benchmark's file to it. Nothing of the machine's own ssh setup is used: the
 * client runs with `-F /dev/null` (OpenSSH's built-in defaults) and a throwaway known-hosts file.
 * @module
 */
import { HOST, mbPerSecond, sleep, stopChild } from "../server/harness.ts";
import { type LineChild, run, runOk, spawnLines } from "./children.ts";
import { sha256File } from "./data.ts";

/** The sshd the benchmark runs: an absolute path, as sshd re-executes itself per connection. */
export const SSHD = "/usr/sbin/sshd";
/** Debian's sshd refuses to start without its privilege separation folder. */
const PRIVSEP_DIR = "/run/sshd";
/** The cipher chat uses on the wire (Noise_XX_25519_ChaChaPoly_SHA256). */
export const CHAT_CIPHER = "chacha20-poly1305@openssh.com";

/** One copy by scp. */
export interface ScpCopy {
  ms: number;
  mbPerSecond: number;
}

/** Why the scp figures cannot be measured on this machine, or undefined if they can. */
export async function scpMissing(): Promise<string | undefined> {
  if (!await exists(SSHD)) {
    return `${SSHD} does not exist (install the Debian package openssh-server: ` +
      "apt-get install -y openssh-server openssh-client)";
  }
  for (const tool of ["ssh", "scp", "ssh-keygen"]) {
    const found = await run("sh", ["-c", `command -v ${tool}`], 5000).catch(() => undefined);
    if (found?.code !== 0) return `${tool} is not on the PATH (package openssh-client)`;
  }
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A port nobody listens on right now (the kernel's pick, released at once). */
function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A private sshd on 127.0.0.1 and the client key it accepts. */
export class PrivateSshd {
  readonly dir: string;
  readonly port: number;
  readonly #sshd: LineChild;
  readonly #madePrivsepDir: boolean;

  private constructor(dir: string, port: number, sshd: LineChild, madePrivsepDir: boolean) {
    this.dir = dir;
    this.port = port;
    this.#sshd = sshd;
    this.#madePrivsepDir = madePrivsepDir;
  }

  /** Writes keys and an sshd_config into `dir`, starts sshd and waits until its port accepts. */
  static async start(dir: string): Promise<PrivateSshd> {
    await runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/host_key`]);
    await runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/client_key`]);
    await Deno.copyFile(`${dir}/client_key.pub`, `${dir}/authorized_keys`);
    const port = freePort();
    await Deno.writeTextFile(`${dir}/sshd_config`, sshdConfig(dir, port));
    let madePrivsepDir = false;
    if (!await exists(PRIVSEP_DIR)) {
      await Deno.mkdir(PRIVSEP_DIR, { mode: 0o755 });
      madePrivsepDir = true;
    }
    const sshd = spawnLines(SSHD, ["-D", "-e", "-f", `${dir}/sshd_config`]);
    const server = new PrivateSshd(dir, port, sshd, madePrivsepDir);
    try {
      await server.#waitForPort(10_000);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  async #waitForPort(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let exited = false;
    this.#sshd.child.status.then(() => exited = true);
    while (true) {
      try {
        (await Deno.connect({ hostname: HOST, port: this.port })).close();
        return;
      } catch { /* not yet */ }
      if (exited || performance.now() > deadline) {
        throw new Error(
          `sshd did not accept on port ${this.port}${exited ? " (it exited)" : ""}:\n` +
            this.#sshd.stderr.join("\n"),
        );
      }
      await sleep(50);
    }
  }

  /** The options every ssh and scp run gets: our key, our port, nothing of ~/.ssh. */
  #clientOptions(portFlag: "-p" | "-P", logLevel = "ERROR"): string[] {
    return [
      "-F",
      "/dev/null",
      "-i",
      `${this.dir}/client_key`,
      portFlag,
      String(this.port),
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      `LogLevel=${logLevel}`,
    ];
  }

  /**
   * What ssh negotiates with this sshd by default: the client->server cipher (the direction of
   * an upload) from `ssh -v`, and the OpenSSH version.
   */
  async negotiated(): Promise<{ cipher: string; version: string }> {
    const options = this.#clientOptions("-p", "DEBUG1"); // as -v
    const result = await run("ssh", [...options, HOST, "true"], 20_000);
    const cipher = result.stderr.map((line) => line.match(/kex: client->server cipher: (\S+)/))
      .find((match) => match)?.[1];
    if (result.code !== 0 || !cipher) {
      throw new Error(
        `ssh -v to the private sshd failed (exit ${result.code}):\n` +
          result.stderr.slice(-15).join("\n") + "\n--- sshd:\n" + this.#sshd.stderr.join("\n"),
      );
    }
    const version = (await run("ssh", ["-V"], 5000)).stderr.join(" ").trim();
    return { cipher, version };
  }

  /**
   * Copies `file` (`bytes` long, SHA-256 `sha256`) to a new path in the folder with scp, with
   * `-c cipher` if given; times the process from spawn to exit 0, then checks the copy.
   */
  async copy(file: string, bytes: number, sha256: string, cipher?: string): Promise<ScpCopy> {
    const target = `${this.dir}/copy-${crypto.randomUUID()}`;
    const args = ["-q", ...this.#clientOptions("-P"), ...(cipher ? ["-c", cipher] : [])];
    const start = performance.now();
    const result = await run("scp", [...args, file, `${HOST}:${target}`], 300_000);
    const ms = performance.now() - start;
    try {
      if (result.code !== 0) {
        throw new Error(
          `scp exited ${result.code}:\n${result.stderr.join("\n")}\n--- sshd:\n` +
            this.#sshd.stderr.join("\n"),
        );
      }
      const copied = await sha256File(target);
      if (copied.bytes !== bytes || copied.sha256 !== sha256) {
        throw new Error(`scp's copy differs: ${copied.bytes} bytes, SHA-256 ${copied.sha256}`);
      }
    } finally {
      await Deno.remove(target).catch(() => {});
    }
    return { ms, mbPerSecond: mbPerSecond(bytes, ms) };
  }

  /** Stops sshd (the process this benchmark started, by its PID) and undoes /run/sshd. */
  async stop(): Promise<void> {
    await stopChild(this.#sshd.child, 2000);
    if (this.#madePrivsepDir) await Deno.remove(PRIVSEP_DIR).catch(() => {});
  }
}

function sshdConfig(dir: string, port: number): string {
  return [
    `Port ${port}`,
    `ListenAddress ${HOST}`,
    `HostKey ${dir}/host_key`,
    `AuthorizedKeysFile ${dir}/authorized_keys`,
    `PidFile ${dir}/sshd.pid`,
    "StrictModes no",
    "UsePAM no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    // scp of OpenSSH 9 and later speaks SFTP by default
    "Subsystem sftp internal-sftp",
    "",
  ].join("\n");
}
