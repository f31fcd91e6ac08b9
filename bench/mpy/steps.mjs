// Run a MicroPython script under the real MicroPython 1.29 WebAssembly port (tests/mpy's), in
// steps, with the core either as files on the heap or frozen-like in a ROMFS image.
//
//   node bench/mpy/steps.mjs SCRIPT.py [--rom=IMAGE] [--firmware=DIR] [DATAFILE ...] [-- ARG ...]
//
// --rom=IMAGE mounts a ROMFS image (`mpremote romfs build`) at /rom and puts /rom first on
// sys.path: its .mpy bytecode runs in place, outside the heap, as frozen code does on a device
// (the ESP32-WROOM build freezes the core). Without it the core is copied from DIR (default
// firmware/) to /repo/firmware as .py files. Each DATAFILE goes to /data/<basename> (the
// global DATA is "/data"); the ARGs after "--" are the global ARGS (a list of str).
//
// A line "# --- next call ---" splits the script into separate runPython calls: this port's
// gc.collect() only asks for a collection, made between two calls (its conservative scan cannot
// see inside a running call), so what a step leaves is measured in the call after a collect.
// A part whose first line is "# --- repeat ---" is run again and again while the global `more`
// is true, each run after a gc.collect() call of its own: a script steps a loader, one line or
// one extension per call, and reads gc.mem_alloc() at both ends of each step.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const MOD = path.join(REPO, "tests/mpy/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs");
const { loadMicroPython } = await import(pathToFileURL(MOD).href);

const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const own = dash < 0 ? argv : argv.slice(0, dash);
const args = dash < 0 ? [] : argv.slice(dash + 1);
const opt = (name) => (own.find((a) => a.startsWith(name + "=")) || "").slice(name.length + 1);
const [script, ...data] = own.filter((a) => !a.startsWith("--"));
const rom = opt("--rom");

const mp = await loadMicroPython({
  heapsize: 1024 * 1024,
  linebuffer: true,
  romfs: rom ? new Uint8Array(fs.readFileSync(rom)) : undefined,
  stdout: (l) => process.stdout.write(l + "\n"),
  stderr: (l) => process.stderr.write(l + "\n"),
});

function mirror(host, dest) {
  mp.FS.mkdirTree(dest);
  for (const ent of fs.readdirSync(host)) {
    if (ent === "__pycache__") continue;
    const src = path.join(host, ent);
    if (fs.statSync(src).isDirectory()) mirror(src, dest + "/" + ent);
    else mp.FS.writeFile(dest + "/" + ent, fs.readFileSync(src));
  }
}
if (!rom) mirror(path.join(opt("--firmware") || path.join(REPO, "firmware"), "zongji"), "/repo/firmware/zongji");
mp.FS.mkdirTree("/data");
for (const f of data) mp.FS.writeFile("/data/" + path.basename(f), fs.readFileSync(f));

function run(code) {
  try {
    mp.runPython(code);
  } catch (e) {
    console.error("steps: " + String(e.message || e).slice(0, 2000));
    process.exit(1);
  }
}
run("import gc, sys\nsys.path.insert(0, " + JSON.stringify(rom ? "/rom" : "/repo/firmware") + ")\nARGS = " + JSON.stringify(args) + '\nDATA = "/data"');
for (const part of fs.readFileSync(script, "utf8").split(/\n\s*# --- next call ---\s*\n/)) {
  if (!/^\s*# --- repeat ---/.test(part)) {
    run(part);
    continue;
  }
  run("more = True");
  while (mp.globals.get("more")) {
    run("gc.collect()");
    run(part);
  }
}
