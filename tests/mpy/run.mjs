// Run the core tests (tests/core/test_*.py) under real MicroPython 1.29: the WebAssembly port
// from npm (`npm ci --prefix tests/mpy`), inside Node.
//
//   node tests/mpy/run.mjs [-v] [--heap=8m] [test_module[::test_name] ...]
//
// The wasm interpreter cannot see the host filesystem, so we copy in what the tests need,
// keeping the host's relative layout so _support.py's path arithmetic works unchanged:
//   <repo>/firmware/zongji   -> /repo/firmware/zongji   (on sys.path as /repo/firmware)
//   <repo>/tests/core        -> /repo/tests/core        (on sys.path)
//   <repo>/tests/mpy/runner.py -> /repo/tests/mpy/runner.py
//   <repo>/tests/data         -> /repo/tests/data
// Exit status: 0 all passed, 1 a test failed, 2 no tests ran or the runner itself broke.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");

let mpmod;
try {
  mpmod = await import("@micropython/micropython-webassembly-pyscript/micropython.mjs");
} catch (e) {
  console.error("run.mjs: MicroPython wasm not installed; run `npm ci --prefix tests/mpy` (" + e.message + ")");
  process.exit(2);
}

const args = process.argv.slice(2);
const verbose = args.includes("-v");
const heapArg = args.find((a) => a.startsWith("--heap="));
const selected = args.filter((a) => a !== "-v" && !a.startsWith("--heap="));

// The heap size is only the first chunk: this build grows its heap on demand (split heap),
// so tests measure memory with gc.mem_alloc() deltas, not by hitting MemoryError.
function parseSize(s) {
  const m = /^(\d+)([kKmM]?)$/.exec(s);
  if (!m) throw new Error("bad --heap value: " + s);
  return Number(m[1]) * ({ k: 1024, m: 1024 * 1024 }[m[2].toLowerCase()] || 1);
}
const heapsize = heapArg ? parseSize(heapArg.slice(7)) : 8 * 1024 * 1024;

// `run.mjs | head` closes the pipe early: stop quietly instead of dumping an EPIPE trace.
process.stdout.on("error", (e) => process.exit(e.code === "EPIPE" ? 1 : 2));

const mp = await mpmod.loadMicroPython({
  heapsize,
  linebuffer: true,
  // Traceback paths point back at the host files, so editors can jump to them.
  stdout: (line) => process.stdout.write(line.replace(/^(  File ")\/repo\//, "$1" + REPO + "/") + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

const SKIP = new Set(["__pycache__", "node_modules", ".pytest_cache"]);

// Copy a host directory tree into the wasm filesystem (no-op with a warning if absent).
function mirror(hostDir, mpDir) {
  if (!fs.existsSync(hostDir)) {
    console.error("run.mjs: warning: " + hostDir + " not found, not copied");
    return;
  }
  mp.FS.mkdirTree(mpDir);
  for (const ent of fs.readdirSync(hostDir)) {
    if (SKIP.has(ent) || ent.startsWith(".") || ent.endsWith(".pyc")) continue;
    const src = path.join(hostDir, ent);
    if (fs.statSync(src).isDirectory()) mirror(src, mpDir + "/" + ent);
    else mp.FS.writeFile(mpDir + "/" + ent, fs.readFileSync(src));
  }
}

mirror(path.join(REPO, "firmware", "zongji"), "/repo/firmware/zongji");
mirror(path.join(REPO, "tests", "core"), "/repo/tests/core");
// the device entry point, for the boot tests (they exec it in this sandboxed filesystem)
mp.FS.writeFile("/repo/firmware/main.py", fs.readFileSync(path.join(REPO, "firmware", "main.py")));
mp.FS.mkdirTree("/repo/tests/mpy");
mp.FS.writeFile("/repo/tests/mpy/runner.py", fs.readFileSync(path.join(HERE, "runner.py")));
mirror(path.join(REPO, "tests", "data"), "/repo/tests/data");

// A JSON array of strings is also a valid Python list literal.
const code = `
import sys
sys.path[:0] = ["/repo/tests/core", "/repo/firmware", "/repo/tests/mpy"]
import runner
_summary = "%d %d %d" % runner.main("/repo/tests/core", ${JSON.stringify(selected)}, ${verbose ? "True" : "False"})
`;

try {
  mp.runPython(code);
} catch (e) {
  // Only errors outside a test land here (runner bug, SystemExit from a test, ...).
  console.error("run.mjs: runner crashed: " + (e.message || e));
  process.exit(2);
}
const [passed, failed, skipped] = mp.globals.get("_summary").split(" ").map(Number);
if (passed + failed + skipped === 0) {
  console.error("run.mjs: no tests ran");
  process.exitCode = 2;
} else {
  process.exitCode = failed ? 1 : 0;
}
