/**
 * The offline GPU bundle (`deno task gpu-bundle`: experiments/bench/
 * gpu_bundle.ts and gpu_run.sh; README, On a GPU) runs the GPU check where
 * nothing is installed. The bundle is built into the repository's
 * `.gpu-bundle/`, the folder a GPU machine is given; then its `run.sh` runs
 * in a network namespace without network (`unshare -n`), with an empty
 * HOME, no `deno` on PATH and the Vulkan loader unpacked from the bundle's
 * Debian packages into a private folder, on this machine's software adapter
 * (llvmpipe) with small sizes: adapter details, the webgpu parity suite,
 * timed training steps of the shapes and MNIST networks on webgpu beside
 * wasm, and short shapes and shapes-paper trainings with their rank curves.
 *
 * Skipped with a visible SKIPPED line where the namespace cannot be made,
 * xz, tar or python3 is missing, Deno finds no WebGPU adapter, or the
 * bundle's Debian packages cannot be downloaded.
 */
import assert from "node:assert/strict";
import {
  existsSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { join } from "node:path";
import { ROOT } from "../testing/support/checkout.ts";
import { runCommand, runDeno } from "../testing/support/processes.ts";
import { tempDir } from "../testing/support/temp_files.ts";

const BUNDLE = join(ROOT, ".gpu-bundle");
/** The size the GPU machines take with the working tree, less its room. */
const MAX_MIB = 56;

/** Small sizes: llvmpipe takes seconds per step. */
const OFFLINE_ARGS = [
  "--allow-software",
  "--steps",
  "4",
  "--paper-steps",
  "2",
  ...["train", "paper"].flatMap((part) =>
    [
      "data.train=256",
      "data.val=64",
      "eval.size=32",
      "train.batchSize=8",
    ].flatMap((s) => [part === "train" ? "--set" : "--paper-set", s])
  ),
  "--bench-arg=--smoke",
  "--bench-arg=--cases=shapes-ae,mnist-irmae-l8",
  // Generous limits: the software adapter on shared cores.
  "--budget",
  "1500",
  "--limit",
  "adapter=60",
  "--limit",
  "parity=600",
  "--limit",
  "bench=300",
  "--limit",
  "train=300",
  "--limit",
  "paper=300",
];

async function why(): Promise<string | undefined> {
  const ns = await runCommand("unshare", ["-n", "true"]).catch(() => null);
  if (ns === null || ns.code !== 0) {
    return "cannot make a network namespace (unshare -n)";
  }
  for (const tool of ["xz", "tar", "python3"]) {
    const r = await runCommand(tool, ["--version"]).catch(() => null);
    if (r === null || r.code !== 0) return `${tool} is not installed`;
  }
  const adapter = await (globalThis.navigator as {
    gpu?: { requestAdapter(): Promise<unknown> };
  }).gpu?.requestAdapter().catch(() => null);
  if (adapter === undefined || adapter === null) {
    return "Deno finds no WebGPU adapter";
  }
  const build = await runDeno(
    ["run", "-A", "experiments/bench/gpu_bundle.ts", "--out", BUNDLE],
    { cwd: ROOT },
  );
  if (build.code !== 0 && /apt-get .*failed/.test(build.stderr)) {
    return `cannot download the Debian packages (${build.stderr.trim()})`;
  }
  assert.equal(build.code, 0, `gpu-bundle failed:\n${build.stderr}`);
  return undefined;
}

const skip = await why();
if (skip !== undefined) {
  console.log(`SKIPPED tests/gpu_bundle_test.ts: ${skip}`);
}

/**
 * A folder of links to every program on this machine's PATH but `left`,
 * `deno` always among those left out.
 */
function pathWithout(left: string[]): string {
  const bin = tempDir("irmae-gpu-path-");
  const out = new Set(["deno", ...left]);
  const seen = new Set<string>();
  for (
    const dir of [
      "/usr/local/sbin",
      "/usr/local/bin",
      "/usr/sbin",
      "/usr/bin",
      "/sbin",
      "/bin",
    ]
  ) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (out.has(name) || seen.has(name)) continue;
      seen.add(name);
      try {
        symlinkSync(realpathSync(join(dir, name)), join(bin, name));
      } catch {
        // A dangling link on this machine.
      }
    }
  }
  return bin;
}

