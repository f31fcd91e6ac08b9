// Run one MicroPython script under the real MicroPython 1.29 WebAssembly port (the same one
// the core tests use, installed by tests/run.sh into tests/mpy/node_modules).
//
//   node bench/mpy_run.mjs SCRIPT.py [DATAFILE ...]
//
// The core package is copied to /repo/firmware/zongji (on sys.path); each DATAFILE to
// /data/<basename>. The script's stdout is passed through.
//
// A line "# --- next call ---" splits the script into separate runPython calls. This port's
// gc.collect() frees nothing while a runPython call is still running (its conservative scan
// sees the whole call's stack), so a script measuring live heap must collect in a new call.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MOD = path.join(REPO, "tests/mpy/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs");
const { loadMicroPython } = await import(pathToFileURL(MOD).href);
const [script, ...data] = process.argv.slice(2);
const mp = await loadMicroPython({ heapsize: 8 * 1024 * 1024, linebuffer: true,
  stdout: (l) => process.stdout.write(l + "\n"), stderr: (l) => process.stderr.write(l + "\n") });

function mirror(host, dest) {
  mp.FS.mkdirTree(dest);
  for (const ent of fs.readdirSync(host)) {
    if (ent === "__pycache__") continue;
    const src = path.join(host, ent);
    if (fs.statSync(src).isDirectory()) mirror(src, dest + "/" + ent);
    else mp.FS.writeFile(dest + "/" + ent, fs.readFileSync(src));
  }
}
mirror(path.join(REPO, "firmware/zongji"), "/repo/firmware/zongji");
mp.FS.mkdirTree("/data");
for (const f of data) mp.FS.writeFile("/data/" + path.basename(f), fs.readFileSync(f));
try {
  mp.runPython('import sys\nsys.path.insert(0, "/repo/firmware")');
  for (const part of fs.readFileSync(script, "utf8").split(/\n\s*# --- next call ---\s*\n/)) mp.runPython(part);
} catch (e) {
  console.error("mpy_run: " + (e.message || e));
  process.exit(1);
}