/** Runs the bundle's run.sh offline; returns its exit code and $OUT. */
async function runOffline(
  args: string[],
  options: { setupOnly?: boolean; without?: string[] } = {},
) {
  const home = tempDir("irmae-gpu-home-");
  const out = tempDir("irmae-gpu-out-");
  const work = tempDir("irmae-gpu-work-");
  const env = [
    `PATH=${pathWithout(options.without ?? [])}`,
    `HOME=${home}`,
    `OUT=${out}`,
    `GPU_WORK=${work}/w`,
    `GPU_GL_PREFIX=${work}/gl`,
    "GPU_CHECK_LIMIT=1800",
    ...(options.setupOnly ? ["GPU_SETUP_ONLY=1"] : []),
  ];
  const r = await runCommand("unshare", [
    "-n",
    "env",
    "-i",
    ...env,
    "bash",
    join(BUNDLE, "run.sh"),
    ...args,
  ]);
  return { ...r, out, work };
}

/**
 * A bare machine, simulated: `/` as an overlay in a mount namespace of its
 * own, without the Vulkan loader and libGLdispatch (removed in the overlay),
 * where run.sh installs them from the bundle into `/` as on a GPU machine
 * and finds the adapter through them. Undefined where no overlay mounts
 * (not root, no mount namespace).
 */
async function runInBareRoot() {
  const ns = await runCommand("unshare", ["-m", "true"]).catch(() => null);
  if (ns === null || ns.code !== 0) return undefined;
  const root = tempDir("irmae-gpu-root-");
  const out = tempDir("irmae-gpu-out-");
  const home = tempDir("irmae-gpu-home-");
  const path = pathWithout([]);
  const script = `set -e
m="$1/m"
mkdir -p "$1/u" "$1/w" "$m"
mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$m" || exit 99
for d in /proc /dev /sys "$2" "$3" "$4" "$5"; do
  mkdir -p "$m$d"
  mount --rbind "$d" "$m$d"
done
chroot "$m" /bin/bash -c '
  for f in $(ldconfig -p | sed -nE "s/^[[:space:]]*lib(vulkan.so.1|GLdispatch.so.0) .*=> //p"); do
    rm -f "$f"*
  done
  ldconfig
  ! ldconfig -p | grep -q "libvulkan.so.1 (" || exit 98
  env -i PATH="$3" HOME="$4" OUT="$2" GPU_WORK=/tmp/irmae-gpu-bare \
    bash "$1/run.sh" --allow-software --skip parity,bench,train,paper
' chroot "$2" "$3" "$4" "$5"
`;
  const r = await runCommand("unshare", [
    "-m",
    "-n",
    "bash",
    "-c",
    script,
    "bare-root",
    root,
    BUNDLE,
    out,
    path,
    home,
  ]);
  if (r.code === 99 || r.code === 98) return undefined;
  return { ...r, out };
}

Deno.test({
  name: "the GPU bundle runs gpu-check offline on the software adapter",
  ignore: skip !== undefined,
  fn: async (t) => {
    await t.step("it is at most 56 MiB and records its commit", async () => {
      const info = JSON.parse(
        readFileSync(join(BUNDLE, "bundle.json"), "utf8"),
      );
      const sizes = (info.files as { name: string; bytes: number }[])
        .map((f) => {
          assert.equal(statSync(join(BUNDLE, f.name)).size, f.bytes, f.name);
          return f.bytes;
        });
      const total = sizes.reduce((a, b) => a + b, 0);
      assert.ok(total / 2 ** 20 <= MAX_MIB, `${total / 2 ** 20} MiB`);
      const head = await runCommand("git", ["rev-parse", "HEAD"], {
        cwd: ROOT,
      });
      assert.equal(info.commit, head.stdout.trim());
      for (const p of ["libvulkan1", "libglvnd0", "libegl1", "libglx0"]) {
        assert.ok(
          (info.debs as string[]).some((d) => d.startsWith(`${p}_`)),
          `${p} missing`,
        );
      }
    });

    await t.step("it unpacks with python3 alone (no xz, no dpkg)", async () => {
      const r = await runOffline([], {
        setupOnly: true,
        without: ["xz", "unxz", "xzcat", "dpkg", "dpkg-deb"],
      });
      const log = readFileSync(join(r.out, "run.log"), "utf8");
      assert.equal(r.code, 0, log);
      assert.match(log, /^deno \d+\.\d+\.\d+/m);
      assert.ok(
        existsSync(
          join(
            r.work,
            "gl",
            "usr",
            "lib",
            "x86_64-linux-gnu",
            "libvulkan.so.1",
          ),
        ),
        "libvulkan.so.1 not unpacked",
      );
    });

    await t.step(
      "on a machine without the loader it installs what is missing into /",
      async () => {
        const r = await runInBareRoot();
        if (r === undefined) {
          console.log("SKIPPED this step: cannot mount an overlay root");
          return;
        }
        const log = readFileSync(join(r.out, "run.log"), "utf8");
        assert.equal(r.code, 0, `${r.stderr}\n${log}`);
        assert.match(log, /unpacked libvulkan1 libglvnd0 into \/ \(ldconfig\)/);
        const report = JSON.parse(
          readFileSync(join(r.out, "gpu-check.json"), "utf8"),
        );
        assert.equal(report.adapter.status, "passed");
        // Through Vulkan, not wgpu's GL fallback.
        assert.equal(report.adapter.vulkanOnly.sameAdapter, true);
      },
    );

    // deno-lint-ignore no-explicit-any
    let report: any;
    await t.step("run.sh completes every part offline", async () => {
      const r = await runOffline(OFFLINE_ARGS);
      const files = readdirSync(r.out);
      // On failure, the end of every log.
      const logs = files.filter((f) => f.endsWith(".log")).map((f) =>
        `--- ${f}\n${readFileSync(join(r.out, f), "utf8").slice(-4000)}`
      ).join("\n");
      const json = join(r.out, "gpu-check.json");
      if (existsSync(json)) report = JSON.parse(readFileSync(json, "utf8"));
      assert.equal(r.code, 0, logs);
      // What a GPU machine sends back: at most 8 plain files.
      assert.ok(files.length <= 8, files.join(" "));
      for (const f of files) {
        assert.ok(statSync(join(r.out, f)).isFile(), f);
        assert.ok(statSync(join(r.out, f)).size < 16 * 2 ** 20, f);
      }
      for (const f of files.filter((f) => f.endsWith(".log"))) {
        const text = readFileSync(join(r.out, f), "utf8");
        assert.doesNotMatch(text, /Download https?:/, `${f} went online`);
      }
      assert.ok(files.includes("rank_history.png"));
    });
    if (report === undefined) return;
    await t.step(
      "the adapter: the software one, through the bundle's loader",
      () => {
        assert.equal(report.adapter.status, "passed");
        assert.equal(report.adapter.software, true);
        assert.match(report.adapter.description, /llvmpipe/);
        assert.match(report.environment.LD_LIBRARY_PATH, /\/gl\/usr\/lib/);
        // Through Vulkan (the bundle's loader), not wgpu's GL fallback.
        assert.equal(report.adapter.vulkanOnly.sameAdapter, true);
        assert.equal(report.bundle.commit.length, 40);
      },
    );
    await t.step("the parity suite passed", () => {
      assert.equal(report.parity.status, "passed");
      assert.ok(report.parity.passed >= 10, `${report.parity.passed}`);
      assert.equal(report.parity.failed, 0);
    });
    await t.step("the bench timed both networks on webgpu and wasm", () => {
      assert.equal(report.bench.status, "passed");
      for (const name of ["shapes-ae", "mnist-irmae-l8"]) {
        const row = report.bench.summary[name];
        assert.ok(row.webgpu > 0 && row.wasm > 0, JSON.stringify(row));
      }
    });
    for (const part of ["train", "paper"]) {
      await t.step(`the ${part} part wrote both rank curves`, () => {
        const p = report[part];
        assert.equal(p.status, "passed", p.reason);
        assert.equal(p.steps, part === "train" ? 4 : 2);
        assert.deepEqual(p.models.map((m: { name: string }) => m.name), [
          "ae",
          "irmae-l4",
        ]);
        for (const m of p.models) {
          assert.ok(m.imagesPerSecond > 0);
          assert.ok(m.rankCurve.length >= 2);
          assert.equal(m.rankCurve.at(-1).step, p.steps);
          assert.ok(
            m.rankCurve.every((h: { rank: object }) =>
              Object.keys(h.rank).length > 0
            ),
          );
        }
      });
    }
  },
});
